"""The account-model propagation of :mod:`chaintrace.trace.eth_kernels`, written plainly: Python ints, one
dict per holding, a deque per FIFO/LIFO holding. It is the specification the numba kernel is tested against
and the baseline of ``bench/bench_eth_trace.py``. Same inputs and outputs as
:func:`chaintrace.trace.eth_kernels.propagate` (amounts as Python ints instead of uint64 limb pairs)."""
from __future__ import annotations

from collections import deque

from chaintrace.trace.eth_kernels import BELOW, BURNED, CONVERTED, FEE, MAXHOPS, NOHOP, PASS, SINK


def propagate_py(policy: int, entry_mode: int, tr_from_h, tr_to_h, tr_to, tr_asset, amounts: list[int], tr_kind,
                 tr_tx, tx_tr, tx_from, hold_account, n_holdings: int, seed_of_tr, start_k: int, end_k: int,
                 acct_sink, burn_acct: int, min_value: list[int], max_hops: int, max_txs: int, fee_codes):
    bal = [0] * n_holdings
    taint = [0] * n_holdings
    hop = [int(NOHOP)] * n_holdings
    src = [-1] * n_holdings
    flagged = [False] * n_holdings
    ordered = policy in (3, 4)
    entries: dict[int, deque] = {}  # holding -> deque of [tainted, total] (left = oldest for FIFO)
    tracked = [0] * n_holdings
    tracking: set[int] = set()
    last_e: dict[int, list] = {}
    last_e_tx = [-1] * n_holdings
    recs = []  # (k, tau, parent, hop, code, minted)
    convs = []  # (tx, acct, asset_from, tau_from, asset_to, tau_to, rec)
    deficits = 0
    txs_done = 0
    partial = False
    stop_k = end_k
    sw: dict[int, list] = {}  # asset -> [out, in, tau, holding]
    swap = False
    swapper = -1
    scanned = False
    cur_tx = -2
    had = False
    sinks = len(acct_sink) > 0

    def credit(g, t, v, tx):
        tracked[g] += v
        q = entries.setdefault(g, deque())
        newest = (q[-1] if policy == 3 else q[0]) if q else None
        if newest is not None and ((t == 0 and newest[0] == 0) or (t == v and newest[0] == newest[1])):
            newest[0] += t
            newest[1] += v
            last_e[g] = newest
        else:
            e = [t, v]
            if policy == 3:
                q.append(e)
            else:
                q.appendleft(e)
            last_e[g] = e
        last_e_tx[g] = tx

    k = start_k
    while k <= end_k:
        tx = int(tr_tx[k]) if k < end_k else -3
        if tx != cur_tx:
            if swap and sw:
                best, best_f = None, -1.0
                for a, (o, i, t, _h) in sw.items():
                    if i < o and t > 0 and t / o > best_f:
                        best_f, best = t / o, a
                if best is not None:
                    xo, xt = sw[best][0], sw[best][2]
                    for _a, (o, i, _t, h) in sw.items():
                        if not o < i or h < 0:
                            continue
                        c = (i - o) * xt // xo
                        c = min(c, bal[h] - taint[h])
                        if ordered and h not in tracking:
                            y = min(i - o, bal[h])
                            c = min(c, y)
                            if c:
                                tracking.add(h)
                                tracked[h] = 0
                                entries[h] = deque()
                                credit(h, c, y, cur_tx)
                        elif ordered:
                            e = last_e.get(h)
                            if e is None or last_e_tx[h] != cur_tx:
                                c = 0
                            else:
                                c = min(c, e[1] - e[0])
                                e[0] += c
                        if c == 0:
                            continue
                        taint[h] += c
                        if policy == 0:
                            flagged[h] = True
                        convs.append((cur_tx, swapper, best, xt, a, c, src[h]))
                        if hop[h] == NOHOP:
                            hop[h] = 0
            if had:
                txs_done += 1
                if max_txs >= 0 and txs_done >= max_txs and k < end_k:
                    partial, stop_k = True, k
                    break
            if k == end_k:
                break
            cur_tx, had, swap, sw, swapper = tx, False, False, {}, -1
            scanned = False
            if tx >= 0:
                swapper = int(tx_from[tx])
        f, g, x = int(tr_from_h[k]), int(tr_to_h[k]), amounts[k]
        a = int(tr_asset[k])
        tau, par, fhop, fflag = 0, -1, int(NOHOP), False
        if f >= 0:
            if bal[f] < x:
                deficits += 1
                bal[f] = x
            if taint[f]:
                par, fhop = src[f], hop[f]
                if policy <= 1:
                    tau = x * taint[f] // bal[f]
                elif policy == 2:
                    tau = min(x, taint[f])
            fflag = flagged[f]
            if ordered and f in tracking:
                untracked = bal[f] - tracked[f]
                if policy == 3:
                    r = x - min(x, untracked)
                else:
                    r = min(x, tracked[f])
                q = entries[f]
                while r and q:
                    e = q[0]
                    take = min(r, e[1])
                    if take == e[1]:
                        got = e[0]
                    elif entry_mode == 0:
                        got = take * e[0] // e[1]
                    elif entry_mode == 1:
                        got = max(0, take - (e[1] - e[0]))
                    else:
                        got = min(take, e[0])
                    e[1] -= take
                    e[0] -= got
                    tracked[f] -= take
                    tau += got
                    r -= take
                    if e[1] == 0:
                        q.popleft()
                        if last_e.get(f) is e:
                            del last_e[f]
            bal[f] -= x
            taint[f] -= tau
        sd = int(seed_of_tr[k])
        minted = 0
        newhop = fhop + 1 if fhop != NOHOP else int(NOHOP)
        if sd >= 0:
            minted = x - tau
            tau = x
            newhop = 0
            fflag = True
        if tau == 0 and not (policy == 0 and fflag and g >= 0):
            if g >= 0:
                bal[g] += x
                if ordered and g in tracking:
                    credit(g, 0, x, tx)
            k += 1
            continue
        had = True
        if not scanned and tx >= 0 and f >= 0 and hold_account[f] == swapper and sd < 0:
            scanned = True
            sw = {}
            for q in range(int(tx_tr[tx]), int(tx_tr[tx + 1])):
                if tr_kind[q] in fee_codes or tr_tx[q] != tx:  # block issuance before the next tx: not its own
                    continue
                fh, th = int(tr_from_h[q]), int(tr_to_h[q])
                out_side = fh >= 0 and hold_account[fh] == swapper
                in_side = th >= 0 and hold_account[th] == swapper
                if not (out_side or in_side):
                    continue
                aq = int(tr_asset[q])
                if aq not in sw:
                    if len(sw) == 64:
                        continue
                    sw[aq] = [0, 0, 0, -1]
                if out_side:
                    sw[aq][0] += amounts[q]
                if in_side:
                    sw[aq][1] += amounts[q]
                    sw[aq][3] = th
            swap = any(i < o for o, i, _, _ in sw.values()) and any(o < i for o, i, _, _ in sw.values())
        code = PASS
        to_acct = int(tr_to[k])
        if tr_kind[k] in fee_codes or g < 0:
            code = FEE if tr_kind[k] in fee_codes else BURNED
        elif to_acct == burn_acct:
            code = BURNED
        elif swap and f >= 0 and hold_account[f] == swapper and sd < 0:
            if a in sw and sw[a][1] < sw[a][0]:
                sw[a][2] += tau
                code = CONVERTED
        if code == PASS:
            if sinks and to_acct >= 0 and acct_sink[to_acct] >= 0:
                code = SINK
            elif max_hops >= 0 and newhop > max_hops:
                code = MAXHOPS
            elif (x if policy == 0 else tau) < min_value[a]:
                code = BELOW
        recs.append((k, tau, par, newhop, code, minted))
        rec = len(recs) - 1
        if g >= 0:
            bal[g] += x
            c = tau if code == PASS else 0
            if code == PASS:
                taint[g] += c
                hop[g] = min(hop[g], newhop)
                if src[g] < 0 or recs[src[g]][1] < tau:
                    src[g] = rec
                if policy == 0:
                    flagged[g] = True
                if ordered and g not in tracking:
                    tracking.add(g)
                    tracked[g] = 0
                    entries[g] = deque()
            if ordered and g in tracking:
                credit(g, c, x, tx)
        k += 1
    return recs, taint, hop, src, flagged, convs, deficits, partial, stop_k, txs_done

