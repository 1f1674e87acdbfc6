"""Taint policies as pure functions on hand-built transactions: exact expected splits worked out by hand,
conservation (per source), fee modes, several tainted branches meeting in one transaction, and the numba
kernel agreeing exactly with the pure functions (hypothesis)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from chaintrace.trace.split import split_fast
from chaintrace.trace.policies import (POLICIES, Segment as S, TxShape, apportion, by_source, clean, normalize,
                                       split, tainted)

# inputs: 100 sat fully tainted (seed 0, hop 0), 50 sat clean; outputs 30 and 110; fee 10
TX = TxShape([100, 50], [30, 110])
INS = [[S(100, 0, 0)], clean(50)]


def test_haircut_by_hand():
    # T=100 of V=150: exact shares 20, 73.33, 6.67 -> 20, 73, 6 + the leftover unit to the largest remainder (fee)
    outs, fee = split("haircut", TX, INS)
    assert outs == [[S(20, 0, 1), S(10, None, 0)], [S(73, 0, 1), S(37, None, 0)]]
    assert fee == [S(7, 0, 1), S(3, None, 0)]


def test_poison_amounts_are_the_conserved_haircut_shares():
    assert split("poison", TX, INS) == split("haircut", TX, INS)


def test_fifo_tail_and_prorata():
    outs, fee = split("fifo", TX, INS, "tail")
    assert outs == [[S(30, 0, 1)], [S(70, 0, 1), S(40, None, 0)]]
    assert fee == [S(10, None, 0)]  # the fee is the last 10 sat: clean
    # prorata: fee 10 taken 7 from input 0 (6.67 rounded up by largest remainder), 3 from input 1
    outs, fee = split("fifo", TX, INS, "prorata")
    assert outs == [[S(30, 0, 1)], [S(63, 0, 1), S(47, None, 0)]]
    assert fee == [S(7, 0, 1), S(3, None, 0)]


def test_lifo_reverses_inputs():
    outs, fee = split("lifo", TX, INS)
    assert outs == [[S(30, None, 0)], [S(20, None, 0), S(90, 0, 1)]]
    assert fee == [S(10, 0, 1)]


def test_tiho_puts_taint_in_the_largest_output():
    outs, fee = split("tiho", TX, INS)
    assert outs == [[S(30, None, 0)], [S(100, 0, 1), S(10, None, 0)]]
    assert fee == [S(10, None, 0)]


# two tainted branches meet: input 0 carries seed 0 at hop 2, input 1 half seed 1 (hop 0), half clean
TX2 = TxShape([40, 60], [50, 45])
INS2 = [[S(40, 0, 2)], [S(30, 1, 0), S(30, None, 0)]]


def test_branches_meeting_fifo():
    outs, fee = split("fifo", TX2, INS2)
    assert outs == [[S(40, 0, 3), S(10, 1, 1)], [S(20, 1, 1), S(25, None, 0)]]
    assert fee == [S(5, None, 0)]


def test_branches_meeting_haircut_per_source():
    outs, fee = split("haircut", TX2, INS2)
    # buckets of T=70: 35, 31.5, 3.5 -> 35, 32 (tie on remainder: lower index), 3; then split per source
    assert outs == [[S(20, 0, 3), S(15, 1, 1), S(15, None, 0)], [S(18, 0, 3), S(14, 1, 1), S(13, None, 0)]]
    assert fee == [S(2, 0, 3), S(1, 1, 1), S(2, None, 0)]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("fee_mode", ["tail", "prorata"])
def test_conservation_per_source(policy, fee_mode):
    for tx, ins in ((TX, INS), (TX2, INS2)):
        outs, fee = split(policy, tx, ins, fee_mode)
        total_in: dict[int, int] = {}
        for t in ins:
            for k, v in by_source(t).items():
                total_in[k] = total_in.get(k, 0) + v
        total_out: dict[int, int] = {}
        for t in outs + [fee]:
            for k, v in by_source(t).items():
                total_out[k] = total_out.get(k, 0) + v
        assert total_out == total_in
        assert [sum(s.value for s in o) for o in outs] == list(tx.outputs)
        assert sum(s.value for s in fee) == tx.fee


def test_fee_mode_does_not_change_haircut():
    assert split("haircut", TX2, INS2, "tail") == split("haircut", TX2, INS2, "prorata")


def test_zero_fee_zero_value_and_untainted():
    tx = TxShape([10, 0], [0, 10])
    for p in POLICIES:
        outs, fee = split(p, tx, [[S(10, 0, 0)], []])
        assert tainted(outs[1]) == 10 and outs[0] == [] and fee == []
        outs, fee = split(p, tx, [clean(10), []])
        assert tainted(outs[1]) == 0


def test_large_values_are_exact():
    # 20 million BTC in sat: products exceed 64 bits; Python ints and the kernel must both be exact
    v = 2_000_000_000_000_000
    tx = TxShape([v, v - 7], [v // 3, v - 11, v // 3 + 1])
    ins = [[S(v - 1, 0, 0), S(1, None, 0)], [S(v - 7, 1, 4)]]
    for p in POLICIES:
        for fm in ("tail", "prorata"):
            assert split(p, tx, ins, fm) == split_fast(p, tx, ins, fm)


def test_apportion_largest_remainder():
    assert apportion(10, [4, 4, 4]) == [4, 3, 3]  # 3.33 each: ties go to the lower index
    assert apportion(2, [1, 1, 1]) == [1, 1, 0]
    assert apportion(7, [5, 3, 2], 10) == [4, 2, 1]  # 3.5, 2.1, 1.4 -> largest remainder 0.5 first
    assert apportion(0, [5, 5]) == [0, 0]
    with pytest.raises(ValueError):
        apportion(11, [5, 5])


def test_bad_taints_are_rejected():
    with pytest.raises(ValueError, match="does not cover"):
        split("fifo", TX, [[S(99, 0, 0)], clean(50)])
    with pytest.raises(ValueError, match="exceed"):
        TxShape([10], [11])
    with pytest.raises(ValueError, match="unknown policy"):
        split("fifoo", TX, INS)


def test_normalize_merges_and_drops():
    assert normalize([S(0, 1, 0), S(2, 1, 3), S(3, 1, 3), S(4, None, 7), S(1, None, 0)]) == \
        [S(5, 1, 3), S(5, None, 0)]


@st.composite
def transactions(draw):
    n_in = draw(st.integers(1, 5))
    big = draw(st.booleans())
    hi = 2 * 10**15 if big else 200
    iv = draw(st.lists(st.integers(0, hi), min_size=n_in, max_size=n_in))
    V = sum(iv)
    fee = draw(st.integers(0, V // 5)) if V else 0
    n_out = draw(st.integers(1, 5))
    cuts = sorted(draw(st.lists(st.integers(0, V - fee), min_size=n_out - 1, max_size=n_out - 1)))
    ov = [b - a for a, b in zip([0] + cuts, cuts + [V - fee])]
    ins = []
    for v in iv:
        segs, left = [], v
        while left:
            x = draw(st.integers(1, left))
            src = draw(st.sampled_from([None, None, 0, 1, 2]))
            segs.append(S(x, src, draw(st.integers(0, 9)) if src is not None else 0))
            left -= x
        ins.append(segs)
    return TxShape(iv, ov), ins


@settings(max_examples=300, deadline=None)
@given(transactions(), st.sampled_from(POLICIES), st.sampled_from(["tail", "prorata"]))
def test_kernel_agrees_with_pure_functions(txins, policy, fee_mode):
    tx, ins = txins
    pure = split(policy, tx, ins, fee_mode)
    assert split_fast(policy, tx, ins, fee_mode) == pure
    outs, fee = pure
    tin: dict[int, int] = {}
    for t in ins:
        for k, v in by_source(t).items():
            tin[k] = tin.get(k, 0) + v
    tout: dict[int, int] = {}
    for t in outs + [fee]:
        for k, v in by_source(t).items():
            tout[k] = tout.get(k, 0) + v
    assert tin == tout
    # haircut: the taint fraction of every output is the transaction's, up to one unit of rounding
    if policy == "haircut" and sum(tx.inputs):
        T = sum(tin.values())
        for o, w in zip(outs, tx.outputs):
            assert abs(tainted(o) * sum(tx.inputs) - T * w) < sum(tx.inputs) * (len(tin) + 1)
