"""A bridge's traffic with exact truth, for scoring :func:`chaintrace.detect.bridges.match_bridge`.

``bridge_traffic(seed)`` draws what a custodial bridge (WBTC-style: BTC to a custodian, a token minted on the
other chain) sees in a window: hack proceeds bridged in round and odd amounts, ordinary users bridging at the
same time (many near the same round amounts: the ambiguity a real bridge has), mints with no deposit in the
window (deposits made earlier), and deposits not yet released. A share of deposits carry a memo naming the
recipient (the event rule). Fees are drawn per deposit from the bridge's fee range, delays from its delay
range; ``truth`` maps each deposit to its release (-1: none in the window). Amounts are integer satoshi.
"""
from __future__ import annotations

import numpy as np


def bridge_traffic(seed: int, *, deposits: int = 400, memo_share: float = 0.3, fee_min: float = 0.001,
                   fee_max: float = 0.005, delay_min: int = 600, delay_max: int = 7200, unreleased: float = 0.05,
                   orphans: int = 40, span: int = 14 * 86400) -> dict:
    """Deposits and releases of one bridge with the truth (deposit index -> release index, -1 none)."""
    rng = np.random.default_rng(seed)
    n = deposits
    round_amt = rng.choice([10_000_000, 50_000_000, 100_000_000, 500_000_000], n)
    odd = rng.integers(1_000_000, 2_000_000_000, n)
    dep_value = np.where(rng.random(n) < 0.5, round_amt, odd).astype(np.int64)
    dep_time = np.sort(rng.integers(0, span, n)).astype(np.int64)
    recipient = rng.permutation(10 * n)[:n].astype(np.int64)  # distinct recipients (keys on the other chain)
    memo = rng.random(n) < memo_share
    dep_dest = np.where(memo, recipient, -1).astype(np.int64)
    fee = np.floor(dep_value * rng.uniform(fee_min, fee_max, n)).astype(np.int64)
    released = rng.random(n) >= unreleased
    rel_from = np.flatnonzero(released)
    rel_value = (dep_value - fee)[rel_from]
    rel_time = (dep_time + rng.integers(delay_min, delay_max + 1, n))[rel_from]
    rel_recipient = recipient[rel_from]
    # mints for deposits made before the window: same amount distribution, no deposit here
    o_val = np.where(rng.random(orphans) < 0.5, rng.choice([10_000_000, 50_000_000, 100_000_000], orphans),
                     rng.integers(1_000_000, 2_000_000_000, orphans)).astype(np.int64)
    o_val = o_val - np.floor(o_val * rng.uniform(fee_min, fee_max, orphans)).astype(np.int64)
    rel_value = np.concatenate([rel_value, o_val])
    rel_time = np.concatenate([rel_time, rng.integers(0, span, orphans)]).astype(np.int64)
    rel_recipient = np.concatenate([rel_recipient, 10 * n + np.arange(orphans)]).astype(np.int64)
    truth = np.full(n, -1, np.int64)
    truth[rel_from] = np.arange(len(rel_from))
    return {"dep_value": dep_value, "dep_time": dep_time, "dep_dest": dep_dest, "rel_value": rel_value,
            "rel_time": rel_time, "rel_recipient": rel_recipient, "truth": truth,
            "params": {"fee_min": fee_min, "fee_max": fee_max, "delay_min": delay_min, "delay_max": delay_max}}
