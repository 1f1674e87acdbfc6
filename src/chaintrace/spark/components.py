"""Connected components with the large-star / small-star alternation (Kiveris, Lattanzi, Mirrokni,
Rastogi, Vassilvitskii, "Connected Components in MapReduce and Beyond", SoCC 2014), in Spark's DataFrame
API: no jar, no per-row Python.

Every node ends pointing at the smallest node of its component, which is the embedded union-find's
cluster id (:mod:`chaintrace.graph.unionfind`: union by index, the smallest member is the root).

Each round runs a large-star (every node links its larger neighbours to the smallest node of its
neighbourhood) and a small-star (every node links itself and its smaller neighbours to the smallest of
them); both keep the connectivity and lower the labels. The loop ends when the edge set is a forest of
stars (every node has exactly one parent and no parent has a parent): each star is then a whole component.
O(log^2 n) rounds in the worst case, a handful on transaction graphs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

MAX_ROUNDS = 200


def _large_star(e: "DataFrame", partitions: int) -> "DataFrame":
    """(larger neighbour, smallest of the neighbourhood) pairs, duplicates possible (the next small-star
    removes them). One shuffle: the neighbour lists are partitioned by ``src`` once, the minimum and the join
    read the same partitions."""
    from pyspark.sql import functions as F

    both = e.select(F.col("u").alias("src"), F.col("v").alias("dst")).unionByName(
        e.select(F.col("v").alias("src"), F.col("u").alias("dst"))).repartition(partitions, "src")
    m = both.groupBy("src").agg(F.least(F.min("dst"), F.col("src")).alias("m"))
    return both.join(m, "src").where(F.col("dst") > F.col("src")).select(F.col("dst").alias("u"), F.col("m").alias("v"))


def _small_star(e: "DataFrame", partitions: int) -> "DataFrame":
    """Every node and its smaller neighbours linked to the smallest of them; distinct ``u > v`` pairs.
    Two shuffles: by ``src`` (minimum and join), then the ``distinct``."""
    from pyspark.sql import functions as F

    o = (e.select(F.greatest("u", "v").alias("src"), F.least("u", "v").alias("dst")).where(F.col("src") != F.col("dst"))
         .repartition(partitions, "src"))
    m = o.groupBy("src").agg(F.min("dst").alias("m"))
    linked = o.join(m, "src").where(F.col("dst") != F.col("m")).select(F.col("dst").alias("u"), F.col("m").alias("v"))
    return linked.unionByName(m.select(F.col("src").alias("u"), F.col("m").alias("v"))).distinct()


def _is_star_forest(e: "DataFrame") -> bool:
    """Every u has exactly one parent v < u, and no parent is itself a child (one Spark action, one shuffle:
    `e` holds distinct pairs, so a node's rows as a child count its parents)."""
    from pyspark.sql import functions as F

    roles = e.select(F.col("u").alias("node"), F.lit(1).alias("c"), F.lit(0).alias("p")).unionByName(
        e.select(F.col("v").alias("node"), F.lit(0).alias("c"), F.lit(1).alias("p")))
    row = (roles.groupBy("node").agg(F.sum("c").alias("parents"), F.max("p").alias("is_parent"))
           .agg(F.max("parents").alias("most_parents"),
                F.sum(F.when((F.col("parents") > 0) & (F.col("is_parent") > 0), 1).otherwise(0)).alias("both"))
           .collect()[0])
    return (row["most_parents"] or 1) <= 1 and not row["both"]


def connected_components(edges: "DataFrame", progress=None, partitions: int | None = None) -> tuple["DataFrame", int]:
    """(``(node, root)`` for every node of an edge, root = the component's smallest node; rounds run).
    `edges` has long columns ``u``, ``v`` (undirected; self-loops and duplicates allowed). `partitions`:
    of the rounds' shuffles (default ``spark.sql.shuffle.partitions``). Each round is one Spark action: the
    new edge set is checkpointed (no lineage growth) while the star-forest test reads it."""
    from pyspark.sql import functions as F

    if partitions is None:
        partitions = int(edges.sparkSession.conf.get("spark.sql.shuffle.partitions") or 8)
    partitions = max(1, partitions)
    e = edges.select(F.col("u").cast("long"), F.col("v").cast("long")).where(F.col("u") != F.col("v"))
    e = e.select(F.greatest("u", "v").alias("u"), F.least("u", "v").alias("v")).distinct().localCheckpoint()
    rounds = 0
    while True:
        rounds += 1
        e = _small_star(_large_star(e, partitions), partitions).localCheckpoint(eager=False)
        if progress is not None:
            progress.advance(1)
        if _is_star_forest(e) or rounds >= MAX_ROUNDS:  # computes (and keeps) e
            break
    if rounds >= MAX_ROUNDS and not _is_star_forest(e):  # pragma: no cover - guards against a logic error
        raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    roots = e.select(F.col("v").alias("node")).distinct().withColumn("root", F.col("node"))
    comp = e.select(F.col("u").alias("node"), F.col("v").alias("root")).unionByName(roots)
    return comp, rounds
