"""Numba kernels of the policy split of one UTXO transaction (tracing-methods.md §1.1): how the taint of the
inputs is divided among the outputs and the fee under each policy (poison, haircut, FIFO, LIFO, TIHO).

:func:`split_tx` must agree exactly with :func:`chaintrace.trace.policies.split` (tests compare them on
random transactions); :func:`split_fast` is its Python wrapper. :func:`split_into` (scratch-buffer version)
is inlined into the propagation engine :func:`chaintrace.trace.kernels.propagate`, which also uses
:func:`aggregate_into` and :func:`merge_into` to write an output's segments. Compile-time rules: see
:mod:`chaintrace.trace.kernels`.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.sorting import argsort_desc
from chaintrace.trace.policies import POLICIES, Segment, Taint, TxShape, normalize

POLICY_CODE = {name: i for i, name in enumerate(POLICIES)}  # poison 0, haircut 1, fifo 2, lifo 3, tiho 4
FEE_CODE = {"tail": 0, "prorata": 1}

_I64MAX = np.int64(9223372036854775807)


@nb.njit(cache=True)
def muldiv(a, b, c):
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
        q, r = muldiv(total, w[k], denom)
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
def aggregate_into(v, s, h, n, value, ov, os, oh, at):
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
def merge_into(v, s, h, idx, ov, os, oh, at):
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
        at = merge_into(st_v, st_s, st_h, e_, rv, rs, rh, at)
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
    nf = aggregate_into(fpv, fps, fph, nfp, np.int64(0), fv, fs, fh, np.int64(0))
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
