"""The flow detectors as they were before the numba kernels (main at b6a6935, verbatim but for the imports):
the reference tests/test_detect_kernels.py and bench/bench_detect.py compare the kernels against (identical
results) and time as the named baseline."""
from __future__ import annotations

import numpy as np

from chaintrace.detect import flows
from chaintrace.detect.flows import fan_out, hold_times
from chaintrace.detect.peel import looks_like_peeling_chain, peel_successor
from chaintrace.errors import UserError
from chaintrace.graph.btc import address_strings, txids

def peel_chains(looks: np.ndarray, tx_out: np.ndarray, out_value: np.ndarray, out_addr: np.ndarray,
                out_spender_tx: np.ndarray, *, min_length: int = 3) -> list[dict]:
    """Peel chains of at least `min_length` transactions, each followed from its first hop.

    Each chain: ``txs`` (dense ids in order), ``length``, ``start`` (first transaction), ``peels`` (one per hop:
    the output peeled off, its value and address id; the last hop's peel is its smaller output), ``remainder``
    (the last hop's other output) and ``peeled_total``. Value is exact: the first hop's input value equals
    peeled_total + remainder + the fees of the hops."""
    nxt, via = peel_successor(looks, tx_out, out_value, out_spender_tx)
    has_prev = np.zeros(len(looks), np.bool_)
    has_prev[nxt[nxt >= 0]] = True
    chains = []
    for s in np.flatnonzero((nxt >= 0) & ~has_prev):
        txs = [int(s)]
        while nxt[txs[-1]] >= 0 and len(txs) <= len(looks):
            txs.append(int(nxt[txs[-1]]))
        if len(txs) < min_length:
            continue
        peels = []
        for t in txs:
            k0 = int(tx_out[t])
            if via[t] >= 0:
                p = k0 + 1 if via[t] == k0 else k0
            else:  # last hop: the smaller output is the peel, the larger the remainder
                p = k0 + 1 if out_value[k0 + 1] <= out_value[k0] else k0
            peels.append({"tx": t, "output": p, "value": int(out_value[p]), "address": int(out_addr[p])})
        last = txs[-1]
        k0 = int(tx_out[last])
        rem = k0 + 1 if peels[-1]["output"] == k0 else k0
        chains.append({"start": txs[0], "txs": txs, "length": len(txs), "peels": peels,
                       "peeled_total": sum(p["value"] for p in peels),
                       "remainder": {"output": rem, "value": int(out_value[rem]), "address": int(out_addr[rem])}})
    return chains


def structuring(tx_out: np.ndarray, out_value: np.ndarray, tx_coinbase: np.ndarray, *, min_outputs: int = 5,
                tolerance: float = 0.05, min_share: float = 0.8) -> list[dict]:
    """Transactions splitting value into many near-equal outputs.

    A transaction qualifies when it has at least `min_outputs` outputs and at least `min_share` of them lie
    within `tolerance` (relative) of the median output value. Each detection: ``tx``, ``n_outputs``,
    ``near_equal`` (how many), ``median`` value, ``total`` value."""
    out = []
    for t in fan_out(tx_out, tx_coinbase, min_outputs=min_outputs):
        v = out_value[tx_out[t]:tx_out[t + 1]]
        med = int(np.median(v))
        if med <= 0:
            continue
        near = int(np.count_nonzero(np.abs(v - med) <= tolerance * med))
        if near >= min_share * len(v):
            out.append({"tx": int(t), "n_outputs": int(len(v)), "near_equal": near, "median": med,
                        "total": int(v.sum())})
    return out


def pass_through(out_tx: np.ndarray, out_addr: np.ndarray, out_value: np.ndarray, out_spender_tx: np.ndarray,
                 tx_clock: np.ndarray, *, max_hold: int = 1, min_receipts: int = 1, min_share: float = 1.0,
                 addresses: np.ndarray | None = None) -> list[dict]:
    """Addresses through which value passes quickly: at least `min_receipts` outputs received, and at least
    `min_share` of the received value spent within `max_hold` (clock units) of arriving.

    Each detection: ``address``, ``receipts``, ``received``, ``passed`` (value spent within max_hold),
    ``max_hold_seen`` (largest hold among the fast outputs), ``outputs`` (the fast outputs' ids).
    `addresses`: only these address ids (default every address)."""
    hold = hold_times(out_tx, out_spender_tx, tx_clock)
    sel = out_addr >= 0
    if addresses is not None:
        sel &= np.isin(out_addr, addresses)
    idx = np.flatnonzero(sel)
    if not len(idx):
        return []
    order = idx[np.argsort(out_addr[idx], kind="stable")]
    a = out_addr[order]
    starts = np.flatnonzero(np.r_[True, a[1:] != a[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    h = hold[order]
    fast = (h >= 0) & (h <= max_hold)
    v = out_value[order]
    received = np.add.reduceat(v, starts)
    passed = np.add.reduceat(np.where(fast, v, 0), starts)
    n_fast = np.add.reduceat(fast.astype(np.int64), starts)
    longest = np.maximum.reduceat(np.where(fast, h, -1), starts)
    keep = (counts >= min_receipts) & (n_fast > 0) & (received > 0) & (passed >= min_share * received)
    res = []
    for i in np.flatnonzero(keep):  # vectorised above; objects only for the detections
        g = slice(starts[i], starts[i] + counts[i])
        res.append({"address": int(a[starts[i]]), "receipts": int(counts[i]), "received": int(received[i]),
                    "passed": int(passed[i]), "max_hold_seen": int(longest[i]),
                    "outputs": order[g][fast[g]].tolist()})
    return res


def raw(g, kind: str, p: dict, addr: int | None) -> list[dict]:
    """Detections with dense ids: each has ``txs`` (transactions it stands on) and ``addresses`` touched."""
    def outs_of(t):
        return range(int(g.tx_out[t]), int(g.tx_out[t + 1]))

    if kind == "peel-chain":
        looks = looks_like_peeling_chain(g)
        res = []
        for c in peel_chains(looks, g.tx_out, g.out_value, g.out_addr, g.out_spender_tx,
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
        res = structuring(g.tx_out, g.out_value, g.tx_coinbase, min_outputs=p["min_outputs"],
                                tolerance=p["tolerance"], min_share=p["min_share"])
        for d in res:
            o = outs_of(d["tx"])
            d["txs"] = [d["tx"]]
            d["addresses"] = [int(a) for a in g.out_addr[o.start:o.stop]]
        return res
    if kind == "pass-through":
        res = pass_through(g.out_tx, g.out_addr, g.out_value, g.out_spender_tx, g.tx_height,
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
    raise UserError(f"unknown detector {kind!r}; one of {', '.join(flows_kinds())}")


def flows_kinds():
    from chaintrace.graph.detections import KINDS

    return KINDS


def resolve(ws, g, raw: list[dict]) -> list[dict]:
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
