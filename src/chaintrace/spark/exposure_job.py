"""``spark run exposure``: the screening exposure index on Spark (:mod:`.exposure`), committed twice:

* as derived tables (views ``btc.exposure_outputs``: every tainted output per group and direction with its
  amount, hop and parent; ``btc.exposure``: per address, group and direction the amount, minimal hop and the
  output carrying most -- the figures the index answers from), Parquet written by Spark
  (:func:`run_exposure`);
* as the screening index itself (``DATA/btc/cache/screen-v*``), written by :func:`write_exposure_index` with
  :func:`chaintrace.screen.index.build_index` from the committed per-output amounts (the propagation is not
  run again), so ``chaintrace screen`` and ``serve`` answer from it unchanged. The index is a single-machine
  structure: it is written after Spark is done -- by ``chaintrace spark run`` once ``spark-submit`` has
  returned, or in the same process once the driver's JVM has ended (:func:`chaintrace.spark.session.stop_spark`)
  -- so the JVM's memory is not held beside the index writer's.

Sources and services come from the registry exactly as for ``chaintrace screen index``
(:func:`chaintrace.screen.sources.read_sources`, the same configuration and date).
"""
from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq

from chaintrace.progress import NULL, Progress
from chaintrace.screen.config import Config
from chaintrace.screen.sources import NO_DAY, Sources, read_sources
from chaintrace.spark.exposure import graph_tables, keyed_tables, propagate
from chaintrace.spark.session import store_meta, store_table
from chaintrace.store.workspace import Workspace


def address_ids(spark, ws: Workspace, keys: list[str]) -> dict[str, int]:
    """Address key -> address id for the keys present in the store (the largest id when two addresses share
    a key, as the embedded index's mapping). Candidates are found by two equi-joins (as written, lower-cased)
    and checked on the driver with the registry's own key function."""
    from pyspark.sql import functions as F

    from chaintrace.intel import addresses as A

    if not keys:
        return {}
    kdf = F.broadcast(spark.createDataFrame([(k,) for k in keys], "key string"))
    addrs = store_table(spark, ws, "addresses").select("address_id", "address")
    cand = (addrs.join(kdf, addrs["address"] == kdf["key"])
            .unionByName(addrs.join(kdf, F.lower(addrs["address"]) == kdf["key"])).distinct().collect())
    out: dict[str, int] = {}
    for r in cand:
        if A.key("btc", r["address"]) == r["key"]:
            out[r["key"]] = max(out.get(r["key"], -1), int(r["address_id"]))
    return out


def seed_frame(spark, ws: Workspace, sources: Sources, ids: dict[str, int]):
    """Seeds ``g, o, taint, hop, parent``: the outputs paid to each group's addresses from their valid_from
    day on, tainted in full at hop 0."""
    from pyspark.sql import functions as F

    rows = [(ids[k], int(g), int(f)) for k, g, f in zip(sources.keys, sources.key_group.tolist(),
                                                        sources.key_from.tolist()) if k in ids]
    src = F.broadcast(spark.createDataFrame(rows or [(-1, 0, 0)], "address_id long, g int, frm int"))
    out = store_table(spark, ws, "outputs").select("output_id", "tx_id", "value", "address_id")
    tx = store_table(spark, ws, "transactions").select("tx_id", "time")
    return (out.join(src, "address_id").join(tx, "tx_id")
            .where((F.col("frm") == int(NO_DAY)) | (F.col("time") >= F.col("frm").cast("long") * 86400))
            .select("g", F.col("output_id").alias("o"), F.col("value").alias("taint"), F.lit(0).alias("hop"),
                    F.lit(-1).cast("long").alias("parent")).distinct())


def exposures(f, outputs):
    """Per (address, group, direction): ``amount`` (exact sum), ``hops`` (minimal), ``e_out`` (the output
    carrying most, the smallest id on ties); outgoing exposure counts hop >= 1 only (as the index)."""
    from pyspark.sql import functions as F

    fa = f.join(outputs.select(F.col("output_id"), "address_id"), "output_id").where(
        F.col("address_id").isNotNull() & ((F.col("direction") == 0) | (F.col("hop") >= 1)))
    return (fa.groupBy("address_id", "group_id", "direction")
            .agg(F.sum(F.col("taint").cast("decimal(38,0)")).cast("long").alias("amount"),
                 F.min("hop").alias("hops"),
                 F.max(F.struct("taint", (-F.col("output_id")).alias("r"), "output_id")).alias("best"))
            .select("address_id", "group_id", "direction", "amount", "hops", F.col("best.output_id").alias("e_out")))


def run_exposure(spark, ws: Workspace, config: Config, *, progress: Progress = NULL) -> dict:
    """Compute the exposures on Spark and commit the derived tables (the screening index is written from them
    by :func:`write_exposure_index`). Returns a report (rows, rounds of the fixed point, phase times)."""
    from pyspark.sql import functions as F

    from chaintrace.graph.btc import load_btc_graph
    from chaintrace.screen.mixer_sources import add_mixer_groups, find_mixers
    from chaintrace.spark.jobs import _commit_derived

    t0 = time.time()
    meta = store_meta(ws)
    parts = int(spark.conf.get("spark.sql.shuffle.partitions") or 8)
    sources = read_sources(ws, "btc", config)
    # the custodial mixers recognised by behaviour (over the store's clusters, on the driver, as `screen index`
    # does) are source groups too: the index built from these exposures names them
    g = load_btc_graph(ws)
    mixers = find_mixers(ws, g)
    sources = add_mixer_groups(ws, g, sources, config, mixers[0])[0]
    del g
    ids = address_ids(spark, ws, sources.keys + sorted(sources.services))
    stop_ids = [ids[k] for k in sources.services if k in ids]
    stop = spark.createDataFrame([(a,) for a in stop_ids] or [(-1,)], "address_id long")
    tx = store_table(spark, ws, "transactions")
    inputs = store_table(spark, ws, "inputs")
    outputs = store_table(spark, ws, "outputs")
    ins, outs, tt = graph_tables(tx, inputs, outputs, stop)
    keyed = keyed_tables(ins, outs, tt, parts)
    keyed = {**keyed, "link": keyed["link"].persist(), "dest": keyed["dest"].persist()}
    seeds = seed_frame(spark, ws, sources, ids)
    phases = {"sources": round(time.time() - t0, 3)}
    t1 = time.time()
    progress.start("spark: exposure rounds", None, "rounds")
    S, rounds = propagate(seeds, keyed, config.max_hops, progress=progress)
    progress.finish()
    phases["rounds"] = round(time.time() - t1, 3)
    t1 = time.time()
    f = S.select(F.col("g").alias("group_id"), F.col("d").alias("direction"), F.col("o").alias("output_id"), "taint",
                 F.col("hop").cast("smallint").alias("hop"), "parent")
    e = exposures(f, outputs)
    extra = {"groups": sources.groups, "max_hops": config.max_hops, "policy": config.policy,
             "config_digest": config.digest, "registry_generation": sources.generation, "registry_at": sources.at}
    rows = _commit_derived(ws, {"exposure_outputs": f, "exposure": e}, meta,
                           {"exposure_outputs": extra, "exposure": extra},
                           {"exposure_outputs": "output_id", "exposure": "address_id"}, parts, progress)
    for k in ("link", "dest"):
        keyed[k].unpersist()
    phases["tables"] = round(time.time() - t1, 3)
    return {"tables": rows, "rounds": rounds, "groups": len(sources.groups),
            "sources_in_chain": sum(1 for k in sources.keys if k in ids), "services_in_chain": len(stop_ids),
            "phase_seconds": phases, "seconds": round(time.time() - t0, 3)}


def write_exposure_index(ws: Workspace, config: Config, *, progress: Progress = NULL) -> dict:
    """The screening index from the committed ``btc.exposure_outputs`` (no Spark needed: run it after the
    job, once the JVM is gone), for the same chain commit and configuration. The custodial mixers are
    recognised again over the same store and clusters by the index builder; their groups must be the ones the
    Spark job propagated (the table's ``groups``), else the registry or the clusters changed in between and
    the job must be run again. Returns the index summary and the phase's seconds."""
    from chaintrace.errors import UserError
    from chaintrace.screen.index import build_index
    from chaintrace.store.derived import DerivedTables

    t0 = time.time()
    d = DerivedTables(ws.path / "btc")
    info = d.table("exposure_outputs")
    if info is None:
        raise UserError(f"{ws.path}: no btc.exposure_outputs table: run `chaintrace spark run exposure` first")
    if info.get("store_commit") != store_meta(ws)["commit"]:
        raise UserError(f"{ws.path}: btc.exposure_outputs was computed on another commit of the chain data "
                        f"({info.get('store_commit')}): run `chaintrace spark run exposure` again")
    if info.get("config_digest") != config.digest:
        raise UserError(f"{ws.path}: btc.exposure_outputs was computed with another screening configuration "
                        f"({info.get('config_digest')}, this one is {config.digest}): run `chaintrace spark run "
                        "exposure` again")
    files = d.files("exposure_outputs")
    t = pq.ParquetDataset([str(p) for p in files]).read() if files else None
    cols = {"out": "output_id", "group": "group_id", "taint": "taint", "hop": "hop", "parent": "parent",
            "dir": "direction"}
    arr = {k: (t.column(c).to_numpy() if t is not None else np.zeros(0, np.int64)) for k, c in cols.items()}
    del t
    arr["groups"] = info.get("groups")
    idx = build_index(ws, config, exposures=arr, engine="spark", progress=progress)
    return {"index": idx["path"], "n_tainted_outputs": idx["n_tainted_outputs"], "n_exposures": idx["n_exposures"],
            "n_exposed_addresses": idx["n_exposed_addresses"], "index_seconds": round(time.time() - t0, 3)}
