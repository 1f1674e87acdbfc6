"""Numba kernels of the exposure index: haircut propagation of one source group over the Bitcoin graph.

:func:`forward` follows value *out of* a group's addresses (where stolen/sanctioned funds went: the
incoming exposure of every address they reach), :func:`backward` follows value *into* them back to where
it came from (the outgoing exposure of every address that paid them). Both apportion pro rata (haircut),
exactly in integers: a transaction with tainted amount X and total input value T gives output k the
difference of floor(X * cum_k / T) between consecutive cumulative output values, the fee taking the rest,
so the parts add up to X to the unit. Propagation stops after ``max_hops`` transactions and at service
addresses (``stop_addr``: tagged exchanges etc., tracing-methods.md §4.2).

Scratch arrays (``taint``, ``hop``, ``parent``: one entry per output; ``queued``: one per transaction) are
passed in and left as they were found (only touched entries are reset), so one allocation serves every
group.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.trace.kernels import _grow
from chaintrace.trace.split import muldiv as _muldiv


@nb.njit(cache=True)
def forward(tx_out, tx_in, out_value, out_addr, out_spender_tx, in_output, seed_out, stop_addr, max_hops,
            taint, hop, parent, queued):
    """Touched outputs (seeds first) of a forward haircut propagation; fills taint/hop/parent for them."""
    n_tx = tx_out.shape[0] - 1
    touched = np.empty(max(16, 2 * seed_out.shape[0]), np.int64)
    nt = 0
    lo = n_tx
    hi = -1
    for k in range(seed_out.shape[0]):
        o = seed_out[k]
        taint[o] = out_value[o]
        hop[o] = 0
        parent[o] = -1
        touched[nt] = o
        nt += 1
        t = out_spender_tx[o]
        if t >= 0 and max_hops > 0:
            queued[t] = True
            lo = min(lo, t)
            hi = max(hi, t)
    touched, nt, _ = _fwd_run(tx_out, tx_in, out_value, out_addr, out_spender_tx, in_output, stop_addr,
                              max_hops, taint, hop, parent, queued, touched, nt, lo, hi)
    return touched[:nt].copy()


@nb.njit(cache=True)
def _fwd_run(tx_out, tx_in, out_value, out_addr, out_spender_tx, in_output, stop_addr, max_hops, taint, hop, parent,
             queued, touched, nt, lo, hi):
    """The forward pass over the queued transactions in [lo, hi] (more are queued on the way): apportions each
    one's tainted input value to its outputs. Returns (touched, nt, transactions processed)."""
    n_proc = 0
    t = lo
    while t <= hi:
        if not queued[t]:
            t += 1
            continue
        queued[t] = False
        n_proc += 1
        X = np.int64(0)
        T = np.int64(0)
        hmin = np.int64(1 << 30)
        best = np.int64(-1)
        bestv = np.int64(-1)
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o < 0:
                continue
            T += out_value[o]
            if hop[o] >= 0 and taint[o] > 0:
                X += taint[o]
                if hop[o] < hmin:
                    hmin = hop[o]
                if taint[o] > bestv:
                    bestv = taint[o]
                    best = o
        W = np.int64(0)
        for o in range(tx_out[t], tx_out[t + 1]):
            W += out_value[o]
        if W > T:
            T = W  # inputs from outside the store: clean, balancing the transaction
        h = hmin + 1
        if X == 0 or h > max_hops or T == 0:
            t += 1
            continue
        cum = np.int64(0)
        prev = np.int64(0)
        for o in range(tx_out[t], tx_out[t + 1]):
            cum += out_value[o]
            c, _ = _muldiv(X, cum, T)
            share = c - prev
            prev = c
            if share <= 0 or hop[o] == 0:
                continue  # nothing, or a seed (already tainted in full)
            taint[o] = share
            hop[o] = h
            parent[o] = best
            touched = _grow(touched, nt + 1)
            touched[nt] = o
            nt += 1
            a = out_addr[o]
            s = out_spender_tx[o]
            if s >= 0 and h < max_hops and not (a >= 0 and stop_addr[a]):
                queued[s] = True
                if s > hi:
                    hi = s
        t += 1
    return touched, nt, n_proc


@nb.njit(cache=True)
def backward(tx_out, tx_in, out_value, out_addr, out_tx, in_output, seed_out, stop_addr, max_hops,
             taint, hop, parent, queued):
    """Touched outputs (seeds first) of a backward haircut apportionment: the value of each earlier output
    that went on, through at most `max_hops` transactions, to the seed outputs."""
    n_tx = tx_out.shape[0] - 1
    touched = np.empty(max(16, 2 * seed_out.shape[0]), np.int64)
    nt = 0
    lo = n_tx
    hi = -1
    for k in range(seed_out.shape[0]):
        o = seed_out[k]
        taint[o] = out_value[o]
        hop[o] = 0
        parent[o] = -1
        touched[nt] = o
        nt += 1
        t = out_tx[o]
        if max_hops > 0:
            queued[t] = True
            lo = min(lo, t)
            hi = max(hi, t)
    t = hi
    while t >= lo:
        if not queued[t]:
            t -= 1
            continue
        queued[t] = False
        X = np.int64(0)
        W = np.int64(0)
        hmin = np.int64(1 << 30)
        best = np.int64(-1)
        bestv = np.int64(-1)
        for o in range(tx_out[t], tx_out[t + 1]):
            W += out_value[o]
            if hop[o] >= 0 and taint[o] > 0:
                X += taint[o]
                if hop[o] < hmin:
                    hmin = hop[o]
                if taint[o] > bestv:
                    bestv = taint[o]
                    best = o
        T = np.int64(0)
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o >= 0:
                T += out_value[o]
        h = hmin + 1
        if X == 0 or h > max_hops or T == 0:
            t -= 1
            continue
        if X > T:
            X = T  # part of the value came from outside the store (or a coinbase): not followed
        cum = np.int64(0)
        prev = np.int64(0)
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o < 0:
                continue
            cum += out_value[o]
            c, _ = _muldiv(X, cum, T)
            share = c - prev
            prev = c
            if share <= 0 or hop[o] == 0:
                continue
            taint[o] = share
            hop[o] = h
            parent[o] = best
            touched = _grow(touched, nt + 1)
            touched[nt] = o
            nt += 1
            a = out_addr[o]
            if h < max_hops and not (a >= 0 and stop_addr[a]):
                s = out_tx[o]
                queued[s] = True
                if s < lo:
                    lo = s
        t -= 1
    return touched[:nt].copy()


@nb.njit(cache=True)
def reset(touched, taint, hop, parent):
    for k in range(touched.shape[0]):
        o = touched[k]
        taint[o] = 0
        hop[o] = -1
        parent[o] = -1


# ------------------------------------------------------------------------------------ refresh after ingest
# The chain grew append-only (transactions >= first_tx are new; the older ones, their outputs and inputs are
# unchanged): the previous index's rows of one group (``prev_*``: every output it had touched) are loaded
# into the scratch arrays and only what the new transactions can change is computed again. Both give the
# state a full run over the grown chain gives (tests compare array by array).


@nb.njit(cache=True)
def _load(prev_out, prev_taint, prev_hop, prev_parent, taint, hop, parent):
    for k in range(prev_out.shape[0]):
        o = prev_out[k]
        taint[o] = prev_taint[k]
        hop[o] = prev_hop[k]
        parent[o] = prev_parent[k]


@nb.njit(cache=True)
def forward_resume(tx_out, tx_in, out_value, out_addr, out_spender_tx, in_output, prev_out, prev_taint, prev_hop,
                   prev_parent, new_seed, first_tx, stop_addr, max_hops, taint, hop, parent, queued):
    """Forward propagation continued over the new transactions: an older transaction's outputs depend on
    older transactions only, so the previous rows stand; a new transaction is queued by a previously tainted
    output it spends (the rule of :func:`forward`: a seed, or a tainted output below `max_hops` not at a
    service) or by a new seed. Returns (new touched outputs, new seeds first; transactions processed); the
    scratch arrays hold the previous rows too (reset both)."""
    n_tx = tx_out.shape[0] - 1
    _load(prev_out, prev_taint, prev_hop, prev_parent, taint, hop, parent)
    touched = np.empty(max(16, 2 * new_seed.shape[0]), np.int64)
    nt = 0
    lo = n_tx
    hi = -1
    for k in range(prev_out.shape[0]):
        o = prev_out[k]
        s = out_spender_tx[o]
        if s < first_tx or hop[o] < 0 or hop[o] >= max_hops:
            continue
        a = out_addr[o]
        if hop[o] == 0 or not (a >= 0 and stop_addr[a]):
            queued[s] = True
            lo = min(lo, s)
            hi = max(hi, s)
    for k in range(new_seed.shape[0]):
        o = new_seed[k]
        taint[o] = out_value[o]
        hop[o] = 0
        parent[o] = -1
        touched = _grow(touched, nt + 1)
        touched[nt] = o
        nt += 1
        t = out_spender_tx[o]
        if t >= 0 and max_hops > 0:
            queued[t] = True
            lo = min(lo, t)
            hi = max(hi, t)
    touched, nt, n_proc = _fwd_run(tx_out, tx_in, out_value, out_addr, out_spender_tx, in_output, stop_addr,
                                   max_hops, taint, hop, parent, queued, touched, nt, lo, hi)
    return touched[:nt].copy(), n_proc


@nb.njit(cache=True)
def backward_resume(tx_out, tx_in, out_value, out_addr, out_tx, in_output, prev_out, prev_taint, prev_hop,
                    prev_parent, new_seed, stop_addr, max_hops, taint, hop, parent, dirty):
    """Backward apportionment redone only where the new transactions change it. An output's row is written
    by the transaction that spends it, from that transaction's outputs; so a transaction is recomputed
    (``dirty``) when one of its outputs changed -- a new seed, or a row its spender wrote differently -- in
    decreasing id order, each once, after all its outputs are final. An input whose new row equals the
    previous one stops the walk there. Returns (outputs whose row changed, transactions recomputed); rows
    that vanished have hop -1 in the scratch arrays (reset the previous rows and these)."""
    n_tx = tx_out.shape[0] - 1
    _load(prev_out, prev_taint, prev_hop, prev_parent, taint, hop, parent)
    changed = np.empty(max(16, 2 * new_seed.shape[0]), np.int64)
    nc = 0
    lo = n_tx
    hi = -1
    for k in range(new_seed.shape[0]):
        o = new_seed[k]
        taint[o] = out_value[o]
        hop[o] = 0
        parent[o] = -1
        changed = _grow(changed, nc + 1)
        changed[nc] = o
        nc += 1
        t = out_tx[o]
        dirty[t] = True
        lo = min(lo, t)
        hi = max(hi, t)
    n_proc = 0
    t = hi
    while t >= lo:
        if not dirty[t]:
            t -= 1
            continue
        dirty[t] = False
        n_proc += 1
        # would a full run queue t? (a seed among its outputs, or a row below max_hops not at a service)
        q = False
        X = np.int64(0)
        W = np.int64(0)
        hmin = np.int64(1 << 30)
        best = np.int64(-1)
        bestv = np.int64(-1)
        for o in range(tx_out[t], tx_out[t + 1]):
            W += out_value[o]
            if hop[o] == 0 and max_hops > 0:
                q = True
            elif hop[o] > 0 and hop[o] < max_hops and not (out_addr[o] >= 0 and stop_addr[out_addr[o]]):
                q = True
            if hop[o] >= 0 and taint[o] > 0:
                X += taint[o]
                if hop[o] < hmin:
                    hmin = hop[o]
                if taint[o] > bestv:
                    bestv = taint[o]
                    best = o
        T = np.int64(0)
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o >= 0:
                T += out_value[o]
        h = hmin + 1
        go = q and not (X == 0 or h > max_hops or T == 0)
        if X > T:
            X = T
        cum = np.int64(0)
        prev = np.int64(0)
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o < 0:
                continue
            nv = np.int64(0)
            nh = np.int64(-1)
            npar = np.int64(-1)
            if go:
                cum += out_value[o]
                c, _ = _muldiv(X, cum, T)
                share = c - prev
                prev = c
                if share > 0:
                    nv = share
                    nh = h
                    npar = best
            if hop[o] == 0:
                continue  # a seed keeps its row
            if taint[o] == nv and hop[o] == nh and parent[o] == npar:
                continue
            if hop[o] < 0 and nh < 0:
                continue
            taint[o] = nv
            hop[o] = nh
            parent[o] = npar
            changed = _grow(changed, nc + 1)
            changed[nc] = o
            nc += 1
            s = out_tx[o]
            dirty[s] = True
            if s < lo:
                lo = s
        t -= 1
    return changed[:nc].copy(), n_proc
