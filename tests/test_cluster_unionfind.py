"""Union-find kernels against independent oracles: networkx connected components and GraphSense's Rust
union-find (graphsense-clustering) on the same random multi-input transactions; guards and growth alarm."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pyarrow as pa
import pytest

from chaintrace.graph import unionfind as U


def _partition(labels: np.ndarray) -> set[frozenset]:
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(labels.tolist()):
        groups.setdefault(c, []).append(i)
    return {frozenset(v) for v in groups.values()}


def _random_txs(rng, n_addr, n_tx, max_in=6):
    counts = rng.integers(1, max_in + 1, n_tx)
    offsets = np.zeros(n_tx + 1, np.int64)
    offsets[1:] = np.cumsum(counts)
    # skewed address popularity (some addresses are reused a lot, like exchange hot wallets)
    items = (rng.pareto(1.5, offsets[-1]) * 50).astype(np.int64) % n_addr
    return offsets, items


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_union_csr_matches_networkx_components(seed):
    rng = np.random.default_rng(seed)
    n_addr, n_tx = 3000, 2500
    offsets, items = _random_txs(rng, n_addr, n_tx)
    items[rng.random(len(items)) < 0.05] = -1  # unknown input addresses are ignored
    uf = U.UnionFind(n_addr)
    n_unions = uf.union_rows(offsets, items)
    cid = uf.cluster_ids()
    G = nx.Graph()
    G.add_nodes_from(range(n_addr))
    for r in range(n_tx):
        row = [int(x) for x in items[offsets[r]:offsets[r + 1]] if x >= 0]
        for x in row[1:]:
            G.add_edge(row[0], x)
    comps = {frozenset(c) for c in nx.connected_components(G)}
    assert _partition(cid) == comps
    # a union per spanning-forest edge: n - #components
    assert n_unions == n_addr - len(comps)
    # cluster id = smallest member, sizes consistent
    _, sizes = uf.clusters()
    for c in comps:
        ids = cid[list(c)]
        assert (ids == min(c)).all()
        assert uf.size_of(max(c)) == len(c)
        assert (sizes[list(c)] == len(c)).all()


def test_union_csr_matches_graphsense_clustering():
    import gs_clustering as gs  # a dev dependency (graphsense-clustering): missing is a failure
    rng = np.random.default_rng(7)
    n_addr, n_tx = 20_000, 15_000
    offsets, items = _random_txs(rng, n_addr, n_tx, 8)
    uf = U.UnionFind(n_addr)
    uf.union_rows(offsets, items)
    ours = uf.cluster_ids()
    c = gs.Clustering(max_address_id=n_addr - 1)
    arr = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(items.astype(np.uint32)))
    c.process_transactions_arrow(arr)
    m = c.get_mapping()
    theirs = np.empty(n_addr, np.int64)
    theirs[m["address_id"].to_numpy()] = m["cluster_id"].to_numpy()
    assert _partition(ours) == _partition(theirs)
    # both name a cluster by its smallest address id
    assert np.array_equal(ours.astype(np.int64), theirs)


def _guarded(n, a, b, height, blocked=None, max_size=0, label=None, growth=0.5, amin=3):
    uf = U.UnionFind(n)
    k = len(a)
    status = np.zeros(k, np.uint8)
    sa, sb = np.zeros(k, np.int64), np.zeros(k, np.int64)
    la, lb = np.full(k, -1, np.int32), np.full(k, -1, np.int32)
    state = np.array([0, 0, -1, 0, 0, -1], np.int64)
    alarms = np.zeros((10, 5), np.int64)
    lab = np.zeros(0, np.int32) if label is None else np.asarray(label, np.int32)
    dt = uf.dtype
    U.union_guarded(uf.par, lab, np.asarray(a, dt), np.asarray(b, dt),
                    np.arange(100, 100 + k, dtype=np.int64), np.asarray(height, np.int64),
                    np.zeros(k, np.uint8) if blocked is None else np.asarray(blocked, np.uint8), max_size,
                    status, sa, sb, la, lb, growth, amin, state, alarms)
    U.close_block(state, alarms, growth, amin)
    return uf, status, sa, sb, alarms[:int(state[3])]


def test_size_guard_refuses_only_when_both_sides_are_large():
    # clusters {0,1,2} and {3,4,5}; then 0-3 (both size 3) refused; 6-0 (size 1 vs 3) allowed
    a = [0, 0, 3, 3, 0, 6]
    b = [1, 2, 4, 5, 3, 0]
    uf, status, sa, sb, _ = _guarded(7, a, b, [1] * 6, max_size=3)
    assert status.tolist() == [U.UNION] * 4 + [U.REFUSED_SIZE, U.UNION]
    assert (sa[4], sb[4]) == (3, 3)
    cid = uf.cluster_ids()
    assert _partition(cid) == {frozenset({0, 1, 2, 6}), frozenset({3, 4, 5})}


def test_label_guard_and_label_propagation():
    # 0 tagged service A (label 0), 5 tagged service B (label 1)
    label = [0, -1, -1, -1, -1, 1]
    a = [0, 1, 4, 2, 3]
    b = [1, 2, 5, 3, 4]
    uf, status, *_ = _guarded(6, a, b, [1] * 5, label=label)
    # 0-1, 1-2 -> A; 4-5 -> B; 2-3 -> A (3 unlabelled); 3-4 would join A and B: refused
    assert status.tolist() == [U.UNION, U.UNION, U.UNION, U.UNION, U.REFUSED_LABEL]
    cid = uf.cluster_ids()
    assert _partition(cid) == {frozenset({0, 1, 2, 3}), frozenset({4, 5})}


def test_blocked_and_skipped_edges():
    uf, status, *_ = _guarded(4, [0, 1, -1], [1, 2, 3], [1, 1, 1], blocked=[0, 1, 0])
    assert status.tolist() == [U.UNION, U.REFUSED_BLOCKED, U.SKIPPED]


def test_growth_alarm_names_the_jump():
    # block 1: two clusters of 4 (growth from 0 to 4 >= amin 3 -> alarm at h=1);
    # block 2: nothing big; block 3: they merge (4 -> 8, +100%) -> alarm at h=3 naming edge tx 100+8
    a = [0, 0, 0, 4, 4, 4, 9, 0]
    b = [1, 2, 3, 5, 6, 7, 10, 4]
    h = [1, 1, 1, 1, 1, 1, 2, 3]
    _, status, _, _, alarms = _guarded(12, a, b, h, growth=0.5, amin=3)
    assert (status == U.UNION).all()
    rows = alarms.tolist()
    assert rows[0][:3] == [1, 0, 4]
    assert rows[1] == [3, 4, 8, 107, 4]
    assert len(rows) == 2


def test_grow_keeps_sets_and_upcasts():
    uf = U.UnionFind(5)
    uf.union_pairs(np.array([0, 3]), np.array([1, 4]))
    uf.grow(8)
    uf.union_pairs(np.array([6]), np.array([1]))
    assert _partition(uf.cluster_ids()) == {frozenset({0, 1, 6}), frozenset({3, 4}), frozenset({2}),
                                             frozenset({5}), frozenset({7})}
    assert U.id_dtype(2**31 - 2) == np.int32 and U.id_dtype(2**31) == np.int64
