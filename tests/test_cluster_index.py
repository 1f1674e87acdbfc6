"""The pure pieces of the cluster package against brute-force references: members by cluster, outputs by
address, star edges with distinct items, change masks of a transaction list; and the single-writer lock."""
from __future__ import annotations

import numpy as np
import pytest

from chaintrace.errors import UserError
from chaintrace.graph import unionfind as U
from chaintrace.graph.cluster import ClusterStore
from chaintrace.graph.cluster.index import concat_ranges, group_by_cluster, index_outputs, lookup_outputs


def random_partition(n: int, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    uf = U.UnionFind(n)
    uf.union_pairs(rng.integers(0, n, pairs), rng.integers(0, n, pairs))
    return uf.clusters()


@pytest.mark.parametrize("n,pairs,seed", [(1, 0, 0), (10, 0, 1), (200, 150, 2), (5000, 4000, 3), (5000, 20000, 4)])
def test_members_by_cluster_are_slices(n, pairs, seed):
    cid, size = random_partition(n, pairs, seed)
    members, start = group_by_cluster(cid, size)
    assert sorted(members.tolist()) == list(range(n))  # a permutation
    for c in np.unique(cid):
        got = members[start[c]:start[c] + size[c]]
        assert got.tolist() == np.flatnonzero(cid == c).tolist()  # ascending, exactly the cluster


@pytest.mark.parametrize("sparse", [False, True])
def test_outputs_by_address_match_a_scan(sparse):
    rng = np.random.default_rng(7)
    n_out, first = 3000, 1000
    span = 10**9 if sparse else 400  # sparse: the argsort path; dense: the counting sort
    out_addr = rng.integers(0, span, n_out)
    out_addr[rng.random(n_out) < 0.1] = -1  # outputs without an address
    addr, out = index_outputs(out_addr, first)
    valid = np.flatnonzero(out_addr >= 0)
    assert len(addr) == len(valid)
    assert np.all(np.diff(addr) >= 0)
    order = np.lexsort((valid, out_addr[valid]))
    assert np.array_equal(addr, out_addr[valid][order]) and np.array_equal(out, valid[order] + first)
    for members in (np.unique(out_addr[valid][:50]), np.array([-5, span + 1]), np.zeros(0, np.int64)):
        expect = np.flatnonzero(np.isin(out_addr, members)) + first
        assert np.array_equal(np.sort(lookup_outputs(addr, out, members)), expect)
    assert index_outputs(np.full(4, -1), 0)[0].size == 0


def test_concat_ranges():
    assert concat_ranges(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]
    assert concat_ranges(np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == []


def test_star_edges_distinct_lists_each_address_once_per_row():
    offsets = np.array([0, 4, 5, 9, 9, 12], np.int64)
    items = np.array([3, 3, 7, 3,  2,  -1, 4, 4, 1,  6, 6, 6], np.int64)
    cap = len(items)
    ea, eb, er = (np.empty(cap, np.int64) for _ in range(3))
    mark = np.full(10, -1, np.int64)
    k = U.star_edges_distinct(offsets, items, mark, 100, ea, eb, er)
    assert list(zip(ea[:k], eb[:k], er[:k])) == [(3, 7, 0), (4, 1, 2)]
    # the same rows again with the next row ids: the marks of the first call do not hide anything
    k2 = U.star_edges_distinct(offsets, items, mark, 105, ea, eb, er)
    assert k2 == k
    # the plain form keeps repeated items other than the first (the benchmark's kernel, unchanged)
    items2 = np.array([1, 2, 2, 1], np.int64)
    k3 = U.star_edges(np.array([0, 4], np.int64), items2, ea, eb, er)
    assert list(zip(ea[:k3], eb[:k3])) == [(1, 2), (1, 2)]


def test_change_masks_of_a_transaction_list_equal_the_range(tmp_path):
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.detect import change as ch
    from chaintrace.graph.btc import load_btc_graph
    from chaintrace.store.workspace import Workspace
    from tests.test_cluster import random_economy

    lg = random_economy(3, blocks=6)
    ws = Workspace(tmp_path / "ws")
    ingest_block_files(ws, [lg.write(tmp_path / "blk.dat")])
    g = load_btc_graph(ws)
    vsize = ws.chain("btc").read("transactions", ["vsize"])["vsize"].to_numpy().astype(np.int64)
    full = ch.change_masks(g, vsize)
    assert np.array_equal(ch.change_masks(g, vsize, horizon=g.n_tx), full)
    txs = np.array([t for t in range(g.n_tx) if t % 3 == 1], np.int64)
    part = ch.change_masks(g, vsize, txs=txs)
    expect = np.concatenate([full[g.tx_out[t]:g.tx_out[t + 1]] for t in txs])
    assert np.array_equal(part, expect)
    change, conf = ch.unique_change(g, full)
    c2, f2 = ch.unique_change(g, part, txs=txs)
    assert np.array_equal(c2, change[txs]) and np.array_equal(f2, conf[txs])
    # horizon 0: nothing is spent yet, so every dynamic heuristic keeps every output
    early = ch.change_masks(g, vsize, horizon=0)
    dynamic = ch.BITS["locktime"] | ch.BITS["fixed_fee"]
    has_addr = np.asarray(g.out_addr) >= 0
    rate_known = np.repeat((g.tx_fee >= 0) & (vsize > 0), np.diff(g.tx_out))
    known = np.repeat(~g.tx_coinbase, np.diff(g.tx_out)) & has_addr & (early > 0)
    assert np.all(early[known & rate_known] & dynamic == dynamic)


def test_one_writer_at_a_time(ws):
    cs = ClusterStore(ws)
    with cs.writer():
        with pytest.raises(UserError, match="another process is building clusters"):
            with ClusterStore(ws).writer():
                pass
    with ClusterStore(ws).writer():  # released
        pass
