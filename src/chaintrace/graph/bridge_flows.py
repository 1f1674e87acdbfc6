"""Every deposit into and release out of a bridge, with the matches between them (:func:`bridge_flows`): what a
screening answer states about an address that used a bridge (:mod:`chaintrace.screen.bridges`).

:func:`chaintrace.graph.bridges.bridge_matches` lists matched pairs only and needs both chains; screening also
needs the unmatched side ("sent 2 BTC into the bridge, no release found") and who paid each deposit, and must
answer when one chain is not in the store. The same sides and the same matcher
(:func:`chaintrace.detect.bridges.match_bridge`) are used, so the matches are those of ``detect bridges``.

Which transfers count for the facts: value paid to a bridge address (a Bitcoin custodian output, a transfer to
the Ethereum contract) is a deposit whether or not it was matched; value paid out of one is a release. Wrapped
token mints (from the zero address) and burns (to it) count only when matched: a mint is not known to be this
bridge's until a deposit explains it (any token's mint would otherwise be listed).
"""
from __future__ import annotations

import numpy as np

from chaintrace.detect.bridges import DEFAULTS, RULES, match_bridge
from chaintrace.store.workspace import Workspace


def _btc(ws: Workspace, addrs: list[str]) -> dict | None:
    from chaintrace.graph.bridges import _btc_side
    from chaintrace.graph.btc import address_ids, address_strings

    have = address_ids(ws, addrs)
    present = [a for a in addrs if a in have]
    if not present:
        return None
    b = _btc_side(ws, present)
    g = b["g"]
    dep, rel = b["dep"], b["rel"]
    dep_tx = g.out_tx[dep]
    payers: dict[int, list[int]] = {}
    for t in np.unique(dep_tx).tolist():
        ins = g.in_output[int(g.tx_in[t]):int(g.tx_in[t + 1])]
        payers[t] = sorted(set(g.out_addr[ins[ins >= 0]].tolist()) - {-1})
    names = address_strings(ws, sorted({a for v in payers.values() for a in v} | set(g.out_addr[rel].tolist())))

    def row(o: int, who: list[str | None] | str | None, key: str, memo: str | None = None) -> dict:
        t = int(g.out_tx[o])
        txid = b["txid"].get(t)
        return {"chain": "btc", "id": o, "tx": txid, "ref": f"{txid}:{int(o - g.tx_out[t])}", "time": int(g.tx_time[t]),
                key: who, "amount": int(g.out_value[o]), "asset": "BTC", "decimals": 8, "sats": int(g.out_value[o]),
                "via": "address", **({"memo": memo} if memo else {})}

    custodian = {i: a for a, i in have.items()}
    deps = [{**row(int(o), [names.get(a) for a in payers[int(g.out_tx[o])]], "from", b["memo"].get(int(g.out_tx[o]))),
             "bridge_address": custodian.get(int(g.out_addr[o]))} for o in dep.tolist()]
    rels = []
    for o in rel.tolist():  # paid out of the custodian: the custodian address among the transaction's inputs
        t = int(g.out_tx[o])
        ins = g.in_output[int(g.tx_in[t]):int(g.tx_in[t + 1])]
        own = [custodian[a] for a in g.out_addr[ins[ins >= 0]].tolist() if a in custodian]
        rels.append({**row(int(o), names.get(int(g.out_addr[o])), "to"), "bridge_address": own[0] if own else None})
    return {"g": g, "b": b, "deposits": deps, "releases": rels, "addresses": present}


def _eth(ws: Workspace, contracts: list[str], token: str | None) -> dict:
    from chaintrace.graph.bridges import _eth_side, _sats

    e = _eth_side(ws, contracts, token)
    g = e["g"]
    ids = g.address_ids(contracts)
    cids = np.array([ids[c] for c in contracts if c in ids], np.int64)

    def rows(ks: np.ndarray, release: bool) -> list[dict]:
        if not len(ks):
            return []
        sats, exact = _sats(g, e["assets"], ks)
        txs, refs, _ = g.refs(ks)
        times = g.time_of_height(g.tr_height[ks])
        frm, to = g.address_strings(g.tr_from[ks]), g.address_strings(g.tr_to[ks])
        at_bridge = np.isin(g.tr_from[ks] if release else g.tr_to[ks], cids)
        out = []
        for i, k in enumerate(ks.tolist()):
            a = e["assets"].get(int(g.tr_asset[k]), {})
            out.append({"chain": "eth", "id": int(k), "tx": txs[i], "ref": refs[i], "time": int(times[i]),
                        **({"to": to[i]} if release else {"from": [frm[i]]}), "amount": int(exact[i]),
                        "asset": a.get("symbol") or a.get("address") or "ETH",
                        "decimals": int(a.get("decimals") if a.get("decimals") is not None else 18),
                        "sats": int(sats[i]), "via": "address" if at_bridge[i] else ("mint" if release else "burn"),
                        "bridge_address": frm[i] if release else to[i]})
        return out

    return {"g": g, "deposits": rows(e["dep"], False), "releases": rows(e["rel"], True),
            "addresses": [c for c in contracts if c in ids]}


def bridge_flows(ws: Workspace, btc_addrs: list[str], eth_addrs: list[str], *, token: str | None = None,
                 **params) -> dict:
    """``{deposits, releases, matches, params, missing}`` of one bridge (its Bitcoin custodian addresses and
    Ethereum contracts). Deposits ``{chain, id, tx, ref, time, from: [addresses], amount, asset, decimals, sats,
    via}`` (amount exact in the asset's base units; ``id``: the output / transfer id of the graph), releases
    likewise with ``to``; matches ``{dep, rel, rule, confidence, deterministic, fee_sat, delay_s}`` (indices into
    deposits / releases). ``missing``: why nothing could be matched (a chain not in the store, no bridge address
    of a chain in it), else None. Mints and burns appear only when matched (module doc)."""
    p = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    chains = ws.chains()
    b = _btc(ws, [a for a in btc_addrs]) if "btc" in chains and btc_addrs else None
    e = _eth(ws, [a.lower() for a in eth_addrs], token) if "eth" in chains and (b is not None or eth_addrs) else None
    missing = None
    if "btc" not in chains or "eth" not in chains:
        missing = (f"{'eth' if 'btc' in chains else 'btc'} data is not in the workspace: the other side of the "
                   "bridge is unknown")
    elif b is None:
        missing = "no Bitcoin address of the bridge is in the btc data: its deposits and releases cannot be matched"
    deps = (b["deposits"] if b else []) + (e["deposits"] if e else [])
    rels = (b["releases"] if b else []) + (e["releases"] if e else [])
    matches: list[dict] = []
    if b is not None and e is not None:
        nb_d, nb_r = len(b["deposits"]), len(b["releases"])
        eg = e["g"]
        for src, dst, d0, r0 in (("btc", "eth", 0, nb_r), ("eth", "btc", nb_d, 0)):
            ds = [x for x in deps if x["chain"] == src]
            rs = [x for x in rels if x["chain"] == dst]
            if not ds or not rs:
                continue
            if src == "btc":  # a memo names an Ethereum recipient: the event rule
                memo_ids = eg.address_ids([x["memo"] for x in ds if x.get("memo")])
                dest = [memo_ids.get(x.get("memo") or "", -1) for x in ds]
                rkey = [int(eg.tr_to[x["id"]]) for x in rs]
            else:
                dest = [-1] * len(ds)
                rkey = [int(b["g"].out_addr[x["id"]]) for x in rs]
            r = match_bridge([x["sats"] for x in ds], [x["time"] for x in ds], dest, [x["sats"] for x in rs],
                             [x["time"] for x in rs], rkey, **p)
            for i in range(len(r["dep"])):
                matches.append({"dep": d0 + int(r["dep"][i]), "rel": r0 + int(r["rel"][i]),
                                "rule": RULES[int(r["rule"][i])], "confidence": float(r["confidence"][i]),
                                "deterministic": int(r["rule"][i]) == 0, "fee_sat": int(r["fee"][i]),
                                "delay_s": int(r["delay"][i])})
    # mints and burns only when matched (module doc); indices renumbered
    used_d = {m["dep"] for m in matches}
    used_r = {m["rel"] for m in matches}
    keep_d = [i for i, x in enumerate(deps) if x["via"] == "address" or i in used_d]
    keep_r = [i for i, x in enumerate(rels) if x["via"] == "address" or i in used_r]
    nd = {o: n for n, o in enumerate(keep_d)}
    nr = {o: n for n, o in enumerate(keep_r)}
    for m in matches:
        m["dep"], m["rel"] = nd[m["dep"]], nr[m["rel"]]
    return {"deposits": [deps[i] for i in keep_d], "releases": [rels[i] for i in keep_r], "matches": matches,
            "params": p, "missing": missing, "token": token,
            "addresses": {"btc": b["addresses"] if b else [], "eth": e["addresses"] if e else []}}
