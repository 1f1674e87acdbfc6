"""Custodial-mixer linking (chaintrace.detect.mixers) and ``trace --through-mixers`` (issue 15, point 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from chaintrace.detect.mixers import calibrate, link_deposits, linked_amounts, mixer_flows

BTC = 100_000_000


def _links(dv, dh, pv, ph, **kw):
    return link_deposits(np.array(dv), np.array(dh), np.array(pv), np.array(ph), **kw)


def test_a_split_payout_is_linked_and_decoys_with_the_wrong_fee_or_delay_are_not():
    # deposit of 1 BTC at height 100; its payouts 0.6 + 0.38 BTC (2% fee) after 10 and 20 blocks;
    # decoys: 0.97 BTC 300 blocks later (delay), 0.90 BTC at 115 (10% fee), 0.999 BTC at 112 (0.1% fee)
    L = _links([BTC], [100], [60_000_000, 38_000_000, 97_000_000, 90_000_000, 99_900_000],
               [110, 120, 400, 115, 112])
    assert L.status.tolist() == [0] and L.n_sets.tolist() == [1]
    assert sorted(L.pay.tolist()) == [0, 1]
    assert L.confidence.tolist() == [1.0, 1.0]
    assert L.rule.tolist() == [1, 1]  # split
    assert L.fee[0] == pytest.approx(0.02)


def test_a_single_payout_and_a_deposit_with_no_candidate():
    L = _links([BTC, 5 * BTC], [100, 100], [98_500_000], [130])
    assert L.status.tolist() == [0, 1]  # the second deposit: unlinked
    assert L.dep.tolist() == [0] and L.rule.tolist() == [0]


def test_ambiguity_is_split_never_resolved_by_guessing():
    # two payouts of the same value both fit the one deposit: each gets half
    L = _links([BTC], [100], [98_000_000, 98_000_000], [110, 111])
    assert L.n_sets.tolist() == [2]
    assert L.confidence.tolist() == [0.5, 0.5]
    # two deposits claim the same payout: their claims are scaled to sum to 1
    L = _links([BTC, BTC], [100, 101], [98_000_000], [110])
    assert L.confidence.tolist() == [0.5, 0.5]
    amt = linked_amounts(L, np.array([BTC, BTC]), np.array([BTC, BTC]), np.array([98_000_000]))
    assert amt.sum() <= 98_000_000 and amt.tolist() == [49_000_000, 49_000_000]


def test_a_payout_back_to_the_depositors_wallet_is_linked_and_taken_from_the_other_deposits():
    # deposits of 1 BTC (wallet 7) and 1 BTC (wallet 8) at 100; payouts 0.5 BTC to wallet 7 (at 110),
    # 0.48 BTC (120) and 0.98 BTC (130) to unknown wallets. Without wallets the 0.5 + 0.48 split fits both
    # deposits; with them the 0.5 BTC payout is deposit 0's, which needs 0.48 more; deposit 1 gets 0.98.
    dv, dh = np.array([BTC, BTC]), np.array([100, 100])
    pv, ph = np.array([50_000_000, 48_000_000, 98_000_000]), np.array([110, 120, 130])
    L0 = link_deposits(dv, dh, pv, ph)
    assert sorted(set(L0.dep[L0.pay == 0].tolist())) == [0, 1]  # ambiguous without wallets
    L = link_deposits(dv, dh, pv, ph, dep_wallet=np.array([7, 8]), pay_wallet=np.array([7, -1, -1]))
    got = {(int(d), int(p)): (round(float(c), 3), int(r)) for d, p, c, r in zip(L.dep, L.pay, L.confidence, L.rule)}
    assert got[(0, 0)] == (1.0, 3)  # same_wallet
    assert got[(0, 1)] == (1.0, 0)  # what it still had to be paid back: one payout
    assert (1, 0) not in got and (1, 1) not in got
    assert got[(1, 2)][0] > 0
    # a decoy: the depositor's wallet paid outside the delay window is not linked by the rule
    L = link_deposits(dv, dh, pv, np.array([400, 120, 130]), dep_wallet=np.array([7, 8]),
                      pay_wallet=np.array([7, -1, -1]))
    assert 3 not in L.rule.tolist()
    amt = linked_amounts(L, dv, dv, pv)
    assert amt.dtype == np.int64 and amt.sum() <= pv.sum()


def test_too_many_candidate_sets_fall_back_to_the_window_share():
    rng = np.random.default_rng(1)
    pv = rng.integers(1_000_000, 30_000_000, 60)
    L = _links([BTC], [100], pv, np.full(60, 120), max_sets=4)
    assert L.status.tolist() == [2]
    assert set(L.rule.tolist()) == {2}
    inwin = pv[pv <= BTC * (1 - 0.005)]
    assert L.confidence[0] == pytest.approx(min(1.0, BTC * (1 - 0.0275) / inwin.sum()))


def test_a_payout_that_alone_pays_a_deposit_back_goes_to_it_before_any_share():
    # two ambiguous deposits (max_sets=1): A of 1 BTC, B of 2 BTC; 0.9725 BTC alone pays A back (2.75%), and B
    # could have made it too (one of its parts); the flow gives it to A, B takes the others
    pv = [97_250_000, 50_000_000, 48_000_000, 50_000_000, 46_000_000]
    L = _links([BTC, 2 * BTC], [100, 100], pv, [110, 111, 112, 113, 114], max_sets=1)
    assert L.status.tolist() == [2, 2] and set(L.rule.tolist()) == {2}
    conf = {(int(d), int(p)): c for d, p, c in zip(L.dep, L.pay, L.confidence)}
    assert conf[(0, 0)] > 0.95 and conf.get((1, 0), 0.0) < 0.05  # without the prior: 0.33 and 0.67
    # value is still shared out at most once per payout, and B is paid from the rest
    assert all(np.bincount(L.pay, weights=L.confidence) <= 1 + 1e-9)
    assert sum(c * pv[p] for (d, p), c in conf.items() if d == 1) > BTC


def test_a_coinjoin_spending_one_mixer_output_is_not_the_mixers_spend():
    # tx0 (no inputs here): out 0 to mixer address 1 (a deposit), outs 1-3 to others; tx1 spends outs 0-3 (one
    # mixer coin among four) into outs 4-7: someone else's transaction (a CoinJoin), not four payouts
    tx_in = np.array([0, 0, 4])
    tx_out = np.array([0, 4, 8])
    in_output = np.array([0, 1, 2, 3])
    out_addr = np.array([1, 11, 12, 13, 20, 21, 22, 23])
    out_value = np.full(8, 10_000_000)
    mask = np.zeros(30, bool)
    mask[1] = True
    dep, pay, _ = mixer_flows(tx_in, tx_out, in_output, out_addr, out_value, np.zeros(8, np.int8), mask)
    assert dep.tolist() == [0] and pay.tolist() == []
    # the mixer's own spend of the same coin (alone, or with more of its coins than others') pays out
    dep, pay, _ = mixer_flows(np.array([0, 0, 1]), np.array([0, 4, 5]), np.array([0]), out_addr[:5],
                              out_value[:5], np.zeros(5, np.int8), mask)
    assert pay.tolist() == [4]


def _orders(rng, n, fee_lo, fee_hi, delay_lo, delay_hi, noise):
    """n one-payout orders at a fee in fee_lo..fee_hi and a delay in delay_lo..delay_hi over 400 blocks, and
    `noise` payouts of unrelated amounts at random heights."""
    dv = rng.integers(BTC // 100, 10 * BTC, n)
    dh = rng.integers(0, 400, n)
    pv = np.concatenate([(dv * (1 - rng.uniform(fee_lo, fee_hi, n))).astype(np.int64),
                         rng.integers(BTC // 100, 10 * BTC, noise)])
    ph = np.concatenate([dh + rng.integers(delay_lo, delay_hi + 1, n), rng.integers(0, 480, noise)])
    return dv, dh, pv, ph


def test_calibration_measures_the_mixers_own_fee_and_delay():
    rng = np.random.default_rng(5)
    # a 4-5% mixer (outside the 0.5-5% default's middle) paying 10-40 blocks later, among as many chance payouts
    c = calibrate(*_orders(rng, 120, 0.04, 0.05, 10, 40, 120))
    assert c["calibrated"] and c["evidence"]["excess_pairs"] >= 8
    assert c["fee_min"] <= 0.04 and c["fee_max"] >= 0.05 and c["fee_max"] - c["fee_min"] <= 0.025
    assert 40 <= c["delay_max"] <= 72 and c["delay_min"] == 1
    # the same call is deterministic
    assert calibrate(*_orders(np.random.default_rng(5), 120, 0.04, 0.05, 10, 40, 120)) == c


def test_calibration_keeps_the_given_window_without_a_significant_peak():
    rng = np.random.default_rng(6)
    dv, dh, pv, ph = _orders(rng, 0, 0.01, 0.02, 1, 10, 300)  # chance payouts only
    dv = rng.integers(BTC // 100, 10 * BTC, 150)
    dh = rng.integers(0, 400, 150)
    c = calibrate(dv, dh, pv, ph)
    assert not c["calibrated"] and c["reason"]
    assert (c["fee_min"], c["fee_max"], c["delay_min"], c["delay_max"]) == (0.005, 0.05, 1, 144)
    assert not calibrate([], [], [], [])["calibrated"]


def test_given_fee_or_delay_bounds_turn_calibration_off():
    from chaintrace.graph.mixers import check_params

    assert check_params({})["calibrate"] is True
    assert check_params({"delay_max": 73})["calibrate"] is False
    assert check_params({"fee_min": 0.01, "calibrate": True})["calibrate"] is True
    assert check_params({"max_parts": 3})["calibrate"] is True


def test_linked_amounts_are_exact_and_capped():
    L = _links([BTC], [100], [60_000_000, 38_000_000], [110, 120])
    # a quarter of the deposit was traced: each payout carries a quarter of its value
    amt = linked_amounts(L, np.array([BTC // 4]), np.array([BTC]), np.array([60_000_000, 38_000_000]))
    assert amt.tolist() == [15_000_000, 9_500_000]
    assert amt.dtype == np.int64 and amt.sum() <= BTC // 4
    none = linked_amounts(L, np.array([BTC]), np.array([BTC]), np.array([60_000_000, 38_000_000]),
                          min_confidence=1.01)
    assert none.tolist() == [0, 0]


def test_mixer_flows_finds_deposits_and_payouts():
    # tx0: user pays mixer address 1 (out 0) and change to 5 (out 1); tx1: mixer spends out 0 -> user 7 (out 2),
    # change to mixer 2 (out 3)
    # tx2: the mixer spends its change (out 3) -> user 8 (out 4, 0.2) and fresh change 9 (out 5, 0.7);
    # tx3: spends out 5 -> user 6 (out 6)
    tx_in = np.array([0, 1, 2, 3, 4])
    tx_out = np.array([0, 2, 4, 6, 7])
    in_output = np.array([-1, 0, 3, 5])
    out_addr = np.array([1, 5, 7, 2, 8, 9, 6])
    out_value = np.array([10, 5, 9, 1, 2, 7, 6]) * 10_000_000
    mask = np.zeros(10, bool)
    mask[[1, 2]] = True
    out_type = np.zeros(7, np.int8)
    dep, pay, _ = mixer_flows(tx_in, tx_out, in_output, out_addr, out_value, out_type, mask)
    assert dep.tolist() == [0] and pay.tolist() == [2, 4, 6]  # out 5, the larger, is the reserve's change
    out_type[5] = 1  # ... unless only the smaller one has the inputs' script type
    dep, pay, _ = mixer_flows(tx_in, tx_out, in_output, out_addr, out_value, out_type, mask)
    assert pay.tolist() == [2, 5]


def test_a_payout_larger_than_the_change_is_a_payout_when_the_change_is_spent_with_the_reserve():
    tx_in = np.array([0, 0, 0, 1, 3, 4])
    tx_out = np.array([0, 1, 2, 4, 5, 6])
    # txs: 0 = funds reserve (out 0 -> addr 2), 1 = deposit (out 1 -> addr 1), 2 = payout tx spends out 1
    # -> out 2 (payout 0.8 to 7), out 3 (change 0.1 to 9); 3 = reserve spends out 3 + out 0 -> out 4 (to 8);
    # 4 = the customer spends the payout out 2 -> out 5 (to 6)
    in_output = np.array([1, 3, 0, 2])
    out_addr = np.array([2, 1, 7, 9, 8, 6])
    out_value = np.array([5, 9, 8, 1, 5, 8]) * 10_000_000
    out_spender_tx = np.array([3, 2, 4, 3, -1, -1])
    out_type = np.zeros(6, np.int8)
    mask = np.zeros(10, bool)
    mask[[1, 2]] = True
    # without the spenders the larger output is taken for the change and the payout is lost
    dep, pay, _ = mixer_flows(tx_in, tx_out, in_output, out_addr, out_value, out_type, mask)
    assert 1 in dep.tolist() and 2 not in pay.tolist()
    dep, pay, wide = mixer_flows(tx_in, tx_out, in_output, out_addr, out_value, out_type, mask,
                                 out_spender_tx=out_spender_tx)
    assert 1 in dep.tolist() and pay.tolist() == [2, 4]
    assert wide[9] and not wide[7]


def test_a_payout_spent_into_a_new_order_is_not_taken_for_the_reserves_change():
    # txs: 0 = funds the reserve (out 0 -> addr 2); 1 = a deposit (out 1 -> deposit addr 1); 2 = the reserve
    # spends out 0 -> payout out 2 (0.6 to 7) and its change out 3 (0.3 to 9); 3 = the customer spends the
    # payout into a new order (out 4 -> fresh deposit addr 3); 4 = the reserve spends its change out 3 -> payout
    # out 5 (to 8) and change out 6 back to its reserve address 2 (which so receives twice)
    tx_in = np.array([0, 0, 1, 2, 3, 4])
    tx_out = np.array([0, 1, 2, 4, 5, 7])
    in_output = np.array([-1, 0, 2, 3])
    out_addr = np.array([2, 1, 7, 9, 3, 8, 2])
    out_value = np.array([100, 90, 60, 30, 59, 10, 19]) * 1_000_000
    out_spender_tx = np.array([2, -1, 3, 4, -1, -1, -1])
    out_type = np.zeros(7, np.int8)
    mask = np.zeros(10, bool)
    mask[[1, 2, 3]] = True
    dep, pay, wide = mixer_flows(tx_in, tx_out, in_output, out_addr, out_value, out_type, mask,
                                 out_spender_tx=out_spender_tx)
    # paying the single-use deposit address 3 is the customer's new order, no hint that out 2 is the reserve's;
    # paying the reused reserve address 2 is: out 3, the smaller, is the change and out 2 a payout
    assert dep.tolist() == [1, 4] and pay.tolist() == [2, 5]
    assert wide[9] and not wide[7]


def _mixer_chain(d, txs: int, seed: int, cluster_config=None):
    """A simulated mixer-scenario chain in `d`, ingested and clustered: (sim dir, workspace, truth)."""
    from chaintrace import Workspace
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.graph.cluster import build_clusters
    from chaintrace.intel import load_tags
    from chaintrace.sim import load_truth, simulate_btc

    sim = d / "sim"
    simulate_btc(sim, txs=txs, seed=seed, scenario="mixer", network="main", overwrite=True)
    ws = Workspace(d / "ws")
    ingest_block_files(ws, [sim], pow_rules="target-only")
    build_clusters(ws, cluster_config, tags=load_tags(None, "btc", [sim / "tags.yaml"]))
    return sim, ws, load_truth(sim)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A simulated mixer-scenario chain, ingested and clustered."""
    return _mixer_chain(tmp_path_factory.mktemp("mix"), 4000, 11)


def test_trace_through_a_simulated_mixer_with_and_without_linking(mixed):
    from chaintrace.app.evaluate import incident_seeds, score
    from chaintrace.trace import trace
    from chaintrace.trace.report import TraceReport, check_invariant

    sim, ws, truth = mixed
    inc = truth["incidents"][0]
    seeds = incident_seeds(inc)
    kw = dict(policy="fifo", tags=[sim / "tags.yaml"], registry=False, clusters=True)
    off = trace(ws, seeds, **kw)
    on = trace(ws, seeds, through_mixers=True, **kw)
    assert off.probabilistic is None
    # the deterministic part is the same with and without linking
    assert off.totals("BTC") == on.totals("BTC")
    sec = on.probabilistic
    in_mixer = sum(s.amount for s in on.sinks if s.category == "mixing_service")
    assert in_mixer > 0
    m = sec["mixers"][0]
    assert int(m["traced_in"]) == in_mixer == int(m["linked_out"]) + int(m["held"])
    sub = sec["trace"]
    assert sub is not None and int(m["linked_out"]) > 0
    t = sub.totals("BTC")
    assert t["seeded"] == int(m["linked_out"]) == t["sinks"] + t["holdings"] + t["stopped"] + t["fees"]
    check_invariant(on)
    assert sec["links"] and all(0 <= x["confidence"] <= 1 and int(x["amount"]) > 0 for x in sec["links"])
    assert sum(int(x["amount"]) for x in sec["links"]) >= int(m["linked_out"])  # flooring only loses
    # linked value reaches true cash-outs of mixer payouts: recall counting them rises
    s_off, s_on = score(off, inc), score(on, inc)
    assert s_on["recall_all"] > s_off["recall_all"]
    # JSON round trip keeps the section (and its invariant)
    back = TraceReport.from_dict(json.loads(on.to_json()))
    assert back.probabilistic["trace"].totals("BTC") == t
    check_invariant(back)
    # a broken balance is caught
    back.probabilistic["mixers"][0]["held"] = str(int(m["held"]) + 1)
    with pytest.raises(Exception, match="held"):
        check_invariant(back)
    # the text and HTML reports show the section apart
    from chaintrace.report.html import render_html
    from chaintrace.report.text import to_text

    assert "PROBABILISTIC" in to_text(on) and "PROBABILISTIC" not in to_text(off)
    assert "Probabilistic: through custodial mixers" in render_html([on])


def test_post_mix_evidence_links_the_launderers_payouts_and_keeps_conservation(mixed):
    """Payouts whose later spending pays the traced side's exchange accounts (``postmix:deposit_reuse``) or
    shows one owner receiving several orders' payouts (``postmix:common_owner``) are linked outright."""
    from chaintrace.app.evaluate import incident_seeds, score
    from chaintrace.trace import trace
    from chaintrace.trace.report import check_invariant

    sim, ws, truth = mixed
    inc = truth["incidents"][0]
    kw = dict(policy="fifo", tags=[sim / "tags.yaml"], registry=False, clusters=True, through_mixers=True)
    off = trace(ws, incident_seeds(inc), mixer_params={"postmix": False}, **kw)
    on = trace(ws, incident_seeds(inc), **kw)
    assert off.totals("BTC") == on.totals("BTC")  # the deterministic part is unchanged
    assert on.probabilistic["params"]["postmix"] is True and off.probabilistic["params"]["postmix"] is False
    assert off.probabilistic["mixers"][0]["postmix"] is None
    assert not [x for x in off.probabilistic["links"] if x["rule"].startswith("postmix:")]
    post = [x for x in on.probabilistic["links"] if x["rule"].startswith("postmix:")]
    assert post and all(0 < x["confidence"] <= 1 for x in post)
    # the evidence: the account addresses each payout's owner paid (for deposit_reuse: one the trace reached)
    assert all(x["postmix_accounts"] and all(x["postmix_accounts"]) for x in post if x["rule"].endswith("reuse"))
    reached = {s.address for s in on.sinks}
    assert all(set(x["postmix_accounts"]) & reached for x in post if x["rule"].endswith("reuse"))
    # every payout linked by post-mix evidence is one the launderer received (simulator truth)
    launderer = {f"{p['txid']}:{p['vout']}" for p in inc["mixer_payouts"]}
    assert {x["payout"] for x in post} <= launderer
    m = on.probabilistic["mixers"][0]
    pm = m["postmix"]
    assert pm["payouts_deposit_reuse"] + pm["payouts_common_owner"] > 0 and pm["traced_links_postmix"] == len(
        [x for x in post if x["mixer"] == m["actor"]])
    # conservation: traced in = linked out + held; linked out = the nested trace's seeded total
    assert int(m["traced_in"]) == int(m["linked_out"]) + int(m["held"]) and int(m["held"]) >= 0
    t = on.probabilistic["trace"].totals("BTC")
    assert t["seeded"] == int(m["linked_out"]) == t["sinks"] + t["holdings"] + t["stopped"] + t["fees"]
    check_invariant(on)
    assert score(on, inc)["recall_all"] > score(off, inc)["recall_all"]


def test_post_mix_rules_on_owner_groups():
    from chaintrace.detect.postmix import COMMON_OWNER, DEPOSIT_REUSE, traced_side
    from chaintrace.graph.mixers import owner_groups

    # walks: payouts 0 and 1 pay account 50; 1 and 2 meet in transaction 7 (co-spent); 3 alone
    g = owner_groups([[50], [50], [], []], [[5], [6, 7], [7], [8]])
    assert g.tolist() == [0, 0, 0, 3]
    kw = dict(fee_min=0.01, delay_min=1, delay_max=50, max_parts=5)
    dv, dh = np.array([10 * BTC, 10 * BTC, 3 * BTC]), np.array([100, 110, 100])
    traced = np.array([True, True, False])
    pv = np.array([4 * BTC, 4 * BTC, 4 * BTC, BTC])
    ph = np.array([120, 130, 140, 125])
    none = np.zeros(4, bool)
    # 12 BTC in one group: more than any one deposit pays back, within what the traced ones do
    assert traced_side(g, none, pv, ph, dv, dh, traced, **kw).tolist() == [COMMON_OWNER] * 3 + [0]
    # a group one deposit can explain (an ordinary customer's order) stays unlinked
    assert traced_side(np.array([0, 0, 2, 3]), none, pv, ph, dv, dh, traced, **kw).tolist() == [0, 0, 0, 0]
    # more than the traced deposits could pay back: someone else's
    assert traced_side(g, none, pv * 2, ph, dv, dh, traced, **kw).tolist() == [0, 0, 0, 0]
    # a walk that pays an account the deterministic trace reached anchors its whole group
    anch = np.array([False, False, False, True])
    assert traced_side(np.array([0, 0, 2, 0]), anch, pv, ph, dv, dh, traced, **kw).tolist() == \
        [COMMON_OWNER, COMMON_OWNER, 0, DEPOSIT_REUSE]


def test_a_post_mix_linked_payout_is_the_traced_deposits_and_no_other_deposits():
    # two deposits of 1 BTC at 100, the first traced; the 0.5 BTC payout is the traced side's by post-mix
    # evidence: linked to deposit 0 outright (rule 4), and no candidate of deposit 1, which gets the 0.98 BTC one
    dv, dh = np.array([BTC, BTC]), np.array([100, 100])
    pv, ph = np.array([50_000_000, 48_000_000, 98_000_000]), np.array([110, 120, 130])
    L = link_deposits(dv, dh, pv, ph, side_dep=np.array([True, False]), side_pay=np.array([3, 0, 0]))
    got = {(int(d), int(p)): (round(float(c), 3), int(r)) for d, p, c, r in zip(L.dep, L.pay, L.confidence, L.rule)}
    assert got[(0, 0)] == (1.0, 4)
    assert (1, 0) not in got and got[(0, 1)] == (1.0, 0) and got[(1, 2)] == (1.0, 0)
    L = link_deposits(dv, dh, pv, ph, side_dep=np.array([True, False]), side_pay=np.array([1, 0, 0]))
    assert L.rule[(L.dep == 0) & (L.pay == 0)].tolist() == [5]  # deposit_reuse
    # 60 traced deposits that could all have made the payout share it (1/60 each, below the usual 0.02 minimum
    # confidence, which does not apply to this allocation): the payout carries its whole value, no more
    dv, dh = np.full(60, BTC), np.full(60, 100)
    L = link_deposits(dv, dh, pv[:1], ph[:1], side_dep=np.ones(60, bool), side_pay=np.array([3]))
    assert set(L.rule.tolist()) == {4} and np.allclose(L.confidence, 1 / 60)
    amt = linked_amounts(L, dv, dv, pv[:1], min_confidence=0.02)
    assert 49_999_900 <= amt.sum() <= 50_000_000


@pytest.fixture(scope="module")
def mixed_large(tmp_path_factory):
    """A 20,000-transaction mixer-scenario chain (seed 201): enough orders for the mixer's fee to show."""
    from chaintrace.graph.cluster import ClusterConfig

    return _mixer_chain(tmp_path_factory.mktemp("mix-large"), 20_000, 201, ClusterConfig.parse(activation_heights=False))


def test_trace_through_a_calibrated_mixer_reaches_the_cash_outs(mixed_large):
    from chaintrace.app.evaluate import incident_seeds, score, sink_entities
    from chaintrace.trace import trace
    from chaintrace.trace.report import check_invariant

    sim, ws, truth = mixed_large
    inc = truth["incidents"][0]
    r = trace(ws, incident_seeds(inc), policy="fifo", tags=[sim / "tags.yaml"], registry=False, clusters=True,
              through_mixers=True)
    check_invariant(r)
    m = r.probabilistic["mixers"][0]
    cal = m["calibration"]
    fee = truth["mixer"]["fee_rate"]
    # the mixer's own fee measured from its flows: the band holds the mixer's rate and is narrower than the default
    assert cal["calibrated"] and cal["fee_min"] <= fee <= cal["fee_max"] and cal["fee_max"] - cal["fee_min"] < 0.045
    assert int(m["traced_in"]) == int(m["linked_out"]) + int(m["held"])
    s = score(r, inc, sink_entities(sim, r))
    assert s["recall_all"] >= 0.6 and s["precision"] >= 0.85, s  # seed 201: 0.91 / 0.97 (0.73 / 0.93 without post-mix evidence)
    # bounds given: no calibration, the given window is used
    r2 = trace(ws, incident_seeds(inc), policy="fifo", tags=[sim / "tags.yaml"], registry=False, clusters=True,
               through_mixers=True, mixer_params={"delay_max": 73})
    assert r2.probabilistic["mixers"][0]["calibration"] is None
    assert r2.probabilistic["params"]["calibrate"] is False


def test_detect_mixer_links_cli_and_trace_cli(mixed):
    from chaintrace.cli import main

    sim, ws, truth = mixed
    tags = sim / "tags.yaml"
    import yaml

    doc = yaml.safe_load(tags.read_text())
    reserve = next(t["address"] for t in doc["tags"] if "mixer_reserve" in str(t.get("context")))
    deposit = next(t["address"] for t in doc["tags"] if "mixer_deposit" in str(t.get("context")))
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "mixer-links", "--mixer", reserve,
                                  "--mixer", deposit, "--format", "json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["deposits"] > 0 and res["payouts"] > 0 and res["probabilistic"] is True
    # every launderer order's true payouts: how many are among the candidate links of its deposit
    orders = [o for o in truth["mixer"]["order_list"] if o["customer"] == "launderer" and o["payouts"]]
    links = {(x["deposit"], x["payout"]) for x in res["links"]}
    hit = sum((f"{o['deposit']['txid']}:{o['deposit']['vout']}", f"{p['txid']}:{p['vout']}") in links
              for o in orders for p in o["payouts"])
    assert hit > 0
    # no --mixer and no clusters to recognise one by behaviour: a user error naming the option
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "mixer-links", "--no-clusters"])
    assert r.exit_code == 2 and "--mixer" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "mixer-links", "--mixer", reserve,
                                  "--fee-min", "0.2", "--fee-max", "0.1"])
    assert r.exit_code == 2 and "fee" in r.output
    seeds = [f"{o['txid']}:{o['vout']}" for o in truth["incidents"][0]["stolen"]["outputs"]]
    args = ["--data", str(ws.path), "trace", "--tags", str(tags), "--no-registry", "--policy", "fifo",
            "--through-mixers", "--format", "json"]
    for s in seeds:
        args += ["--from", s]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["probabilistic"]["mixers"] and d["probabilistic"]["trace"]["sinks"]
    assert d["probabilistic"]["params"]["postmix"] is True and d["probabilistic"]["mixers"][0]["postmix"]
    r = CliRunner().invoke(main, args + ["--no-mixer-postmix"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["probabilistic"]["params"]["postmix"] is False and d["probabilistic"]["mixers"][0]["postmix"] is None
    assert not [x for x in d["probabilistic"]["links"] if x["rule"].startswith("postmix:")]


def test_the_documented_mixer_example_runs_as_written(tmp_path, monkeypatch):
    from tests.conftest import doc_commands, run_commands

    cmds = doc_commands("detection.md", r"## Custodial-mixer linking")
    assert [c[2] for c in cmds] == ["simulate", "cluster", "detect", "trace"]
    monkeypatch.chdir(tmp_path)
    outs = run_commands(cmds)
    d = json.loads(outs[2])
    # what the page says: 39 addresses with clusters, 24 deposits, 58 payouts, most deposits ambiguous
    assert (d["mixer"]["addresses"], d["deposits"], d["payouts"]) == (39, 24, 58)
    assert d["deposits_ambiguous"] > d["deposits_linked"] and d["links"]
    assert "PROBABILISTIC" in outs[3] and "linked mixer payouts" in outs[3]


def _wallet_chain(split: bool = False):
    """Purpose-built chain: a mixer-like service M (24 customers each paying one fresh deposit address, the
    deposit addresses swept in 3-input sweeps into its reserve, one payout + change per payment) and an
    exchange-like one X (8 customers depositing 3 times each to their own reused address, swept, then
    batched withdrawals). Returns the graph arrays and the wallet per address."""
    tx_in, tx_out, in_output, out_addr, out_value = [0], [0], [], [], []

    def tx(ins, outs):
        in_output.extend(ins)
        tx_in.append(len(in_output))
        first = len(out_addr)
        for a, v in outs:
            out_addr.append(a)
            out_value.append(v)
        tx_out.append(len(out_addr))
        return list(range(first, len(out_addr)))

    wallet = {}
    nxt = [0]

    def addr(w):
        a = nxt[0]
        nxt[0] += 1
        wallet[a] = w
        return a

    M, X = 1000, 2000
    # customers' coins (each customer its own wallet), from nowhere
    reserve = addr(M)
    dep_outs = []
    for c in range(24):
        coin = tx([], [(addr(c), 5 * BTC)])[0]
        dep_outs.append(tx([coin], [(addr(M + 1 + c // 3), BTC), (addr(c), 4 * BTC - 1000)])[0])
    # sweeps of three deposits each into the reserve (split: the last four into a second reserve wallet,
    # which the first pays its change to once: a reserve whose change was spent alone, no common cluster)
    reserve2 = addr(M + 50) if split else reserve
    res_coins = []
    for k in range(8):
        res_coins += tx(dep_outs[3 * k:3 * k + 3], [(reserve if k < 4 else reserve2, 3 * BTC - 1000)])
    # payouts: one payout and the change back to the reserve
    coin = res_coins[0]
    for c in range(24):
        r = reserve if c < 12 else reserve2
        if c == 12 and split:
            coin = tx([coin], [(addr(100 + c), BTC // 2), (reserve2, BTC)])[1]
        elif c % 3 == 0 and c:
            coin = tx([coin, res_coins[c // 3]], [(addr(100 + c), BTC // 2), (r, 3 * BTC)])[1]
        else:
            coin = tx([coin], [(addr(100 + c), BTC // 2), (r, BTC)])[1]
    # the exchange: 8 customers, each its own deposit address used 3 times, swept, batched withdrawals
    hot = addr(X)
    for c in range(8):
        d = addr(X + 1 + c)
        outs = []
        for _ in range(3):
            coin = tx([], [(addr(200 + c), 2 * BTC)])[0]
            outs.append(tx([coin], [(d, BTC), (addr(200 + c), BTC - 1000)])[0])
        hc = tx(outs, [(hot, 3 * BTC - 1000)])[0]
        tx([hc], [(addr(300 + 3 * c + j), BTC // 2) for j in range(4)] + [(hot, BTC - 1000)])
    # the sweeps make a wallet of the reserve and deposit addresses only through the rule, not the clusters:
    # here wallets are given directly (the deposit addresses of one sweep share a wallet)
    w = np.array([wallet[a] for a in range(nxt[0])], np.int64)
    return (np.array(tx_in), np.array(tx_out), np.array(in_output, np.int64), np.array(out_addr),
            np.array(out_value, np.int64), w, reserve, hot)


def test_a_mixer_is_recognised_by_behaviour_and_an_exchange_is_not():
    from chaintrace.detect.mixers import detect_mixers

    tx_in, tx_out, in_output, out_addr, out_value, w, reserve, hot = _wallet_chain()
    det = detect_mixers(tx_in, tx_out, in_output, out_addr, out_value, w)
    assert det.wallet.tolist() == [w[reserve]]
    r = det.row(0)
    f = r["features"]
    assert r["kind"] == "mixer" and 0 < r["confidence"] <= 1
    assert (f["deposits"], f["depositors"], f["distinct"], f["single_use"], f["unbatched"]) == (24, 24, 1.0, 1.0, 1.0)
    assert f["recipients"] >= 20 and r["thresholds"]["min_depositors"] == 20
    # the deposit wallets belong with the reserve
    assert set(np.flatnonzero(det.entity_of[w] == w[reserve]).tolist()) >= {reserve}
    # the exchange (reused deposit addresses, batched withdrawals) is not a mixer, even with low thresholds
    low = detect_mixers(tx_in, tx_out, in_output, out_addr, out_value, w, min_depositors=3, min_recipients=3)
    assert w[hot] not in low.wallet.tolist() and w[reserve] in low.wallet.tolist()
    with pytest.raises(ValueError, match="unknown thresholds"):
        detect_mixers(tx_in, tx_out, in_output, out_addr, out_value, w, min_nothing=1)
    # a reserve split over two wallets (12 deposits each, under the 20 of the rule): one service of 24
    tx_in, tx_out, in_output, out_addr, out_value, w, reserve, hot = _wallet_chain(split=True)
    det = detect_mixers(tx_in, tx_out, in_output, out_addr, out_value, w)
    assert len(det) == 1 and det.row(0)["features"]["deposits"] == 24
    assert det.entity_of[w[reserve]] == det.entity_of[1050] == det.wallet[0]


def test_trace_through_an_untagged_mixer_recognised_by_behaviour(mixed, tmp_path):
    import yaml

    from chaintrace.app.evaluate import incident_seeds, score
    from chaintrace.trace import trace
    from chaintrace.trace.report import check_invariant

    sim, ws, truth = mixed
    doc = yaml.safe_load((sim / "tags.yaml").read_text())
    doc["tags"] = [t for t in doc["tags"] if t.get("category") != "mixing_service"]
    untagged = tmp_path / "no-mixer-tags.yaml"
    untagged.write_text(yaml.safe_dump(doc))
    inc = truth["incidents"][0]
    kw = dict(policy="fifo", tags=[untagged], registry=False, clusters=True)
    off = trace(ws, incident_seeds(inc), **kw)
    on = trace(ws, incident_seeds(inc), through_mixers=True, **kw)
    m = on.probabilistic["mixers"][0]
    assert m["entity"].startswith("detected custodial mixer ")
    d = m["detected"]
    assert d["detected"] is True and 0 < d["confidence"] <= 1 and d["features"]["depositors"] >= 20
    assert "no tag names it" in d["source"]
    # the detected mixer is a sink of the deterministic trace, and linking follows its payouts
    assert any(s.category == "mixing_service" for s in on.sinks)
    assert int(m["traced_in"]) == int(m["linked_out"]) + int(m["held"]) and int(m["linked_out"]) > 0
    check_invariant(on)
    assert score(on, inc)["recall_all"] > score(off, inc)["recall_all"]
    # with the mixer tagged, no detection is added for it
    tagged = trace(ws, incident_seeds(inc), policy="fifo", tags=[sim / "tags.yaml"], registry=False,
                   clusters=True, through_mixers=True)
    assert all(x["detected"] is None for x in tagged.probabilistic["mixers"])


def test_detect_mixer_links_without_a_mixer_uses_the_recognised_one(mixed):
    from chaintrace.cli import main

    sim, ws, truth = mixed
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "mixer-links", "--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["mixer"]["detected"]["confidence"] > 0 and d["mixer"]["addresses"] == 51
    assert d["deposits"] == 33 and d["links"]
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "mixer-links"])
    assert r.exit_code == 0 and "recognised by behaviour" in r.output


def test_detect_services_lists_the_recognised_mixer(mixed):
    from chaintrace.cli import main

    sim, ws, truth = mixed
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "services", "--kind", "mixer", "--format",
                                  "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["by_kind"]["mixer"] == d["count"] == 1
    row = d["detections"][0]
    assert row["kind"] == "mixer" and row["addresses"] == 51 and row["features"]["distinct"] >= 0.85
    assert d["thresholds"]["mixer"]["min_depositors"] == 20
    # the simulator's mixer entity: the recognised wallet is its reserve (truth, not the tags)
    from chaintrace.sim import address_entities

    t = address_entities(sim)
    ent = dict(zip(t["address"].to_pylist(), t["entity"].to_pylist()))
    assert ent[row["address"]] == truth["mixer"]["entity"]
    text = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "services", "--kind", "mixer"])
    assert text.exit_code == 0 and "mixer" in text.output


def test_the_documented_recognised_mixer_example_runs_as_written(tmp_path, monkeypatch):
    from tests.conftest import doc_commands, run_commands

    cmds = doc_commands("detection.md", r"### Custodial mixers recognised by behaviour")
    assert [c[2] for c in cmds] == ["simulate", "cluster", "detect", "detect", "trace"]
    monkeypatch.chdir(tmp_path)
    outs = run_commands(cmds)
    assert "mixer" in outs[2] and "1 service-like" in outs[2]
    d = json.loads(outs[3])
    # what the page says: 51 addresses, 33 deposits from 33 payers, detected with its confidence
    assert d["mixer"]["detected"]["detected"] is True and d["mixer"]["detected"]["confidence"] > 0
    assert (d["mixer"]["addresses"], d["deposits"], d["mixer"]["detected"]["features"]["depositors"]) == (51, 33, 33)
    t = json.loads(outs[4])
    assert t["probabilistic"]["mixers"][0]["entity"].startswith("detected custodial mixer ")
    assert t["probabilistic"]["mixers"][0]["detected"]["confidence"] > 0
