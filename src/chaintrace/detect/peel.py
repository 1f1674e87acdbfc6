"""Peeling-chain shapes (BlockSci ``tx_identification.cpp``; ``../shared/docs/tracing-methods.md`` §3.1).

``looks_like_peeling_chain``: exactly one input and two outputs. ``is_peeling_chain``: looks like one *and*
the transaction that created its input, or a transaction spending one of its outputs, also looks like one.
Both are computed for every transaction at once from the graph arrays.
"""
from __future__ import annotations

import numba as nb
import numpy as np


def looks_like_peeling_chain(g) -> np.ndarray:
    """bool per transaction: 1 input, 2 outputs (coinbases excluded)."""
    n_in = np.diff(g.tx_in)
    n_out = np.diff(g.tx_out)
    return (n_in == 1) & (n_out == 2) & ~np.asarray(g.tx_coinbase, np.bool_)


@nb.njit(cache=True, nogil=True)
def _is_peeling(looks, tx_in, tx_out, in_output, out_tx, out_spender_tx, horizon, out):
    for t in range(looks.shape[0]):
        if not looks[t]:
            continue
        o = in_output[tx_in[t]]
        if o >= 0 and looks[out_tx[o]]:
            out[t] = True
            continue
        for k in range(tx_out[t], tx_out[t + 1]):
            s = out_spender_tx[k]
            if s >= 0 and s < horizon and looks[s]:
                out[t] = True
                break


def is_peeling_chain(g, looks: np.ndarray | None = None, horizon: int | None = None) -> np.ndarray:
    """bool per transaction: looks like a peeling chain and a neighbour (parent or child) does too.

    `horizon`: children at or after this transaction id are not known yet (what an earlier build saw)."""
    looks = looks_like_peeling_chain(g) if looks is None else looks
    out = np.zeros(len(looks), np.bool_)
    _is_peeling(looks, g.tx_in, g.tx_out, g.in_output, g.out_tx, g.out_spender_tx,
                np.int64(len(looks) if horizon is None else horizon), out)
    return out


def peel_successor(looks: np.ndarray, tx_out: np.ndarray, out_value: np.ndarray,
                   out_spender_tx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per transaction: the next hop of a peel chain (-1 none) and the output that continues it (-1 none).

    A peel-shaped transaction (`looks`) continues through the output whose spender is peel-shaped too; when
    both outputs are, through the larger one (the remainder; ties: output 0)."""
    n = looks.shape[0]
    nxt = np.full(n, -1, np.int64)
    via = np.full(n, -1, np.int64)
    t = np.flatnonzero(looks)
    if not len(t):
        return nxt, via
    k0 = tx_out[t]
    k1 = k0 + 1
    s0, s1 = out_spender_tx[k0], out_spender_tx[k1]
    ok0 = (s0 >= 0) & looks[np.maximum(s0, 0)]
    ok1 = (s1 >= 0) & looks[np.maximum(s1, 0)]
    pick1 = ok1 & (~ok0 | (out_value[k1] > out_value[k0]))
    pick0 = ok0 & ~pick1
    via[t[pick0]] = k0[pick0]
    via[t[pick1]] = k1[pick1]
    nxt[t] = np.where(pick1, s1, np.where(pick0, s0, -1))
    return nxt, via


@nb.njit(cache=True, nogil=True)
def _walk_chains(nxt, via, starts, tx_out, out_value, min_length, cap):
    """Follow every chain from its first hop (one pass over `nxt`): the chains of at least `min_length` hops
    as CSR (offsets, transactions, peeled output per hop) and the last hop's remainder output per chain."""
    n = starts.shape[0]
    lens = np.zeros(n, np.int64)
    total = 0
    for i in range(n):
        t = starts[i]
        length = 1
        while nxt[t] >= 0 and length <= cap:
            t = nxt[t]
            length += 1
        lens[i] = length
        if length >= min_length:
            total += length
    keep = np.zeros(n, np.bool_)
    m = 0
    for i in range(n):
        if lens[i] >= min_length:
            keep[i] = True
            m += 1
    off = np.zeros(m + 1, np.int64)
    txs = np.empty(total, np.int64)
    peel = np.empty(total, np.int64)
    rem = np.empty(m, np.int64)
    c = 0
    j = 0
    for i in range(n):
        if not keep[i]:
            continue
        t = starts[i]
        for _ in range(lens[i]):
            k0 = tx_out[t]
            if via[t] >= 0:
                p = k0 + 1 if via[t] == k0 else k0
            else:  # last hop: the smaller output is the peel, the larger the remainder
                p = k0 + 1 if out_value[k0 + 1] <= out_value[k0] else k0
            txs[j] = t
            peel[j] = p
            j += 1
            if nxt[t] >= 0:
                t = nxt[t]
        k0 = tx_out[txs[j - 1]]
        rem[c] = k0 + 1 if peel[j - 1] == k0 else k0
        c += 1
        off[c] = j
    return keep, off, txs, peel, rem


def peel_chain_arrays(looks: np.ndarray, tx_out: np.ndarray, out_value: np.ndarray, out_spender_tx: np.ndarray,
                      *, min_length: int = 3) -> dict[str, np.ndarray]:
    """The chains of :func:`peel_chains` as arrays (numba, one pass): ``off`` (chain ``c`` is
    ``txs[off[c]:off[c+1]]``), ``txs``, ``peel`` (the output peeled off at each hop), ``remainder`` (per chain,
    the last hop's other output), ``start`` (first transaction per chain) and ``peeled_total`` (per chain)."""
    nxt, via = peel_successor(looks, tx_out, out_value, out_spender_tx)
    has_prev = np.zeros(len(looks), np.bool_)
    has_prev[nxt[nxt >= 0]] = True
    starts = np.flatnonzero((nxt >= 0) & ~has_prev).astype(np.int64)
    _keep, off, txs, peel, rem = _walk_chains(nxt, via, starts, np.asarray(tx_out, np.int64),
                                              np.asarray(out_value, np.int64), np.int64(min_length),
                                              np.int64(len(looks)))
    v = np.asarray(out_value, np.int64)[peel]
    total = np.add.reduceat(v, off[:-1]) if len(rem) else np.zeros(0, np.int64)
    return {"off": off, "txs": txs, "peel": peel, "remainder": rem, "start": txs[off[:-1]],
            "peeled_total": total.astype(np.int64)}


def peel_chain_dict(a: dict[str, np.ndarray], c: int, out_value: np.ndarray, out_addr: np.ndarray) -> dict:
    """Chain `c` of :func:`peel_chain_arrays` as the dict :func:`peel_chains` returns."""
    lo, hi = int(a["off"][c]), int(a["off"][c + 1])
    txs = a["txs"][lo:hi].tolist()
    ps = a["peel"][lo:hi]
    peels = [{"tx": t, "output": p, "value": v, "address": ad}
             for t, p, v, ad in zip(txs, ps.tolist(), out_value[ps].tolist(), out_addr[ps].tolist())]
    rem = int(a["remainder"][c])
    return {"start": txs[0], "txs": txs, "length": len(txs), "peels": peels,
            "peeled_total": int(a["peeled_total"][c]),
            "remainder": {"output": rem, "value": int(out_value[rem]), "address": int(out_addr[rem])}}


def peel_chains(looks: np.ndarray, tx_out: np.ndarray, out_value: np.ndarray, out_addr: np.ndarray,
                out_spender_tx: np.ndarray, *, min_length: int = 3) -> list[dict]:
    """Peel chains of at least `min_length` transactions, each followed from its first hop.

    Each chain: ``txs`` (dense ids in order), ``length``, ``start`` (first transaction), ``peels`` (one per hop:
    the output peeled off, its value and address id; the last hop's peel is its smaller output), ``remainder``
    (the last hop's other output) and ``peeled_total``. Value is exact: the first hop's input value equals
    peeled_total + remainder + the fees of the hops. (:func:`peel_chain_arrays` is the same as arrays.)"""
    a = peel_chain_arrays(looks, tx_out, out_value, out_spender_tx, min_length=min_length)
    return [peel_chain_dict(a, c, out_value, out_addr) for c in range(len(a["remainder"]))]
