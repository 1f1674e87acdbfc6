"""Summaries of the committed clusters: ``chaintrace cluster stats`` (:func:`cluster_stats`), ``chaintrace
cluster coinjoins`` (:func:`coinjoin_list`) and the figures a build reports (:func:`partition_stats`)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.compute as pc

from chaintrace.detect.coinjoin import ALL as CJ_DETECTORS
from chaintrace.errors import UserError
from chaintrace.graph.cluster.services import display_names
from chaintrace.graph.cluster.lookup import address_strings, txids_of
from chaintrace.graph.cluster.reader import Clusters
from chaintrace.store.clusters.storage import ClusterStore
from chaintrace.store.clusters.tables import COINJOINS
from chaintrace.model.tags import Tag
from chaintrace.store.workspace import Workspace


def partition_stats(cluster_of: np.ndarray, cluster_size: np.ndarray) -> dict:
    """Counts of a partition given per address its cluster id (smallest member) and cluster size."""
    n_addr = len(cluster_of)
    if n_addr == 0:
        return {"clusters": 0, "multi_address_clusters": 0, "largest_cluster": None, "largest_cluster_size": 0,
                "largest_cluster_share": 0.0, "clustered_addresses": 0}
    roots = cluster_of == np.arange(n_addr, dtype=cluster_of.dtype)
    sizes = cluster_size[roots]
    big = int(np.argmax(sizes))
    return {"clusters": int(roots.sum()), "multi_address_clusters": int((sizes > 1).sum()),
            "largest_cluster": int(np.flatnonzero(roots)[big]), "largest_cluster_size": int(sizes[big]),
            "largest_cluster_share": round(float(sizes[big]) / n_addr, 6),
            "clustered_addresses": int((cluster_size > 1).sum())}


def cluster_stats(ws: Workspace, top: int = 10, tags: list[Tag] | None = None) -> dict:
    """Summary of the committed clusters: counts, largest clusters (with their service label), edges and
    refusals by heuristic and reason, CoinJoins by protocol, growth alarms, and how many earlier change
    links new blocks have altered since the change layer was generated (``change_drift``)."""
    c = Clusters(ws)
    st = c.state
    roots = np.flatnonzero(np.asarray(c.cluster_of) == np.arange(c.n))
    sizes = np.asarray(c.cluster_size_of)[roots] if len(roots) else np.zeros(0, np.int64)
    order = np.argsort(-sizes, kind="stable")[:top]
    label = c.labels()
    ents = st["union"].get("entities", [])
    names = address_strings(ws, roots[order])
    largest = []
    for i in order:
        r = int(roots[i])
        root = r if int(c.par[r]) < 0 else int(c.par[r])
        lab = int(label[root]) if len(label) else -1
        largest.append({"cluster_id": r, "size": int(sizes[i]), "first_address": names.get(r),
                        "service": ents[lab] if lab >= 0 else None})
    shown = display_names(ws, [x["service"] for x in largest], tags or ())
    for x in largest:
        x["service"] = shown.get(x["service"], x["service"])
    cj = c.cs.read(st["coinjoins"]["files"], ["protocol"], COINJOINS)
    return {"generation": st["generation"], "store_commit": st.get("store_commit"), "transactions": st["n_tx"],
            "config": st.get("config"), **st.get("stats", {}), "largest": largest,
            "edges_by_status": st["union"].get("counts", {}),
            "coinjoins_by_protocol": dict(Counter(cj["protocol"].to_pylist())) if len(cj) else {},
            "alarms": st["union"].get("alarms", []), "exclusions": st.get("exclusions", {}),
            "change_drift": (st["layers"].get("change") or {}).get("drift")}


def coinjoin_list(ws: Workspace, protocol: str | None = None, limit: int = 100) -> list[dict]:
    """Detected CoinJoin transactions (txid, height, protocol, detectors, denomination, participants)."""
    cs = ClusterStore(ws)
    st = cs.require()
    t = cs.read(st["coinjoins"]["files"], schema=COINJOINS)
    if protocol:
        if protocol not in CJ_DETECTORS:
            raise UserError(f"unknown protocol {protocol!r}; known: {', '.join(CJ_DETECTORS)}")
        t = t.filter(pc.equal(t["protocol"], protocol))
    rows = t.slice(0, limit).to_pylist()
    names = txids_of(ws, [r["tx_id"] for r in rows])
    for r in rows:
        r["txid"] = names.get(r["tx_id"])
    return rows
