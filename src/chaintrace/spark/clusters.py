"""The ``clusters`` job: multi-input clustering (layer 0) on Spark, equal to ``chaintrace cluster build
--heuristics mih``.

1. CoinJoins: the embedded detectors over every candidate transaction (:mod:`.coinjoin`).
2. Layer-0 candidate edges, BlockSci's star: per transaction (first input address, every other distinct
   input address), in input order: the embedded engine's edge table, row for row.
3. Guards that need no order: edges of detected CoinJoins (``--coinjoin skip``) and of excluded
   transactions are dropped.
4. Connected components of the remaining edges (:mod:`.components`); cluster id = smallest member.
5. Guards that depend on the order of the unions (``size_limit``, ``tag_conflict``) can only fire inside a
   component holding at least ``2 * max_merge_size`` addresses (two disjoint clusters of ``max_merge_size``)
   or members of two different services. Those components (none on most chains) are re-clustered on the
   driver by the embedded guarded union pass over their edges in transaction order
   (:func:`chaintrace.graph.cluster.unionpass.union_window`): components are independent, so this gives
   exactly the embedded result. The driver then holds those components' edges.

Layer 1 (change heuristics) is not reproduced: it needs the spend graph around each transaction (the
dynamic heuristics), which the embedded engine evaluates with its in-memory graph; ``chaintrace cluster
build --heuristics mih,change`` adds it on top of the committed edges.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from chaintrace.graph.cluster import ClusterConfig
from chaintrace.graph.cluster.unionpass import Guards, union_window
from chaintrace.graph.unionfind import UnionFind
from chaintrace.spark.components import connected_components

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


def mih_edges(inputs: "DataFrame", tx: "DataFrame") -> "DataFrame":
    """Layer-0 edges ``a, b, tx_id, pos, height``: a = the first input's address, b every other distinct input
    address, ordered within a transaction by ``pos`` (the position of b's first input)."""
    from pyspark.sql import functions as F

    ki = (inputs.where(F.col("address_id").isNotNull()).groupBy("tx_id", "address_id")
          .agg(F.min("n").alias("pos")))
    first = ki.groupBy("tx_id").agg(F.min(F.struct("pos", "address_id")).alias("f"))
    return (ki.join(first, "tx_id").where(F.col("address_id") != F.col("f.address_id"))
            .select(F.col("f.address_id").alias("a"), F.col("address_id").alias("b"), "tx_id", "pos")
            .join(tx.select("tx_id", "height"), "tx_id"))


def edge_table_df(edges: "DataFrame", cjs: "DataFrame") -> "DataFrame":
    """Edges with the columns of the embedded ``layers/mih`` files (:data:`chaintrace.graph.cluster.EDGES`)
    plus ``pos``."""
    from pyspark.sql import functions as F

    codes = cjs.select("tx_id", F.col("code").alias("cj"))
    return (edges.join(codes, "tx_id", "left")
            .select("a", "b", "tx_id", "height", F.lit("mih").alias("heuristic"),
                    F.lit(1.0).alias("confidence"), F.coalesce(F.col("cj"), F.lit(0)).cast("tinyint").alias("coinjoin"),
                    "pos"))


@dataclass
class ClusterResult:
    cluster_of: np.ndarray  # per address id: cluster id (smallest member)
    cluster_size: np.ndarray  # per address id: its cluster's size
    counts: dict  # edges by status, as the embedded build reports them ("union:mih", "blocked:mih", ...)
    rounds: int  # large-star/small-star rounds
    guarded_components: int  # components re-clustered on the driver (order-dependent guards)
    guarded_edges: int
    label: np.ndarray  # service label per address id as the embedded pass leaves it (roots: their cluster's)


def _collect(df: "DataFrame") -> pa.Table:
    return df.toArrow()


def cluster_edges(spark, edges: "DataFrame", n_addr: int, cfg: ClusterConfig, label: np.ndarray,
                  entities: list[str], excluded: dict[int, str], progress=None) -> ClusterResult:
    """Clusters of `n_addr` addresses from the layer-0 edge table (:func:`edge_table_df`) under the guards
    of `cfg` (`label`: service label per address id, -1 none, empty: tag guard off; `excluded`: tx_id ->
    reason)."""
    from pyspark.sql import functions as F

    blocked = F.lit(False)
    if cfg.coinjoin == "skip":
        blocked = blocked | (F.col("coinjoin") != 0)
    if excluded:
        blocked = blocked | F.col("tx_id").isin([int(t) for t in excluded])
    e = edges.withColumn("blocked", blocked).persist()
    totals = e.groupBy("blocked").count().collect()
    n_blocked = sum(r["count"] for r in totals if r["blocked"])
    n_total = sum(r["count"] for r in totals)
    allowed = e.where(~F.col("blocked"))
    comp, rounds = connected_components(allowed.select(F.col("a").alias("u"), F.col("b").alias("v")), progress)
    comp = comp.persist()
    sizes = comp.groupBy("root").agg(F.count(F.lit(1)).alias("size"))
    risky = F.lit(False)
    if cfg.max_merge_size > 0:
        risky = risky | (F.col("size") >= 2 * cfg.max_merge_size)
    risky_roots = sizes.where(risky).select("root")
    if len(label) and entities:
        tagged = np.flatnonzero(label >= 0)
        if len(tagged):
            lab = spark.createDataFrame(pa.table({"node": tagged.astype(np.int64),
                                                  "label": label[tagged].astype(np.int32)}))
            multi = (comp.join(lab, "node").groupBy("root").agg(F.countDistinct("label").alias("k"))
                     .where(F.col("k") >= 2).select("root"))
            risky_roots = risky_roots.unionByName(multi).distinct()
    risky_roots = risky_roots.persist()
    nodes = _collect(comp)
    node = nodes["node"].to_numpy()
    root = nodes["root"].to_numpy()
    cid = np.arange(n_addr, dtype=np.int64)
    cid[node] = root
    counts: dict[str, int] = {}
    n_guarded = 0
    n_guarded_edges = 0
    refused = 0
    rr = _collect(risky_roots)["root"].to_numpy()
    final_label = label.astype(np.int32, copy=True)
    if len(final_label):  # a union takes the label of its labelled side: a root carries its cluster's label
        tagged = np.flatnonzero(label >= 0)
        final_label[cid[tagged]] = label[tagged]
    if len(rr):
        n_guarded = len(rr)
        rn = comp.join(risky_roots, "root").select("node")
        re = (allowed.join(rn.select(F.col("node").alias("a")), "a").orderBy("tx_id", "pos")
              .select("a", "b", "tx_id", "height", "heuristic", "confidence", "coinjoin"))
        t = _collect(re)
        n_guarded_edges = len(t)
        uf = UnionFind(n_addr)
        guards = Guards(cfg, label.astype(np.int32, copy=True) if len(label) else np.zeros(0, np.int32), entities,
                        dict(excluded))
        r = union_window(t, uf.par, guards, np.array([0, 0, -1, 0, 0, -1], np.int64))
        c2 = uf.cluster_ids().astype(np.int64)
        members = np.flatnonzero(np.isin(cid, rr))
        cid[members] = c2[members]
        if len(final_label):
            final_label[members] = guards.label[members]
        for k, v in r.counts.items():
            if not k.startswith(("union:", "redundant:")):
                counts[k] = counts.get(k, 0) + int(v)
                refused += int(v)
    size = np.bincount(cid, minlength=n_addr)[cid]
    n_union = int(n_addr - np.count_nonzero(cid == np.arange(n_addr)))
    if n_blocked:
        counts["blocked:mih"] = n_blocked
    if n_union:
        counts["union:mih"] = n_union
    redundant = n_total - n_blocked - n_union - refused
    if redundant:
        counts["redundant:mih"] = redundant
    e.unpersist()
    comp.unpersist()
    risky_roots.unpersist()
    return ClusterResult(cid, size.astype(np.int64), counts, rounds, n_guarded, n_guarded_edges, final_label)
