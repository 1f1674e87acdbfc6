"""``spark run clusters``: run :mod:`.clusters` and commit the result into ``DATA/btc/clusters/`` exactly as
``chaintrace cluster build`` would (``state.json`` replaced atomically under the single-writer lock), so
``btc.address_clusters``, ``btc.cluster_edges``, ``btc.coinjoins``, ``cluster show`` and tracing read the
Spark clusters unchanged.

What the commit holds: the layer-0 candidate edges and the CoinJoins (Parquet written by Spark), the
union-find arrays and ``address_clusters`` (written by the driver: 12 bytes per address in memory). What it
does not: the union and refusal evidence (``btc.cluster_unions``/``cluster_refusals``, ``cluster why``),
which depends on the order of the unions; it stays empty and the state says so. The next ``chaintrace
cluster build`` sees a Spark-built state, recomputes the unions from the committed edges (the chain is not
read again) and adds the evidence.
"""
from __future__ import annotations

import json
import time

import numpy as np

from chaintrace.graph.cluster.lookup import coordinator_address_ids
from chaintrace.graph import unionfind as uf_mod
from chaintrace.graph.cluster import ClusterConfig, ClusterStore, FORMAT, ServiceLabels, load_tags, resolve_txids
from chaintrace.graph.cluster.index import group_by_cluster
from chaintrace.graph.cluster.summary import partition_stats
from chaintrace.store.clusters.tables import address_cluster_table
from chaintrace.store.clusters.views import refresh_views
from chaintrace.progress import NULL, Progress
from chaintrace.spark import clusters as C
from chaintrace.spark.coinjoin import detect
from chaintrace.spark.output import part_files, tiled, write_ordered
from chaintrace.spark.session import store_meta, store_table
from chaintrace.store.workspace import Workspace

ENGINE_NOTE = ("built by `chaintrace spark run clusters`: union/refusal evidence not computed (the next "
               "`chaintrace cluster build` recomputes it from the committed edges)")


def _write_back(cs: ClusterStore, gen: int, cid: np.ndarray, size: np.ndarray, label: np.ndarray) -> tuple[str, str]:
    """Union-find arrays (every address points at its root; roots hold -size), members by cluster and
    ``address_clusters``: the files the embedded reader uses."""
    n = len(cid)
    dt = uf_mod.id_dtype(n)
    cid = cid.astype(dt)
    size = size.astype(dt)
    par = cid.copy()
    roots = cid == np.arange(n, dtype=dt)
    par[roots] = -size[roots]
    members, start = group_by_cluster(cid, size)
    uf_dir = cs.save_arrays(f"uf.g{gen:06d}", {"uf": par, "cluster_of": cid, "cluster_size": size,
                                               "label": label.astype(np.int32), "members": members,
                                               "member_start": start})
    ac = cs.write_parquet(f"address_clusters.g{gen:06d}.parquet", address_cluster_table(cid, size))["file"]
    return uf_dir, ac


def run_clusters(spark, ws: Workspace, cfg: ClusterConfig | None = None, *, tags=None, tagpack_paths=(),
                 progress: Progress = NULL) -> dict:
    """Cluster the workspace's Bitcoin store on Spark and commit the clusters. Returns a report like
    :func:`chaintrace.graph.cluster.build_clusters` (plus ``engine``, ``rounds``, ``guarded_components``)."""
    cfg = cfg or ClusterConfig()
    if "change" in cfg.heuristics:
        from chaintrace.errors import UserError

        raise UserError("spark run clusters reproduces layer 0 (mih) only; build the change layer with "
                        "`chaintrace cluster build --heuristics mih,change` afterwards")
    t0 = time.time()
    meta = store_meta(ws)
    n_addr, n_tx = meta["n_addresses"], meta["n_tx"]
    if tags is None:
        tags = load_tags(ws, tagpack_paths) if cfg.tag_guard else []
    svc = ServiceLabels.from_tags(tags if cfg.tag_guard else [])
    label = svc.labels(ws, n_addr) if svc.entities else np.zeros(0, np.int32)
    mainnet = meta["network"] == "main"
    coords = coordinator_address_ids(ws, cfg.coinjoin_params) if mainnet else np.zeros(0, np.int64)
    parts = int(spark.conf.get("spark.sql.shuffle.partitions") or 8)
    cs = ClusterStore(ws)
    with cs.writer():
        old = cs.state(any_format=True)
        gen = (old["generation"] + 1) if old else 1
        excl = (old or {}).get("exclusions", {})
        excl_ids = resolve_txids(ws, list(excl))
        excluded = {t: (excl.get(x) or {}).get("reason") or "excluded by user" for x, t in excl_ids.items()}
        tx = store_table(spark, ws, "transactions")
        inputs = store_table(spark, ws, "inputs")
        outputs = store_table(spark, ws, "outputs")
        progress.start("spark: CoinJoins and edges", None, "")
        cjs = detect(tx, inputs, outputs, cfg.coinjoin_params, mainnet, coords).persist()
        edges = C.edge_table_df(C.mih_edges(inputs, tx), cjs).persist()
        out = cs.root / f"spark.g{gen:06d}"
        write_ordered(edges, out / "mih", "tx_id", ["tx_id", "pos"], parts)
        write_ordered(cjs.drop("code"), out / "coinjoins", "tx_id", ["tx_id"], parts)
        progress.finish()
        progress.start("spark: connected components", None, "rounds")
        res = C.cluster_edges(spark, edges, n_addr, cfg, label, svc.entities, excluded, progress)
        progress.finish()
        edges.unpersist()
        cjs.unpersist()
        edge_files = tiled(part_files(out / "mih"), cs.root, "tx_id", n_tx)
        cj_files = tiled(part_files(out / "coinjoins"), cs.root, "tx_id", n_tx)
        n_cj = sum(f["rows"] for f in cj_files)
        uf_dir, ac = _write_back(cs, gen, res.cluster_of, res.cluster_size, res.label)
        st = partition_stats(res.cluster_of, res.cluster_size)
        st["ambiguous_service_addresses"] = len(svc.ambiguous)
        union_key = {**cfg.describe(), "engine": "spark", "tags": svc.fingerprint,
                     "exclusions": sorted(excl_ids.values())}
        state = {
            "format": FORMAT, "generation": gen, "engine": "spark", "n_tx": n_tx, "store_commit": meta["commit"],
            "tip": meta["tip"] and {"height": meta["tip"]["height"], "hash": meta["tip"]["hash"]},
            "layers": {"mih": {"spec": cfg.mih_spec(), "files": edge_files, "n_tx": n_tx}},
            "coinjoins": {"files": cj_files}, "exclusions": excl,
            "union": {"key": union_key, "n_tx": n_tx, "unions": [], "refusals": [], "alarms": [],
                      "entities": svc.entities, "counts": res.counts, "uf": uf_dir,
                      "alarm_state": [0, 0, -1, 0, 0, -1], "evidence": False},
            "address_clusters": ac, "config": cfg.describe(), "n_addresses": n_addr, "stats": st,
            "built_at": int(time.time()), "notes": [ENGINE_NOTE]}
        state = json.loads(json.dumps(state))
        cs.commit(state)
    refresh_views(ws)
    return {"workspace": str(ws.path), "engine": "spark", "generation": gen, "config": cfg.describe(),
            "store_commit": meta["commit"], "transactions": n_tx, "addresses": n_addr, "incremental": False,
            "new_transactions": n_tx, "edges_generated": {"mih_edges": sum(f["rows"] for f in edge_files),
                                                          "coinjoins": int(n_cj)},
            **st, "edges_by_status": dict(sorted(res.counts.items())), "alarms": [], "notes": [ENGINE_NOTE],
            "heuristics": cfg.layer_names, "rounds": res.rounds, "guarded_components": res.guarded_components,
            "guarded_edges": res.guarded_edges, "seconds": round(time.time() - t0, 3)}
