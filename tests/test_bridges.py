"""Bridge matching (chaintrace.detect.bridges) on purpose-built data: a deposit whose memo names its
destination (deterministic), an amount+time match, decoys with the wrong fee or delay, an ambiguous pair split."""
from __future__ import annotations

import numpy as np

from chaintrace.detect.bridges import match_bridge

P = {"fee_min": 0.001, "fee_max": 0.01, "fee_fixed": 0, "delay_min": 60, "delay_max": 3600}


def _m(res):
    return sorted(zip(res["dep"].tolist(), res["rel"].tolist(), res["rule"].tolist(),
                      res["confidence"].round(3).tolist()))


def test_event_named_destination_is_deterministic_even_beside_a_closer_amount():
    # deposit 0 names recipient 7; release 0 pays 99 with a closer amount, release 1 pays 7 (fee 0.5%)
    res = match_bridge([100_000_000], [1000], [7], [99_900_000, 99_500_000], [1500, 1600], [99, 7], **P)
    assert _m(res) == [(0, 1, 0, 1.0)]
    assert res["fee"].tolist() == [500_000] and res["delay"].tolist() == [600]
    # exact: what crossed = what arrived + the fee
    assert 99_500_000 + int(res["fee"][0]) == 100_000_000


def test_named_destination_not_paid_is_not_matched_by_amount():
    res = match_bridge([100_000_000], [1000], [7], [99_900_000], [1500], [99], **P)
    assert len(res["dep"]) == 0


def test_amount_time_match_and_decoys_with_wrong_fee_or_delay():
    dep_v, dep_t = [50_000_000], [10_000]
    rel_v = [49_800_000,   # fee 0.4%, delay 300: the match
             49_000_000,   # fee 2%: too high
             50_000_000,   # fee 0: below fee_min
             49_800_000,   # right amount, delay 2 h: outside the window
             49_800_000]   # right amount, before the deposit
    rel_t = [10_300, 10_400, 10_500, 10_000 + 7200, 9_000]
    res = match_bridge(dep_v, dep_t, [-1], rel_v, rel_t, [1, 2, 3, 4, 5], **P)
    assert _m(res) == [(0, 0, 1, 1.0)]
    assert res["fee"].tolist() == [200_000] and res["delay"].tolist() == [300]


def test_ambiguity_is_split_and_never_sums_over_one():
    # two equal deposits a minute apart, two equal releases: amount and time cannot tell which is which
    res = match_bridge([10_000_000, 10_000_000], [0, 60], [-1, -1], [9_950_000, 9_950_000], [600, 700], [1, 2], **P)
    assert _m(res) == [(0, 0, 1, 0.5), (0, 1, 1, 0.5), (1, 0, 1, 0.5), (1, 1, 1, 0.5)]
    for side in ("dep", "rel"):
        tot = np.bincount(res[side], weights=res["confidence"])
        assert (tot <= 1.0 + 1e-12).all()


def test_event_match_takes_its_release_out_of_the_amount_matching():
    # deposit 0 (memo -> 7) and deposit 1 (no memo) both fit release 0; the memo wins it, deposit 1 keeps release 1
    res = match_bridge([10_000_000, 10_000_000], [0, 10], [7, -1], [9_950_000, 9_960_000], [600, 650], [7, 8], **P)
    assert _m(res) == [(0, 0, 0, 1.0), (1, 1, 1, 1.0)]
