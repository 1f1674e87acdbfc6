"""Flow-shape detectors over the Bitcoin graph arrays (issue 15, point 3): fan-out, fan-in, structuring,
rapid pass-through and dormancy then movement.

Pure functions over plain numpy arrays (the CSR arrays of ``chaintrace.graph.btc.BtcGraph``): the caller
passes the columns, every threshold is a parameter, and each detection is a dict of dense ids (transactions,
outputs, addresses) plus the features and thresholds that decided it. ``chaintrace.graph.detections`` turns
the ids into txids and addresses.
"""
from __future__ import annotations

import numba as nb
import numpy as np


def fan_out(tx_out: np.ndarray, tx_coinbase: np.ndarray, *, min_outputs: int = 10) -> np.ndarray:
    """Dense ids of non-coinbase transactions paying at least `min_outputs` outputs."""
    n_out = np.diff(tx_out)
    return np.flatnonzero((n_out >= min_outputs) & ~np.asarray(tx_coinbase, np.bool_))


def fan_in(tx_in: np.ndarray, *, min_inputs: int = 10) -> np.ndarray:
    """Dense ids of transactions spending at least `min_inputs` inputs (consolidation, converging funds)."""
    return np.flatnonzero(np.diff(tx_in) >= min_inputs)


@nb.njit(cache=True, nogil=True)
def _structuring(tx_out, out_value, cand, tolerance, min_share):
    """Per candidate transaction: qualifies, near-equal count, median (int, as ``int(np.median(v))``), total."""
    m = cand.shape[0]
    ok = np.zeros(m, np.bool_)
    near = np.zeros(m, np.int64)
    med = np.zeros(m, np.int64)
    tot = np.zeros(m, np.int64)
    for i in range(m):
        t = cand[i]
        v = out_value[tx_out[t]:tx_out[t + 1]]
        n = v.shape[0]
        srt = np.sort(v)
        h = n // 2
        if n % 2:
            md = srt[h]
        else:  # np.median: the mean of the middle two in float64, truncated by int()
            md = np.int64((np.float64(srt[h - 1]) + np.float64(srt[h])) / 2.0)
        if md <= 0:
            continue
        k = 0
        s = np.int64(0)
        for j in range(n):
            s += v[j]
            if abs(v[j] - md) <= tolerance * md:
                k += 1
        if k >= min_share * n:
            ok[i] = True
            near[i] = k
            med[i] = md
            tot[i] = s
    return ok, near, med, tot


def structuring_arrays(tx_out: np.ndarray, out_value: np.ndarray, tx_coinbase: np.ndarray, *, min_outputs: int = 5,
                       tolerance: float = 0.05, min_share: float = 0.8) -> dict[str, np.ndarray]:
    """:func:`structuring` as columns (numba, one pass over the candidates): ``tx``, ``n_outputs``,
    ``near_equal``, ``median``, ``total``."""
    tx_out = np.asarray(tx_out, np.int64)
    cand = fan_out(tx_out, tx_coinbase, min_outputs=min_outputs).astype(np.int64)
    ok, near, med, tot = _structuring(tx_out, np.asarray(out_value, np.int64), cand, np.float64(tolerance),
                                      np.float64(min_share))
    t = cand[ok]
    return {"tx": t, "n_outputs": tx_out[t + 1] - tx_out[t], "near_equal": near[ok], "median": med[ok],
            "total": tot[ok]}


def structuring(tx_out: np.ndarray, out_value: np.ndarray, tx_coinbase: np.ndarray, *, min_outputs: int = 5,
                tolerance: float = 0.05, min_share: float = 0.8) -> list[dict]:
    """Transactions splitting value into many near-equal outputs.

    A transaction qualifies when it has at least `min_outputs` outputs and at least `min_share` of them lie
    within `tolerance` (relative) of the median output value. Each detection: ``tx``, ``n_outputs``,
    ``near_equal`` (how many), ``median`` value, ``total`` value."""
    a = structuring_arrays(tx_out, out_value, tx_coinbase, min_outputs=min_outputs, tolerance=tolerance,
                           min_share=min_share)
    cols = {k: v.tolist() for k, v in a.items()}
    return [{"tx": t, "n_outputs": n, "near_equal": k, "median": m, "total": s}
            for t, n, k, m, s in zip(cols["tx"], cols["n_outputs"], cols["near_equal"], cols["median"],
                                     cols["total"])]


def hold_times(out_tx: np.ndarray, out_spender_tx: np.ndarray, tx_clock: np.ndarray) -> np.ndarray:
    """Per output: how long it stayed unspent, in the unit of `tx_clock` (block heights or seconds); -1 when
    unspent."""
    spent = out_spender_tx >= 0
    h = np.full(len(out_tx), -1, np.int64)
    h[spent] = tx_clock[out_spender_tx[spent]] - tx_clock[out_tx[spent]]
    return h


@nb.njit(cache=True, nogil=True)
def group_order(keys, n_keys):
    """Indexes of `keys` (>= 0: kept; < 0: left out) grouped by key, stable within a key (a counting sort:
    what ``argsort(kind="stable")`` of the kept keys gives, in one pass)."""
    cnt = np.zeros(n_keys + 1, np.int64)
    for i in range(keys.shape[0]):
        if keys[i] >= 0:
            cnt[keys[i] + 1] += 1
    for k in range(n_keys):
        cnt[k + 1] += cnt[k]
    order = np.empty(cnt[n_keys], np.int64)
    for i in range(keys.shape[0]):
        k = keys[i]
        if k >= 0:
            order[cnt[k]] = i
            cnt[k] += 1
    return order


@nb.njit(cache=True, nogil=True)
def _pass_through_kernel(keys, n_keys, out_tx, out_value, out_spender_tx, tx_clock, max_hold, min_receipts,
                         min_share):
    """One pass over the outputs grouped by address (counting sort): per address receipts, received, value
    spent within `max_hold`, longest such hold; the addresses that qualify and their fast outputs (CSR)."""
    order = group_order(keys, n_keys)
    m = order.shape[0]
    hold = np.empty(m, np.int64)
    for j in range(m):
        o = order[j]
        s = out_spender_tx[o]
        hold[j] = tx_clock[s] - tx_clock[out_tx[o]] if s >= 0 else -1
    n_det = 0
    n_out = 0
    res_a = np.empty(0, np.int64)
    res_r = np.empty(0, np.int64)
    res_v = np.empty(0, np.int64)
    res_p = np.empty(0, np.int64)
    res_h = np.empty(0, np.int64)
    off = np.zeros(1, np.int64)
    outs = np.empty(0, np.int64)
    for rnd in range(2):  # first count, then fill
        if rnd == 1:
            res_a = np.empty(n_det, np.int64)
            res_r = np.empty(n_det, np.int64)
            res_v = np.empty(n_det, np.int64)
            res_p = np.empty(n_det, np.int64)
            res_h = np.empty(n_det, np.int64)
            off = np.zeros(n_det + 1, np.int64)
            outs = np.empty(n_out, np.int64)
            n_det = 0
            n_out = 0
        lo = 0
        while lo < m:
            k = keys[order[lo]]
            hi = lo
            received = np.int64(0)
            passed = np.int64(0)
            n_fast = 0
            longest = np.int64(-1)
            while hi < m and keys[order[hi]] == k:
                v = out_value[order[hi]]
                received += v
                h = hold[hi]
                if h >= 0 and h <= max_hold:
                    passed += v
                    n_fast += 1
                    if h > longest:
                        longest = h
                hi += 1
            if hi - lo >= min_receipts and n_fast > 0 and received > 0 and passed >= min_share * received:
                if rnd == 1:
                    res_a[n_det] = k
                    res_r[n_det] = hi - lo
                    res_v[n_det] = received
                    res_p[n_det] = passed
                    res_h[n_det] = longest
                    for j in range(lo, hi):
                        if hold[j] >= 0 and hold[j] <= max_hold:
                            outs[n_out] = order[j]
                            n_out += 1
                    off[n_det + 1] = n_out
                else:
                    n_out += n_fast
                n_det += 1
            lo = hi
    return res_a, res_r, res_v, res_p, res_h, off, outs


def pass_through_arrays(out_tx: np.ndarray, out_addr: np.ndarray, out_value: np.ndarray,
                        out_spender_tx: np.ndarray, tx_clock: np.ndarray, *, max_hold: int = 1,
                        min_receipts: int = 1, min_share: float = 1.0,
                        addresses: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`pass_through` as columns: ``address``, ``receipts``, ``received``, ``passed``, ``max_hold_seen``
    per detection and its fast outputs as CSR (``outputs[off[i]:off[i+1]]``). One numba pass over the outputs
    grouped by address."""
    keys = np.asarray(out_addr, np.int64)
    if addresses is not None:
        keys = np.where(np.isin(keys, addresses), keys, -1)
    n_keys = int(keys.max()) + 1 if len(keys) else 0
    a, r, v, p, h, off, outs = _pass_through_kernel(
        keys, np.int64(max(n_keys, 0)), np.asarray(out_tx, np.int64), np.asarray(out_value, np.int64),
        np.asarray(out_spender_tx, np.int64), np.asarray(tx_clock, np.int64), np.int64(max_hold),
        np.int64(min_receipts), np.float64(min_share))
    return {"address": a, "receipts": r, "received": v, "passed": p, "max_hold_seen": h, "off": off,
            "outputs": outs}


def pass_through(out_tx: np.ndarray, out_addr: np.ndarray, out_value: np.ndarray, out_spender_tx: np.ndarray,
                 tx_clock: np.ndarray, *, max_hold: int = 1, min_receipts: int = 1, min_share: float = 1.0,
                 addresses: np.ndarray | None = None) -> list[dict]:
    """Addresses through which value passes quickly: at least `min_receipts` outputs received, and at least
    `min_share` of the received value spent within `max_hold` (clock units) of arriving.

    Each detection: ``address``, ``receipts``, ``received``, ``passed`` (value spent within max_hold),
    ``max_hold_seen`` (largest hold among the fast outputs), ``outputs`` (the fast outputs' ids).
    `addresses`: only these address ids (default every address). (:func:`pass_through_arrays`: as columns.)"""
    a = pass_through_arrays(out_tx, out_addr, out_value, out_spender_tx, tx_clock, max_hold=max_hold,
                            min_receipts=min_receipts, min_share=min_share, addresses=addresses)
    cols = {k: a[k].tolist() for k in ("address", "receipts", "received", "passed", "max_hold_seen")}
    off = a["off"].tolist()
    outs = a["outputs"].tolist()
    return [{"address": ad, "receipts": r, "received": rv, "passed": ps, "max_hold_seen": mh,
             "outputs": outs[off[i]:off[i + 1]]}
            for i, (ad, r, rv, ps, mh) in enumerate(zip(cols["address"], cols["receipts"], cols["received"],
                                                        cols["passed"], cols["max_hold_seen"]))]


def dormancy(out_tx: np.ndarray, out_spender_tx: np.ndarray, tx_clock: np.ndarray, *,
             min_dormant: int) -> np.ndarray:
    """Output ids left unspent for at least `min_dormant` clock units (blocks or seconds), then spent."""
    hold = hold_times(out_tx, out_spender_tx, tx_clock)
    return np.flatnonzero(hold >= min_dormant)
