"""Numba kernel of the Ethereum outgoing view: backward pro-rata apportionment of a source group's receipts
over the account model, exact in 128-bit integers (:mod:`chaintrace.model.u128`).

Transfers are visited newest first. A transfer ``k`` whose part ``D`` ends at the group (a seed: a credit of
one of the group's addresses, all of it) came out of holding ``s`` (one account and asset): ``D`` is
apportioned over the credits ``s`` received before ``k``, pro rata to the part of each credit not yet
attributed to a later transfer of the same walk (``remaining = amount - claimed``; a balance is a mix of what
came in, and a credit cannot be spent twice): credit ``j`` gets the difference of ``floor(X * cum_j / T)``
between consecutive cumulative remainders, ``T`` their total and ``X = min(D, T)``, so the parts add up to
``X`` to the unit; ``D - X`` is ``unplaced`` (value from before the data, or already attributed). The
sender of a seed is at hop 1, the sender of a credit it was paid from at hop 2, ... up to ``max_hops``;
services (``stop`` >= 0) and the protocol (issuance) are not followed further back (``ended``).

Every unit of the seeds ends exactly once: ``seeded = ended + unplaced``.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.model.u128 import u_add, u_iszero, u_lt, u_muldiv, u_sub
from chaintrace.trace.kernels import _grow

Z = np.uint64(0)


@nb.njit(cache=True)
def backward(tr_from, tr_from_h, tr_asset, tr_lo, tr_hi, credit_start, credit_k, stop, seeds, max_hops, budget,
             d_lo, d_hi, c_lo, c_hi, hop, parent, queued, acc):
    """Touched transfers (seeds first) and whether the work budget ran out. Fills d_lo/d_hi (the part of each
    transfer that went on to the group), c_lo/c_hi (the part of it claimed by later transfers of the walk),
    hop (the fewest hops to the group), parent (the later transfer that claimed the largest part) and, per
    asset, acc[asset] = [ended lo, hi, unplaced lo, hi]."""
    touched = np.empty(max(16, 2 * seeds.shape[0]), np.int64)
    nt = 0
    lo = tr_from.shape[0]
    hi = -1
    for i in range(seeds.shape[0]):
        k = seeds[i]
        d_lo[k] = tr_lo[k]
        d_hi[k] = tr_hi[k]
        c_lo[k] = tr_lo[k]  # a seed is the group's own receipt: not available to earlier demand
        c_hi[k] = tr_hi[k]
        hop[k] = 1
        parent[k] = -1
        touched[nt] = k
        nt += 1
        queued[k] = True
        lo = min(lo, k)
        hi = max(hi, k)
    work = 0
    partial = False
    k = hi
    while k >= lo:
        if not queued[k]:
            k -= 1
            continue
        queued[k] = False
        h = hop[k]
        s = tr_from_h[k]
        a = tr_from[k]
        dlo = d_lo[k]
        dhi = d_hi[k]
        w = tr_asset[k]
        if h >= max_hops or s < 0 or a < 0 or stop[a] >= 0:
            acc[w, 0], acc[w, 1] = u_add(acc[w, 0], acc[w, 1], dlo, dhi)
            k -= 1
            continue
        c0 = credit_start[s]
        c1 = c0 + np.searchsorted(credit_k[c0:credit_start[s + 1]], k)
        work += c1 - c0
        if work > budget:
            partial = True
            break
        tlo = Z
        thi = Z
        for c in range(c0, c1):
            j = credit_k[c]
            rlo, rhi = u_sub(tr_lo[j], tr_hi[j], c_lo[j], c_hi[j])
            tlo, thi = u_add(tlo, thi, rlo, rhi)
        xlo, xhi = dlo, dhi
        if u_lt(tlo, thi, xlo, xhi):
            xlo, xhi = tlo, thi
        ulo, uhi = u_sub(dlo, dhi, xlo, xhi)
        acc[w, 2], acc[w, 3] = u_add(acc[w, 2], acc[w, 3], ulo, uhi)
        if u_iszero(xlo, xhi):
            k -= 1
            continue
        clo = Z
        chi = Z
        plo = Z
        phi = Z
        for c in range(c0, c1):
            j = credit_k[c]
            rlo, rhi = u_sub(tr_lo[j], tr_hi[j], c_lo[j], c_hi[j])
            if u_iszero(rlo, rhi):
                continue
            clo, chi = u_add(clo, chi, rlo, rhi)
            qlo, qhi = u_muldiv(xlo, xhi, clo, chi, tlo, thi)
            slo, shi = u_sub(qlo, qhi, plo, phi)
            plo, phi = qlo, qhi
            if u_iszero(slo, shi):
                continue
            if hop[j] < 0:
                hop[j] = h + 1
                parent[j] = k
                if nt >= touched.shape[0]:
                    touched = _grow(touched, nt + 1)
                touched[nt] = j
                nt += 1
            elif u_lt(d_lo[j], d_hi[j], slo, shi):
                parent[j] = k
            if h + 1 < hop[j]:
                hop[j] = h + 1
            d_lo[j], d_hi[j] = u_add(d_lo[j], d_hi[j], slo, shi)
            c_lo[j], c_hi[j] = u_add(c_lo[j], c_hi[j], slo, shi)
            queued[j] = True
            if j < lo:
                lo = j
        k -= 1
    return touched[:nt].copy(), partial


@nb.njit(cache=True)
def reset(touched, d_lo, d_hi, c_lo, c_hi, hop, parent, queued):
    for i in range(touched.shape[0]):
        k = touched[i]
        d_lo[k] = Z
        d_hi[k] = Z
        c_lo[k] = Z
        c_hi[k] = Z
        hop[k] = -1
        parent[k] = -1
        queued[k] = False
