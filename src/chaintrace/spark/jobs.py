"""The jobs of ``chaintrace spark run`` (:data:`JOBS`) and :func:`run_job`, the one library call behind the
command. Each job reads the store's committed Parquet segments, computes on Spark and commits its result
into the workspace: ``clusters`` into ``DATA/btc/clusters/`` (as ``chaintrace cluster build``), the others as
derived tables (:mod:`chaintrace.store.derived`, views ``btc.<table>``).
"""
from __future__ import annotations

import time

import pyarrow.parquet as pq

from chaintrace.errors import UserError
from chaintrace.progress import NULL, Progress
from chaintrace.spark.output import part_files
from chaintrace.spark.session import spark_session, store_meta, store_table
from chaintrace.store.derived import DerivedTables
from chaintrace.store.workspace import Workspace

JOBS = {
    "addresses": "address table: first appearance of every address, check of the dense ids",
    "clusters": "multi-input clustering (connected components, CoinJoin/size/tag guards) into DATA/btc/clusters",
    "stats": "address and cluster statistics (balance, received, sent, transactions, first/last seen)",
    "exposure": "screening exposure index (incoming/outgoing haircut exposure to every source group)",
}


def _commit_derived(ws: Workspace, frames: dict, meta: dict, extra: dict, sort: dict[str, str], parts: int,
                    progress: Progress) -> dict:
    """Write each DataFrame of `frames` (name -> DataFrame, sorted by `sort[name]`) and commit them together."""
    from chaintrace.spark.output import write_ordered

    d = DerivedTables(ws.path / "btc")
    out = {}
    with d.writer() as (gen, state):
        for name, df in frames.items():
            progress.start(f"spark: {name}", None, "")
            path = d.new_dir(name, gen)
            write_ordered(df, path, sort[name], [sort[name]], parts)
            files = part_files(path)
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
            state["tables"][name] = {"files": [p.relative_to(d.root).as_posix() for p in files], "rows": rows,
                                     "store_commit": meta["commit"], "engine": "spark", "built_at": int(time.time()),
                                     **extra.get(name, {})}
            out[name] = rows
            progress.finish()
        d.commit(state, gen)
    from chaintrace.store.clusters.views import refresh_views

    refresh_views(ws)
    return out


def run_job(ws: Workspace, job: str, *, master: str | None = None, conf: dict[str, str] | None = None,
            cluster_config=None, tags=None, tagpack_paths=(), screen_config=None, index: bool = True,
            progress: Progress = NULL) -> dict:
    """Run one job (:data:`JOBS`) on Spark against the workspace and commit its output. Returns a report.
    `screen_config`: the screening configuration of ``exposure`` (a :class:`chaintrace.screen.config.Config`
    or a file path; default: the shipped one, as ``chaintrace screen index``). `index=False`: ``exposure``
    commits its tables only (report ``index``: None); the caller writes the screening index with
    :func:`chaintrace.spark.exposure_job.write_exposure_index` once Spark is stopped
    (:func:`chaintrace.spark.session.stop_spark`), as ``chaintrace spark run`` does."""
    if job not in JOBS:
        raise UserError(f"unknown Spark job {job!r}; jobs: {', '.join(JOBS)}")
    t0 = time.time()
    meta = store_meta(ws)
    spark = spark_session(master, conf)
    parts = int(spark.conf.get("spark.sql.shuffle.partitions") or 8)
    base = {"job": job, "workspace": str(ws.path), "master": spark.sparkContext.master, "spark": spark.version,
            "store_commit": meta["commit"], "transactions": meta["n_tx"], "addresses": meta["n_addresses"]}
    if job == "clusters":
        from chaintrace.spark.cluster_job import run_clusters

        rep = run_clusters(spark, ws, cluster_config, tags=tags, tagpack_paths=tagpack_paths, progress=progress)
        return {**base, **rep, "job": job, "seconds": round(time.time() - t0, 3)}
    if job == "exposure":
        from chaintrace.screen import load_config
        from chaintrace.spark.exposure_job import run_exposure, write_exposure_index

        cfg = screen_config if hasattr(screen_config, "max_hops") else load_config(screen_config)
        rep = run_exposure(spark, ws, cfg, progress=progress)
        rep.update(write_exposure_index(ws, cfg, progress=progress) if index else {"index": None})
        return {**base, **rep, "seconds": round(time.time() - t0, 3)}
    tx = store_table(spark, ws, "transactions")
    inputs = store_table(spark, ws, "inputs")
    outputs = store_table(spark, ws, "outputs")
    if job == "addresses":
        from pyspark.sql import functions as F

        from chaintrace.spark.addresses import address_table

        t = address_table(outputs, store_table(spark, ws, "addresses"), parts).persist()
        check = t.agg(F.count(F.lit(1)).alias("n"), F.min("address_id").alias("lo"), F.max("address_id").alias("hi"),
                      F.sum(F.when(F.col("first_appearance_rank") != F.col("address_id"), 1).otherwise(0)).alias("bad"),
                      F.sum(F.when(F.col("first_output_id").isNull(), 1).otherwise(0)).alias("unpaid")).collect()[0]
        n = int(check["n"])
        dense = n == 0 or (check["lo"] == 0 and check["hi"] == n - 1)
        rep = {"dense": dense, "mismatches": int(check["bad"] or 0), "addresses_without_output": int(check["unpaid"] or 0)}
        rows = _commit_derived(ws, {"address_table": t}, meta, {"address_table": rep}, {"address_table": "address_id"},
                               parts, progress)
        t.unpersist()
        return {**base, **rep, "tables": rows, "seconds": round(time.time() - t0, 3)}
    # stats
    from chaintrace.spark.stats import address_stats, cluster_stats
    from chaintrace.store.clusters.storage import ClusterStore

    cs = ClusterStore(ws)
    st = cs.state(any_format=True)
    if st is None or not st.get("address_clusters"):
        raise UserError(f"no clusters in workspace {ws.path} yet: run `chaintrace spark run clusters` or "
                        "`chaintrace cluster build` first (cluster statistics group addresses by cluster)")
    clusters = spark.read.parquet(str(cs.root / st["address_clusters"]))
    frames = {"address_stats": address_stats(outputs, inputs, tx),
              "cluster_stats": cluster_stats(outputs, inputs, tx, clusters)}
    extra = {"cluster_stats": {"cluster_generation": st["generation"]}}
    rows = _commit_derived(ws, frames, meta, extra, {"address_stats": "address_id", "cluster_stats": "cluster_id"},
                           parts, progress)
    return {**base, "tables": rows, "cluster_generation": st["generation"], "seconds": round(time.time() - t0, 3)}
