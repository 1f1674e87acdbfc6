"""The ``stats`` job: address and cluster statistics, the figures ``chaintrace cluster show`` gives one
cluster (:func:`chaintrace.graph.cluster.info.activity`), for every address and every cluster at once.

Per key (an address, or a cluster = its members' outputs together): ``received`` (sum of the outputs paid to
it), ``balance`` (of those still unspent), ``sent`` (received - balance), ``outputs_received``,
``tx_count`` (distinct transactions paying or spending them), ``first_seen``/``last_seen`` (block times)
and ``first_height``/``last_height``. Exact integer sums (BIGINT satoshi). Cluster statistics use the
committed clusters (``btc.address_clusters``); addresses newer than the last cluster build are their own
cluster, as everywhere else.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

COLUMNS = ["balance", "received", "sent", "outputs_received", "tx_count", "first_seen", "last_seen",
           "first_height", "last_height"]


def _paid(outputs: "DataFrame", inputs: "DataFrame") -> "DataFrame":
    """Outputs with an address: ``output_id, address_id, tx_id, value, spender`` (spending tx, NULL unspent)."""
    from pyspark.sql import functions as F

    sp = inputs.where(F.col("spent_output_id").isNotNull()).select(
        F.col("spent_output_id").alias("output_id"), F.col("tx_id").alias("spender"))
    return (outputs.where(F.col("address_id").isNotNull()).select("output_id", "address_id", "tx_id", "value")
            .join(sp, "output_id", "left"))


def activity(paid: "DataFrame", tx: "DataFrame", key: str) -> "DataFrame":
    """The statistics of :data:`COLUMNS` per `key` (a column of `paid`)."""
    from pyspark.sql import functions as F

    money = paid.groupBy(key).agg(
        F.sum("value").alias("received"),
        F.coalesce(F.sum(F.when(F.col("spender").isNull(), F.col("value"))), F.lit(0)).cast("long").alias("balance"),
        F.count(F.lit(1)).alias("outputs_received"))
    events = (paid.select(key, "tx_id")
              .unionByName(paid.where(F.col("spender").isNotNull()).select(key, F.col("spender").alias("tx_id")))
              .distinct().join(tx.select("tx_id", "time", "height"), "tx_id"))
    when = events.groupBy(key).agg(F.count(F.lit(1)).alias("tx_count"), F.min("time").alias("first_seen"),
                                   F.max("time").alias("last_seen"), F.min("height").alias("first_height"),
                                   F.max("height").alias("last_height"))
    return (money.join(when, key).withColumn("sent", F.col("received") - F.col("balance"))
            .select(key, *COLUMNS))


def address_stats(outputs: "DataFrame", inputs: "DataFrame", tx: "DataFrame") -> "DataFrame":
    return activity(_paid(outputs, inputs), tx, "address_id")


def cluster_stats(outputs: "DataFrame", inputs: "DataFrame", tx: "DataFrame", clusters: "DataFrame") -> "DataFrame":
    """Per cluster id (``clusters``: ``address_id, cluster_id, cluster_size``); addresses missing from
    `clusters` are their own cluster."""
    from pyspark.sql import functions as F

    paid = (_paid(outputs, inputs).join(clusters.select("address_id", "cluster_id", "cluster_size"), "address_id", "left")
            .withColumn("cluster_id", F.coalesce("cluster_id", "address_id")))
    sizes = (paid.select("cluster_id", F.coalesce("cluster_size", F.lit(1)).alias("cluster_size"))
             .groupBy("cluster_id").agg(F.max("cluster_size").alias("cluster_size")))
    return activity(paid, tx, "cluster_id").join(sizes, "cluster_id").select("cluster_id", "cluster_size", *COLUMNS)
