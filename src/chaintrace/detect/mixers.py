"""Custodial-mixer linking: deposits into a mixer matched with its payouts by amount minus a fee and by delay.

A custodial mixer (Blender, Sinbad, ChipMixer, Bitmix) takes a deposit and, after a delay the customer chose,
pays the deposit back minus its fee from its own reserve, often split over up to ~5 payouts to fresh
addresses. On chain nothing ties a payout to its deposit; the only evidence is amount and time
(tracing-methods.md §3.3: "withdrawal value <= deposit - fee within the mix-time window ... expect many
candidates"). :func:`link_deposits` does exactly that and nothing more:

* a deposit of value ``V`` at height ``h`` is matched with a set ``S`` of 1..`max_parts` payouts paid in
  blocks ``h + delay_min .. h + delay_max`` whose values sum to ``V * (1 - fee)`` for some fee in
  ``fee_min .. fee_max`` (rule ``single`` for one payout, ``split`` for several);
* every such set is a candidate, all equally likely: a deposit with ``n`` candidate sets gives each payout
  the share ``(sets containing it) / n`` of the link (ambiguity is split, never resolved by guessing);
* a payout claimed by several deposits has its claims scaled so they sum to at most 1;
* a deposit with more candidate sets than `max_sets`, or whose search exceeds `budget` steps, is reported
  ``ambiguous``: too many explanations to list, so it is linked to every payout of its window it could
  have made (rule ``window``) with the share a proportional flow gives it (:func:`_window_flow`: every
  deposit paid back its value minus the mean fee, every payout shared out once) -- an allocation, not a
  match; a deposit with no candidate set is ``unlinked``.

Defaults: fees 0.5-5% (Blender advertised a random 0.6-3%, the Bitmix.biz mixes of the WWW'21 ground truth
paid 4-6%, ChipMixer took nothing on the chips themselves); delays 1-144 blocks (up to a day: Blender let the
customer pick up to 24 h; the ground truth's payouts came 3 h to 2 days later). See docs/detection.md.

:func:`calibrate` measures a mixer's own fee range and longest delay from its deposits and payouts (the
implied fees of all pairs pile up at its real fee over a flat background of chance pairs); the callers
(:func:`chaintrace.graph.mixers.flows_and_links`) link with the measured window when the peak is significant.

Pure functions over numpy arrays (dense ids in, arrays out); :func:`chaintrace.graph.mixers.mixer_links`
finds a mixer's deposits and payouts in the store and resolves txids and addresses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

DEFAULTS: dict[str, Any] = {"fee_min": 0.005, "fee_max": 0.05, "delay_min": 1, "delay_max": 144, "max_parts": 5,
                             "max_sets": 64, "budget": 100_000}
SINGLE_FIT_ODDS = 10_000.0  # window flow: prior odds of a payout that alone pays a deposit back at the fee
STATUS = ("linked", "unlinked", "ambiguous")
RULES = ("single", "split", "window", "same_wallet", "postmix_common_owner", "postmix_deposit_reuse")
SIDE_RULES = {3: 4, 1: 5}  # chaintrace.detect.postmix rule (COMMON_OWNER, DEPOSIT_REUSE) -> link rule


@dataclass
class Links:
    """Candidate links (one row per deposit-payout pair) and one status per deposit.

    ``dep``/``pay``: indexes into the deposit / payout arrays given to :func:`link_deposits`; ``confidence``:
    the share of the deposit's candidate sets that contain the payout, scaled down where several deposits
    claim the payout; ``rule``: 0 single, 1 split (the smallest set the pair appears in), 2 window, 3 same_wallet
    (the payout went to the wallet the deposit came from), 4 postmix_common_owner, 5 postmix_deposit_reuse (the
    payout's later spending makes it the traced side's: :func:`chaintrace.detect.postmix.traced_side`); ``fee``: the fee
    rate the most likely set implies (1 - sum/V). ``status`` per deposit: 0 linked, 1 unlinked (no candidate
    set), 2 ambiguous (too many); ``n_sets`` per deposit: the candidate sets found."""

    dep: np.ndarray
    pay: np.ndarray
    confidence: np.ndarray
    rule: np.ndarray
    fee: np.ndarray
    status: np.ndarray
    n_sets: np.ndarray
    calibration: dict | None = None  # set by the callers that calibrated the window (:func:`calibrate`)


@nb.njit(cache=True)
def _search(dep_value, dep_height, pay_value, pay_height, order, fee_min, fee_max, delay_min, delay_max,
            max_parts, max_sets, budget, dep_known):
    """Per deposit, every set of payouts (ids into the payout arrays) in the window whose sum is in range.
    `order`: payout ids sorted by height. Returns (flat set members, set offsets, set deposit, status)."""
    n_dep = dep_value.shape[0]
    heights = pay_height[order]
    mem = np.empty(1024, np.int64)
    n_mem = 0
    sets_off = np.empty(256, np.int64)
    sets_dep = np.empty(256, np.int64)
    n_sets = 0
    sets_off[0] = 0
    status = np.ones(n_dep, np.int64)
    chosen = np.empty(max_parts + 1, np.int64)
    pos = np.empty(max_parts + 2, np.int64)
    for d in range(n_dep):
        v = dep_value[d]
        lo_v = np.int64(np.ceil(v * (1.0 - fee_max))) - dep_known[d]
        hi_v = np.int64(np.floor(v * (1.0 - fee_min))) - dep_known[d]
        if dep_known[d] > 0 and lo_v <= 0:
            status[d] = 0  # its same-wallet payouts already pay it back
            continue
        a = np.searchsorted(heights, dep_height[d] + delay_min, side="left")
        b = np.searchsorted(heights, dep_height[d] + delay_max, side="right")
        # candidates: in the window, not larger than the most the deposit can pay out
        cand = np.empty(b - a, np.int64)
        nc = 0
        for k in range(a, b):
            p = order[k]
            if 0 < pay_value[p] <= hi_v:
                cand[nc] = p
                nc += 1
        cand = cand[:nc]
        cv = pay_value[cand]
        srt = np.argsort(-cv, kind="mergesort")
        cand = cand[srt]
        cv = cv[srt]
        first_set = n_sets
        steps = 0
        found = 0
        over = False
        depth = 0
        pos[0] = 0
        total = np.int64(0)
        # depth-first over sets in descending value order: chosen[0..depth) taken, pos[depth] next to try
        while True:
            if steps > budget or found > max_sets:
                over = True
                break
            steps += 1
            i = pos[depth]
            reach = total
            if depth < max_parts:
                for j in range(i, min(nc, i + max_parts - depth)):
                    reach += cv[j]
            if i >= nc or depth >= max_parts or reach < lo_v:
                if depth == 0:
                    break
                depth -= 1
                total -= cv[chosen[depth]]
                pos[depth] = chosen[depth] + 1
                continue
            if total + cv[i] > hi_v:
                pos[depth] = i + 1
                continue
            chosen[depth] = i
            total += cv[i]
            if total >= lo_v:
                found += 1
                if n_mem + depth + 1 > mem.shape[0]:
                    m2 = np.empty(mem.shape[0] * 2 + depth + 1, np.int64)
                    m2[:n_mem] = mem[:n_mem]
                    mem = m2
                for j in range(depth + 1):
                    mem[n_mem] = cand[chosen[j]]
                    n_mem += 1
                if n_sets + 2 > sets_off.shape[0]:
                    s2 = np.empty(sets_off.shape[0] * 2, np.int64)
                    s2[:n_sets + 1] = sets_off[:n_sets + 1]
                    sets_off = s2
                    s3 = np.empty(sets_dep.shape[0] * 2, np.int64)
                    s3[:n_sets] = sets_dep[:n_sets]
                    sets_dep = s3
                sets_dep[n_sets] = d
                n_sets += 1
                sets_off[n_sets] = n_mem
                total -= cv[i]  # a superset would pay out more: try the next candidate instead
                pos[depth] = i + 1
                continue
            depth += 1
            pos[depth] = i + 1
        if over:
            status[d] = 2
            n_sets = first_set  # drop this deposit's sets
            n_mem = sets_off[n_sets]
        elif found:
            status[d] = 0
    return mem[:n_mem], sets_off[:n_sets + 1].copy(), sets_dep[:n_sets].copy(), status


def _same_wallet(dv, dh, pv, ph, dep_wallet, pay_wallet, fee_min, delay_min, delay_max):
    """(deposit, payout, share) of the payouts that went back to the wallet a deposit came from, in its window
    and not above ``V x (1 - fee_min)``; a payout several deposits of the wallet could have made is shared
    equally."""
    z = np.zeros(0, np.int64)
    if dep_wallet is None or pay_wallet is None:
        return z, z, np.zeros(0)
    dw = np.asarray(dep_wallet, np.int64)
    pw = np.asarray(pay_wallet, np.int64)
    ds, ps = [], []
    by_wallet: dict[int, list[int]] = {}
    for d in np.flatnonzero(dw >= 0):
        by_wallet.setdefault(int(dw[d]), []).append(int(d))
    for p in np.flatnonzero(pw >= 0):
        for d in by_wallet.get(int(pw[p]), ()):
            if dh[d] + delay_min <= ph[p] <= dh[d] + delay_max and 0 < pv[p] <= dv[d] * (1.0 - fee_min):
                ds.append(d)
                ps.append(int(p))
    if not ds:
        return z, z, np.zeros(0)
    d_a, p_a = np.array(ds, np.int64), np.array(ps, np.int64)
    k = np.bincount(p_a, minlength=len(pv))[p_a]
    return d_a, p_a, 1.0 / k


def _window_flow(amb, dv, dh, pv, ph, order, avail, fee_min, fee_max, delay_min, delay_max, rounds: int = 60,
                 known=None):
    """Deposits `amb` (ambiguous: too many candidate sets) linked to every payout they could have made (in
    their delay window, not above ``V * (1 - fee_min)``) by iterative proportional fitting: the share
    ``a[d, p]`` of payout p that came from deposit d is scaled in turns so that every deposit is paid back
    ``V * (1 - mean fee)`` in value and every payout is shared out exactly once among the deposits that could
    have made it (``avail``: what the deposits linked by a candidate set left of it; a Sinkhorn iteration). The
    allocation closest to the prior under those totals: a payout that only one deposit could have made goes to
    it; a payout that alone pays a deposit back at a fee in range (``V x (1 - fee_max) .. V x (1 - fee_min)``)
    goes to that deposit first (prior odds :data:`SINGLE_FIT_ODDS`: an order paid in one payout; by chance a
    given payout seldom hits a deposit's narrow band); a payout many could have made is split in proportion to
    what they are still owed. Returns (deposit, payout, share) rows."""
    ph_sorted = ph[order]
    ds, ps = [], []
    for d in amb:
        hi_v = int(np.floor(dv[d] * (1.0 - fee_min)))
        a_, b_ = np.searchsorted(ph_sorted, dh[d] + delay_min), np.searchsorted(ph_sorted, dh[d] + delay_max, "right")
        cand = order[a_:b_]
        cand = cand[(pv[cand] > 0) & (pv[cand] <= hi_v) & (avail[cand] > 0)]
        ds.append(np.full(len(cand), d, np.int64))
        ps.append(cand.astype(np.int64))
    d_e = np.concatenate(ds) if ds else np.zeros(0, np.int64)
    p_e = np.concatenate(ps) if ps else np.zeros(0, np.int64)
    if not len(d_e):
        return d_e, p_e, np.zeros(0)
    # the prior: a payout that alone pays the deposit back (V x (1 - fee) for a fee in range) is the deposit's
    # before any share of the others (odds SINGLE_FIT_ODDS : 1); every other pair is equally likely
    x = np.ones(len(d_e))
    x[pv[p_e] >= dv[d_e] * (1.0 - fee_max)] += SINGLE_FIT_ODDS
    cap = dv.astype(np.float64) * (1.0 - (fee_min + fee_max) / 2)
    if known is not None:
        cap = np.maximum(cap - known, 0.0)  # what its same-wallet payouts did not pay back yet
    val = pv[p_e].astype(np.float64)
    for _ in range(rounds):
        got = np.bincount(d_e, weights=x * val, minlength=len(dv))
        x *= (cap[d_e] / np.maximum(got[d_e], 1e-9))
        tot = np.bincount(p_e, weights=x, minlength=len(pv))
        x *= avail[p_e] / np.maximum(tot[p_e], 1e-12)
    # when the totals cannot all hold (payouts no deposit in range explains), finish with both as bounds
    tot = np.bincount(p_e, weights=x, minlength=len(pv))
    x *= np.minimum(1.0, avail[p_e] / np.maximum(tot[p_e], 1e-12))
    got = np.bincount(d_e, weights=x * val, minlength=len(dv))
    x *= np.minimum(1.0, cap[d_e] / np.maximum(got[d_e], 1e-9))
    return d_e, p_e, np.clip(x, 0.0, 1.0)


CALIBRATE: dict[str, Any] = {"fee_bin": 0.0025, "fee_search": 0.10, "z": 2.0, "min_excess": 8, "delay_bin": 8,
                              "delay_z": 2.0, "margin_bins": 2,
                              "peak_z": 4.0}


def calibrate(dep_value, dep_height, pay_value, pay_height, *, fee_min: float = DEFAULTS["fee_min"],
              fee_max: float = DEFAULTS["fee_max"], delay_min: int = DEFAULTS["delay_min"],
              delay_max: int = DEFAULTS["delay_max"]) -> dict:
    """The mixer's own fee range and longest delay, measured from its deposits and payouts (self-calibration).

    Every (deposit, payout) pair in the search window ``delay_min .. delay_max`` implies a fee ``1 - payout /
    deposit``; over ``0 .. CALIBRATE["fee_search"]`` (0-10%) these fees pile up where the mixer's real fee is
    (the orders paid in one payout) over a flat background of chance pairs; equal implied fees (equal
    amounts) count once. The histogram (bins of ``fee_bin``) gives the background (the median bin) and the
    peak (the highest 3-bin sum); the band is the peak's bins whose count exceeds the background by ``z``
    standard deviations (Poisson), widened by ``margin_bins`` bins on each side. It is used only when its
    excess over the background is at least ``min_excess`` pairs and ``peak_z`` standard deviations (else the
    given window stays: ``calibrated`` false, with the ``reason``). The delay: per ``delay_bin`` blocks, the
    band's pairs minus the pairs outside it (the chance background, scaled to the band's width); past the
    real delays their running sum only wanders around its top, so ``delay_max`` becomes the end of the first
    bin within ``delay_z`` standard deviations (one bin's noise) of the top, plus one bin, never beyond the
    given one. Returns fee_min, fee_max, delay_min, delay_max, ``calibrated`` and the ``evidence`` (pairs,
    background, peak, excess). Deterministic; pure numpy."""
    c = CALIBRATE
    dv = np.asarray(dep_value, np.float64)
    dh = np.asarray(dep_height, np.int64)
    pv = np.asarray(pay_value, np.float64)
    ph = np.asarray(pay_height, np.int64)
    out: dict[str, Any] = {"fee_min": float(fee_min), "fee_max": float(fee_max), "delay_min": int(delay_min),
                           "delay_max": int(delay_max), "calibrated": False}
    order = np.argsort(ph, kind="stable")
    hs = ph[order]
    fees, delays = [], []
    for d in range(len(dv)):
        a, b = np.searchsorted(hs, dh[d] + delay_min), np.searchsorted(hs, dh[d] + delay_max, "right")
        f = 1.0 - pv[order[a:b]] / max(dv[d], 1.0)
        ok = (f >= 0) & (f < c["fee_search"])
        fees.append(f[ok])
        delays.append(hs[a:b][ok] - dh[d])
    f_all = np.concatenate(fees) if fees else np.zeros(0)
    d_all = np.concatenate(delays) if delays else np.zeros(0, np.int64)
    # equal amounts (round deposits, equal payouts) repeat one implied fee many times: count each fee once
    f_all, first = np.unique(f_all, return_index=True)
    d_all = d_all[first]
    n_bins = int(round(c["fee_search"] / c["fee_bin"]))
    hist = np.histogram(f_all, bins=n_bins, range=(0.0, c["fee_search"]))[0]
    bg = float(np.median(hist)) if len(f_all) else 0.0
    out["evidence"] = {"pairs": int(len(f_all)), "background_per_bin": bg}
    if len(f_all) == 0:
        out["reason"] = "no deposit-payout pair in the search window"
        return out
    c3 = np.convolve(hist, np.ones(3), "same")
    k = int(np.argmax(c3))
    k = max(range(max(0, k - 1), min(n_bins, k + 2)), key=lambda i: (hist[i], -i))  # the peak bin itself
    thr = bg + c["z"] * np.sqrt(max(bg, 1.0))
    lo = hi = k
    while lo > 0 and hist[lo - 1] > thr:
        lo -= 1
    while hi < n_bins - 1 and hist[hi + 1] > thr:
        hi += 1
    excess = float(hist[lo:hi + 1].sum() - bg * (hi - lo + 1))
    out["evidence"].update(peak=[round(lo * c["fee_bin"], 5), round((hi + 1) * c["fee_bin"], 5)],
                           excess_pairs=round(excess, 1))
    if hist[k] <= thr or excess < max(c["min_excess"], c["peak_z"] * np.sqrt(max(bg, 1.0) * (hi - lo + 1))):
        out["reason"] = "no significant fee peak over the chance pairs"
        return out
    m = c["margin_bins"]
    f_lo, f_hi = max(0.0, (lo - m) * c["fee_bin"]), (hi + 1 + m) * c["fee_bin"]
    inb = (f_all >= f_lo) & (f_all < f_hi)
    edges = np.arange(delay_min, delay_max + c["delay_bin"], c["delay_bin"])
    h_in = np.histogram(d_all[inb], bins=edges)[0].astype(np.float64)
    h_out = np.histogram(d_all[~inb], bins=edges)[0].astype(np.float64)
    scale = (f_hi - f_lo) / max(c["fee_search"] - (f_hi - f_lo), 1e-9)
    cum = np.cumsum(h_in - scale * h_out)  # the band's pairs beyond chance, up to each bin's end
    if len(cum) and cum.max() > 0:
        # past the longest real delay only chance pairs remain: the sum wanders around its top; the end is the
        # first bin within `delay_z` standard deviations (one bin's Poisson noise) of that top
        tol = c["delay_z"] * np.sqrt(np.mean(h_in + scale * scale * h_out))
        j = int(np.argmax(cum >= cum.max() - tol))
        out["delay_max"] = int(min(delay_max, edges[min(j + 2, len(edges) - 1)]))
    out.update(fee_min=round(f_lo, 5), fee_max=round(f_hi, 5), calibrated=True)
    return out


def link_deposits(dep_value, dep_height, pay_value, pay_height, *, fee_min: float = DEFAULTS["fee_min"],
                  fee_max: float = DEFAULTS["fee_max"], delay_min: int = DEFAULTS["delay_min"],
                  delay_max: int = DEFAULTS["delay_max"], max_parts: int = DEFAULTS["max_parts"],
                  max_sets: int = DEFAULTS["max_sets"], budget: int = DEFAULTS["budget"],
                  dep_wallet=None, pay_wallet=None, side_dep=None, side_pay=None) -> Links:
    """Candidate links between a mixer's deposits (values in base units, block heights) and its payouts.

    `dep_wallet`, `pay_wallet` (optional, int per deposit / payout, -1 unknown): the wallet (cluster) the
    deposit was paid from and the one the payout went to. A payout in a deposit's window that went back to the
    deposit's own wallet is linked to it outright (rule ``same_wallet``, shared equally when several deposits
    of that wallet could have made it) and is no candidate for any other deposit; the deposit's other payouts
    are searched for what it still has to be paid back.
    `side_dep` (bool per deposit: the traced side's), `side_pay` (int per payout: the post-mix rule of
    :func:`chaintrace.detect.postmix.traced_side` that makes it the traced side's, 0 none): such a payout is
    linked outright, like a same-wallet one, to the traced deposits that could have made it (in their window,
    not above ``V x (1 - fee_min)``; shared equally), with rule ``postmix_common_owner`` or
    ``postmix_deposit_reuse``, and is no candidate for any other deposit.
    See the module doc for the rule; every parameter is reported with the links by the callers."""
    if not 0.0 <= fee_min <= fee_max < 1.0:
        raise ValueError(f"fee range {fee_min}..{fee_max}: need 0 <= fee_min <= fee_max < 1")
    if not 0 <= delay_min <= delay_max:
        raise ValueError(f"delay window {delay_min}..{delay_max}: need 0 <= delay_min <= delay_max")
    if max_parts < 1:
        raise ValueError("max_parts must be at least 1")
    dv = np.ascontiguousarray(dep_value, np.int64)
    dh = np.ascontiguousarray(dep_height, np.int64)
    pv = np.ascontiguousarray(pay_value, np.int64)
    ph = np.ascontiguousarray(pay_height, np.int64)
    order = np.argsort(ph, kind="stable").astype(np.int64)
    z = np.zeros(0, np.int64)
    sd_d, sd_p, sd_c = z, z, np.zeros(0)
    if side_dep is not None and side_pay is not None:
        side_pay = np.asarray(side_pay, np.int64)
        sd_d, sd_p, sd_c = _same_wallet(dv, dh, pv, ph, np.where(np.asarray(side_dep, bool), 0, -1),
                                        np.where(side_pay > 0, 0, -1), fee_min, delay_min, delay_max)
        if pay_wallet is not None:  # a post-mix-linked payout is linked by that rule only
            pay_wallet = np.where(side_pay > 0, -1, np.asarray(pay_wallet, np.int64))
    sw_d, sw_p, sw_c = _same_wallet(dv, dh, pv, ph, dep_wallet, pay_wallet, fee_min, delay_min, delay_max)
    sw_r = np.full(len(sw_d), 3, np.int64)
    if len(sd_d):
        sw_r = np.concatenate([sw_r, np.array([SIDE_RULES[int(r)] for r in side_pay[sd_p].tolist()], np.int64)])
        sw_d, sw_p, sw_c = np.concatenate([sw_d, sd_d]), np.concatenate([sw_p, sd_p]), np.concatenate([sw_c, sd_c])
    known = np.zeros(len(dv), np.int64)
    pv_search = pv.copy()
    if len(sw_d):
        known = np.bincount(sw_d, weights=pv[sw_p] * sw_c, minlength=len(dv)).astype(np.int64)
        pv_search[sw_p] = 0  # no candidate for any other deposit
    mem, off, sdep, status = _search(dv, dh, pv_search, ph, order, float(fee_min), float(fee_max),
                                     np.int64(delay_min), np.int64(delay_max), np.int64(max_parts),
                                     np.int64(max_sets), np.int64(budget), known)
    n_sets = np.bincount(sdep, minlength=len(dv)).astype(np.int64)
    size = np.diff(off)
    set_of = np.repeat(np.arange(len(sdep)), size)
    d_rows = [sdep[set_of], sw_d]
    p_rows = [mem, sw_p]
    c_rows = [1.0 / n_sets[sdep[set_of]] if len(set_of) else np.zeros(0), sw_c]
    r_rows = [(size[set_of] > 1).astype(np.int64), sw_r]
    # ambiguous deposits: a proportional flow over the payouts they could have made (rule "window")
    amb = np.flatnonzero(status == 2)
    if len(amb):
        taken = np.zeros(len(pv))
        for pr, cr in zip(p_rows, c_rows):
            if len(pr):
                np.add.at(taken, pr, cr)
        fd, fp, fc = _window_flow(amb, dv, dh, pv, ph, order, np.clip(1.0 - taken, 0.0, 1.0), fee_min, fee_max,
                                  delay_min, delay_max, known=known)
        d_rows.append(fd)
        p_rows.append(fp)
        c_rows.append(fc)
        r_rows.append(np.full(len(fd), 2, np.int64))
    d_all, p_all = np.concatenate(d_rows).astype(np.int64), np.concatenate(p_rows).astype(np.int64)
    c_all, r_all = np.concatenate(c_rows).astype(np.float64), np.concatenate(r_rows).astype(np.int64)
    # aggregate per (deposit, payout)
    key = d_all * max(1, len(pv)) + p_all
    uk, inv = np.unique(key, return_inverse=True)
    conf = np.bincount(inv, weights=c_all, minlength=len(uk)) if len(uk) else np.zeros(0)
    rule_min = np.full(len(uk), len(RULES), np.int64)
    np.minimum.at(rule_min, inv, r_all)
    dep = uk // max(1, len(pv))
    pay = uk % max(1, len(pv))
    # payouts claimed by several deposits: scale the claims to sum to at most 1
    claim = np.bincount(pay, weights=conf, minlength=len(pv)) if len(pay) else np.zeros(len(pv))
    conf = conf / np.maximum(1.0, claim[pay]) if len(pay) else conf
    # fee implied by the deposit's first (most likely: all equal) set
    set_sum = np.add.reduceat(pv[mem], off[:-1]) if len(mem) else np.zeros(0, np.int64)
    fee_set = 1.0 - set_sum / dv[sdep] if len(sdep) else np.zeros(0)
    first = np.full(len(dv), -1, np.int64)
    if len(sdep):
        first[sdep[::-1]] = np.arange(len(sdep))[::-1]
    fee = np.where(first[dep] >= 0, fee_set[first[dep]] if len(fee_set) else 0.0, np.nan) if len(dep) \
        else np.zeros(0)
    pos = conf > 0  # links the flow left nothing are not links
    dep, pay, conf, rule_min, fee = dep[pos], pay[pos], conf[pos], rule_min[pos], np.asarray(fee)[pos]
    return Links(dep=dep.astype(np.int64), pay=pay.astype(np.int64), confidence=conf.astype(np.float64),
                 rule=rule_min, fee=np.asarray(fee, np.float64), status=status, n_sets=n_sets)


def linked_amounts(links: Links, dep_taint, dep_value, pay_value, min_confidence: float = 0.0) -> np.ndarray:
    """Per link, the traced value it carries (integer base units): the payout's value times the link's
    confidence times the share of the deposit that was traced (``dep_taint / dep_value``), floored; links
    below `min_confidence` carry nothing, except post-mix links (rules 4, 5: the payout is the traced side's,
    and its confidence only shares it among the traced deposits that could have made it). Per payout the total
    never exceeds its value, and per deposit the total never exceeds its traced value (the rest stays "held in
    the mixer / unlinked")."""
    dt = np.asarray(dep_taint, np.int64)
    dv = np.asarray(dep_value, np.int64)
    pv = np.asarray(pay_value, np.int64)
    c = np.where((links.confidence >= min_confidence) | (links.rule >= 4), links.confidence, 0.0)
    amt = np.floor(pv[links.pay] * c * (dt[links.dep] / np.maximum(dv[links.dep], 1))).astype(np.int64)
    amt = np.maximum(amt, 0)
    # caps: per payout its value, per deposit its traced value (floors keep both exact)
    for idx, cap in ((links.pay, pv), (links.dep, dt)):
        tot = np.bincount(idx, weights=amt, minlength=len(cap)).astype(np.int64) if len(idx) else np.zeros(len(cap),
                                                                                                            np.int64)
        over = tot > cap
        if over.any():
            scale = np.where(over, cap / np.maximum(tot, 1), 1.0)
            amt = np.floor(amt * scale[idx]).astype(np.int64)
    return amt



@nb.njit(cache=True)
def _flows(tx_in, tx_out, in_output, out_addr, out_value, out_type, is_mixer, max_depth, hint):
    n_tx = tx_out.shape[0] - 1
    n_out = out_value.shape[0]
    kind = np.zeros(n_out, np.int8)  # 0 other, 1 deposit, 2 payout, 3 mixer-internal (change, consolidation)
    mix_out = np.zeros(n_out, np.bool_)
    depth = np.zeros(n_out, np.int64)  # inferred-change hops since an output to a known mixer address
    addr_mix = is_mixer.copy()
    wide = is_mixer.copy()
    for t in range(n_tx):
        spends = False
        dmin = max_depth + 1
        n_mix = 0
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o >= 0 and mix_out[o]:
                spends = True
                n_mix += 1
                if depth[o] < dmin:
                    dmin = depth[o]
        # a custodial mixer spends its own reserve: a transaction whose inputs are mostly others' (a CoinJoin,
        # a customer spending a payout taken for the reserve's change with coins of their own) is not its spend
        if 2 * n_mix < tx_in[t + 1] - tx_in[t]:
            spends = False
        o0, o1 = tx_out[t], tx_out[t + 1]
        if not spends:
            for o in range(o0, o1):
                a = out_addr[o]
                if a >= 0 and addr_mix[a]:
                    mix_out[o] = True
                    kind[o] = 1
            continue
        n_known = 0
        for o in range(o0, o1):
            a = out_addr[o]
            if a >= 0 and (addr_mix[a] or wide[a]):  # a known address, or one of the reserve's change before
                mix_out[o] = True
                kind[o] = 3
                n_known += 1
        n = o1 - o0
        if n_known == 0 and n == 2 and out_addr[o0] >= 0 and out_addr[o0 + 1] >= 0:
            # the reserve's change: the output of the inputs' script type when only one is; else the larger
            it = np.int8(-1)
            same = True
            for i in range(tx_in[t], tx_in[t + 1]):
                o = in_output[i]
                if o >= 0:
                    if it < 0:
                        it = out_type[o]
                    elif out_type[o] != it:
                        same = False
            m0 = same and out_type[o0] == it
            m1 = same and out_type[o0 + 1] == it
            if hint[o0] != hint[o0 + 1]:
                # spent together with, or into, the mixer's known addresses: the reserve's change
                c = o0 if hint[o0] else o0 + 1
            elif m0 != m1:
                c = o0 if m0 else o0 + 1
            else:
                c = o0 if out_value[o0] >= out_value[o0 + 1] else o0 + 1
            kind[c] = 3
            if dmin < max_depth:
                mix_out[c] = True
                depth[c] = dmin + 1
                wide[out_addr[c]] = True
            # else: too many inferred changes in a row to follow it on, but still the change, not a payout
        elif n_known == 0 and n == 1 and tx_in[t + 1] - tx_in[t] >= 3 and out_addr[o0] >= 0:
            mix_out[o0] = True  # a consolidation into a new reserve address
            kind[o0] = 3
            depth[o0] = dmin
            wide[out_addr[o0]] = True
        for o in range(o0, o1):
            if not mix_out[o] and out_addr[o] >= 0:
                kind[o] = 2
    return kind, wide


def spent_with_mixer(tx_in, tx_out, in_output, out_addr, out_spender_tx, is_mixer) -> np.ndarray:
    """Bool per output: its spending transaction also spends an output of one of the mixer's known addresses
    `is_mixer`, or pays one of them that receives more than once (what the reserve's change does when the
    mixer spends it again, and what a payout spent by its customer does not). A known address that receives
    only once is an order's deposit address (a custodial mixer gives every order a fresh one): paying it is
    what a customer does -- one paid out before and now placing another order -- so it is no hint."""
    tx_in = np.asarray(tx_in, np.int64)
    tx_out = np.asarray(tx_out, np.int64)
    in_output = np.asarray(in_output, np.int64)
    out_addr = np.asarray(out_addr, np.int64)
    sp = np.asarray(out_spender_tx, np.int64)
    is_mixer = np.asarray(is_mixer, np.bool_)
    n_tx = len(tx_out) - 1
    known_out = (out_addr >= 0) & is_mixer[np.maximum(out_addr, 0)]
    receipts = np.bincount(out_addr[out_addr >= 0], minlength=len(is_mixer))
    reused = known_out & (receipts[np.maximum(out_addr, 0)] > 1)  # the reserve's, not an order's deposit address
    pays = np.zeros(n_tx, np.bool_)
    out_tx = np.repeat(np.arange(n_tx, dtype=np.int64), np.diff(tx_out))
    pays[out_tx[reused]] = True
    in_tx = np.repeat(np.arange(n_tx, dtype=np.int64), np.diff(tx_in))
    ok = in_output >= 0
    spends_known = np.zeros(n_tx, np.bool_)
    spends_known[in_tx[ok][known_out[in_output[ok]]]] = True
    hint = np.zeros(len(out_addr), np.bool_)
    s = sp >= 0
    hint[s] = pays[sp[s]] | spends_known[sp[s]]
    return hint


def mixer_flows(tx_in, tx_out, in_output, out_addr, out_value, out_type, is_mixer,
                max_change_hops: int = 4, single_use: bool = True,
                out_spender_tx=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(deposit output ids, payout output ids, the mixer's addresses widened) of the mixer whose known
    addresses `is_mixer` marks (bool per address id), in one pass in chain order:

    * a transaction spending a mixer output is the mixer's: its outputs to mixer addresses (known, or taken as
      the reserve's change before) are internal; of two outputs to unknown addresses one is taken as the
      reserve's change (with `out_spender_tx`: the one whose spending transaction also spends a known mixer
      output, or pays a known mixer address that receives more than once, when only one does -- the reserve
      spending its change again (:func:`spent_with_mixer`); else the one of the inputs'
      script type when only one is, else the larger: a custodial mixer pays each payout from its reserve and keeps
      the rest, so its payouts form a peel chain) and is followed as the mixer's; a single output of a
      3+-input spend is a consolidation; every other output is a payout;
    * an output paid to a mixer address by a transaction that spends no mixer output is a deposit -- with
      `single_use`, only when the address received nothing else (a custodial mixer gives every order its own
      deposit address; what its reserve receives from elsewhere, e.g. a mining pool, is funding, not an
      order with payouts to link).
    """
    out_addr = np.asarray(out_addr, np.int64)
    hint = np.zeros(len(out_addr), np.bool_) if out_spender_tx is None else \
        spent_with_mixer(tx_in, tx_out, in_output, out_addr, out_spender_tx, is_mixer)
    kind, addr_mix = _flows(np.asarray(tx_in, np.int64), np.asarray(tx_out, np.int64),
                            np.asarray(in_output, np.int64), np.asarray(out_addr, np.int64),
                            np.asarray(out_value, np.int64), np.asarray(out_type, np.int8),
                            np.ascontiguousarray(is_mixer, np.bool_), np.int64(max_change_hops), hint)
    dep = np.flatnonzero(kind == 1).astype(np.int64)
    if single_use and len(dep):
        has = out_addr >= 0
        receipts = np.bincount(out_addr[has], minlength=len(addr_mix))
        dep = dep[receipts[out_addr[dep]] == 1]
    return dep, np.flatnonzero(kind == 2).astype(np.int64), addr_mix


# ---------------------------------------------------------------------- custodial mixers recognised by behaviour

DETECT_DEFAULTS: dict[str, Any] = {"min_depositors": 20, "min_recipients": 20, "min_single_use": 0.9,
                                   "min_distinct": 0.85, "min_unbatched": 0.98, "min_payback": 0.2,
                                   "sweep_min_inputs": 3}
DETECT_FEATURES = ("addresses", "deposits", "depositors", "distinct", "single_use", "payouts", "recipients",
                   "unbatched", "received", "paid_out", "payback")


@dataclass
class MixerDetections:
    """One row per service (a wallet, with the wallets it sweeps its deposit addresses from) behaving like a
    custodial mixer: ``wallet`` (the cluster id its deposits are swept into), ``members`` (bool per wallet id
    below the largest: the wallets it is made of), ``confidence``, the feature columns of
    :data:`DETECT_FEATURES` and the ``thresholds`` of the rule."""

    wallet: np.ndarray
    confidence: np.ndarray
    features: dict[str, np.ndarray]
    thresholds: dict
    entity_of: np.ndarray  # per wallet id: the service it was merged into (itself when none)

    def __len__(self) -> int:
        return len(self.wallet)

    def row(self, i: int) -> dict:
        f = {k: (round(float(v[i]), 4) if v.dtype.kind == "f" else int(v[i])) for k, v in self.features.items()}
        return {"wallet": int(self.wallet[i]), "kind": "mixer", "confidence": round(float(self.confidence[i]), 3),
                "features": f, "thresholds": dict(self.thresholds)}


def detect_mixers(tx_in, tx_out, in_output, out_addr, out_value, wallet, **thresholds) -> MixerDetections:
    """Services (clusters: `wallet`, a cluster id per address id) that behave like a custodial mixer.

    A wallet whose every spend is a **sweep** (at least ``sweep_min_inputs`` inputs, one output) into one
    other wallet is a deposit wallet of that one (deposit addresses swept into a reserve, as an exchange's are
    into its hot wallet); the service S is the wallet with its deposit wallets. Its **deposits** are outputs
    to its deposit wallets' addresses from transactions not spending S's coins, its **payouts** the outputs
    to others of transactions spending S's coins. Features: ``depositors`` (distinct payers of deposits: the
    first input's wallet), ``distinct`` (depositors / deposits: every order from another customer; an
    exchange's customers deposit again and again, a person's wallet is paid by the same payers),
    ``single_use`` (share of the deposits landing on an address that received nothing else: one fresh
    address per order, no address reuse by clients), ``recipients`` (distinct wallets paid), ``unbatched``
    (share of S's spending transactions with at most two outputs: one payout and the reserve's change, every
    time; exchanges and pools batch withdrawals, people now and then pay several), ``received``/``paid_out``
    (base units), ``payback`` (received / paid_out: a mixer pays out what its customers deposit, less its fee,
    plus what funds its reserve; a person's wallet pays out mostly what it got otherwise). Services that behave
    so at any size and pay each other are one service (a reserve split over wallets: its change spent alone
    forms no cluster). A mixer: ``depositors >= min_depositors``, ``recipients >= min_recipients``,
    ``distinct >= min_distinct``, ``single_use >= min_single_use``, ``unbatched >= min_unbatched`` and
    ``payback >= min_payback``. Confidence ``(1 -
    0.5 ** (min(depositors, recipients) / min_depositors)) x distinct x unbatched``. Whether the payouts are the deposits minus a fee after a
    delay is what :func:`link_deposits` then measures for the detected service."""
    unknown = set(thresholds) - set(DETECT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown thresholds: {sorted(unknown)}")
    p = {**DETECT_DEFAULTS, **thresholds}
    tx_in = np.asarray(tx_in, np.int64)
    tx_out = np.asarray(tx_out, np.int64)
    in_output = np.asarray(in_output, np.int64)
    out_addr = np.asarray(out_addr, np.int64)
    out_value = np.asarray(out_value, np.int64)
    w_addr = np.asarray(wallet, np.int64)
    n_tx = len(tx_out) - 1
    n_w = int(w_addr.max()) + 1 if len(w_addr) else 0
    if n_w == 0 or n_tx <= 0:
        return MixerDetections(np.zeros(0, np.int64), np.zeros(0),
                               {k: np.zeros(0, np.int64) for k in DETECT_FEATURES}, p, np.zeros(0, np.int64))
    out_w = np.where(out_addr >= 0, w_addr[np.maximum(out_addr, 0)], -1)
    out_tx = np.repeat(np.arange(n_tx, dtype=np.int64), np.diff(tx_out))
    in_w = np.where(in_output >= 0, out_w[np.maximum(in_output, 0)], -1)
    n_in = np.diff(tx_in)
    n_out = np.diff(tx_out)
    tx_w = np.full(n_tx, -1, np.int64)  # the spending wallet: the first input's
    tx_w[n_in > 0] = in_w[tx_in[:-1][n_in > 0]]
    sweep = (n_in >= p["sweep_min_inputs"]) & (n_out == 1)
    # wallets whose every spend is a sweep into one other wallet join it
    sw_to = np.full(n_tx, -1, np.int64)
    sw_to[sweep] = out_w[tx_out[:-1][sweep]]
    spender = tx_w >= 0
    spends = np.bincount(tx_w[spender], minlength=n_w)
    into = sweep & spender & (sw_to >= 0) & (sw_to != tx_w)
    n_into = np.bincount(tx_w[into], minlength=n_w)
    lo = np.full(n_w, np.iinfo(np.int64).max)
    hi = np.full(n_w, -1, np.int64)
    np.minimum.at(lo, tx_w[into], sw_to[into])
    np.maximum.at(hi, tx_w[into], sw_to[into])
    ent = np.arange(n_w, dtype=np.int64)
    joins = (spends > 0) & (n_into == spends) & (lo == hi)
    ent[joins] = lo[joins]
    receipts = np.bincount(out_addr[out_addr >= 0], minlength=len(w_addr))

    def features(ent: np.ndarray) -> dict:
        out_e = np.where(out_w >= 0, ent[np.maximum(out_w, 0)], -1)
        tx_e = np.where(tx_w >= 0, ent[np.maximum(tx_w, 0)], -1)
        # deposits: outputs to the swept-in wallets (the deposit addresses), from transactions not the service's
        dep = (out_e >= 0) & (tx_e[out_tx] != out_e) & joins[np.maximum(out_w, 0)]
        de = out_e[dep]
        deposits = np.bincount(de, minlength=n_w)
        pay = (tx_e[out_tx] >= 0) & (out_e != tx_e[out_tx])
        pe = tx_e[out_tx[pay]]
        e_spends = np.bincount(tx_e[tx_e >= 0], minlength=n_w)
        depositors = _distinct_pairs(de, tx_e[out_tx[dep]], n_w)
        f: dict[str, Any] = {"addresses": np.bincount(ent[w_addr[w_addr >= 0]], minlength=n_w), "deposits": deposits,
             "depositors": depositors, "distinct": depositors / np.maximum(deposits, 1),
             "single_use": np.bincount(de[receipts[out_addr[dep]] == 1], minlength=n_w) / np.maximum(deposits, 1),
             "payouts": np.bincount(pe, minlength=n_w),
             "recipients": _distinct_pairs(pe, np.where(out_e[pay] >= 0, out_e[pay], -2 - out_addr[pay]), n_w),
             "unbatched": np.bincount(tx_e[(tx_e >= 0) & (n_out <= 2)], minlength=n_w) / np.maximum(e_spends, 1),
             "received": np.bincount(de, weights=out_value[dep].astype(np.float64), minlength=n_w).astype(np.int64),
             "paid_out": np.bincount(pe, weights=out_value[pay].astype(np.float64), minlength=n_w).astype(np.int64)}
        f["payback"] = f["received"] / np.maximum(f["paid_out"], 1)
        f["_links"] = (tx_e[out_tx[pay]], out_e[pay])
        return f

    def behaves(f: dict, min_dep: int, min_rec: int, payback: float) -> np.ndarray:
        return ((f["depositors"] >= min_dep) & (f["recipients"] >= min_rec) & (f["single_use"] >= p["min_single_use"])
                & (f["distinct"] >= p["min_distinct"]) & (f["unbatched"] >= p["min_unbatched"])
                & (f["payback"] >= payback))

    f = features(ent)
    # one mixer whose reserve is split over several wallets (change spent alone forms no cluster): services that
    # behave like a mixer (any size) and pay each other are one service
    cand = behaves(f, 3, 1, 0.0) & (ent == np.arange(n_w))
    src, dst = f["_links"]
    m = (src >= 0) & (dst >= 0) & cand[np.maximum(src, 0)] & cand[np.maximum(dst, 0)] & (src != dst)
    if m.any():
        root = np.arange(n_w, dtype=np.int64)

        def find(x: int) -> int:
            while root[x] != x:
                root[x] = root[root[x]]
                x = int(root[x])
            return x

        for x, y in set(zip(src[m].tolist(), dst[m].tolist())):
            rx, ry = find(x), find(y)
            if rx != ry:
                root[max(rx, ry)] = min(rx, ry)
        for x in np.flatnonzero(cand).tolist():
            root[x] = find(x)
        ent = root[ent]
        f = features(ent)
    is_mix = behaves(f, p["min_depositors"], p["min_recipients"], p["min_payback"]) & (ent == np.arange(n_w))
    sel = np.flatnonzero(is_mix)
    conf = (1.0 - np.power(0.5, np.minimum(f["depositors"], f["recipients"])[sel] / max(1, p["min_depositors"]))) \
        * f["distinct"][sel] * f["unbatched"][sel]
    feats = {k: f[k][sel] for k in DETECT_FEATURES}
    order = np.argsort(-conf, kind="stable")
    return MixerDetections(sel[order], conf[order], {k: v[order] for k, v in feats.items()}, p, ent)


def _distinct_pairs(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Per value of `a` (0..n-1): distinct values of `b` paired with it (b == -1: not counted)."""
    m = (a >= 0) & (b != -1)
    if not m.any():
        return np.zeros(n, np.int64)
    bb = b[m] - int(b[m].min())
    span = int(bb.max()) + 1
    k = np.unique(a[m] * span + bb)
    return np.bincount(k // span, minlength=n)[:n].astype(np.int64)
