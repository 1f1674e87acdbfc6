"""``chaintrace cluster why``: the chain of unions that put two addresses in one cluster, or the refusals
between their clusters (:func:`explain`)."""
from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa

from chaintrace.errors import UserError
from chaintrace.graph.cluster.lookup import address_ids, address_strings, name_rows, txids_of
from chaintrace.graph.cluster.reader import Clusters
from chaintrace.store.workspace import Workspace


@nb.njit(cache=True, nogil=True)
def _bfs_path(n, indptr, nbr, eidx, src, dst, prev_node, prev_edge):
    """Shortest path src -> dst in an undirected CSR graph of n local nodes; fills prev arrays."""
    for i in range(n):
        prev_node[i] = -2
    q = np.empty(n, np.int64)
    head = 0
    tail = 0
    q[tail] = src
    tail += 1
    prev_node[src] = -1
    while head < tail:
        x = q[head]
        head += 1
        if x == dst:
            return True
        for k in range(indptr[x], indptr[x + 1]):
            y = nbr[k]
            if prev_node[y] == -2:
                prev_node[y] = x
                prev_edge[y] = eidx[k]
                q[tail] = y
                tail += 1
    return False


def union_path(ea: np.ndarray, eb: np.ndarray, src: int, dst: int) -> list[int] | None:
    """Indices of the edges (ea[k], eb[k]) on a shortest undirected path from address src to address dst
    (in order from src), or None when there is none."""
    nodes, inv = np.unique(np.concatenate([ea, eb]), return_inverse=True)
    m = len(ea)
    src_l, dst_l = inv[:m], inv[m:]
    both_s = np.concatenate([src_l, dst_l])
    both_d = np.concatenate([dst_l, src_l])
    eidx = np.concatenate([np.arange(m), np.arange(m)])
    order = np.argsort(both_s, kind="stable")
    indptr = np.zeros(len(nodes) + 1, np.int64)
    np.add.at(indptr, both_s + 1, 1)
    indptr = np.cumsum(indptr)
    s = int(np.searchsorted(nodes, src))
    d = int(np.searchsorted(nodes, dst))
    prev_node = np.empty(len(nodes), np.int64)
    prev_edge = np.empty(len(nodes), np.int64)
    if not _bfs_path(len(nodes), indptr, both_d[order].astype(np.int64), eidx[order].astype(np.int64), s, d,
                     prev_node, prev_edge):
        return None
    steps = []
    x = d
    while prev_node[x] != -1:
        steps.append(int(prev_edge[x]))
        x = int(prev_node[x])
    steps.reverse()
    return steps


def explain(ws: Workspace, address_a: str, address_b: str, *, clusters: Clusters | None = None) -> dict:
    """Why two addresses are in one cluster: the chain of unions (txid, heuristic, confidence) linking them
    (a shortest path in the union forest). When they are not, the refusals between their clusters, if any."""
    c = clusters or Clusters(ws)
    ids = address_ids(ws, [address_a, address_b])
    for x in (address_a, address_b):
        if x not in ids:
            raise UserError(f"address {x} does not appear in the store")
    ia, ib = ids[address_a], ids[address_b]
    ca, cb = (int(c.of(np.array([ia]))[0]), int(c.of(np.array([ib]))[0]))
    out: dict = {"a": address_a, "b": address_b, "cluster_a": ca, "cluster_b": cb, "same_cluster": ca == cb,
                 "path": [], "refusals": []}
    if ia == ib:
        return out
    if ca != cb:
        ma = c.mask(c.members(ca) if ca < c.n else [])
        mb = c.mask(c.members(cb) if cb < c.n else [])
        t = c.refusals_touching(ma)
        if len(t):
            a, b = t["a"].to_numpy(), t["b"].to_numpy()
            rows = name_rows(ws, t.filter(pa.array((ma[a] & mb[b]) | (mb[a] & ma[b]))).slice(0, 50).to_pylist())
            out["refusals"] = [{"txid": r["txid"], "height": r["height"], "heuristic": r["heuristic"],
                                "reason": r["reason"], "detail": r["detail"], "a": r["a"], "b": r["b"]}
                               for r in rows]
        return out
    u = c.unions_touching(c.mask(c.members(ca)))
    steps = union_path(u["a"].to_numpy(), u["b"].to_numpy(), ia, ib)
    if steps is None:  # cannot happen for a consistent state
        raise UserError(f"{address_a} and {address_b} share cluster {ca} but no union path was found; rebuild "
                        "with `chaintrace cluster build --full`")
    rows = u.take(pa.array(steps)).to_pylist()
    names = txids_of(ws, [r["tx_id"] for r in rows])
    an = address_strings(ws, [r["a"] for r in rows] + [r["b"] for r in rows])
    cur = ia
    for r in rows:
        nxt = r["b"] if r["a"] == cur else r["a"]
        out["path"].append({"from": an.get(cur), "to": an.get(nxt), "txid": names.get(r["tx_id"]),
                            "height": r["height"], "heuristic": r["heuristic"], "confidence": r["confidence"],
                            "evidence": ("co-spent as inputs of" if r["heuristic"] == "mih"
                                         else "change output of a transaction spending")})
        cur = nxt
    return out
