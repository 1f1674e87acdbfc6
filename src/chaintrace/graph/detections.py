"""Run the flow detectors of :mod:`chaintrace.detect` (peel chains, fan-out, fan-in, structuring, rapid
pass-through, dormancy) over the Bitcoin graph of a workspace, with txids and addresses resolved.

``detect(ws, kind, address=None, **params)`` is what ``chaintrace detect KIND`` prints. The detectors take
plain arrays; this module passes the graph's columns and turns dense ids into strings at the edge.
"""
from __future__ import annotations

import numpy as np

from chaintrace.detect import flows, peel
from chaintrace.errors import UserError
from chaintrace.graph.btc import BtcGraph, address_ids, address_strings, load_btc_graph, txids
from chaintrace.store.workspace import Workspace

# kind -> {parameter: default}; the defaults are the thresholds a detection reports it was made under
KINDS: dict[str, dict] = {
    "peel-chain": {"min_length": 3},
    "fan-out": {"min_outputs": 10},
    "fan-in": {"min_inputs": 10},
    "structuring": {"min_outputs": 5, "tolerance": 0.05, "min_share": 0.8},
    "pass-through": {"max_hold_blocks": 1, "min_receipts": 1, "min_share": 1.0},
    "dormancy": {"min_dormant_blocks": 1000},
}


def _raw(g: BtcGraph, kind: str, p: dict, addr: int | None) -> list[dict]:
    """Detections with dense ids: each has ``txs`` (transactions it stands on) and ``addresses`` touched."""
    def outs_of(t):
        return range(int(g.tx_out[t]), int(g.tx_out[t + 1]))

    if kind == "peel-chain":
        looks = peel.looks_like_peeling_chain(g)
        res = []
        for c in peel.peel_chains(looks, g.tx_out, g.out_value, g.out_addr, g.out_spender_tx,
                                  min_length=p["min_length"]):
            first_in = int(g.tx_in[c["start"]])
            o = int(g.in_output[first_in])
            c["input_value"] = int(g.out_value[o]) if o >= 0 else None
            c["addresses"] = [x["address"] for x in c["peels"]] + [c["remainder"]["address"]]
            res.append(c)
        return res
    if kind in ("fan-out", "fan-in"):
        ids = (flows.fan_out(g.tx_out, g.tx_coinbase, min_outputs=p["min_outputs"]) if kind == "fan-out"
               else flows.fan_in(g.tx_in, min_inputs=p["min_inputs"]))
        res = []
        for t in ids:
            outs = outs_of(t)
            ins = g.in_output[g.tx_in[t]:g.tx_in[t + 1]]
            res.append({"tx": int(t), "txs": [int(t)], "n_inputs": int(len(ins)), "n_outputs": len(outs),
                        "value": int(g.out_value[outs.start:outs.stop].sum()),
                        "addresses": [int(a) for a in g.out_addr[outs.start:outs.stop]]
                        + [int(g.out_addr[i]) for i in ins if i >= 0]})
        return res
    if kind == "structuring":
        res = flows.structuring(g.tx_out, g.out_value, g.tx_coinbase, min_outputs=p["min_outputs"],
                                tolerance=p["tolerance"], min_share=p["min_share"])
        for d in res:
            o = outs_of(d["tx"])
            d["txs"] = [d["tx"]]
            d["addresses"] = [int(a) for a in g.out_addr[o.start:o.stop]]
        return res
    if kind == "pass-through":
        res = flows.pass_through(g.out_tx, g.out_addr, g.out_value, g.out_spender_tx, g.tx_height,
                                 max_hold=p["max_hold_blocks"], min_receipts=p["min_receipts"],
                                 min_share=p["min_share"],
                                 addresses=None if addr is None else np.array([addr], np.int64))
        for d in res:
            d["txs"] = sorted({int(g.out_tx[o]) for o in d["outputs"]} | {int(g.out_spender_tx[o]) for o in d["outputs"]})
            d["addresses"] = [d["address"]]
        return res
    if kind == "dormancy":
        res = []
        for o in flows.dormancy(g.out_tx, g.out_spender_tx, g.tx_height, min_dormant=p["min_dormant_blocks"]):
            t, s = int(g.out_tx[o]), int(g.out_spender_tx[o])
            res.append({"output": int(o), "tx": t, "moved_tx": s, "value": int(g.out_value[o]),
                        "address": int(g.out_addr[o]), "addresses": [int(g.out_addr[o])], "txs": [t, s],
                        "blocks_dormant": int(g.tx_height[s] - g.tx_height[t]),
                        "seconds_dormant": int(g.tx_time[s] - g.tx_time[t])})
        return res
    raise UserError(f"unknown detector {kind!r}; one of {', '.join(KINDS)}")


def detect(ws: Workspace, kind: str, address: str | None = None, **params) -> dict:
    """Run detector `kind` over the whole store (or the detections touching `address`).

    Returns ``{kind, thresholds, data: {commit, transactions}, count, detections}``; each detection holds its
    evidence: the txids it stands on, its features and, for outputs, ``txid:vout``. Unknown keys in `params`
    or an address absent from the store are a UserError."""
    if kind not in KINDS:
        raise UserError(f"unknown detector {kind!r}; one of {', '.join(KINDS)}")
    bad = set(params) - set(KINDS[kind])
    if bad:
        raise UserError(f"detector {kind} has no parameter {', '.join(sorted(bad))}; it takes {', '.join(KINDS[kind])}")
    p = {**KINDS[kind], **{k: v for k, v in params.items() if v is not None}}
    g = load_btc_graph(ws)
    addr = None
    if address is not None:
        found = address_ids(ws, [address])
        if address not in found:
            raise UserError(f"address {address} is not in the btc store of {ws.path}")
        addr = int(found[address])
    raw = _raw(g, kind, p, addr)
    if addr is not None:
        raw = [d for d in raw if addr in d["addresses"]]
    return {"kind": kind, "thresholds": p, "data": {"commit": g.commit, "transactions": g.n_tx},
            "count": len(raw), "detections": _resolve(ws, g, raw)}


def _resolve(ws: Workspace, g: BtcGraph, raw: list[dict]) -> list[dict]:
    """Dense ids -> txids, ``txid:vout`` outputs and address strings (None for outputs without an address)."""
    tids: set[int] = set()
    aids: set[int] = set()
    for d in raw:
        tids.update(d["txs"])
        aids.update(a for a in d["addresses"] if a >= 0)
    tx = txids(ws, tids)
    ad = address_strings(ws, aids)

    def output(o: int) -> str:
        t = int(g.out_tx[o])
        return f"{tx.get(t) or txids(ws, [t])[t]}:{o - int(g.tx_out[t])}"

    out = []
    for d in raw:
        r = {k: v for k, v in d.items() if k not in ("txs", "addresses", "outputs", "peels", "remainder", "start",
                                                     "tx", "moved_tx", "output", "address")}
        r["txids"] = [tx[t] for t in d["txs"]]
        if "tx" in d:
            r["txid"] = tx[d["tx"]]
        if "moved_tx" in d:
            r["moved_txid"] = tx[d["moved_tx"]]
        if "output" in d:
            r["output"] = output(d["output"])
        if "address" in d:
            r["address"] = ad.get(d["address"])
        if "outputs" in d:
            r["outputs"] = [output(o) for o in d["outputs"]]
        if "peels" in d:
            r["start"] = tx[d["start"]]
            r["peels"] = [{"txid": tx[x["tx"]], "output": output(x["output"]), "value": x["value"],
                           "address": ad.get(x["address"])} for x in d["peels"]]
            rem = d["remainder"]
            r["remainder"] = {"output": output(rem["output"]), "value": rem["value"], "address": ad.get(rem["address"])}
        if "address" not in d and "peels" not in d:
            r["addresses"] = sorted({ad[a] for a in d["addresses"] if a in ad})
        out.append(r)
    return out

