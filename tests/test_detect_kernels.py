"""The numba/vectorised flow detectors (peel chains, structuring, pass-through and the columnar
`chaintrace.graph.detections`) give exactly what the previous per-row implementation gave
(tests/_detect_reference.py, main before the kernels): on random purpose-built graphs full of peel-shaped,
near-equal and quickly spent outputs, and through `detect()` on a simulated chain (every kind, with --address
filters and a limit)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from chaintrace.detect import flows, peel
from chaintrace.graph import detections as D
from chaintrace.graph.btc import address_strings, load_btc_graph
from tests import _detect_reference as R


def random_graph(seed: int, n_tx: int = 3000) -> SimpleNamespace:
    """A random chain as graph arrays: coinbases, then transactions spending random earlier unspent outputs;
    most have 1 input and 2 outputs (peel-shaped), some many equal-ish outputs; addresses reused a lot."""
    rng = np.random.default_rng(seed)
    tx_in, tx_out, in_output, out_tx, out_value, out_addr, cb, height = [0], [0], [], [], [], [], [], []
    unspent: list[int] = []
    for t in range(n_tx):
        coinbase = t < 20 or rng.random() < 0.02 or not unspent
        n_in = 0 if coinbase else int(min(len(unspent), rng.choice([1, 1, 1, 1, 2, 3, 12])))
        ins = [unspent.pop(len(unspent) - 1 - int(rng.integers(min(30, len(unspent)))) if rng.random() < 0.7
                           else int(rng.integers(len(unspent)))) for _ in range(n_in)]
        total = 50 * 10**8 if coinbase else sum(out_value[o] for o in ins)
        kind = rng.random()
        if kind < 0.6:
            n_out = 2
        elif kind < 0.75:
            n_out = int(rng.integers(5, 14))
        else:
            n_out = int(rng.integers(1, 4))
        if kind >= 0.6 and kind < 0.75 and rng.random() < 0.5:  # near-equal split
            base = max(1, total // (n_out + 1))
            vals = [int(base * (1 + rng.uniform(-0.06, 0.06))) for _ in range(n_out)]
        else:
            cuts = np.sort(rng.integers(0, max(total, 1), n_out - 1))
            vals = np.diff(np.r_[0, cuts, total]).tolist()
        if rng.random() < 0.05:
            vals[0] = vals[1 % n_out] if n_out > 1 else vals[0]  # ties between the two outputs
        fee = min(1000, max(0, total - sum(vals)))
        vals[-1] = max(0, vals[-1] - fee) if sum(vals) > total else vals[-1]
        for o in ins:
            in_output.append(o)
        for v in vals:
            unspent.append(len(out_value))
            out_tx.append(t)
            out_value.append(int(v))
            out_addr.append(int(rng.integers(-1, n_tx // 3)) if rng.random() < 0.7 else int(rng.integers(0, 40)))
        tx_in.append(len(in_output))
        tx_out.append(len(out_value))
        cb.append(coinbase)
        height.append(t // 7)
    in_output_a = np.array(in_output, np.int64)
    in_tx = np.repeat(np.arange(n_tx, dtype=np.int64), np.diff(tx_in))
    sp = np.full(len(out_value), -1, np.int64)
    sp[in_output_a] = in_tx
    return SimpleNamespace(tx_in=np.array(tx_in, np.int64), tx_out=np.array(tx_out, np.int64),
                           in_output=in_output_a, in_tx=in_tx, out_tx=np.array(out_tx, np.int64),
                           out_value=np.array(out_value, np.int64), out_addr=np.array(out_addr, np.int64),
                           out_spender_tx=sp, tx_coinbase=np.array(cb, np.bool_), tx_height=np.array(height, np.int64),
                           n_tx=n_tx, n_addresses=n_tx // 3)


@pytest.mark.parametrize("seed", range(6))
def test_peel_chains_equal_the_reference(seed):
    g = random_graph(seed)
    looks = peel.looks_like_peeling_chain(g)
    for min_length in (1, 2, 3, 5):
        new = peel.peel_chains(looks, g.tx_out, g.out_value, g.out_addr, g.out_spender_tx, min_length=min_length)
        ref = R.peel_chains(looks, g.tx_out, g.out_value, g.out_addr, g.out_spender_tx, min_length=min_length)
        assert new == ref
        if min_length == 2:
            assert len(new) > 10 and max(c["length"] for c in new) >= 4  # the test graph has real chains


@pytest.mark.parametrize("seed", range(6))
def test_structuring_equals_the_reference(seed):
    g = random_graph(seed)
    for mo, tol, share in ((5, 0.05, 0.8), (2, 0.1, 0.5), (10, 0.01, 1.0), (1, 0.0, 0.0)):
        new = flows.structuring(g.tx_out, g.out_value, g.tx_coinbase, min_outputs=mo, tolerance=tol, min_share=share)
        ref = R.structuring(g.tx_out, g.out_value, g.tx_coinbase, min_outputs=mo, tolerance=tol, min_share=share)
        assert new == ref
        if (mo, tol) == (5, 0.05):
            assert new  # near-equal splits are there to be found


def test_structuring_median_of_an_even_count_truncates_like_numpy():
    tx_out = np.array([0, 6], np.int64)
    v = np.array([7, 8, 8, 9, 9, 10], np.int64)  # median 8.5 -> 8
    new = flows.structuring(tx_out, v, np.zeros(1, bool), min_outputs=5, tolerance=0.2, min_share=0.5)
    assert new == R.structuring(tx_out, v, np.zeros(1, bool), min_outputs=5, tolerance=0.2, min_share=0.5)
    assert new[0]["median"] == 8 and new[0]["near_equal"] == 5


@pytest.mark.parametrize("seed", range(6))
def test_pass_through_equals_the_reference(seed):
    g = random_graph(seed)
    found = 0
    for hold, rec, share in ((1, 1, 1.0), (3, 2, 0.5), (0, 1, 0.0)):
        kw = {"max_hold": hold, "min_receipts": rec, "min_share": share}
        args = (g.out_tx, g.out_addr, g.out_value, g.out_spender_tx, g.tx_height)
        new = flows.pass_through(*args, **kw)
        assert new == R.pass_through(*args, **kw)
        found += len(new)
        some = np.array([3, 7, 11, 10**6], np.int64)
        assert flows.pass_through(*args, addresses=some, **kw) == R.pass_through(*args, addresses=some, **kw)
    assert found > 10
    empty = np.zeros(0, np.int64)
    assert flows.pass_through(empty, empty, empty, empty, g.tx_height) == []


@pytest.fixture(scope="module")
def sim_ws(tmp_path_factory):
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.sim import simulate_btc
    from chaintrace.store.workspace import Workspace

    root = tmp_path_factory.mktemp("kernels")
    simulate_btc(root / "sim", txs=3000, seed=11, scenario="dprk")
    ws = Workspace(root / "data")
    ingest_block_files(ws, [root / "sim"], pow_rules="target-only")
    return ws


PARAMS = {"peel-chain": {"min_length": 2}, "fan-out": {"min_outputs": 3}, "fan-in": {"min_inputs": 3},
          "structuring": {"min_outputs": 3, "tolerance": 0.1, "min_share": 0.6},
          "pass-through": {"max_hold_blocks": 2, "min_receipts": 1, "min_share": 0.5},
          "dormancy": {"min_dormant_blocks": 20}}


@pytest.mark.parametrize("kind", list(D.KINDS))
def test_detect_on_a_simulated_chain_equals_the_reference(sim_ws, kind):
    g = load_btc_graph(sim_ws)
    p = {**D.KINDS[kind], **PARAMS[kind]}
    ref = R.raw(g, kind, p, None)
    assert len(ref) > 3, kind  # the parameters are loose enough that every detector finds something
    res = D.detect(sim_ws, kind, **PARAMS[kind])
    assert res["count"] == len(ref)
    assert res["detections"] == R.resolve(sim_ws, g, ref)
    top = D.detect(sim_ws, kind, limit=2, **PARAMS[kind])
    assert top["count"] == len(ref) and top["detections"] == res["detections"][:2]
    # --address: the reference filters the full list by each detection's addresses
    counts: dict[int, int] = {}
    for d in ref:
        for a in set(d["addresses"]):
            if a >= 0:
                counts[a] = counts.get(a, 0) + 1
    busy = sorted(counts, key=lambda a: (-counts[a], a))[:2] + sorted(counts)[:1]
    names = address_strings(sim_ws, busy)
    for a in busy:
        ra = R.raw(g, kind, p, a)
        want = [d for d in ra if a in d["addresses"]]
        got = D.detect(sim_ws, kind, address=names[a], **PARAMS[kind])
        assert got["count"] == len(want) >= 1
        assert got["detections"] == R.resolve(sim_ws, g, want)


def test_detect_services_rows_and_limit_equal_the_full_answer(sim_ws):
    from chaintrace.graph.services import btc_detections, detect_services

    g = load_btc_graph(sim_ws)
    det = btc_detections(g, min_counterparties=3, min_sweeps=2)
    assert len(det) > 3
    idx = np.arange(len(det))[::-1]
    assert det.rows(idx) == [det.row(int(i)) for i in idx]  # column-wise rows: the same dicts as row()
    full = detect_services(sim_ws, "btc", min_counterparties=3, min_sweeps=2)
    top = detect_services(sim_ws, "btc", limit=3, min_counterparties=3, min_sweeps=2)
    assert top["count"] == full["count"] == len(full["detections"]) > 3
    assert top["detections"] == full["detections"][:3] and top["by_kind"] == full["by_kind"]


@pytest.mark.parametrize("seed", range(4))
def test_grouping_kernels_equal_the_sorts_they_replace(seed):
    from chaintrace.detect.services import _count_pairs, _pairs, _uniq

    rng = np.random.default_rng(seed)
    n = 5000
    a = rng.integers(0, 300 if seed % 2 else 5, n).astype(np.int64)  # many small groups / a few huge ones
    b = rng.integers(0, 50, n).astype(np.int64)
    assert np.array_equal(flows.group_order(a, np.int64(300)), np.argsort(a, kind="stable"))
    keys = np.where(rng.random(n) < 0.3, -1, a)
    assert np.array_equal(flows.group_order(keys, np.int64(300)),
                          np.flatnonzero(keys >= 0)[np.argsort(keys[keys >= 0], kind="stable")])
    u = _uniq(a * 51 + b)
    pa, pb = _pairs(a, b)
    assert np.array_equal(pa, u // 51) and np.array_equal(pb, u % 51)
    b2 = np.where(rng.random(n) < 0.2, -1, b)
    m = (a >= 0) & (b2 >= 0) & (a != b2)
    old = np.bincount(_uniq(a[m] * 51 + b2[m]) // 51, minlength=400)[:400]
    assert np.array_equal(_count_pairs(a, b2, 400), old)
