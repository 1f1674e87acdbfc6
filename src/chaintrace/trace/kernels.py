"""Numba kernels of the UTXO taint engine: the chronological propagation loop over
:class:`chaintrace.graph.btc.BtcGraph` arrays (the policy split of one transaction is :mod:`.split`).

Everything works on flat arrays indexed by dense ids; taints live in a flat segment pool (value, source,
hop), one contiguous run of segments per tainted output ("slot"). The frontier is a bitmap over
transaction ids: dense ids are in chain order and a spender always comes after the output it spends, so a
single forward sweep visits every transaction with tainted inputs once, after all of them were produced
(§1.2 of tracing-methods.md: a transaction reached by several branches is processed once, with all of
them).

Compile time (a fresh machine compiles every kernel before the first trace): each kernel is compiled for
one signature. Integer arguments between kernels are int64 variables, never plain constants or counters
first set to ``0`` (numba types those as literals and compiles the callee again for each), arrays passed
on are writable scratch rather than the read-only graph arrays, and copies are element loops (a slice
assignment compiles numba's shape-check error path). :func:`chaintrace.trace.split.split_into` is
inlined into :func:`propagate` (no separate copy of the split code to optimise again).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.trace.policies import Segment, Taint
from chaintrace.trace.split import FEE_CODE, POLICY_CODE, aggregate_into, merge_into, split_into, split_need

# slot kinds
PENDING, PASSED, SINK, HOLDING, BELOW, MAX_HOPS, UNTIL, MAX_TXS, BURNED, COINJOIN = range(10)
KIND_NAMES = {SINK: "sink", HOLDING: "holding", BELOW: "below_threshold", MAX_HOPS: "max_hops",
              UNTIL: "until", MAX_TXS: "max_txs", BURNED: "unspendable", COINJOIN: "coinjoin",
              PASSED: "passed", PENDING: "pending"}

_I64MAX = np.int64(9223372036854775807)


# Open-addressing hash table output id -> slot (keys -1 = empty). Entries are never deleted: an output is
# spent once, so its entry is looked up once; the table is rebuilt larger at half load.

@nb.njit(cache=True)
def _h_slot(keys, o):
    mask = keys.shape[0] - 1
    i = (o * np.int64(-7046029254386353131)) & mask
    while keys[i] != -1 and keys[i] != o:
        i = (i + 1) & mask
    return i


@nb.njit(cache=True)
def _h_put(keys, vals, o, v):
    i = _h_slot(keys, o)
    keys[i] = o
    vals[i] = v


@nb.njit(cache=True)
def _h_grow(keys, vals):
    nk = np.full(2 * keys.shape[0], -1, np.int64)
    nv = np.empty(2 * keys.shape[0], np.int64)
    for i in range(keys.shape[0]):
        if keys[i] != -1:
            _h_put(nk, nv, keys[i], vals[i])
    return nk, nv


@nb.njit(cache=True)
def _grow(a, n):
    """`a`, or a copy with room for at least `n` elements (at least double the size)."""
    if n <= a.shape[0]:
        return a
    b = np.empty(max(2 * a.shape[0], n), a.dtype)
    for i in range(a.shape[0]):
        b[i] = a[i]
    return b


@nb.njit(cache=True)
def _grow_slots(s_out, s_kind, s_amt, s_hop, s_par, s_seg):
    """The slot arrays with twice the capacity (``s_seg`` holds one offset more than there are slots): the one
    capacity-growth step of the slot table."""
    ncap = 2 * s_out.shape[0]
    return (_grow(s_out, ncap), _grow(s_kind, ncap), _grow(s_amt, ncap), _grow(s_hop, ncap), _grow(s_par, ncap),
            _grow(s_seg, ncap + 1))


@nb.njit(cache=True)
def _grow_pool(p_val, p_src, p_hop, n):
    """The segment pool with room for at least `n` segments."""
    return _grow(p_val, n), _grow(p_src, n), _grow(p_hop, n)


@nb.njit(cache=True)
def _unreached_seeds(sp, t, seed_out, seed_src, out_tx, out_value, seeded, seed_conv, s_out, s_kind, s_amt, s_hop,
                     s_par, s_seg, p_val, p_src, p_hop, n_slot):
    """After a partial trace (stopped before transaction `t`): seed outputs from `sp` on whose creating
    transaction was not reached are seeded in full and stopped at once (MAX_TXS slots). Returns the
    (possibly grown) slot arrays and pool and the new slot count."""
    n_seed = seed_out.shape[0]
    while sp < n_seed:
        o = seed_out[sp]
        if out_tx[o] >= t:
            if n_slot + 1 >= s_out.shape[0]:
                s_out, s_kind, s_amt, s_hop, s_par, s_seg = _grow_slots(s_out, s_kind, s_amt, s_hop, s_par, s_seg)
            at = s_seg[n_slot]
            p_val, p_src, p_hop = _grow_pool(p_val, p_src, p_hop, at + 1)
            p_val[at] = out_value[o]
            p_src[at] = seed_src[sp]
            p_hop[at] = 0
            seeded[seed_src[sp]] += out_value[o]
            seed_conv[sp] += out_value[o]
            s_out[n_slot] = o
            s_kind[n_slot] = MAX_TXS
            s_amt[n_slot] = out_value[o]
            s_hop[n_slot] = 0
            s_par[n_slot] = -1
            n_slot += 1
            s_seg[n_slot] = at + 1
        sp += 1
    return s_out, s_kind, s_amt, s_hop, s_par, s_seg, p_val, p_src, p_hop, n_slot


@nb.njit(cache=True)
def propagate(tx_out, tx_in, out_value, out_addr, out_type, out_tx, out_spender_tx, in_output,
              seed_out, seed_src, n_src, sink_of_addr, policy, fee_mode, min_value, max_hops, until_tx,
              max_txs, stop_tx, unspendable_type):
    """Chronological propagation (tracing-methods.md §1.2) from seed outputs.

    `seed_out` (sorted, unique output ids) with their source index `seed_src`; a seed output is tainted
    when the transaction creating it is processed, so value reaching it from an earlier seed keeps its
    first taint and only the rest counts as seeded. `sink_of_addr` maps address ids to a sink index (-1:
    not a sink; an empty array: no sinks). Thresholds: `min_value` (base units; poison compares the
    flagged output value), `max_hops`, `until_tx` (last transaction id followed), `max_txs` (transactions
    processed before stopping with a partial result), `stop_tx` (bool per tx, or empty: spends by those
    transactions stop the trace, e.g. CoinJoins).

    Returns the slots (one per tainted output: output id, kind, tainted amount, min hop, parent slot,
    segment range), the segment pool, the seeded and fee amounts per source, the number of transactions
    processed and whether the trace stopped early.
    """
    n_tx = tx_out.shape[0] - 1
    queued = np.zeros(n_tx, np.bool_)
    n_seed = seed_out.shape[0]
    lo = n_tx
    n_queued = 0
    for k in range(n_seed):
        t = out_tx[seed_out[k]]
        if not queued[t]:
            queued[t] = True
            n_queued += 1
            if t < lo:
                lo = t
    hk = np.full(1024, -1, np.int64)  # pending: output id -> slot (hash table)
    hv = np.empty(1024, np.int64)
    n_hash = np.int64(0)
    cap = 1024
    s_out = np.empty(cap, np.int64)
    s_kind = np.empty(cap, np.int64)
    s_amt = np.empty(cap, np.int64)
    s_hop = np.empty(cap, np.int64)
    s_par = np.empty(cap, np.int64)
    s_seg = np.empty(cap + 1, np.int64)
    s_seg[0] = 0
    n_slot = np.int64(0)
    pcap = 4096
    p_val = np.empty(pcap, np.int64)
    p_src = np.empty(pcap, np.int64)
    p_hop = np.empty(pcap, np.int64)
    seeded = np.zeros(n_src, np.int64)
    seed_conv = np.zeros(n_seed, np.int64)  # per seed output: the value it seeded
    fee = np.zeros(n_src, np.int64)
    processed = 0
    partial = False
    sp = 0
    poison = policy == 0
    ordered = policy >= 2
    has_sinks = sink_of_addr.shape[0] > 0
    has_stop = stop_tx.shape[0] > 0
    sc_in = np.empty(3 * 64 + 1, np.int64)  # per-transaction scratch: in_slot, iv, ip
    sc_seg = np.empty(3 * 64, np.int64)  # sv, ss, sh
    sc_split = np.empty(4096, np.int64)  # scratch of split_into
    tmp_v = np.empty(64, np.int64)
    tmp_s = np.empty(64, np.int64)
    tmp_h = np.empty(64, np.int64)
    t = lo
    while n_queued > 0 and t < n_tx:
        if not queued[t]:
            t += 1
            continue
        if processed >= max_txs:
            partial = True
            break
        processed += 1
        n_queued -= 1
        i0 = tx_in[t]
        n_in = tx_in[t + 1] - i0
        o0 = tx_out[t]
        n_out = tx_out[t + 1] - o0
        if 3 * n_in + 1 > sc_in.shape[0]:
            sc_in = np.empty(2 * (3 * n_in + 1), np.int64)
        in_slot = sc_in[:n_in]
        nseg = np.int64(0)
        has_taint = False
        for k in range(n_in):
            o = in_output[i0 + k]
            sl = -1
            if o >= 0 and n_hash > 0:
                hi_ = _h_slot(hk, o)
                if hk[hi_] == o and s_kind[hv[hi_]] == PENDING:
                    sl = hv[hi_]
            in_slot[k] = sl
            if sl >= 0:
                nseg += s_seg[sl + 1] - s_seg[sl]
                has_taint = True
            else:
                nseg += 1
        ov = out_value[o0:o0 + n_out]
        txhop = _I64MAX
        if has_taint:
            iv = sc_in[n_in:2 * n_in]
            ip = sc_in[2 * n_in:3 * n_in + 1]
            if 3 * nseg > sc_seg.shape[0]:
                sc_seg = np.empty(6 * nseg, np.int64)
            sv = sc_seg[:nseg]
            ss = sc_seg[nseg:2 * nseg]
            sh = sc_seg[2 * nseg:3 * nseg]
            at = 0
            known = np.int64(0)
            first_unknown = -1
            for k in range(n_in):
                ip[k] = at
                sl = in_slot[k]
                o = in_output[i0 + k]
                if sl >= 0:
                    for j in range(s_seg[sl], s_seg[sl + 1]):
                        sv[at] = p_val[j]
                        ss[at] = p_src[j]
                        sh[at] = p_hop[j]
                        at += 1
                    if s_hop[sl] < txhop:
                        txhop = s_hop[sl]
                    s_kind[sl] = PASSED
                    iv[k] = out_value[o]
                    known += iv[k]
                else:
                    iv[k] = out_value[o] if o >= 0 else 0
                    if o < 0 and first_unknown < 0:
                        first_unknown = k
                    known += iv[k]
                    sv[at] = iv[k]
                    ss[at] = -1
                    sh[at] = 0
                    at += 1
            ip[n_in] = at
            W = np.int64(0)
            for k in range(n_out):
                W += ov[k]
            if first_unknown >= 0 and W > known:
                # inputs from outside the store: clean, with the value that balances the transaction
                iv[first_unknown] = W - known
                sv[ip[first_unknown]] = W - known
            need_sc = split_need(n_in, n_out, nseg)
            if need_sc > sc_split.shape[0]:
                sc_split = np.empty(2 * need_sc, np.int64)
            op, rv, rs, rh, fv, fs, fh, par = split_into(policy, fee_mode, iv, ip, sv, ss, sh, ov, sc_split)
            for x in range(fv.shape[0]):
                fee[fs[x]] += fv[x]
            txhop += 1
        else:
            op = np.zeros(n_out + 1, np.int64)
            rv = np.empty(n_out, np.int64)
            rs = np.full(n_out, -1, np.int64)
            rh = np.zeros(n_out, np.int64)
            for k in range(n_out):
                op[k] = k
                rv[k] = ov[k]
            op[n_out] = n_out
            par = np.full(n_out, -1, np.int64)
        for k in range(n_out):
            o = o0 + k
            a = op[k]
            b = op[k + 1]
            nb_ = b - a
            src = -1
            while sp < n_seed and seed_out[sp] < o:
                sp += 1
            sidx = -1
            if sp < n_seed and seed_out[sp] == o:
                src = seed_src[sp]
                sidx = sp
                sp += 1
            amt = np.int64(0)
            for j in range(a, b):
                if rs[j] >= 0:
                    amt += rv[j]
            if amt == 0 and src < 0 and not (poison and has_taint):
                continue
            # the slot's segments
            need = p_val.shape[0]
            if s_seg[n_slot] + nb_ + 1 > need:
                p_val = _grow(p_val, s_seg[n_slot] + nb_ + 1)
                p_src = _grow(p_src, s_seg[n_slot] + nb_ + 1)
                p_hop = _grow(p_hop, s_seg[n_slot] + nb_ + 1)
            if n_slot + 1 >= s_out.shape[0]:
                ncap = 2 * s_out.shape[0]
                s_out = _grow(s_out, ncap)
                s_kind = _grow(s_kind, ncap)
                s_amt = _grow(s_amt, ncap)
                s_hop = _grow(s_hop, ncap)
                s_par = _grow(s_par, ncap)
                s_seg = _grow(s_seg, ncap + 1)
            at = s_seg[n_slot]
            if src >= 0:
                if nb_ > tmp_v.shape[0]:
                    tmp_v = np.empty(2 * nb_, np.int64)
                    tmp_s = np.empty(2 * nb_, np.int64)
                    tmp_h = np.empty(2 * nb_, np.int64)
                for j in range(a, b):
                    if rs[j] < 0:
                        seeded[src] += rv[j]
                        seed_conv[sidx] += rv[j]
                        tmp_v[j - a] = rv[j]
                        tmp_s[j - a] = src
                        tmp_h[j - a] = 0
                    else:
                        tmp_v[j - a] = rv[j]
                        tmp_s[j - a] = rs[j]
                        tmp_h[j - a] = rh[j]
                if ordered:
                    end = merge_into(tmp_v, tmp_s, tmp_h, np.arange(nb_), p_val, p_src, p_hop, at)
                else:
                    end = aggregate_into(tmp_v, tmp_s, tmp_h, nb_, ov[k], p_val, p_src, p_hop, at)
                amt = np.int64(0)
                for j in range(at, end):
                    if p_src[j] >= 0:
                        amt += p_val[j]
            else:
                for j in range(a, b):
                    p_val[at + j - a] = rv[j]
                    p_src[at + j - a] = rs[j]
                    p_hop[at + j - a] = rh[j]
                end = at + nb_
            hop = _I64MAX
            for j in range(at, end):
                if p_src[j] >= 0 and p_val[j] > 0 and p_hop[j] < hop:
                    hop = p_hop[j]
            if hop == _I64MAX:
                hop = txhop if txhop < _I64MAX else 0
            sl = n_slot
            n_slot += 1
            s_seg[n_slot] = end
            s_out[sl] = o
            s_amt[sl] = amt
            s_hop[sl] = hop
            s_par[sl] = in_slot[par[k]] if par[k] >= 0 else -1
            flag = out_value[o] if poison else amt
            if flag < min_value:
                s_kind[sl] = BELOW
            elif hop > max_hops:
                s_kind[sl] = MAX_HOPS
            elif has_sinks and out_addr[o] >= 0 and sink_of_addr[out_addr[o]] >= 0:
                s_kind[sl] = SINK
            elif out_type[o] == unspendable_type:
                s_kind[sl] = BURNED
            else:
                spt = out_spender_tx[o]
                if spt < 0:
                    s_kind[sl] = HOLDING
                elif spt > until_tx:
                    s_kind[sl] = UNTIL
                elif has_stop and stop_tx[spt]:
                    s_kind[sl] = COINJOIN
                else:
                    s_kind[sl] = PENDING
                    if 2 * (n_hash + 1) > hk.shape[0]:
                        hk, hv = _h_grow(hk, hv)
                    _h_put(hk, hv, o, sl)
                    n_hash += 1
                    if not queued[spt]:
                        queued[spt] = True
                        n_queued += 1
        t += 1
    if partial:
        for q in range(hk.shape[0]):
            if hk[q] != -1 and s_kind[hv[q]] == PENDING:
                s_kind[hv[q]] = MAX_TXS
        s_out, s_kind, s_amt, s_hop, s_par, s_seg, p_val, p_src, p_hop, n_slot = _unreached_seeds(
            sp, t, seed_out, seed_src, out_tx, out_value, seeded, seed_conv, s_out, s_kind, s_amt, s_hop, s_par,
            s_seg, p_val, p_src, p_hop, n_slot)
    n_pending = 0
    for q in range(n_slot):
        if s_kind[q] == PENDING:
            n_pending += 1
    npool = s_seg[n_slot]
    return (s_out[:n_slot].copy(), s_kind[:n_slot].copy(), s_amt[:n_slot].copy(), s_hop[:n_slot].copy(),
            s_par[:n_slot].copy(), s_seg[:n_slot + 1].copy(), p_val[:npool].copy(), p_src[:npool].copy(),
            p_hop[:npool].copy(), seeded, fee, processed, partial, n_pending, seed_conv)


class Slots:
    """Result of :func:`propagate_graph`: one slot per tainted output, plus per-source totals."""

    def __init__(self, res):
        (self.out, self.kind, self.amount, self.hop, self.parent, self.seg, self.seg_value, self.seg_source,
         self.seg_hop, self.seeded, self.fee, self.processed, self.partial, self.n_pending, self.seed_seeded) = res
        self.processed = int(self.processed)
        self.partial = bool(self.partial)

    def __len__(self) -> int:
        return len(self.out)

    def taint(self, k: int) -> Taint:
        a, b = int(self.seg[k]), int(self.seg[k + 1])
        return [Segment(int(v), None if s < 0 else int(s), int(h))
                for v, s, h in zip(self.seg_value[a:b], self.seg_source[a:b], self.seg_hop[a:b])]


def readonly(a, dtype=None) -> np.ndarray:
    """`a` as a read-only array (a view, no copy, when it already has `dtype`). Kernels get their inputs
    read-only whatever the caller holds (memory-mapped graph cache or arrays built in memory), so each is
    compiled for one signature (numba types read-only and writable arrays differently)."""
    a = np.asarray(a, dtype)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def propagate_graph(g, seed_out, seed_src, n_src: int, *, policy: str = "haircut", fee_mode: str = "tail",
                    sink_of_addr=None, min_value: int = 0, max_hops: int | None = None,
                    until_tx: int | None = None, max_txs: int | None = None, stop_tx=None,
                    unspendable_type: int = 9) -> Slots:
    """Run :func:`propagate` over a graph's arrays (`seed_out` sorted and unique). Every array goes in
    read-only (:func:`readonly`): one compiled signature for every caller."""
    big = np.iinfo(np.int64).max
    return Slots(propagate(
        readonly(g.tx_out, np.int64), readonly(g.tx_in, np.int64), readonly(g.out_value, np.int64),
        readonly(g.out_addr, np.int64), readonly(g.out_type, np.int8), readonly(g.out_tx, np.int64),
        readonly(g.out_spender_tx, np.int64), readonly(g.in_output, np.int64),
        readonly(seed_out, np.int64), readonly(seed_src, np.int64), np.int64(n_src),
        readonly(np.zeros(0, np.int32) if sink_of_addr is None else sink_of_addr, np.int32),
        np.int64(POLICY_CODE[policy]), np.int64(FEE_CODE[fee_mode]), np.int64(min_value),
        np.int64(big if max_hops is None else max_hops),
        np.int64(len(g.tx_out) - 2 if until_tx is None else until_tx), np.int64(big if max_txs is None else max_txs),
        readonly(np.zeros(0, np.bool_) if stop_tx is None else stop_tx, np.bool_), np.int8(unspendable_type)))
