"""Numba kernels of the UTXO taint engine: the policy split of one transaction and the chronological
propagation loop over :class:`chaintrace.graph.btc.BtcGraph` arrays.

Everything works on flat arrays indexed by dense ids; taints live in a flat segment pool (value, source,
hop), one contiguous run of segments per tainted output ("slot"). The frontier is a bitmap over
transaction ids: dense ids are in chain order and a spender always comes after the output it spends, so a
single forward sweep visits every transaction with tainted inputs once, after all of them were produced
(§1.2 of tracing-methods.md: a transaction reached by several branches is processed once, with all of
them).

:func:`split_tx` must agree exactly with :func:`chaintrace.trace.policies.split` (tests compare them on
random transactions); :func:`split_fast` is its Python wrapper.

Compile time (a fresh machine compiles every kernel before the first trace): each kernel is compiled for
one signature. Integer arguments between kernels are int64 variables, never plain constants or counters
first set to ``0`` (numba types those as literals and compiles the callee again for each), arrays passed
on are writable scratch rather than the read-only graph arrays, and copies are element loops (a slice
assignment compiles numba's shape-check error path). :func:`split_into` is inlined into
:func:`propagate` (no separate copy of the split code to optimise again).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.sorting import argsort_desc
from chaintrace.trace.policies import POLICIES, Segment, Taint, TxShape, normalize

POLICY_CODE = {name: i for i, name in enumerate(POLICIES)}  # poison 0, haircut 1, fifo 2, lifo 3, tiho 4
FEE_CODE = {"tail": 0, "prorata": 1}

# slot kinds
PENDING, PASSED, SINK, HOLDING, BELOW, MAX_HOPS, UNTIL, MAX_TXS, BURNED, COINJOIN = range(10)
KIND_NAMES = {SINK: "sink", HOLDING: "holding", BELOW: "below_threshold", MAX_HOPS: "max_hops",
              UNTIL: "until", MAX_TXS: "max_txs", BURNED: "unspendable", COINJOIN: "coinjoin",
              PASSED: "passed", PENDING: "pending"}

_I64MAX = np.int64(9223372036854775807)


@nb.njit(cache=True)
def _muldiv(a, b, c):
    """(floor(a*b/c), a*b mod c) exactly, for 0 <= a <= c, 0 <= b, 0 < c < 2**62 (no 128-bit overflow)."""
    if a == 0 or b == 0:
        return np.int64(0), np.int64(0)
    if a <= _I64MAX // b:
        p = a * b
        return p // c, p % c
    qa = a // c
    ra = a - qa * c
    q = np.int64(0)
    r = np.int64(0)
    bit = 62
    while bit >= 0 and ((b >> bit) & 1) == 0:
        bit -= 1
    while bit >= 0:
        q = q * 2
        r = r * 2
        if r >= c:
            r -= c
            q += 1
        if (b >> bit) & 1:
            q += qa
            r += ra
            if r >= c:
                r -= c
                q += 1
        bit -= 1
    return q, r


@nb.njit(cache=True)
def _sources(s, v, n):
    """Sorted distinct sources of the tainted, non-empty segments among the first `n`."""
    return _sources_into(s, v, n, np.empty(n, np.int64))


@nb.njit(cache=True)
def _sources_into(s, v, n, u):
    """:func:`_sources` written into `u` (length >= n); returns the view of the sources."""
    m = 0
    for j in range(n):
        if s[j] >= 0 and v[j] > 0:
            x = s[j]
            found = False
            for q in range(m):
                if u[q] == x:
                    found = True
                    break
            if not found:
                q = m
                while q > 0 and u[q - 1] > x:  # insertion keeps u sorted
                    u[q] = u[q - 1]
                    q -= 1
                u[q] = x
                m += 1
    return u[:m]


@nb.njit(cache=True)
def _pos(u, x):
    for q in range(u.shape[0]):
        if u[q] == x:
            return q
    return -1


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
def _apportion(total, w, denom, out, rem):
    """Largest-remainder shares of `total` in proportion to `w` (sum `denom`), ties to the lower index.
    `rem` is scratch of at least len(w)."""
    n = w.shape[0]
    if total == 0 or denom == 0:
        for k in range(n):
            out[k] = 0
        return
    s = np.int64(0)
    for k in range(n):
        q, r = _muldiv(total, w[k], denom)
        out[k] = q
        rem[k] = r
        s += q
    left = total - s
    if left <= 0:
        return
    if left * n <= 4096:  # a few picks: select the largest remainder each time (first index on ties)
        for _ in range(left):
            best = 0
            bv = np.int64(-1)
            for k in range(n):
                if rem[k] > bv:
                    bv = rem[k]
                    best = k
            out[best] += 1
            rem[best] = -1
    else:
        order = argsort_desc(rem[:n])
        for j in range(left):
            out[order[j]] += 1


@nb.njit(cache=True)
def _aggregate(v, s, h, n, value, ov, os, oh, at):
    """Write the order-free canonical form (per source sorted, min hop, then clean rest) of segments
    v/s/h[:n] of a coin of `value` at position `at` of ov/os/oh; returns the new end position."""
    start = at
    u = _sources(s, v, n)
    if u.shape[0]:
        amt = np.zeros(u.shape[0], np.int64)
        hop = np.full(u.shape[0], _I64MAX, np.int64)
        for j in range(n):
            if s[j] >= 0 and v[j] > 0:
                x = _pos(u, s[j])
                amt[x] += v[j]
                if h[j] < hop[x]:
                    hop[x] = h[j]
        for x in range(u.shape[0]):
            ov[at] = amt[x]
            os[at] = u[x]
            oh[at] = hop[x]
            at += 1
    tot = np.int64(0)
    for j in range(start, at):
        tot += ov[j]
    if value - tot > 0:
        ov[at] = value - tot
        os[at] = -1
        oh[at] = 0
        at += 1
    return at


@nb.njit(cache=True)
def _merge(v, s, h, idx, ov, os, oh, at):
    """Write segments v/s/h[idx] normalized (no empties, clean hop 0, adjacent equal merged) at `at`."""
    start = at
    for q in range(idx.shape[0]):
        j = idx[q]
        if v[j] <= 0:
            continue
        hj = h[j] if s[j] >= 0 else 0
        if at > start and os[at - 1] == s[j] and oh[at - 1] == hj:
            ov[at - 1] += v[j]
        else:
            ov[at] = v[j]
            os[at] = s[j]
            oh[at] = hj
            at += 1
    return at


@nb.njit(cache=True)
def _split_haircut(iv, ip, sv, ss, sh, ov, n_in, n_out, V, f, nseg, parent, seg_in, sc):
    u = _sources_into(ss, sv, nseg, sc[0:nseg])
    m = u.shape[0]
    # scratch: A[m] H[m] remain[m] x_[m] in_t[n_in] caps[n_out+1] bucket[n_out+1] rem[max]
    nb_ = max(m, n_out + 1)
    nw = 4 * m + n_in + 2 * (n_out + 1) + nb_
    w = sc[nseg:nseg + nw]
    A = w[0:m]
    H = w[m:2 * m]
    remain = w[2 * m:3 * m]
    x_ = w[3 * m:4 * m]
    in_t = w[4 * m:4 * m + n_in]
    o = 4 * m + n_in
    caps = w[o:o + n_out + 1]
    bucket = w[o + n_out + 1:o + 2 * (n_out + 1)]
    rem = w[o + 2 * (n_out + 1):]
    for x in range(m):
        A[x] = 0
        H[x] = _I64MAX
    for k in range(n_in):
        in_t[k] = 0
    for j in range(nseg):
        if ss[j] >= 0 and sv[j] > 0:
            x = 0 if m == 1 else _pos(u, ss[j])
            A[x] += sv[j]
            if sh[j] < H[x]:
                H[x] = sh[j]
            in_t[seg_in[j]] += sv[j]
    best = -1
    bv = np.int64(0)
    for k in range(n_in):
        if in_t[k] > bv:
            bv = in_t[k]
            best = k
    T = np.int64(0)
    for x in range(m):
        T += A[x]
        remain[x] = A[x]
    for k in range(n_out):
        caps[k] = ov[k]
    caps[n_out] = f
    _apportion(T, caps, V, bucket, rem)
    R = T
    # results in one buffer: op[n_out+1] rv/rs/rh[cap] fv/fs/fh[m]
    cap = n_out * (m + 1) + 1
    r = sc[nseg + nw:nseg + nw + n_out + 1 + 3 * cap + 3 * m]
    op = r[0:n_out + 1]
    rv = r[n_out + 1:n_out + 1 + cap]
    rs = r[n_out + 1 + cap:n_out + 1 + 2 * cap]
    rh = r[n_out + 1 + 2 * cap:n_out + 1 + 3 * cap]
    q = n_out + 1 + 3 * cap
    fv = r[q:q + m]
    fs = r[q + m:q + 2 * m]
    fh = r[q + 2 * m:q + 3 * m]
    nf = 0
    at = 0
    for k in range(n_out + 1):
        if k == n_out or m == 1:
            if k == n_out:
                for x in range(m):
                    x_[x] = remain[x]
            else:
                x_[0] = bucket[k]
        else:
            _apportion(bucket[k], remain, R, x_, rem)
        for x in range(m):
            remain[x] -= x_[x]
        R -= bucket[k]
        if k < n_out:
            op[k] = at
            for x in range(m):
                if x_[x] > 0:
                    rv[at] = x_[x]
                    rs[at] = u[x]
                    rh[at] = H[x] + 1
                    at += 1
            if caps[k] - bucket[k] > 0:
                rv[at] = caps[k] - bucket[k]
                rs[at] = -1
                rh[at] = 0
                at += 1
            parent[k] = best
        else:
            for x in range(m):
                if x_[x] > 0:
                    fv[nf] = x_[x]
                    fs[nf] = u[x]
                    fh[nf] = H[x] + 1
                    nf += 1
    op[n_out] = at
    return op, rv[:at], rs[:at], rh[:at], fv[:nf], fs[:nf], fh[:nf], parent


@nb.njit(cache=True)
def _split_ordered(policy, fee_mode, iv, ip, sv, ss, sh, ov, n_in, n_out, V, f, nseg, parent, seg_in, sc):
    tail = fee_mode == 0 and f > 0
    n_slots = n_out + (1 if tail else 0)
    cap = nseg + n_slots + 1
    # scratch for everything below, then the results
    nw = 7 * nseg + 2 * n_in + 6 * cap + 2 * n_out + 8
    w = sc[0:nw]
    o = 0
    wv = w[o:o + nseg]
    o += nseg
    fpv = w[o:o + nseg + 1]
    o += nseg + 1
    fps = w[o:o + nseg + 1]
    o += nseg + 1
    fph = w[o:o + nseg + 1]
    o += nseg + 1
    per_in = w[o:o + n_in]
    o += n_in
    rem = w[o:o + max(n_in, nseg) + 1]
    o += n_in + nseg + 1
    cut = w[o:o + nseg + 1]
    o += nseg + 1
    order = w[o:o + nseg]
    o += nseg
    st_k = w[o:o + cap]  # output index (-1 fee)
    st_v = w[o + cap:o + 2 * cap]
    st_s = w[o + 2 * cap:o + 3 * cap]
    st_h = w[o + 3 * cap:o + 4 * cap]
    st_i = w[o + 4 * cap:o + 5 * cap]  # input index
    idx = w[o + 5 * cap:o + 6 * cap]
    o += 6 * cap
    cnt = w[o:o + n_out + 1]
    o += n_out + 1
    pos = w[o:o + n_out]
    for j in range(nseg):
        wv[j] = sv[j]
    nfp = np.int64(0)
    if fee_mode == 1 and f > 0:
        _apportion(f, iv, V, per_in, rem)
        for k in range(n_in):
            a, b = ip[k], ip[k + 1]
            _apportion(per_in[k], sv[a:b], iv[k], cut, rem)
            for j in range(a, b):
                c = cut[j - a]
                if c > 0:
                    wv[j] -= c
                    fpv[nfp] = c
                    fps[nfp] = ss[j]
                    fph[nfp] = sh[j] + 1 if ss[j] >= 0 else 0
                    nfp += 1
    # piece order
    n_p = 0
    if policy == 3:  # lifo
        for k in range(n_in - 1, -1, -1):
            for j in range(ip[k], ip[k + 1]):
                if wv[j] > 0:
                    order[n_p] = j
                    n_p += 1
    elif policy == 4:  # tiho: tainted first
        for j in range(nseg):
            if wv[j] > 0 and ss[j] >= 0:
                order[n_p] = j
                n_p += 1
        for j in range(nseg):
            if wv[j] > 0 and ss[j] < 0:
                order[n_p] = j
                n_p += 1
    else:
        for j in range(nseg):
            if wv[j] > 0:
                order[n_p] = j
                n_p += 1
    # slot order
    if policy == 4:
        for k in range(n_out):  # keys in writable scratch (`ov` may be a read-only graph array: one signature)
            pos[k] = ov[k]
        slots = argsort_desc(pos)
    else:
        slots = np.arange(n_out)
    ns = 0
    p = 0
    left = wv[order[0]] if n_p > 0 else np.int64(0)
    for q in range(n_slots):
        if q < n_out:
            k = slots[q]
            need = ov[k]
        else:
            k = -1
            need = f
        while need > 0:
            j = order[p]
            take = need if need < left else left
            st_k[ns] = k
            st_v[ns] = take
            st_s[ns] = ss[j]
            st_h[ns] = sh[j] + 1 if ss[j] >= 0 else 0
            st_i[ns] = seg_in[j]
            ns += 1
            need -= take
            left -= take
            if left == 0:
                p += 1
                left = wv[order[p]] if p < n_p else np.int64(0)
    # per output, in stream order
    for k in range(n_out + 1):
        cnt[k] = 0
    for e in range(ns):
        if st_k[e] >= 0:
            cnt[st_k[e] + 1] += 1
    for k in range(n_out):
        cnt[k + 1] += cnt[k]
    for k in range(n_out):
        pos[k] = cnt[k]
    for e in range(ns):
        k = st_k[e]
        if k >= 0:
            idx[pos[k]] = e
            pos[k] += 1
        else:
            fpv[nfp] = st_v[e]
            fps[nfp] = st_s[e]
            fph[nfp] = st_h[e]
            nfp += 1
    nr = cnt[n_out] + 1
    r = sc[nw:nw + n_out + 1 + 3 * nr + 3 * (nfp + 1)]
    op = r[0:n_out + 1]
    rv = r[n_out + 1:n_out + 1 + nr]
    rs = r[n_out + 1 + nr:n_out + 1 + 2 * nr]
    rh = r[n_out + 1 + 2 * nr:n_out + 1 + 3 * nr]
    q0 = n_out + 1 + 3 * nr
    fv = r[q0:q0 + nfp + 1]
    fs = r[q0 + nfp + 1:q0 + 2 * (nfp + 1)]
    fh = r[q0 + 2 * (nfp + 1):q0 + 3 * (nfp + 1)]
    at = np.int64(0)
    for k in range(n_out):
        op[k] = at
        a, b = cnt[k], cnt[k + 1]
        e_ = idx[a:b]
        at = _merge(st_v, st_s, st_h, e_, rv, rs, rh, at)
        # parent: the input whose tainted pieces (contiguous runs) add up to the most
        best = -1
        bv = np.int64(0)
        cur = -1
        cv = np.int64(0)
        for e in e_:
            if st_s[e] < 0:
                continue
            if st_i[e] != cur:
                cur = st_i[e]
                cv = np.int64(0)
            cv += st_v[e]
            if cv > bv or (cv == bv and cur < best):
                bv = cv
                best = cur
        parent[k] = best
    op[n_out] = at
    nf = _aggregate(fpv, fps, fph, nfp, np.int64(0), fv, fs, fh, np.int64(0))
    # _aggregate with value 0 writes no clean rest (tainted <= 0 rest is skipped)
    return op, rv[:at], rs[:at], rh[:at], fv[:nf], fs[:nf], fh[:nf], parent




@nb.njit(cache=True)
def split_need(n_in, n_out, nseg):
    """Scratch size (int64 elements) that :func:`split_into` needs for a transaction of this shape."""
    hair = 5 * nseg + n_in + 3 * (n_out + 1) + (n_out + 1) + 3 * (n_out * (nseg + 1) + 1) + 3 * nseg + 8
    cap = nseg + n_out + 2
    ordered = 7 * nseg + 2 * n_in + 6 * cap + 2 * n_out + 8 + (n_out + 1) + 3 * (cap + 1) + 3 * (nseg + 2)
    return n_out + nseg + max(hair, ordered) + 16


@nb.njit(cache=True, inline="always")
def split_into(policy, fee_mode, iv, ip, sv, ss, sh, ov, sc):
    """:func:`split_tx` using the scratch buffer `sc` (at least :func:`split_need`): no allocation except for
    TIHO's output order; the results are views into `sc`, valid until its next use."""
    n_in = iv.shape[0]
    n_out = ov.shape[0]
    V = np.int64(0)
    for k in range(n_in):
        V += iv[k]
    W = np.int64(0)
    for k in range(n_out):
        W += ov[k]
    f = V - W
    nseg = ip[n_in]
    parent = sc[0:n_out]
    for k in range(n_out):
        parent[k] = -1
    seg_in = sc[n_out:n_out + nseg]
    for k in range(n_in):
        for j in range(ip[k], ip[k + 1]):
            seg_in[j] = k
    rest = sc[n_out + nseg:]
    if policy <= 1:  # poison, haircut
        return _split_haircut(iv, ip, sv, ss, sh, ov, n_in, n_out, V, f, nseg, parent, seg_in, rest)
    return _split_ordered(policy, fee_mode, iv, ip, sv, ss, sh, ov, n_in, n_out, V, f, nseg, parent, seg_in, rest)


@nb.njit(cache=True)
def split_tx(policy, fee_mode, iv, ip, sv, ss, sh, ov):
    """Split one transaction. Inputs: values `iv`, their normalized segments sv/ss/sh (source -1 = clean)
    at ip[k]:ip[k+1]; output values `ov`. Returns (op, rv, rs, rh, fv, fs, fh, parent): output k's
    canonical segments at op[k]:op[k+1], the fee taint aggregated per source (tainted segments only), and
    per output the input that contributed most tainted value to it (-1: none)."""
    sc = np.empty(split_need(iv.shape[0], ov.shape[0], ip[iv.shape[0]]), np.int64)
    op, rv, rs, rh, fv, fs, fh, parent = split_into(policy, fee_mode, iv, ip, sv, ss, sh, ov, sc)
    return op.copy(), rv.copy(), rs.copy(), rh.copy(), fv.copy(), fs.copy(), fh.copy(), parent.copy()


def split_fast(policy: str, tx: TxShape, input_taints, fee_mode: str = "tail") -> tuple[list[Taint], Taint]:
    """:func:`chaintrace.trace.policies.split` computed by the engine's kernel (same result, tested)."""
    ins = [normalize(t) for t in input_taints]
    if len(ins) != len(tx.inputs):
        raise ValueError(f"{len(ins)} input taints for {len(tx.inputs)} inputs")
    ip = np.zeros(len(ins) + 1, np.int64)
    for k, t in enumerate(ins):
        if sum(s.value for s in t) != tx.inputs[k]:
            raise ValueError(f"taint of input {k} does not cover its value {tx.inputs[k]}")
        ip[k + 1] = ip[k] + len(t)
    segs = [s for t in ins for s in t]
    sv = np.array([s.value for s in segs], np.int64)
    ss = np.array([-1 if s.source is None else s.source for s in segs], np.int64)
    sh = np.array([s.hop for s in segs], np.int64)
    op, rv, rs, rh, fv, fs, fh, _parent = split_tx(
        POLICY_CODE[policy], FEE_CODE[fee_mode], np.array(tx.inputs, np.int64), ip, sv, ss, sh,
        np.array(tx.outputs, np.int64))

    def seg(v, s, h):
        return Segment(int(v), None if s < 0 else int(s), int(h))

    outs = [[seg(rv[j], rs[j], rh[j]) for j in range(op[k], op[k + 1])] for k in range(len(tx.outputs))]
    fee = [seg(v, s, h) for v, s, h in zip(fv, fs, fh)]
    rest = tx.fee - sum(int(v) for v in fv)
    if rest:
        fee.append(Segment(rest, None, 0))
    return outs, fee


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
                    end = _merge(tmp_v, tmp_s, tmp_h, np.arange(nb_), p_val, p_src, p_hop, at)
                else:
                    end = _aggregate(tmp_v, tmp_s, tmp_h, nb_, ov[k], p_val, p_src, p_hop, at)
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
        # seeds whose creating transaction was not reached: seeded in full, stopped at once
        while sp < n_seed:
            o = seed_out[sp]
            if out_tx[o] >= t:
                if n_slot + 1 >= s_out.shape[0]:
                    ncap = 2 * s_out.shape[0]
                    s_out = _grow(s_out, ncap)
                    s_kind = _grow(s_kind, ncap)
                    s_amt = _grow(s_amt, ncap)
                    s_hop = _grow(s_hop, ncap)
                    s_par = _grow(s_par, ncap)
                    s_seg = _grow(s_seg, ncap + 1)
                at = s_seg[n_slot]
                p_val = _grow(p_val, at + 1)
                p_src = _grow(p_src, at + 1)
                p_hop = _grow(p_hop, at + 1)
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
