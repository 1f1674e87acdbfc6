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


class _Cols:
    """Detections of one kind as columns (dense ids): ``n`` of them, :meth:`row` builds detection ``i`` as the
    dict :func:`detect` resolves, :meth:`touching` marks those touching an address (vectorised)."""

    def __init__(self, g: BtcGraph, n: int):
        self.g, self.n = g, n

    def row(self, i: int) -> dict:
        raise NotImplementedError

    def touching(self, addr: int) -> np.ndarray:
        raise NotImplementedError


class _Peel(_Cols):
    def __init__(self, g, p):
        self.a = peel.peel_chain_arrays(peel.looks_like_peeling_chain(g), g.tx_out, g.out_value, g.out_spender_tx,
                                        min_length=p["min_length"])
        super().__init__(g, len(self.a["remainder"]))

    def _lists(self) -> dict:
        """The columns as Python lists, made once (a row is then slices, no numpy per row)."""
        if not hasattr(self, "_l"):
            g, a = self.g, self.a
            ov, oa = np.asarray(g.out_value), np.asarray(g.out_addr)
            first = np.asarray(g.in_output)[np.asarray(g.tx_in)[a["start"]]]
            self._l = {"off": a["off"].tolist(), "txs": a["txs"].tolist(), "peel": a["peel"].tolist(),
                       "pv": ov[a["peel"]].tolist(), "pa": oa[a["peel"]].tolist(),
                       "rem": a["remainder"].tolist(), "rv": ov[a["remainder"]].tolist(),
                       "ra": oa[a["remainder"]].tolist(), "total": a["peeled_total"].tolist(),
                       "input": np.where(first >= 0, ov[np.maximum(first, 0)], -1).tolist(),
                       "has_input": (first >= 0).tolist()}
        return self._l

    def row(self, i):
        L = self._lists()
        lo, hi = L["off"][i], L["off"][i + 1]
        txs = L["txs"][lo:hi]
        pa = L["pa"][lo:hi]
        peels = [{"tx": t, "output": o, "value": v, "address": ad}
                 for t, o, v, ad in zip(txs, L["peel"][lo:hi], L["pv"][lo:hi], pa)]
        return {"start": txs[0], "txs": txs, "length": len(txs), "peels": peels, "peeled_total": L["total"][i],
                "remainder": {"output": L["rem"][i], "value": L["rv"][i], "address": L["ra"][i]},
                "input_value": L["input"][i] if L["has_input"][i] else None, "addresses": pa + [L["ra"][i]]}

    def touching(self, addr):
        a, oa = self.a, np.asarray(self.g.out_addr)
        hit = np.zeros(self.n, np.bool_)
        pk = np.flatnonzero(oa[a["peel"]] == addr)
        hit[np.searchsorted(a["off"], pk, side="right") - 1] = True
        hit |= oa[a["remainder"]] == addr
        return hit


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ids lo[i]..hi[i]-1 of every i, concatenated, and their offsets (CSR)."""
    n = np.asarray(hi, np.int64) - np.asarray(lo, np.int64)
    off = np.r_[0, np.cumsum(n)].astype(np.int64)
    return np.repeat(np.asarray(lo, np.int64) - off[:-1], n) + np.arange(off[-1], dtype=np.int64), off


class _Fan(_Cols):
    def __init__(self, g, kind, p):
        self.ids = (flows.fan_out(g.tx_out, g.tx_coinbase, min_outputs=p["min_outputs"]) if kind == "fan-out"
                    else flows.fan_in(g.tx_in, min_inputs=p["min_inputs"])).astype(np.int64)
        super().__init__(g, len(self.ids))

    def row(self, i):
        if not hasattr(self, "_l"):  # the columns as lists once: a row is slices, no numpy per row
            g, t = self.g, self.ids
            o0, o1 = np.asarray(g.tx_out)[t], np.asarray(g.tx_out)[t + 1]
            i0, i1 = np.asarray(g.tx_in)[t], np.asarray(g.tx_in)[t + 1]
            oa = np.asarray(g.out_addr)
            outs, oo = _ranges(o0, o1)
            ins, io_ = _ranges(i0, i1)
            io = np.asarray(g.in_output)[ins]
            cs = np.r_[0, np.cumsum(np.asarray(g.out_value)[outs])]
            self._l = {"t": t.tolist(), "no": (o1 - o0).tolist(), "ni": (i1 - i0).tolist(), "oo": oo.tolist(),
                       "io": io_.tolist(), "oa": oa[outs].tolist(),
                       "ia": np.where(io >= 0, oa[np.maximum(io, 0)], -2).tolist(),
                       "val": (cs[oo[1:]] - cs[oo[:-1]]).tolist()}
        L = self._l
        t = L["t"][i]
        ia = L["ia"][L["io"][i]:L["io"][i + 1]]
        return {"tx": t, "txs": [t], "n_inputs": L["ni"][i], "n_outputs": L["no"][i], "value": L["val"][i],
                "addresses": L["oa"][L["oo"][i]:L["oo"][i + 1]] + [a for a in ia if a != -2]}

    def touching(self, addr):
        g = self.g
        hit = np.zeros(g.n_tx, np.bool_)
        hit[np.asarray(g.out_tx)[np.asarray(g.out_addr) == addr]] = True
        io = np.asarray(g.in_output)
        spent = np.flatnonzero(io >= 0)
        hit[np.asarray(g.in_tx)[spent[np.asarray(g.out_addr)[io[spent]] == addr]]] = True
        return hit[self.ids]


class _Structuring(_Cols):
    def __init__(self, g, p):
        self.a = flows.structuring_arrays(g.tx_out, g.out_value, g.tx_coinbase, min_outputs=p["min_outputs"],
                                          tolerance=p["tolerance"], min_share=p["min_share"])
        super().__init__(g, len(self.a["tx"]))

    def row(self, i):
        g = self.g
        t = int(self.a["tx"][i])
        lo, hi = int(g.tx_out[t]), int(g.tx_out[t + 1])
        d = {k: int(v[i]) for k, v in self.a.items()}
        d["txs"] = [t]
        d["addresses"] = [int(x) for x in g.out_addr[lo:hi]]
        return d

    def touching(self, addr):
        hit = np.zeros(self.g.n_tx, np.bool_)
        hit[np.asarray(self.g.out_tx)[np.asarray(self.g.out_addr) == addr]] = True
        return hit[self.a["tx"]]


class _PassThrough(_Cols):
    def __init__(self, g, p, addr):
        self.a = flows.pass_through_arrays(g.out_tx, g.out_addr, g.out_value, g.out_spender_tx, g.tx_height,
                                           max_hold=p["max_hold_blocks"], min_receipts=p["min_receipts"],
                                           min_share=p["min_share"],
                                           addresses=None if addr is None else np.array([addr], np.int64))
        super().__init__(g, len(self.a["address"]))

    def row(self, i):
        if not hasattr(self, "_l"):
            g, a = self.g, self.a
            self._l = {k: a[k].tolist() for k in ("address", "receipts", "received", "passed", "max_hold_seen",
                                                   "off", "outputs")}
            self._l["tx"] = np.asarray(g.out_tx)[a["outputs"]].tolist()
            self._l["sp"] = np.asarray(g.out_spender_tx)[a["outputs"]].tolist()
        L = self._l
        lo, hi = L["off"][i], L["off"][i + 1]
        d = {k: L[k][i] for k in ("address", "receipts", "received", "passed", "max_hold_seen")}
        d["outputs"] = L["outputs"][lo:hi]
        d["txs"] = sorted(set(L["tx"][lo:hi]) | set(L["sp"][lo:hi]))
        d["addresses"] = [d["address"]]
        return d

    def touching(self, addr):
        return self.a["address"] == addr


class _Dormancy(_Cols):
    def __init__(self, g, p):
        self.o = flows.dormancy(g.out_tx, g.out_spender_tx, g.tx_height, min_dormant=p["min_dormant_blocks"])
        super().__init__(g, len(self.o))

    def row(self, i):
        if not hasattr(self, "_l"):  # the columns as lists once: no numpy per row
            g, o = self.g, self.o
            t, s = np.asarray(g.out_tx)[o], np.asarray(g.out_spender_tx)[o]
            h, tm = np.asarray(g.tx_height), np.asarray(g.tx_time)
            self._l = [o.tolist(), t.tolist(), s.tolist(), np.asarray(g.out_value)[o].tolist(),
                       np.asarray(g.out_addr)[o].tolist(), (h[s] - h[t]).tolist(), (tm[s] - tm[t]).tolist()]
        o, t, s, v, a, bd, sd = (c[i] for c in self._l)
        return {"output": o, "tx": t, "moved_tx": s, "value": v, "address": a, "addresses": [a], "txs": [t, s],
                "blocks_dormant": bd, "seconds_dormant": sd}

    def touching(self, addr):
        return np.asarray(self.g.out_addr)[self.o] == addr


def _cols(g: BtcGraph, kind: str, p: dict, addr: int | None) -> _Cols:
    """The detections of `kind` as columns (numba kernels and numpy over the graph arrays; no per-row work)."""
    if kind == "peel-chain":
        return _Peel(g, p)
    if kind in ("fan-out", "fan-in"):
        return _Fan(g, kind, p)
    if kind == "structuring":
        return _Structuring(g, p)
    if kind == "pass-through":
        return _PassThrough(g, p, addr)
    if kind == "dormancy":
        return _Dormancy(g, p)
    raise UserError(f"unknown detector {kind!r}; one of {', '.join(KINDS)}")


def _raw(g: BtcGraph, kind: str, p: dict, addr: int | None) -> list[dict]:
    """Detections with dense ids: each has ``txs`` (transactions it stands on) and ``addresses`` touched."""
    c = _cols(g, kind, p, addr)
    return [c.row(i) for i in range(c.n)]


def detect(ws: Workspace, kind: str, address: str | None = None, limit: int | None = None, **params) -> dict:
    """Run detector `kind` over the whole store (or the detections touching `address`).

    Returns ``{kind, thresholds, data: {commit, transactions}, count, detections}``; each detection holds its
    evidence: the txids it stands on, its features and, for outputs, ``txid:vout``. `limit`: resolve and
    return only the first `limit` detections (``count`` still counts them all). Unknown keys in `params`
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
    cols = _cols(g, kind, p, addr)
    idx = np.arange(cols.n) if addr is None else np.flatnonzero(cols.touching(addr))
    sel = idx if limit is None else idx[:max(0, int(limit))]
    raw = [cols.row(int(i)) for i in sel]
    return {"kind": kind, "thresholds": p, "data": {"commit": g.commit, "transactions": g.n_tx},
            "count": int(len(idx)), "detections": _resolve(ws, g, raw)}


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

