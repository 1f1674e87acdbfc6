"""The numba propagation engine against the pure-Python reference (pure policy functions + a heap), on
random transaction graphs: every tainted output, its kind, amount, hop and segments, the seeded and fee
totals must be identical, and value must be conserved exactly, for every policy, fee mode and limit."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from chaintrace.graph.btc import BtcGraph
from chaintrace.trace import kernels as K
from chaintrace.trace.policies import normalize
from chaintrace.trace.reference import ArrayView, propagate_reference

NULLDATA = 9


def random_graph(seed: int, n_tx: int = 400, n_addr: int = 60, big: bool = False) -> BtcGraph:
    """A random valid UTXO graph in chain order: coinbases, spends of 1-4 earlier unspent outputs (some
    from outside the data), 1-4 outputs (some OP_RETURN), fees, address reuse."""
    rng = np.random.default_rng(seed)
    tx_out, tx_in = [0], [0]
    out_value, out_addr, out_type, out_tx, in_output, in_tx = [], [], [], [], [], []
    unspent: list[int] = []
    unit = 10**12 if big else 1000
    for t in range(n_tx):
        spend: list[int] = []
        if t >= 3 and unspent and rng.random() < 0.9:
            k = int(rng.integers(1, min(4, len(unspent)) + 1))
            pick = rng.choice(len(unspent), size=k, replace=False)
            spend = [unspent[i] for i in sorted(pick, reverse=True)]
            for i in sorted(pick, reverse=True):
                unspent.pop(i)
            rng.shuffle(spend)
        outside = len(spend) > 0 and rng.random() < 0.05
        total = sum(out_value[o] for o in spend)
        if outside:
            total += int(rng.integers(1, 5 * unit))
        for o in spend:
            in_output.append(o)
            in_tx.append(t)
        if outside or not spend:
            in_output.append(-1)
            in_tx.append(t)
        if not spend and not outside:
            total = int(rng.integers(1, 50 * unit))  # coinbase
        fee = int(rng.integers(0, max(1, total // 20))) if spend and rng.random() < 0.7 else 0
        avail = total - fee
        n_o = int(rng.integers(1, 5))
        cuts = np.sort(rng.integers(0, avail + 1, size=n_o - 1)) if n_o > 1 else np.zeros(0, np.int64)
        vals = np.diff(np.concatenate([[0], cuts, [avail]])).astype(np.int64)
        for v in vals:
            o = len(out_value)
            out_value.append(int(v))
            nulldata = rng.random() < 0.03
            out_type.append(NULLDATA if nulldata else 1)
            out_addr.append(-1 if nulldata else int(rng.integers(0, n_addr)))
            out_tx.append(t)
            if not nulldata:
                unspent.append(o)
        tx_out.append(len(out_value))
        tx_in.append(len(in_output))
    in_output_a = np.array(in_output, np.int64)
    sp_tx = np.full(len(out_value), -1, np.int64)
    sp_in = np.full(len(out_value), -1, np.int64)
    for i, o in enumerate(in_output):
        if o >= 0:
            sp_tx[o] = in_tx[i]
            sp_in[o] = i
    n = n_tx
    return BtcGraph(commit=0, network="regtest", tx_height=np.arange(n, dtype=np.int64),
                    tx_time=1_700_000_000 + 600 * np.arange(n, dtype=np.int64), tx_index=np.zeros(n, np.int32),
                    tx_coinbase=np.zeros(n, bool), tx_fee=np.zeros(n, np.int64), tx_locktime=np.zeros(n, np.int64),
                    tx_version=np.ones(n, np.int64), tx_out=np.array(tx_out, np.int64),
                    tx_in=np.array(tx_in, np.int64), out_value=np.array(out_value, np.int64),
                    out_addr=np.array(out_addr, np.int64), out_type=np.array(out_type, np.int8),
                    out_tx=np.array(out_tx, np.int64), out_spender_tx=sp_tx, out_spender_in=sp_in,
                    in_output=in_output_a, in_tx=np.array(in_tx, np.int64),
                    in_sequence=np.zeros(len(in_output), np.int64), n_addresses=n_addr)


def pick_seeds(g: BtcGraph, seed: int, n_src: int, k: int):
    rng = np.random.default_rng(seed + 1000)
    outs = rng.choice(int(g.tx_out[len(g.tx_out) // 3]), size=k, replace=False)
    src = rng.integers(0, n_src, size=k)
    order = np.argsort(outs)
    return outs[order].astype(np.int64), src[order].astype(np.int64)


def compare(g, seed_out, seed_src, n_src, policy, fee_mode, sinks=(), **lim):
    sink_of_addr = None
    if sinks:
        sink_of_addr = np.full(g.n_addresses, -1, np.int32)
        sink_of_addr[list(sinks)] = np.arange(len(sinks))
    got = K.propagate_graph(g, seed_out, seed_src, n_src, policy=policy, fee_mode=fee_mode,
                            sink_of_addr=sink_of_addr, **lim)
    ref = propagate_reference(ArrayView(g), list(zip(seed_out.tolist(), seed_src.tolist())), n_src, policy,
                              fee_mode, sinks=set(sinks), **lim)
    assert got.n_pending == 0
    assert got.processed == ref.processed and got.partial == ref.partial
    assert got.seeded.tolist() == ref.seeded
    assert got.fee.tolist() == ref.fee
    mine = {int(got.out[k]): (int(got.kind[k]), int(got.amount[k]), int(got.hop[k]), normalize(got.taint(k)))
            for k in range(len(got))}
    theirs = {o: (s.kind, s.amount, s.hop, normalize(s.taint)) for o, s in ref.slots.items()}
    assert mine.keys() == theirs.keys()
    for o in mine:
        assert mine[o] == theirs[o], (o, mine[o], theirs[o])
    # conservation, per source: terminal slots + fees == seeded
    term = (got.kind != K.PASSED) & (got.kind != K.PENDING)
    for s in range(n_src):
        held = 0
        for k in np.flatnonzero(term):
            held += sum(x.value for x in got.taint(int(k)) if x.source == s)
        assert held + int(got.fee[s]) == int(got.seeded[s])
    # every slot's amount is its tainted segments; segments cover the output's value
    for k in range(len(got)):
        t = got.taint(k)
        assert int(got.amount[k]) == sum(x.value for x in t if x.source is not None)
        if got.kind[k] != K.MAX_TXS or got.parent[k] >= 0:
            assert sum(x.value for x in t) == int(g.out_value[got.out[k]])
    # parents are tainted outputs spent by the slot's own transaction (the dominant explanation path)
    for k in np.flatnonzero(got.parent >= 0):
        p = int(got.parent[k])
        assert int(g.out_spender_tx[got.out[p]]) == int(g.out_tx[got.out[k]])
        assert got.kind[p] == K.PASSED
    return got


POLICY_MODES = [("poison", "tail"), ("haircut", "tail"), ("fifo", "tail"), ("fifo", "prorata"), ("lifo", "tail"),
                ("lifo", "prorata"), ("tiho", "tail"), ("tiho", "prorata")]


@pytest.mark.parametrize("policy,fee_mode", POLICY_MODES)
@pytest.mark.parametrize("gseed", [1, 2, 3])
def test_engine_matches_reference(policy, fee_mode, gseed):
    g = random_graph(gseed, big=gseed == 3)
    seed_out, seed_src = pick_seeds(g, gseed, 3, 12)
    got = compare(g, seed_out, seed_src, 3, policy, fee_mode)
    assert got.processed > 10  # the trace really went somewhere
    if policy != "poison":
        assert int(got.seeded.sum()) > 0


@pytest.mark.parametrize("policy,fee_mode", POLICY_MODES)
def test_engine_matches_reference_with_limits(policy, fee_mode):
    g = random_graph(7)
    seed_out, seed_src = pick_seeds(g, 7, 2, 10)
    sinks = (3, 11, 17, 29)
    seen: set[int] = set()
    for lim in [dict(min_value=2000), dict(max_hops=3), dict(until_tx=250), dict(max_txs=40),
                dict(min_value=500, max_hops=5, until_tx=300, max_txs=120)]:
        got = compare(g, seed_out, seed_src, 2, policy, fee_mode, sinks=sinks, **lim)
        kinds = set(got.kind.tolist())
        if lim.get("max_txs") == 40:
            assert got.partial and K.MAX_TXS in kinds and got.processed == 40
        if "max_hops" in lim:  # nothing beyond the hop limit was followed
            assert all(h <= lim["max_hops"] for h, kd in zip(got.hop, got.kind) if kd == K.PASSED)
            assert all(h > lim["max_hops"] for h, kd in zip(got.hop, got.kind) if kd == K.MAX_HOPS)
        if "until_tx" in lim:  # no spend after the bound was followed
            sp = g.out_spender_tx[got.out]
            assert (sp[got.kind == K.PASSED] <= lim["until_tx"]).all()
            assert (sp[got.kind == K.UNTIL] > lim["until_tx"]).all()
        if "min_value" in lim and policy != "poison":
            assert (got.amount[got.kind == K.BELOW] < lim["min_value"]).all()
            assert (got.amount[got.kind == K.PASSED] >= lim["min_value"]).all()
        assert (np.isin(g.out_addr[got.out[got.kind == K.SINK]], sinks)).all()
        seen |= kinds
    # across the limit settings every stop reason occurred at least once
    if policy in ("poison", "haircut"):
        assert {K.SINK, K.BELOW, K.MAX_HOPS, K.UNTIL, K.MAX_TXS} <= seen


def test_multi_branch_merge_processed_once():
    """Two tainted branches that meet in one transaction: processed once, with both (a naive BFS would
    process it when the first branch arrives and lose the second)."""
    # tx0: coinbase -> o0 (100) ; tx1: coinbase -> o1 (50)
    # tx2 spends o0 -> o2 (60), o3 (40) ; tx3 spends o3 -> o4 (40) ; tx4 spends o2 + o4 + o1 -> o5 (150)
    g = BtcGraph(commit=0, network="regtest", tx_height=np.arange(5), tx_time=np.arange(5) * 600,
                 tx_index=np.zeros(5, np.int32), tx_coinbase=np.array([1, 1, 0, 0, 0], bool),
                 tx_fee=np.zeros(5, np.int64), tx_locktime=np.zeros(5, np.int64), tx_version=np.ones(5, np.int64),
                 tx_out=np.array([0, 1, 2, 4, 5, 6]), tx_in=np.array([0, 1, 2, 3, 4, 7]),
                 out_value=np.array([100, 50, 60, 40, 40, 150]), out_addr=np.arange(6),
                 out_type=np.ones(6, np.int8), out_tx=np.array([0, 1, 2, 2, 3, 4]),
                 out_spender_tx=np.array([2, 4, 4, 3, 4, -1]), out_spender_in=np.array([2, 6, 4, 3, 5, -1]),
                 in_output=np.array([-1, -1, 0, 3, 2, 4, 1]), in_tx=np.array([0, 1, 2, 3, 4, 4, 4]),
                 in_sequence=np.zeros(7, np.int64), n_addresses=6)
    for policy in ("haircut", "fifo", "lifo", "tiho", "poison"):
        got = compare(g, np.array([0]), np.array([0]), 1, policy, "tail")
        k = int(np.flatnonzero(got.out == 5)[0])
        assert got.kind[k] == K.HOLDING
        assert got.amount[k] == 100  # both branches (60 + 40) arrived together
        assert got.hop[k] == 2  # the shorter branch: o0 -> tx2 -> o2 -> tx4
        assert got.processed == 4


def test_seed_overlap_first_taint_wins():
    """A seed output already reached by an earlier seed's taint counts only its clean part as seeded."""
    g = random_graph(11)
    seed_out, seed_src = pick_seeds(g, 11, 1, 5)
    first = K.propagate_graph(g, seed_out, np.zeros(5, np.int64), 1, policy="fifo")
    # add, as a second seed, an output the first trace reached
    reached = [int(o) for o, kd in zip(first.out, first.kind) if kd in (K.PASSED, K.HOLDING)
               and int(o) not in set(seed_out.tolist())]
    extra = reached[len(reached) // 2]
    outs = np.array(sorted(seed_out.tolist() + [extra]), np.int64)
    srcs = np.array([1 if o == extra else 0 for o in outs], np.int64)
    got = compare(g, outs, srcs, 2, "fifo", "tail")
    k = int(np.flatnonzero(first.out == extra)[0])
    already = int(first.amount[k])
    assert int(got.seeded[1]) == int(g.out_value[extra]) - already
    assert int(got.seeded[0]) == int(first.seeded[0])


def test_buffers_grow_past_their_initial_size():
    """Thousands of tainted outputs and segments: the slot and pool buffers are regrown several times."""
    g = random_graph(5, n_tx=2500, n_addr=400)
    seed_out, seed_src = pick_seeds(g, 5, 4, 60)
    for policy in ("poison", "fifo"):
        got = compare(g, seed_out, seed_src, 4, policy, "tail")
        # the kernel starts with 1024 slots and a 4096-entry segment pool: both had to grow, for both policies
        assert len(got) > 2 * 1024, policy
        assert len(got.seg_value) > 2 * 4096, policy


def test_kernels_compile_one_signature_and_the_warm_up_child_runs():
    """propagate_graph and the CoinJoin detectors hand the kernels read-only arrays and int64 scalars
    whatever the caller holds, so the warm-up's tiny graph, writable test graphs and read-only (memory-mapped)
    graphs all use one compiled signature, the one the warm-up child compiles ahead of a demo."""
    from chaintrace.detect.coinjoin import _detect_range, detect_coinjoins
    from chaintrace.trace import warmup

    warmup.compile_kernels()
    g = random_graph(3)
    ro = random_graph(4)
    for name in ("tx_out", "tx_in", "out_value", "out_addr", "out_type", "out_tx", "out_spender_tx", "in_output"):
        getattr(ro, name).flags.writeable = False
    for graph in (g, ro):
        seed_out, seed_src = pick_seeds(graph, 3, 2, 4)
        got = K.propagate_graph(graph, seed_out, seed_src, 2, policy="haircut", max_txs=50,
                                sink_of_addr=np.arange(graph.n_addresses, dtype=np.int32) % 5 - 3)
        assert int(got.seeded.sum()) == int(graph.out_value[seed_out].sum())
        detect_coinjoins(graph)
    assert len(K.propagate.signatures) == 1
    assert len(_detect_range.signatures) == 1
    # both are in numba's on-disk cache now: a demo starts no warm-up child; the child itself runs cleanly
    assert not warmup.needed() and warmup.start() is None
    assert subprocess.run([sys.executable, "-m", "chaintrace.trace.warmup"], timeout=600).returncode == 0
