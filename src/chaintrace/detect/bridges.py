"""Bridge matching: deposits into a bridge on one chain matched with the release (or mint) on the other side.

Pure arrays in, arrays out. A *deposit* is value entering the bridge (BTC paid to a custodian's deposit address,
a wrapped token burned, ETH locked in a bridge contract); a *release* is value leaving it on the other chain
(a wrapped-token mint from the zero address, BTC paid out by the custodian). Amounts are exact integers in one
common base unit (the caller scales: satoshi and WBTC's 8 decimals are the same unit), times are seconds.

Two rules, tried in this order:

``event``  (deterministic, confidence 1.0)
    the deposit names its destination (an OP_RETURN memo, a bridge event field) and a release in the window
    pays exactly that recipient with an amount in the fee range. The first such release (earliest) is taken.
``amount+time``  (probabilistic)
    the remaining deposits and releases are paired when ``release = deposit - fee`` with
    ``fee_min * deposit <= fee <= fee_max * deposit + fee_fixed`` and ``delay_min <= delay <= delay_max``.
    Every candidate pair is kept; its confidence is ``1 / max(candidates of the deposit, candidates of the
    release)``, so a deposit's (and a release's) confidences never sum to more than 1: a unique pair is 1.0,
    two deposits indistinguishable for two releases get 0.5 on each of the four pairs (the split is honest:
    amount and time cannot tell them apart).

A deposit with a named destination that no release pays is *not* matched by amount alone (the memo says where
the value should go; a release elsewhere is a different transfer).
"""
from __future__ import annotations

import numpy as np

RULE_EVENT = "event"
RULE_AMOUNT_TIME = "amount+time"

DEFAULTS: dict[str, float | int] = {"fee_min": 0.0, "fee_max": 0.01, "fee_fixed": 0, "delay_min": 0, "delay_max": 86400}


def _fee_ok(dep: int, rel: int, fee_min: float, fee_max: float, fee_fixed: int) -> bool:
    fee = dep - rel
    return fee >= 0 and fee >= fee_min * dep and fee <= fee_max * dep + fee_fixed


def match_bridge(dep_value, dep_time, dep_dest, rel_value, rel_time, rel_recipient, *,
                 fee_min: float = 0.0, fee_max: float = 0.01,
                 fee_fixed: int = 0, delay_min: int = 0, delay_max: int = 86400) -> dict[str, np.ndarray]:
    """Match deposits with releases.

    ``dep_dest``: int64 key of the destination a deposit names (-1: none); ``rel_recipient``: int64 key of the
    release's recipient, in the same key space (the caller maps addresses to keys). Returns flat arrays, one
    entry per match: ``dep``, ``rel`` (indices into the inputs), ``fee`` (deposit minus release, exact),
    ``delay`` (seconds), ``rule`` (0 = event, 1 = amount+time), ``confidence``.
    """
    dv = np.asarray(dep_value, np.int64)
    dt = np.asarray(dep_time, np.int64)
    dd = np.asarray(dep_dest, np.int64)
    rv = np.asarray(rel_value, np.int64)
    rt = np.asarray(rel_time, np.int64)
    rr = np.asarray(rel_recipient, np.int64)
    order = np.argsort(rt, kind="stable")
    rt_sorted = rt[order]
    used_rel = np.zeros(len(rv), bool)
    ev_d, ev_r = [], []
    cand: list[tuple[int, int]] = []
    for i in np.argsort(dt, kind="stable").tolist():
        lo = np.searchsorted(rt_sorted, dt[i] + delay_min, "left")
        hi = np.searchsorted(rt_sorted, dt[i] + delay_max, "right")
        window = order[lo:hi]
        ok = [int(j) for j in window
              if _fee_ok(int(dv[i]), int(rv[j]), fee_min, fee_max, fee_fixed)]
        if dd[i] >= 0:
            named = [j for j in ok if rr[j] == dd[i] and not used_rel[j]]
            if named:
                used_rel[named[0]] = True
                ev_d.append(i)
                ev_r.append(named[0])
            continue  # a deposit that names its destination is never matched by amount alone
        cand.extend((i, j) for j in ok)
    cand = [(i, j) for i, j in cand if not used_rel[j]]
    deg_d: dict[int, int] = {}
    deg_r: dict[int, int] = {}
    for i, j in cand:
        deg_d[i] = deg_d.get(i, 0) + 1
        deg_r[j] = deg_r.get(j, 0) + 1
    d = np.array(ev_d + [i for i, _ in cand], np.int64)
    r = np.array(ev_r + [j for _, j in cand], np.int64)
    conf = np.array([1.0] * len(ev_d) + [1.0 / max(deg_d[i], deg_r[j]) for i, j in cand], np.float64)
    rule = np.array([0] * len(ev_d) + [1] * len(cand), np.int8)
    return {"dep": d, "rel": r, "fee": dv[d] - rv[r] if len(d) else np.zeros(0, np.int64),
            "delay": rt[r] - dt[d] if len(d) else np.zeros(0, np.int64), "rule": rule, "confidence": conf}


RULES = (RULE_EVENT, RULE_AMOUNT_TIME)
