"""Bridge matches over a workspace holding both Bitcoin and Ethereum data (:func:`bridge_matches`).

``chaintrace detect bridges --bridge ADDRESS ...`` prints this. A bridge is named by its addresses: a Bitcoin
custodian address (deposits are outputs paying it; releases are outputs paid out of it to other addresses) and/or
an Ethereum bridge contract (ETH or tokens locked in it are deposits; paid out of it, releases). Wrapped-token
mints (a token transfer from the zero address) are releases on Ethereum and burns (to the zero address) are
deposits, for the token given by ``token`` (any token when None). Amounts are compared in satoshi: a token
amount is divided by ``10**(decimals - 8)`` (exact when it divides; WBTC/renBTC have 8 decimals).

A Bitcoin deposit whose transaction carries an OP_RETURN of 20 bytes names an Ethereum destination (the memo
renBTC-, THORChain-style bridges read); that is the ``event`` rule. Everything else is ``amount+time``
(:mod:`chaintrace.detect.bridges`).
"""
from __future__ import annotations

import numpy as np

from chaintrace.chains.eth.records import ZERO_ADDRESS
from chaintrace.detect.bridges import DEFAULTS, RULES, match_bridge
from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace


def _split(bridges: list[str]) -> tuple[list[str], list[str]]:
    eth = [b.lower() for b in bridges if b.lower().startswith("0x") and len(b) == 42]
    return [b for b in bridges if b.lower() not in eth], eth


def _btc_side(ws: Workspace, addrs: list[str]) -> dict:
    """Deposits into / releases out of the custodian addresses, with OP_RETURN memos of the deposits."""
    from chaintrace.graph.btc import _scan, address_ids, address_strings, load_btc_graph, txids

    g = load_btc_graph(ws)
    ids = address_ids(ws, addrs)
    missing = [a for a in addrs if a not in ids]
    if missing:
        raise UserError(f"bridge address {missing[0]} is not in the btc store of {ws.path}")
    bridge = np.isin(g.out_addr, np.array(list(ids.values()), np.int64))
    # a transaction spends the bridge when one of its inputs is a bridge output
    spent = g.in_output[g.in_output >= 0]
    from_bridge = np.zeros(g.n_tx, bool)
    from_bridge[g.in_tx[g.in_output >= 0][bridge[spent]]] = True
    dep = np.flatnonzero(bridge & ~from_bridge[g.out_tx])
    rel = np.flatnonzero(~bridge & from_bridge[g.out_tx] & (g.out_addr >= 0))
    memo: dict[int, str] = {}
    if len(dep):
        con = _scan(ws, "outputs")
        import pyarrow as pa
        con.register("q", pa.table({"tx_id": np.unique(g.out_tx[dep])}))
        for t, script in con.execute("SELECT o.tx_id, o.script FROM outputs o JOIN q USING (tx_id) "
                                     "WHERE o.script_type = 'nulldata'").fetchall():
            s = bytes(script)
            if len(s) == 22 and s[0] == 0x6A and s[1] == 20:
                memo[int(t)] = "0x" + s[2:].hex()
    tx_all = np.unique(np.concatenate([g.out_tx[dep], g.out_tx[rel]]))
    names = txids(ws, tx_all.tolist())
    addr = address_strings(ws, np.unique(g.out_addr[rel]).tolist())
    return {"g": g, "dep": dep, "rel": rel, "memo": memo, "txid": names, "addr": addr}


def _eth_side(ws: Workspace, contracts: list[str], token: str | None) -> dict:
    from chaintrace.graph.eth import load_eth_graph

    g = load_eth_graph(ws)
    assets = ws.require_chain("eth").read("assets", ["asset_id", "address", "symbol", "decimals"]).to_pylist()
    amap = {a["asset_id"]: a for a in assets}
    ids = g.address_ids([ZERO_ADDRESS, *contracts])
    zero = ids.get(ZERO_ADDRESS, -2)
    cids = np.array([ids[c] for c in contracts if c in ids], np.int64)
    sel = np.ones(g.n_transfers, bool)
    if token:
        t = [a["asset_id"] for a in assets if (a["address"] or "").lower() == token.lower()
             or (a["symbol"] or "").lower() == token.lower()]
        if not t:
            raise UserError(f"token {token} is not among the eth store's assets")
        sel = np.isin(g.tr_asset, np.array(t, np.int32))
    from chaintrace.graph.eth import KIND_CODE
    sel &= ~np.isin(g.tr_kind, np.array([KIND_CODE["fee_burn"], KIND_CODE["fee_tip"]], np.int8))
    tok = g.tr_kind == KIND_CODE["token"]
    rel = np.flatnonzero(sel & (((g.tr_from == zero) & tok) | np.isin(g.tr_from, cids)))
    dep = np.flatnonzero(sel & (((g.tr_to == zero) & tok) | np.isin(g.tr_to, cids)))
    return {"g": g, "dep": dep, "rel": rel, "assets": amap}


def _sats(g, assets, ks) -> tuple[np.ndarray, list[int]]:
    """Amounts of transfers ks in satoshi (8 decimals) and the exact amounts."""
    exact = g.amounts(ks)
    out = []
    for k, v in zip(np.asarray(ks).tolist(), exact):
        d = assets.get(int(g.tr_asset[k]), {}).get("decimals") or 18
        out.append(v // 10 ** (d - 8) if d >= 8 else v * 10 ** (8 - d))
    return np.array(out, np.int64), exact


def bridge_matches(ws: Workspace, bridges: list[str], *, token: str | None = None, **params) -> dict:
    """Deposits into the bridge on one chain matched with releases on the other (see module doc)."""
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    chains = ws.chains()
    if "btc" not in chains or "eth" not in chains:
        raise UserError(f"detect bridges needs both btc and eth data in {ws.path} (it has: "
                        f"{', '.join(chains) or 'none'}); ingest the other chain first")
    if not bridges:
        raise UserError("detect bridges needs --bridge ADDRESS (a custodian BTC address and/or an ETH contract)")
    baddr, eaddr = _split(list(bridges))
    b = _btc_side(ws, baddr) if baddr else None
    e = _eth_side(ws, eaddr, token)
    matches = []
    if b is not None:
        bg, eg = b["g"], e["g"]
        # BTC -> ETH: custodian deposits against mints / contract releases
        memo_ids = eg.address_ids(list(b["memo"].values()))
        dest = [memo_ids.get(b["memo"].get(int(bg.out_tx[o]), ""), -1) for o in b["dep"]]
        rv, rexact = _sats(eg, e["assets"], e["rel"])
        r = match_bridge(bg.out_value[b["dep"]], bg.tx_time[bg.out_tx[b["dep"]]], dest, rv,
                         eg.time_of_height(eg.tr_height[e["rel"]]), eg.tr_to[e["rel"]], **p)
        matches += _rows("btc", "eth", r, b, e, rexact, None)
        # ETH -> BTC: burns / contract locks against custodian payouts
        dv, dexact = _sats(eg, e["assets"], e["dep"])
        r = match_bridge(dv, eg.time_of_height(eg.tr_height[e["dep"]]), np.full(len(dv), -1),
                         bg.out_value[b["rel"]], bg.tx_time[bg.out_tx[b["rel"]]], bg.out_addr[b["rel"]], **p)
        matches += _rows("eth", "btc", r, b, e, None, dexact)
    matches.sort(key=lambda m: (m["deposit"]["time"], -m["confidence"], m["release"]["tx"]))
    det = [m for m in matches if m["rule"] == RULES[0]]
    return {"bridges": list(bridges), "token": token, "params": p,
            "deterministic": len(det), "probabilistic": len(matches) - len(det), "matches": matches,
            "data": {"btc_commit": b["g"].commit if b else None, "eth_commit": e["g"].commit,
                     "btc_deposits": int(len(b["dep"])) if b else 0, "btc_releases": int(len(b["rel"])) if b else 0,
                     "eth_deposits": int(len(e["dep"])), "eth_releases": int(len(e["rel"]))},
            "assumed": "amounts compared in satoshi (token amounts scaled by their decimals); the event rule "
                       "reads a 20-byte OP_RETURN memo of the BTC deposit; amount+time confidences are a split "
                       "of candidates, not proof"}


def _rows(src: str, dst: str, r: dict, b: dict, e: dict, rexact, dexact) -> list[dict]:
    bg, eg = b["g"], e["g"]
    out = []

    def btc_side(o):
        t = int(bg.out_tx[o])
        txid = b["txid"].get(t)
        return {"chain": "btc", "tx": txid, "ref": f"{txid}:{int(o - bg.tx_out[t])}", "time": int(bg.tx_time[t]),
                "address": b["addr"].get(int(bg.out_addr[o])), "amount": int(bg.out_value[o]), "unit": "sat"}

    def eth_side(k, exact):
        txs, refs, _ = eg.refs([k])
        a = e["assets"].get(int(eg.tr_asset[k]), {})
        who = eg.tr_to[k] if src == "btc" else eg.tr_from[k]
        return {"chain": "eth", "tx": txs[0], "ref": refs[0], "time": int(eg.time_of_height(eg.tr_height[k])),
                "address": eg.address_strings([who])[0], "amount": int(exact),
                "asset": a.get("symbol") or a.get("address") or "ETH", "unit": "base units"}

    for i in range(len(r["dep"])):
        d, x = int(r["dep"][i]), int(r["rel"][i])
        if src == "btc":
            dep, rel = btc_side(int(b["dep"][d])), eth_side(int(e["rel"][x]), rexact[x])
            rel["recipient"] = rel.pop("address")
        else:
            dep, rel = eth_side(int(e["dep"][d]), dexact[d]), btc_side(int(b["rel"][x]))
            rel["recipient"] = rel.pop("address")
        out.append({"from_chain": src, "to_chain": dst, "deposit": dep, "release": rel,
                    "fee_sat": int(r["fee"][i]), "delay_s": int(r["delay"][i]),
                    "rule": RULES[int(r["rule"][i])], "confidence": float(r["confidence"][i]),
                    "deterministic": int(r["rule"][i]) == 0})
    return out
