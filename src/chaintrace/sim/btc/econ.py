"""Numba kernels of the background economy: users paying each other and their exchanges, exchanges paying
batched withdrawals and sweeping deposit addresses. Each call appends whole transactions to the block
buffers of :mod:`chaintrace.sim.btc.kernels`; randomness comes from numba's generator (seeded once).

Wallet fingerprints (``UF`` columns, one row per user) decide script type, coin selection, change address
(fresh or back to an input address), change position (random, last, first, BIP-69), nLockTime
(anti-fee-sniping or 0), nSequence (RBF or final), transaction version, low-R signature grinding and fee
habits; see :data:`chaintrace.sim.btc.wallets.TEMPLATES`.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from chaintrace.sim.btc.kernels import (DUST, META_CB, META_LOCK, O_BAL, O_COUNT, O_HEAD, ORD_BIP69, ORD_GIVEN,
                                        ORD_RANDOM, P2WSH, S_ADDR, S_HEIGHT, S_META, S_NEXT,
                                        S_VALUE, SEL_ALL, SEL_LARGEST, candidates, emit, new_addr, out_size,
                                        select)
from chaintrace.sorting import upper_bound

# user fingerprint columns
(F_STYPE, F_CHANGE, F_POS, F_LOCK, F_RBF, F_SEL, F_VERSION, F_FEE, F_LOWR, F_REUSE, F_RECV, F_EXCH,
 F_WALLET) = range(13)
F_COLS = 13
POS_RANDOM, POS_LAST, POS_FIRST, POS_BIP69 = range(4)

# exchange columns
(E_ENTITY, E_HOT_OWNER, E_DEP_OWNER, E_COLD_OWNER, E_HOT_ADDR, E_COLD_ADDR, E_DEP_STYPE, E_HOT_STYPE,
 E_CHANGE_REUSE, E_LOCK, E_RBF, E_VERSION, E_LOWR, E_ORDER, E_FEE) = range(15)
E_COLS = 15

# address roles (names in ROLES)
ROLES = ("receive", "change", "deposit", "hot_wallet", "cold_wallet", "coinbase", "mixer_deposit",
         "mixer_reserve", "coinjoin_coordinator", "coinjoin_output", "attacker", "launderer",
         "launderer_clean", "premix", "pool_payout", "otc_desk")
(R_RECEIVE, R_CHANGE, R_DEPOSIT, R_HOT, R_COLD, R_COINBASE, R_MIXER_DEPOSIT, R_MIXER_RESERVE,
 R_COORDINATOR, R_CJ_OUTPUT, R_ATTACKER, R_LAUNDERER, R_CLEAN, R_PREMIX, R_POOL_PAYOUT) = range(15)
R_OTC = 15  # the hot wallet of an untagged OTC desk (chaintrace.sim.btc.otc)

# transaction kinds (statistics and truth)
KINDS = ("coinbase", "payment", "deposit", "consolidation", "send_all", "withdrawal", "sweep", "cold_move",
         "pool_payout", "mixer_deposit", "mixer_payout", "mixer_consolidation", "whirlpool_tx0",
         "whirlpool_mix", "wasabi1", "wasabi2", "incident", "distribution")
(K_COINBASE, K_PAYMENT, K_DEPOSIT, K_CONSOLIDATE, K_SENDALL, K_WITHDRAW, K_SWEEP, K_COLD, K_POOL,
 K_MIXER_IN, K_MIXER_OUT, K_MIXER_CONS, K_TX0, K_WHIRLPOOL, K_WASABI1, K_WASABI2, K_INCIDENT,
 K_DISTRIBUTION) = range(18)

# gen_users parameters (float64 array)
P_DEPOSIT, P_CONSOLIDATE, P_SENDALL, P_TWO, P_ROUND, P_OTHER_EX, P_REUSE_HIT, P_MIN_BAL = range(8)
P_COLS = 8

MAXIN = 60

# Constants passed between kernels are numpy scalars (a plain int argument is typed as a literal and makes
# numba compile a separate specialisation of the callee; see chaintrace.sim.btc.kernels).
_I0, _I1, _M1, _MAXIN = np.int64(0), np.int64(1), np.int64(-1), np.int64(MAXIN)
_R_RECEIVE, _R_CHANGE = np.int64(R_RECEIVE), np.int64(R_CHANGE)
_R_DEPOSIT, _R_HOT = np.int64(R_DEPOSIT), np.int64(R_HOT)
_SEL_ALL, _SEL_LARGEST, _ORD_GIVEN = np.int64(SEL_ALL), np.int64(SEL_LARGEST), np.int64(ORD_GIVEN)
_K_WITHDRAW, _K_SWEEP = np.int64(K_WITHDRAW), np.int64(K_SWEEP)


@nb.njit(cache=True)
def round_amount(v, digits):
    """Round v down to `digits` significant decimal digits (people pay round amounts)."""
    if v <= 0:
        return v
    m = 1
    while v // m >= 10 ** digits:
        m *= 10
    return (v // m) * m


@nb.njit(cache=True)
def pick_user(UCUM):
    """A user drawn with probability proportional to its weight (UCUM: cumulative weights)."""
    return upper_bound(UCUM, UCUM.shape[0], np.random.random() * UCUM[-1])


@nb.njit(cache=True)
def user_recv(ST, AL, UF, v, p_hit):
    """An address user v gives a payer: its current one (address-reusing wallets) or a fresh one."""
    if UF[v, F_REUSE] == 1 and UF[v, F_RECV] >= 0 and np.random.random() < p_hit:
        return UF[v, F_RECV]
    a = new_addr(ST, AL, v, UF[v, F_STYPE], _R_RECEIVE, _M1)
    UF[v, F_RECV] = a
    return a


@nb.njit(cache=True)
def deposit_addr(ST, AL, EX, DEP, c, e):
    """Customer c's deposit address at exchange e (created on first use)."""
    a = DEP[c, e]
    if a < 0:
        a = new_addr(ST, AL, EX[e, E_ENTITY], EX[e, E_DEP_STYPE], _R_DEPOSIT, c)
        DEP[c, e] = a
    return a


@nb.njit(cache=True)
def locktime_seq(lock, rbf, height):
    """nLockTime and nSequence of a wallet: anti-fee-sniping sets the tip height (sometimes up to 100
    blocks back, as Bitcoin Core does); RBF signals with 0xfffffffd."""
    lt = 0
    if lock:
        lt = height - 1
        if np.random.random() < 0.1:
            lt = max(0, lt - np.random.randint(0, 100))
    if rbf:
        return lt, 0xFFFFFFFD
    if lock:
        return lt, 0xFFFFFFFE
    return lt, 0xFFFFFFFF


@nb.njit(cache=True)
def user_tx(W, UF, u, d_addr, d_st, d_own, d_val, n_dest, sendall, height, fr_base, kind, tmp, sel, perm,
            ov, oa, os_, oo):
    """User u pays n_dest destinations (or, with sendall, everything it can spend to d_addr[0]) with its
    wallet's habits. Returns the TXB row or a negative number when it cannot pay."""
    SL, SLTX, OW, ST, AL, TXB, INB, INTX, OUTB, CNT = W
    fr = max(1000, fr_base * UF[u, F_FEE] // 1000)
    lt, seq = locktime_seq(UF[u, F_LOCK], UF[u, F_RBF], height)
    pos = UF[u, F_POS]
    order = _ORD_GIVEN
    if pos == POS_RANDOM:
        order = np.int64(ORD_RANDOM)
    elif pos == POS_BIP69:
        order = np.int64(ORD_BIP69)
    if sendall:
        n = select(SL, OW, u, height, _I0, _I0, fr, _SEL_ALL, _MAXIN, tmp, sel)
        if n == 0:
            return -1
        ov[0] = 0
        oa[0] = d_addr[0]
        os_[0] = d_st[0]
        oo[0] = d_own[0]
        return emit(W, sel, n, ov, oa, os_, oo, _I1, _I0, fr, UF[u, F_VERSION], lt, seq, UF[u, F_LOWR] == 1,
                    _ORD_GIVEN, kind, height, perm)
    total = np.int64(0)
    ob = np.int64(0)
    for j in range(n_dest):
        total += d_val[j]
        ob += out_size(d_st[j], _I0)
    ob += out_size(UF[u, F_STYPE], _I0)
    n = select(SL, OW, u, height, total, ob, fr, UF[u, F_SEL], _MAXIN, tmp, sel)
    if n == 0:
        return -1
    if UF[u, F_CHANGE] == 1:
        c_addr = SL[sel[0], S_ADDR]
        c_st = SL[sel[0], S_META] & 0xFF
    else:
        c_addr = new_addr(ST, AL, u, UF[u, F_STYPE], _R_CHANGE, _M1)
        c_st = UF[u, F_STYPE]
    k = np.int64(0)
    if pos == POS_FIRST:
        ov[0] = 0
        oa[0] = c_addr
        os_[0] = c_st
        oo[0] = u
        k = 1
    for j in range(n_dest):
        ov[k] = d_val[j]
        oa[k] = d_addr[j]
        os_[k] = d_st[j]
        oo[k] = d_own[j]
        k += 1
    rem = np.int64(0)
    if pos != POS_FIRST:
        ov[k] = 0
        oa[k] = c_addr
        os_[k] = c_st
        oo[k] = u
        rem = k
        k += 1
    return emit(W, sel, n, ov, oa, os_, oo, k, rem, fr, UF[u, F_VERSION], lt, seq, UF[u, F_LOWR] == 1, order,
                kind, height, perm)


@nb.njit(cache=True)
def gen_users(W, UF, UCUM, EX, DEP, n, height, fr_base, P, tmp, sel, perm, ov, oa, os_, oo, d_addr, d_st, d_own,
              d_val):
    """Up to n background transactions of users: payments to other users, deposits to their exchange,
    consolidations and wallet-emptying sends. Returns how many were made."""
    SL, SLTX, OW, ST, AL, TXB, INB, INTX, OUTB, CNT = W
    made = 0
    n_ex = EX.shape[0]
    min_bal = int(P[P_MIN_BAL])
    for _ in range(n):
        u = -1
        for _try in range(40):
            c = pick_user(UCUM)
            if OW[c, O_BAL] >= min_bal and OW[c, O_COUNT] > 0:
                u = c
                break
        if u < 0:
            continue
        bal = OW[u, O_BAL]
        r = np.random.random()
        frac = np.exp(np.random.uniform(np.log(0.01), np.log(0.9)))
        amount = int(bal * frac)
        if np.random.random() < P[P_ROUND]:
            amount = round_amount(amount, np.int64(2))
        amount = max(amount, 5 * DUST)
        sendall = False
        kind = np.int64(1)  # K_PAYMENT
        nd = np.int64(1)
        if r < P[P_DEPOSIT]:
            e = UF[u, F_EXCH]
            if np.random.random() < P[P_OTHER_EX]:
                e = np.random.randint(0, n_ex)
            d_addr[0] = deposit_addr(ST, AL, EX, DEP, u, e)
            d_st[0] = EX[e, E_DEP_STYPE]
            d_own[0] = EX[e, E_DEP_OWNER]
            d_val[0] = amount
            kind = np.int64(2)  # K_DEPOSIT
            sendall = np.random.random() < 0.2
        elif r < P[P_DEPOSIT] + P[P_CONSOLIDATE] and OW[u, O_COUNT] >= 6:
            d_addr[0] = new_addr(ST, AL, u, UF[u, F_STYPE], _R_CHANGE, _M1)
            d_st[0] = UF[u, F_STYPE]
            d_own[0] = u
            sendall = True
            kind = np.int64(3)  # K_CONSOLIDATE
        else:
            v = pick_user(UCUM)
            if v == u:
                v = (u + 1) % UF.shape[0]
            d_addr[0] = user_recv(ST, AL, UF, v, P[P_REUSE_HIT])
            d_st[0] = UF[v, F_STYPE]
            d_own[0] = v
            d_val[0] = amount
            if np.random.random() < P[P_SENDALL]:
                sendall = True
                kind = np.int64(4)  # K_SENDALL
            elif np.random.random() < P[P_TWO]:
                w = pick_user(UCUM)
                if w != u and w != v:
                    a2 = int(amount * np.random.uniform(0.1, 1.0))
                    if np.random.random() < P[P_ROUND]:
                        a2 = round_amount(a2, np.int64(2))
                    d_addr[1] = user_recv(ST, AL, UF, w, P[P_REUSE_HIT])
                    d_st[1] = UF[w, F_STYPE]
                    d_own[1] = w
                    d_val[1] = max(a2, 5 * DUST)
                    nd = np.int64(2)
        t = user_tx(W, UF, u, d_addr, d_st, d_own, d_val, nd, sendall, height, fr_base, kind, tmp, sel, perm,
                    ov, oa, os_, oo)
        if t >= 0:
            made += 1
    return made


@nb.njit(cache=True)
def ex_withdraw(W, UF, UCUM, EX, e, k, budget_frac, height, fr_milli, p_round, p_hit, tmp, sel, perm, ov, oa, os_,
                oo):
    """Exchange e pays a batch of k customer withdrawals from its hot wallet (change back to the hot
    wallet). Returns the TXB row or a negative number."""
    SL, SLTX, OW, ST, AL, TXB, INB, INTX, OUTB, CNT = W
    hot = EX[e, E_HOT_OWNER]
    budget = int(OW[hot, O_BAL] * budget_frac)
    if budget < k * 20 * DUST:
        return -1
    w = np.empty(k, np.float64)
    for i in range(k):
        w[i] = np.exp(np.random.normal(0.0, 1.2))
    ws = w.sum()
    total = np.int64(0)
    ob = np.int64(0)
    for i in range(k):
        a = int(budget * w[i] / ws)
        if np.random.random() < p_round:
            a = round_amount(a, np.int64(3))
        a = max(a, 20 * DUST)
        v = pick_user(UCUM)
        ov[i] = a
        oa[i] = user_recv(ST, AL, UF, v, p_hit)
        os_[i] = UF[v, F_STYPE]
        oo[i] = v
        total += a
        ob += out_size(os_[i], _I0)
    ob += out_size(EX[e, E_HOT_STYPE], _I0)
    n = select(SL, OW, hot, height, total, ob, fr_milli, _SEL_LARGEST, _MAXIN, tmp, sel)
    if n == 0:
        return -1
    if EX[e, E_CHANGE_REUSE] == 1:
        c_addr = EX[e, E_HOT_ADDR]
    else:
        c_addr = new_addr(ST, AL, EX[e, E_ENTITY], EX[e, E_HOT_STYPE], _R_HOT, _M1)
        EX[e, E_HOT_ADDR] = c_addr
    ov[k] = 0
    oa[k] = c_addr
    os_[k] = EX[e, E_HOT_STYPE]
    oo[k] = hot
    lt, seq = locktime_seq(EX[e, E_LOCK], EX[e, E_RBF], height)
    return emit(W, sel, n, ov, oa, os_, oo, k + 1, k, fr_milli, EX[e, E_VERSION], lt, seq, EX[e, E_LOWR] == 1,
                EX[e, E_ORDER], _K_WITHDRAW, height, perm)


@nb.njit(cache=True)
def ex_sweep(W, EX, e, max_in, height, fr_milli, to_cold, tmp, sel, perm, ov, oa, os_, oo):
    """Exchange e sweeps its oldest spendable deposits (at most max_in) into its hot (or cold) wallet."""
    SL, SLTX, OW, ST, AL, TXB, INB, INTX, OUTB, CNT = W
    dep = EX[e, E_DEP_OWNER]
    n = select(SL, OW, dep, height, _I0, _I0, fr_milli, _SEL_ALL, max_in, tmp, sel)
    if n == 0:
        return -1
    if to_cold:
        ov[0] = 0
        oa[0] = EX[e, E_COLD_ADDR]
        os_[0] = P2WSH
        oo[0] = EX[e, E_COLD_OWNER]
    else:
        ov[0] = 0
        oa[0] = EX[e, E_HOT_ADDR]
        os_[0] = EX[e, E_HOT_STYPE]
        oo[0] = EX[e, E_HOT_OWNER]
    lt, seq = locktime_seq(EX[e, E_LOCK], EX[e, E_RBF], height)
    return emit(W, sel, n, ov, oa, os_, oo, _I1, _I0, fr_milli, EX[e, E_VERSION], lt, seq, EX[e, E_LOWR] == 1,
                _ORD_GIVEN, _K_SWEEP, height, perm)


@nb.njit(cache=True)
def owner_pay(W, o, policy, maxin, ov, oa, os_, oo, n_out, c_addr, c_st, height, fr_milli, version, lt, seq, lowr,
              order, kind, tmp, sel, perm):
    """Owner o pays outputs [0, n_out) with change (c_addr, c_st) back to itself, selecting coins by
    `policy`. Returns the TXB row or a negative number."""
    SL, SLTX, OW, ST, AL, TXB, INB, INTX, OUTB, CNT = W
    total = np.int64(0)
    ob = out_size(c_st, _I0)
    for j in range(n_out):
        total += ov[j]
        ob += out_size(os_[j], oa[j])
    n = select(SL, OW, o, height, total, ob, fr_milli, policy, maxin, tmp, sel)
    if n == 0:
        return -1
    ov[n_out] = 0
    oa[n_out] = c_addr
    os_[n_out] = c_st
    oo[n_out] = o
    return emit(W, sel, n, ov, oa, os_, oo, n_out + 1, n_out, fr_milli, version, lt, seq, lowr, order, kind,
                height, perm)


@nb.njit(cache=True)
def find_coins(SL, OW, UCUM, height, lo, hi, type_mask, want, tries, out_user, out_slot):
    """Random users holding a spendable coin with lo <= value <= hi whose script type is in `type_mask`
    (bit 1 << type): up to `want` distinct (user, slot) pairs. Returns the count."""
    k = 0
    for _ in range(tries):
        if k >= want:
            break
        u = pick_user(UCUM)
        if OW[u, O_COUNT] == 0:
            continue
        dup = False
        for i in range(k):
            if out_user[i] == u:
                dup = True
                break
        if dup:
            continue
        s = OW[u, O_HEAD]
        while s >= 0:
            st = SL[s, S_META] & 0xFF
            if lo <= SL[s, S_VALUE] <= hi and ((type_mask >> st) & 1) == 1 \
                    and (SL[s, S_META] & (META_LOCK | META_CB)) == 0 and SL[s, S_HEIGHT] < height:
                out_user[k] = u
                out_slot[k] = s
                k += 1
                break
            s = SL[s, S_NEXT]
    return k


@nb.njit(cache=True)
def owner_slots(SL, OW, o, height, out):
    """Spendable slots of owner o (creation order) into out; returns the count."""
    return candidates(SL, OW, o, height, out, out.shape[0])
