"""Flow-shape detectors over the Bitcoin graph arrays (issue 15, point 3): fan-out, fan-in, structuring,
rapid pass-through and dormancy then movement.

Pure functions over plain numpy arrays (the CSR arrays of ``chaintrace.graph.btc.BtcGraph``): the caller
passes the columns, every threshold is a parameter, and each detection is a dict of dense ids (transactions,
outputs, addresses) plus the features and thresholds that decided it. ``chaintrace.graph.detections`` turns
the ids into txids and addresses.
"""
from __future__ import annotations

import numpy as np


def fan_out(tx_out: np.ndarray, tx_coinbase: np.ndarray, *, min_outputs: int = 10) -> np.ndarray:
    """Dense ids of non-coinbase transactions paying at least `min_outputs` outputs."""
    n_out = np.diff(tx_out)
    return np.flatnonzero((n_out >= min_outputs) & ~np.asarray(tx_coinbase, np.bool_))


def fan_in(tx_in: np.ndarray, *, min_inputs: int = 10) -> np.ndarray:
    """Dense ids of transactions spending at least `min_inputs` inputs (consolidation, converging funds)."""
    return np.flatnonzero(np.diff(tx_in) >= min_inputs)


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


def hold_times(out_tx: np.ndarray, out_spender_tx: np.ndarray, tx_clock: np.ndarray) -> np.ndarray:
    """Per output: how long it stayed unspent, in the unit of `tx_clock` (block heights or seconds); -1 when
    unspent."""
    spent = out_spender_tx >= 0
    h = np.full(len(out_tx), -1, np.int64)
    h[spent] = tx_clock[out_spender_tx[spent]] - tx_clock[out_tx[spent]]
    return h


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

def dormancy(out_tx: np.ndarray, out_spender_tx: np.ndarray, tx_clock: np.ndarray, *,
             min_dormant: int) -> np.ndarray:
    """Output ids left unspent for at least `min_dormant` clock units (blocks or seconds), then spent."""
    hold = hold_times(out_tx, out_spender_tx, tx_clock)
    return np.flatnonzero(hold >= min_dormant)
