"""Account-model taint propagation (Ethereum): one chronological pass over the transfer arrays, in numba.

State per holding (one (account, asset) pair): balance and tainted amount as exact 128-bit integers
(:mod:`chaintrace.model.u128`), the minimum hop count of its taint, and the record that brought it the
most taint (for explanations). FIFO/LIFO keep, per holding, a linked list of credit entries ``[tainted,
total]`` in one growable pool. For a transfer of ``x`` from a holding with balance ``bal`` and taint ``t``,
the tainted part ``tau`` is (§1.3 of docs/tracing-methods):

* ``haircut`` (and ``poison``): ``floor(x * t / bal)`` (multiply first, exact 256-bit intermediate);
* ``seniority`` (tainted-first-out): ``min(x, t)``;
* ``fifo`` / ``lifo``: drawn from the credit entries, oldest / newest first; balance held before the holding
  first received taint is *untracked* clean value, spent first (FIFO) or last (LIFO). Inside a partly
  tainted entry the draw takes taint pro rata (``entry_mode`` 0), clean first (1, as EthereumBlacklisting)
  or taint first (2).

A debit larger than the known balance (the store starts after the account was funded) is covered by
assumed clean opening balance; the count is reported. Gas (fee transfers) takes taint to ``fees``; taint
sent to a sink stops there; thresholds and ``max_hops`` stop taint with a reason. A *swap* (the sender of a
transaction has a net outflow of one asset and a net inflow of another in that transaction) converts: the
taint the sender pays in the spent asset is recorded as ``converted`` instead of entering the pool, and
the received asset is credited ``floor(y * tau_A / x_A)`` (the tainted share of what was paid, applied to
what was received), recorded as a conversion.

:mod:`chaintrace.trace.eth_reference` is the same algorithm in plain Python ints (tests compare the two).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.model.u128 import u_add, u_iszero, u_le, u_lt, u_min, u_muldiv, u_sub

POLICY_CODES = {"poison": 0, "haircut": 1, "seniority": 2, "fifo": 3, "lifo": 4}
ENTRY_MODES = {"prorata": 0, "clean-first": 1, "taint-first": 2}
# record codes
PASS, SINK, BELOW, MAXHOPS, FEE, BURNED, CONVERTED = 0, 1, 2, 3, 4, 5, 6
CODE_NAMES = {PASS: "passed", SINK: "sink", BELOW: "below_threshold", MAXHOPS: "max_hops", FEE: "fee",
              BURNED: "burned", CONVERTED: "converted"}
NOHOP = np.int32(1 << 30)
Z = np.uint64(0)


@nb.njit(cache=True)
def propagate(policy, entry_mode, tr_from_h, tr_to_h, tr_to, tr_asset, tr_lo, tr_hi, tr_kind, tr_tx,
              tx_tr, tx_from, hold_account, hold_asset, n_holdings, seed_of_tr, start_k, end_k, acct_sink,
              burn_acct, min_lo, min_hi, max_hops, max_txs, fee_lo_code, fee_hi_code):
    z = np.zeros(n_holdings, np.uint64)
    return propagate_state(policy, entry_mode, tr_from_h, tr_to_h, tr_to, tr_asset, tr_lo, tr_hi, tr_kind, tr_tx,
                           tx_tr, tx_from, hold_account, hold_asset, n_holdings, seed_of_tr, start_k, end_k,
                           acct_sink, burn_acct, min_lo, min_hi, max_hops, max_txs, fee_lo_code, fee_hi_code,
                           z, z.copy(), z.copy(), z.copy(), np.full(n_holdings, NOHOP, np.int32),
                           np.full(n_holdings, -1, np.int64), z.copy(), z.copy(), np.zeros(n_holdings, np.bool_), 0)


@nb.njit(cache=True)
def propagate_state(policy, entry_mode, tr_from_h, tr_to_h, tr_to, tr_asset, tr_lo, tr_hi, tr_kind, tr_tx,
                    tx_tr, tx_from, hold_account, hold_asset, n_holdings, seed_of_tr, start_k, end_k, acct_sink,
                    burn_acct, min_lo, min_hi, max_hops, max_txs, fee_lo_code, fee_hi_code,
                    bal_lo, bal_hi, t_lo, t_hi, hop, src, s_lo, s_hi, flagged, r_base):
    """:func:`propagate` from a given state per holding (updated in place): balance, taint, hop, ``src`` (the
    record that brought the most taint, numbered from ``r_base`` for this run's records) and that record's
    taint ``s_lo``/``s_hi``. A run from transfer 0 with empty state is :func:`propagate`; a run from the first
    transfer after a previous run's end, with that run's final state, continues it exactly (haircut and
    seniority; the FIFO/LIFO entry pools are not part of the state). Records are numbered ``r_base + i``."""
    # fifo/lifo entry pool
    ordered = policy == 3 or policy == 4
    span = max(end_k - start_k, 0)
    n_txs = tx_tr.shape[0]
    # every credit adds at most one entry, every conversion one more: no growth inside the loop (array
    # variables reassigned in a numba loop cost reference counting on every iteration)
    cap = span + n_txs + 1 if ordered else 1
    e_tlo = np.zeros(cap, np.uint64)
    e_thi = np.zeros(cap, np.uint64)
    e_vlo = np.zeros(cap, np.uint64)
    e_vhi = np.zeros(cap, np.uint64)
    e_next = np.full(cap, -1, np.int64)
    n_e = 0
    head = np.full(n_holdings if ordered else 1, -1, np.int64)
    tail = np.full(n_holdings if ordered else 1, -1, np.int64)
    trk_lo = np.zeros(n_holdings if ordered else 1, np.uint64)
    trk_hi = np.zeros(n_holdings if ordered else 1, np.uint64)
    tracking = np.zeros(n_holdings if ordered else 1, np.bool_)
    last_e = np.full(n_holdings if ordered else 1, -1, np.int64)
    last_e_tx = np.full(n_holdings if ordered else 1, -1, np.int64)
    # records: one per transfer that carried taint (or minted it)
    rcap = span + 1
    r_k = np.empty(rcap, np.int64)
    r_lo = np.empty(rcap, np.uint64)
    r_hi = np.empty(rcap, np.uint64)
    r_par = np.empty(rcap, np.int64)
    r_hop = np.empty(rcap, np.int32)
    r_code = np.empty(rcap, np.int8)
    r_mlo = np.empty(rcap, np.uint64)
    r_mhi = np.empty(rcap, np.uint64)
    n_r = 0
    # conversions
    ccap = n_txs + 1
    c_tx = np.empty(ccap, np.int64)
    c_acct = np.empty(ccap, np.int64)
    c_afrom = np.empty(ccap, np.int32)
    c_flo = np.empty(ccap, np.uint64)
    c_fhi = np.empty(ccap, np.uint64)
    c_ato = np.empty(ccap, np.int32)
    c_tlo = np.empty(ccap, np.uint64)
    c_thi = np.empty(ccap, np.uint64)
    c_rec = np.empty(ccap, np.int64)
    n_c = 0
    deficits = 0
    txs_done = 0
    partial = False
    stop_k = end_k
    # per-tx swap state (assets are few per tx: small scratch arrays)
    sw_asset = np.empty(64, np.int32)
    sw_out_lo = np.empty(64, np.uint64)
    sw_out_hi = np.empty(64, np.uint64)
    sw_in_lo = np.empty(64, np.uint64)
    sw_in_hi = np.empty(64, np.uint64)
    sw_tau_lo = np.empty(64, np.uint64)
    sw_tau_hi = np.empty(64, np.uint64)
    sw_rec = np.empty(64, np.int64)
    n_sw = 0
    swap = False
    swapper = -1
    scanned = False
    cur_tx = -2
    tx_had_taint = False

    k = start_k
    while k <= end_k:
        tx = tr_tx[k] if k < end_k else np.int64(-3)
        if tx != cur_tx:
            # ---------- finish the previous transaction (swap conversion), start the next
            if swap and n_sw > 0:
                # tainted share of what was paid: the spent asset with the largest tau/x
                best = -1
                best_f = -1.0
                for j in range(n_sw):
                    if u_lt(sw_in_lo[j], sw_in_hi[j], sw_out_lo[j], sw_out_hi[j]) and not u_iszero(sw_tau_lo[j], sw_tau_hi[j]):
                        f = (sw_tau_hi[j] * 18446744073709551616.0 + sw_tau_lo[j]) / (
                            sw_out_hi[j] * 18446744073709551616.0 + sw_out_lo[j])
                        if f > best_f:
                            best_f = f
                            best = j
                if best >= 0:
                    xlo, xhi = sw_out_lo[best], sw_out_hi[best]
                    tlo_, thi_ = sw_tau_lo[best], sw_tau_hi[best]
                    for j in range(n_sw):
                        if not u_lt(sw_out_lo[j], sw_out_hi[j], sw_in_lo[j], sw_in_hi[j]):
                            continue  # not a net inflow
                        ylo, yhi = u_sub(sw_in_lo[j], sw_in_hi[j], sw_out_lo[j], sw_out_hi[j])
                        clo, chi = u_muldiv(ylo, yhi, tlo_, thi_, xlo, xhi)
                        # find the swapper's holding of the received asset: the last credit recorded for it
                        h = sw_rec[j]
                        if h < 0:
                            continue
                        room_lo, room_hi = u_sub(bal_lo[h], bal_hi[h], t_lo[h], t_hi[h])
                        clo, chi = u_min(clo, chi, room_lo, room_hi)
                        if ordered and not tracking[h]:
                            # first taint of this holding: what the swap brought in becomes its first entry
                            ylo, yhi = u_min(ylo, yhi, bal_lo[h], bal_hi[h])
                            clo, chi = u_min(clo, chi, ylo, yhi)
                            if not u_iszero(clo, chi):
                                tracking[h] = True
                                trk_lo[h], trk_hi[h] = Z, Z
                                n_e = _credit(
                                    h, clo, chi, ylo, yhi, policy, head, tail, e_tlo, e_thi, e_vlo, e_vhi, e_next,
                                    n_e, trk_lo, trk_hi, last_e)
                                last_e_tx[h] = cur_tx
                        elif ordered:
                            e = last_e[h]
                            if e < 0 or last_e_tx[h] != cur_tx:
                                clo, chi = Z, Z
                            else:
                                r2lo, r2hi = u_sub(e_vlo[e], e_vhi[e], e_tlo[e], e_thi[e])
                                clo, chi = u_min(clo, chi, r2lo, r2hi)
                                e_tlo[e], e_thi[e] = u_add(e_tlo[e], e_thi[e], clo, chi)
                        if u_iszero(clo, chi):
                            continue
                        t_lo[h], t_hi[h] = u_add(t_lo[h], t_hi[h], clo, chi)
                        if policy == 0:
                            flagged[h] = True
                        c_tx[n_c] = cur_tx
                        c_acct[n_c] = swapper
                        c_afrom[n_c] = sw_asset[best]
                        c_flo[n_c] = tlo_
                        c_fhi[n_c] = thi_
                        c_ato[n_c] = sw_asset[j]
                        c_tlo[n_c] = clo
                        c_thi[n_c] = chi
                        c_rec[n_c] = src[h]
                        n_c += 1
                        if hop[h] == NOHOP:
                            hop[h] = 0
            if tx_had_taint:
                txs_done += 1
                if max_txs >= 0 and txs_done >= max_txs and k < end_k:
                    partial = True
                    stop_k = k
                    break
            if k == end_k:
                break
            cur_tx = tx
            tx_had_taint = False
            swap = False
            n_sw = 0
            swapper = -1
            scanned = False
            if tx >= 0:
                swapper = tx_from[tx]

        f = tr_from_h[k]
        g = tr_to_h[k]
        xlo = tr_lo[k]
        xhi = tr_hi[k]
        kind = tr_kind[k]
        a = tr_asset[k]
        tau_lo = Z
        tau_hi = Z
        par = -1
        fhop = NOHOP
        fflag = False
        if f >= 0:
            if u_lt(bal_lo[f], bal_hi[f], xlo, xhi):
                # more than the known balance: assume clean opening balance covered it
                deficits += 1
                bal_lo[f], bal_hi[f] = xlo, xhi
            if not u_iszero(t_lo[f], t_hi[f]):
                par = src[f]
                fhop = hop[f]
                if policy <= 1:
                    tau_lo, tau_hi = u_muldiv(xlo, xhi, t_lo[f], t_hi[f], bal_lo[f], bal_hi[f])
                elif policy == 2:
                    tau_lo, tau_hi = u_min(xlo, xhi, t_lo[f], t_hi[f])
            fflag = flagged[f]
            if ordered and tracking[f]:
                ulo, uhi = u_sub(bal_lo[f], bal_hi[f], trk_lo[f], trk_hi[f])
                rlo, rhi = xlo, xhi
                if policy == 3:  # FIFO: untracked (oldest) first
                    dlo, dhi = u_min(rlo, rhi, ulo, uhi)
                    rlo, rhi = u_sub(rlo, rhi, dlo, dhi)
                else:  # LIFO: entries (newest) first, untracked last
                    dlo, dhi = u_min(rlo, rhi, trk_lo[f], trk_hi[f])
                    rlo, rhi = dlo, dhi
                while not u_iszero(rlo, rhi) and head[f] >= 0:
                    e = head[f]
                    tklo, tkhi = u_min(rlo, rhi, e_vlo[e], e_vhi[e])
                    if tklo == e_vlo[e] and tkhi == e_vhi[e]:
                        glo, ghi = e_tlo[e], e_thi[e]
                    elif entry_mode == 0:
                        glo, ghi = u_muldiv(tklo, tkhi, e_tlo[e], e_thi[e], e_vlo[e], e_vhi[e])
                    elif entry_mode == 1:
                        clean_lo, clean_hi = u_sub(e_vlo[e], e_vhi[e], e_tlo[e], e_thi[e])
                        if u_le(tklo, tkhi, clean_lo, clean_hi):
                            glo, ghi = Z, Z
                        else:
                            glo, ghi = u_sub(tklo, tkhi, clean_lo, clean_hi)
                    else:
                        glo, ghi = u_min(tklo, tkhi, e_tlo[e], e_thi[e])
                    e_vlo[e], e_vhi[e] = u_sub(e_vlo[e], e_vhi[e], tklo, tkhi)
                    e_tlo[e], e_thi[e] = u_sub(e_tlo[e], e_thi[e], glo, ghi)
                    trk_lo[f], trk_hi[f] = u_sub(trk_lo[f], trk_hi[f], tklo, tkhi)
                    tau_lo, tau_hi = u_add(tau_lo, tau_hi, glo, ghi)
                    rlo, rhi = u_sub(rlo, rhi, tklo, tkhi)
                    if u_iszero(e_vlo[e], e_vhi[e]):
                        head[f] = e_next[e]
                        if head[f] < 0:
                            tail[f] = -1
                        if last_e[f] == e:
                            last_e[f] = -1
            bal_lo[f], bal_hi[f] = u_sub(bal_lo[f], bal_hi[f], xlo, xhi)
            t_lo[f], t_hi[f] = u_sub(t_lo[f], t_hi[f], tau_lo, tau_hi)
        # seeds: the transfer arrives fully tainted; what was not tainted already is minted
        sd = seed_of_tr[k]
        mlo = Z
        mhi = Z
        newhop = np.int32(fhop + 1) if fhop != NOHOP else NOHOP
        if sd >= 0:
            mlo, mhi = u_sub(xlo, xhi, tau_lo, tau_hi)
            tau_lo, tau_hi = xlo, xhi
            newhop = np.int32(0)
            fflag = True
        if u_iszero(tau_lo, tau_hi) and not (policy == 0 and fflag and g >= 0):
            if g >= 0:
                bal_lo[g], bal_hi[g] = u_add(bal_lo[g], bal_hi[g], xlo, xhi)
                if ordered and tracking[g]:
                    n_e = _credit(
                        g, Z, Z, xlo, xhi, policy, head, tail, e_tlo, e_thi, e_vlo, e_vhi, e_next, n_e, trk_lo,
                        trk_hi, last_e)
                    last_e_tx[g] = tx
            k += 1
            continue
        # ---------- where does the taint go?
        tx_had_taint = True
        if not scanned and tx >= 0 and f >= 0 and hold_account[f] == swapper and sd < 0:
            # the swapper sends taint: look at its net flows per asset in this transaction (fees excluded)
            scanned = True
            n_sw = 0
            for q in range(tx_tr[tx], tx_tr[tx + 1]):
                kd = tr_kind[q]
                if kd == fee_lo_code or kd == fee_hi_code or tr_tx[q] != tx:
                    continue  # fees; block issuance before the next transaction (in the range, not its own)
                aq = tr_asset[q]
                out_side = tr_from_h[q] >= 0 and hold_account[tr_from_h[q]] == swapper
                in_side = tr_to_h[q] >= 0 and hold_account[tr_to_h[q]] == swapper
                if not out_side and not in_side:
                    continue
                j = -1
                for jj in range(n_sw):
                    if sw_asset[jj] == aq:
                        j = jj
                        break
                if j < 0:
                    if n_sw == 64:
                        continue
                    j = n_sw
                    n_sw += 1
                    sw_asset[j] = aq
                    sw_out_lo[j], sw_out_hi[j] = Z, Z
                    sw_in_lo[j], sw_in_hi[j] = Z, Z
                    sw_tau_lo[j], sw_tau_hi[j] = Z, Z
                    sw_rec[j] = -1
                if out_side:
                    sw_out_lo[j], sw_out_hi[j] = u_add(sw_out_lo[j], sw_out_hi[j], tr_lo[q], tr_hi[q])
                if in_side:
                    sw_in_lo[j], sw_in_hi[j] = u_add(sw_in_lo[j], sw_in_hi[j], tr_lo[q], tr_hi[q])
                    sw_rec[j] = tr_to_h[q]
            n_out = 0
            n_in = 0
            for j in range(n_sw):
                if u_lt(sw_in_lo[j], sw_in_hi[j], sw_out_lo[j], sw_out_hi[j]):
                    n_out += 1
                elif u_lt(sw_out_lo[j], sw_out_hi[j], sw_in_lo[j], sw_in_hi[j]):
                    n_in += 1
            swap = n_out > 0 and n_in > 0
        code = PASS
        to_acct = tr_to[k]
        if kind == fee_lo_code or kind == fee_hi_code or g < 0:
            code = FEE if (kind == fee_lo_code or kind == fee_hi_code) else BURNED
        elif to_acct == burn_acct:
            code = BURNED
        elif swap and f >= 0 and hold_account[f] == swapper and sd < 0:
            # the swapper pays: taint converts into what it receives (pools are pass-through)
            for j in range(n_sw):
                if sw_asset[j] == a and u_lt(sw_in_lo[j], sw_in_hi[j], sw_out_lo[j], sw_out_hi[j]):
                    sw_tau_lo[j], sw_tau_hi[j] = u_add(sw_tau_lo[j], sw_tau_hi[j], tau_lo, tau_hi)
                    code = CONVERTED
                    break
        if code == PASS:
            if acct_sink.shape[0] > 0 and to_acct >= 0 and acct_sink[to_acct] >= 0:
                code = SINK
            elif max_hops >= 0 and newhop > max_hops:
                code = MAXHOPS
            elif policy == 0:
                if u_lt(xlo, xhi, min_lo[a], min_hi[a]):
                    code = BELOW
            elif u_lt(tau_lo, tau_hi, min_lo[a], min_hi[a]):
                code = BELOW
        # record
        r_k[n_r] = k
        r_lo[n_r] = tau_lo
        r_hi[n_r] = tau_hi
        r_par[n_r] = par
        r_hop[n_r] = newhop
        r_code[n_r] = code
        r_mlo[n_r] = mlo
        r_mhi[n_r] = mhi
        rec = r_base + n_r
        n_r += 1
        if g >= 0:
            bal_lo[g], bal_hi[g] = u_add(bal_lo[g], bal_hi[g], xlo, xhi)
            credit_lo, credit_hi = (tau_lo, tau_hi) if code == PASS else (Z, Z)
            if code == PASS:
                t_lo[g], t_hi[g] = u_add(t_lo[g], t_hi[g], credit_lo, credit_hi)
                if newhop < hop[g]:
                    hop[g] = newhop
                if src[g] < 0 or u_lt(s_lo[g], s_hi[g], tau_lo, tau_hi):
                    src[g] = rec
                    s_lo[g], s_hi[g] = tau_lo, tau_hi
                if policy == 0:
                    flagged[g] = True
                if ordered and not tracking[g]:
                    tracking[g] = True
                    # the balance before this credit is untracked; this credit is the first entry
                    trk_lo[g], trk_hi[g] = Z, Z
            if ordered and tracking[g]:
                n_e = _credit(
                    g, credit_lo, credit_hi, xlo, xhi, policy, head, tail, e_tlo, e_thi, e_vlo, e_vhi, e_next, n_e,
                    trk_lo, trk_hi, last_e)
                last_e_tx[g] = tx
        k += 1
    return (r_k[:n_r], r_lo[:n_r], r_hi[:n_r], r_par[:n_r], r_hop[:n_r], r_code[:n_r], r_mlo[:n_r], r_mhi[:n_r],
            t_lo, t_hi, hop, src, flagged,
            c_tx[:n_c], c_acct[:n_c], c_afrom[:n_c], c_flo[:n_c], c_fhi[:n_c], c_ato[:n_c], c_tlo[:n_c],
            c_thi[:n_c], c_rec[:n_c], deficits, partial, stop_k, txs_done)


@nb.njit(cache=True)
def _credit(g, tlo, thi, vlo, vhi, policy, head, tail, e_tlo, e_thi, e_vlo, e_vhi, e_next, n_e, trk_lo, trk_hi,
            last_e):
    """Add a credit entry [tainted, total] to holding g (merged into the newest entry when both are clean or
    both fully tainted). Returns the new pool size (the pool is preallocated large enough)."""
    trk_lo[g], trk_hi[g] = u_add(trk_lo[g], trk_hi[g], vlo, vhi)
    newest = tail[g] if policy == 3 else head[g]
    if newest >= 0:
        clean_new = u_iszero(tlo, thi)
        full_new = tlo == vlo and thi == vhi
        clean_old = u_iszero(e_tlo[newest], e_thi[newest])
        full_old = e_tlo[newest] == e_vlo[newest] and e_thi[newest] == e_vhi[newest]
        if (clean_new and clean_old) or (full_new and full_old):
            e_tlo[newest], e_thi[newest] = u_add(e_tlo[newest], e_thi[newest], tlo, thi)
            e_vlo[newest], e_vhi[newest] = u_add(e_vlo[newest], e_vhi[newest], vlo, vhi)
            last_e[g] = newest
            return n_e
    e = n_e
    e_tlo[e] = tlo
    e_thi[e] = thi
    e_vlo[e] = vlo
    e_vhi[e] = vhi
    e_next[e] = -1
    if policy == 3:  # FIFO: append at the tail
        if tail[g] >= 0:
            e_next[tail[g]] = e
        else:
            head[g] = e
        tail[g] = e
    else:  # LIFO: push on the head
        e_next[e] = head[g]
        head[g] = e
        if tail[g] < 0:
            tail[g] = e
    last_e[g] = e
    return n_e + 1
