"""Candidate edges per layer, from the graph arrays (pure: arrays in, arrays out; no store access).

- layer 0, multi-input heuristic (:func:`mih_edges`): for a transaction whose inputs come from addresses
  a0, a1, a2... the edges (a0, a1), (a0, a2)... (BlockSci's star), each distinct address once;
- layer 1, unique change (:func:`change_edges`): (first input address, the change output's address) when the
  combined change heuristics leave exactly one output (:mod:`chaintrace.detect.change`);
- :func:`coinjoin_arrays`: the CoinJoin detections of a range, as the columns of the ``coinjoins`` table
  (:func:`coinjoin_table` makes the Arrow table);
- :func:`change_drift`: how many earlier change links the spends of new transactions would alter (the
  dynamic heuristics), which an incremental build reports instead of re-evaluating.

Edges are produced for every heuristic whatever the guards decide later (:mod:`.unionpass`), so clusters can
be recomputed from the stored edges alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import pyarrow as pa

from chaintrace.detect import change as ch
from chaintrace.detect.coinjoin import PROTOCOLS
from chaintrace.detect.peel import is_peeling_chain
from chaintrace.graph.btc import BtcGraph
from chaintrace.graph.cluster.index import concat_ranges
from chaintrace.graph.unionfind import star_edges_distinct
from chaintrace.store.clusters.tables import COINJOINS


@dataclass
class ChangeInputs:
    """What the change heuristics need beyond the graph arrays (computed once per build)."""

    vsize: np.ndarray  # virtual size per transaction (transactions.vsize)
    first_tx: np.ndarray  # per address: the transaction that first pays it (ch.address_first_tx)
    peel: np.ndarray  # per transaction: is a peeling chain (chaintrace.detect.peel.is_peeling_chain)

    @classmethod
    def of(cls, g: BtcGraph, vsize: np.ndarray) -> "ChangeInputs":
        return cls(vsize, ch.address_first_tx(g), is_peeling_chain(g))


def input_addresses(g: BtcGraph, lo: int, hi: int) -> np.ndarray:
    """Address id of every input of transactions lo..hi-1 (-1: coinbase, spent output outside the store or
    without an address), in input order."""
    o = np.asarray(g.in_output[g.tx_in[lo]:g.tx_in[hi]])
    out = np.full(len(o), -1, np.int64)
    known = o >= 0
    out[known] = np.asarray(g.out_addr)[o[known]]
    return out


def mih_edges(g: BtcGraph, lo: int, hi: int, mark: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Star edges (first input address, other distinct input address) of transactions lo..hi-1: (a, b, tx_id).

    `mark` (int64 per address, -1 initially) is scratch shared by successive calls of one build."""
    items = input_addresses(g, lo, hi)
    offsets = np.asarray(g.tx_in[lo:hi + 1]) - g.tx_in[lo]
    cap = len(items)
    ea = np.empty(cap, np.int64)
    eb = np.empty(cap, np.int64)
    et = np.empty(cap, np.int64)
    k = star_edges_distinct(offsets, items, mark, lo, ea, eb, et)
    return ea[:k], eb[:k], et[:k] + lo


@nb.njit(cache=True, nogil=True)
def _first_input_addr(txs, tx_in, in_output, out_addr, out):
    for k in range(txs.shape[0]):
        t = txs[k]
        out[k] = -1
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o >= 0 and out_addr[o] >= 0:
                out[k] = out_addr[o]
                break


def first_input_addresses(g: BtcGraph, txs: np.ndarray) -> np.ndarray:
    """Address of the first input with a known address of each transaction (-1: none)."""
    out = np.empty(len(txs), np.int64)
    _first_input_addr(np.asarray(txs, np.int64), g.tx_in, g.in_output, g.out_addr, out)
    return out


def change_edges(g: BtcGraph, inputs: ChangeInputs, heuristics: tuple[str, ...], digits: int, max_outputs: int,
                 txs: np.ndarray, skip: np.ndarray, *, horizon: int | None = None, peel: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique-change edges of the transactions `txs` (ascending): (a, b, tx_id, confidence) with a the first
    input address and b the change output's address, for every transaction that has one (`skip`: bool per
    transaction, CoinJoins). `horizon`/`peel`: evaluate as an earlier build saw the chain
    (:func:`chaintrace.detect.change.change_masks`)."""
    txs = np.asarray(txs, np.int64)
    masks = ch.change_masks(g, inputs.vsize, digits=digits, first_tx=inputs.first_tx,
                            peel=inputs.peel if peel is None else peel, txs=txs, horizon=horizon)
    change, conf = ch.unique_change(g, masks, heuristics, skip=skip, max_outputs=max_outputs, txs=txs)
    r = np.flatnonzero(change >= 0)
    a = first_input_addresses(g, txs[r])
    b = np.asarray(g.out_addr)[change[r]]
    keep = (a >= 0) & (b >= 0) & (a != b)
    r = r[keep]
    return a[keep], b[keep], txs[r], conf[r].astype(np.float64)


def coinjoin_arrays(g: BtcGraph, cj, lo: int) -> dict[str, np.ndarray]:
    """Columns of the ``coinjoins`` table (:func:`coinjoin_table`) for the transactions a detection
    result `cj` (:func:`chaintrace.detect.coinjoin.detect_coinjoins` of lo..) flags."""
    hit = np.flatnonzero(cj.protocol)
    tx = lo + hit
    tx_in, tx_out = np.asarray(g.tx_in), np.asarray(g.tx_out)
    return {"tx": tx, "height": np.asarray(g.tx_height)[tx], "protocol": cj.protocol[hit], "mask": cj.mask[hit],
            "partial": cj.partial[hit], "denomination": cj.denomination[hit], "n_equal": cj.n_equal[hit],
            "n_inputs": tx_in[tx + 1] - tx_in[tx], "n_outputs": tx_out[tx + 1] - tx_out[tx]}


def change_drift(g: BtcGraph, inputs: ChangeInputs, heuristics: tuple[str, ...], digits: int, max_outputs: int,
                 horizon: int, coinjoin_txs: np.ndarray) -> dict[str, int]:
    """Change links of transactions before `horizon` that the transactions ``horizon..`` alter.

    The dynamic heuristics (locktime, peeling_chain, fixed_fee) of a transaction depend on who spends its
    outputs: when a new transaction spends an older one's output, the older one's masks (and, through
    ``peeling_chain``, those of its parents') can change, and with them its change link or that link's
    confidence. Returns ``{"links": transactions whose change edge appears, disappears or moves,
    "confidence": transactions whose edge stays but whose confidence changes, "checked": transactions
    re-evaluated}``. Costs the number of new inputs plus the re-evaluated transactions, not the chain."""
    spent = np.asarray(g.in_output[g.tx_in[horizon]:])
    spent = spent[spent >= 0]
    touched = np.unique(np.asarray(g.out_tx)[spent])
    touched = touched[touched < horizon]
    if not len(touched):
        return {"links": 0, "confidence": 0, "checked": 0}
    tx_in = np.asarray(g.tx_in)
    parent_out = np.asarray(g.in_output)[concat_ranges(tx_in[touched], tx_in[touched + 1] - tx_in[touched])]
    parents = np.asarray(g.out_tx)[parent_out[parent_out >= 0]]
    txs = np.union1d(touched, parents)
    skip = np.isin(txs, coinjoin_txs)
    args = (g, inputs, heuristics, digits, max_outputs, txs, skip)
    a0, b0, t0, c0 = change_edges(*args, horizon=horizon, peel=is_peeling_chain(g, horizon=horizon))
    a1, b1, t1, c1 = change_edges(*args)
    before = dict(zip(t0.tolist(), zip(b0.tolist(), c0.tolist())))
    after = dict(zip(t1.tolist(), zip(b1.tolist(), c1.tolist())))
    links = conf = 0
    for t in before.keys() | after.keys():
        x, y = before.get(t), after.get(t)
        if x is None or y is None or x[0] != y[0]:
            links += 1
        elif x[1] != y[1]:
            conf += 1
    return {"links": links, "confidence": conf, "checked": int(len(txs))}


# protocol code (chaintrace.detect.coinjoin.PROTOCOLS) -> name; code 0: not a CoinJoin
PROTOCOL_NAMES = np.array([""] + [PROTOCOLS[k] for k in sorted(PROTOCOLS)], dtype=object)


def coinjoin_table(tx: np.ndarray, height: np.ndarray, protocol: np.ndarray, mask: np.ndarray,
                   partial: np.ndarray, denomination: np.ndarray, n_equal: np.ndarray, n_inputs: np.ndarray,
                   n_outputs: np.ndarray) -> pa.Table:
    """Detected CoinJoins: `protocol` is the winning detector's code, `mask` the bit set of every detector
    that fired (bit ``code - 1``)."""
    dets = [",".join(PROTOCOLS[c] for c in sorted(PROTOCOLS) if m >> (c - 1) & 1) for m in mask.tolist()]
    return pa.table({
        "tx_id": pa.array(tx, pa.int64()), "height": pa.array(height, pa.int64()),
        "protocol": pa.array(PROTOCOL_NAMES[protocol].tolist(), pa.string()),
        "detectors": pa.array(dets, pa.string()), "partial": pa.array(partial, pa.bool_()),
        "denomination": pa.array(denomination, pa.int64()), "n_equal": pa.array(n_equal, pa.int32()),
        "n_inputs": pa.array(n_inputs, pa.int32()), "n_outputs": pa.array(n_outputs, pa.int32())},
        schema=COINJOINS)
