"""The ``exposure`` job: the screening exposure index (``chaintrace screen index``) computed on Spark.

The definition is the embedded one (:mod:`chaintrace.screen.kernels`): for every source group, value
followed *out of* its addresses (incoming exposure, ``dir`` 0) and *into* them back to where it came from
(outgoing exposure, ``dir`` 1), apportioned pro rata (haircut) in exact integers -- a transaction with
tainted amount X and total value T gives the output (forward) or spent output (backward) at cumulative
value ``cum`` the part ``floor(X * cum / T) - floor(X * prev / T)`` -- stopping at service addresses and
after ``max_hops`` transactions. The kernels visit transactions in chain order; here the same rules are
a fixed point over the transaction DAG (:func:`propagate`):

* a transaction is *active* for a group when one of its inputs (forward; its outputs, backward) is a seed,
  or is tainted at a hop below ``max_hops`` and not paid to a service address;
* an active transaction's X is the sum of the taint of *all* its tainted inputs (outputs), stopped ones
  included, its hop ``1 + min(hop)`` of those, its parent the one carrying most (first on ties), and it
  taints its outputs (inputs) with their non-zero parts (seeds keep their full value);
* each round recomputes every active transaction from the previous round's taint, all groups at once. A
  transaction's inputs come from earlier transactions (its outputs are spent by later ones), so after k
  rounds every transaction at dependency depth <= k holds its final value; the state stops changing after
  (longest chain of tainted transactions) + 1 rounds and is then, by induction over chain order, exactly
  the sequential result.

Why not one round per hop (``max_hops`` rounds): a transaction's amount at hop h includes the taint of its
inputs at *higher* hops (and of stopped inputs), which a hop-by-hop pass has not computed yet, so the hop
number does not order the dependencies; chain order does. The number of rounds is the depth of the tainted
sub-DAG, not ``max_hops`` (a seed address paying itself again and again restarts at hop 1 each time).

The products ``X * cum`` reach 2**102 (X, cum < 2**51): they are computed as DECIMAL(38,0) and divided
with Spark's integral division (exact: ``BigDecimal.divideToIntegralValue``), so every part is exact and
the parts of a transaction add up to X to the unit.
"""
from __future__ import annotations

from typing import TYPE_CHECKING


if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame

DEC = "decimal(38,0)"
STATE = ("g", "o", "taint", "hop", "parent")
BROADCAST_SEEDS = 2_000_000  # seed outputs up to which the seeds' (group, output) keys are broadcast


def muldiv(x: str, c: str, t: str) -> "Column":
    """floor(x * c / t) exactly, for non-negative long columns named `x`, `c`, `t` (t > 0): the product as
    DECIMAL(38,0) (up to 2**126), Spark's integral division ``div`` (exact on decimals), a long back."""
    from pyspark.sql import functions as F

    return F.expr(f"cast((cast({x} as {DEC}) * cast({c} as {DEC})) div cast({t} as {DEC}) as bigint)")


def graph_tables(tx: "DataFrame", inputs: "DataFrame", outputs: "DataFrame", stop: "DataFrame"):
    """The static tables of the propagation (persisted by the caller):

    ``ins``   in-store inputs: ``t`` (spending tx), ``pos`` (input id), ``o`` (spent output), ``stop``
              (its address is a service), ``cum``/``prev`` (running input value within ``t``, in input order)
    ``outs``  outputs: ``t``, ``o``, ``stop``, ``cum``/``prev`` (running output value within ``t``)
    ``tt``    per transaction: ``T_in`` (in-store input value), ``T_fwd`` = max(T_in, output value)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    svc = F.broadcast(stop.select(F.col("address_id"), F.lit(True).alias("svc")))
    ins = (inputs.where(F.col("spent_output_id").isNotNull())
           .select(F.col("tx_id").alias("t"), F.col("input_id").alias("pos"), F.col("spent_output_id").alias("o"),
                   "value", "address_id")
           .join(svc, "address_id", "left").withColumn("stop", F.coalesce("svc", F.lit(False))))
    ins = ins.withColumn("cum", F.sum("value").over(Window.partitionBy("t").orderBy("pos")))
    ins = ins.select("t", "pos", "o", "stop", "cum", (F.col("cum") - F.col("value")).alias("prev"))
    outs = (outputs.select(F.col("tx_id").alias("t"), F.col("output_id").alias("o"), "value", "address_id")
            .join(svc, "address_id", "left").withColumn("stop", F.coalesce("svc", F.lit(False))))
    outs = outs.withColumn("cum", F.sum("value").over(Window.partitionBy("t").orderBy("o")))
    outs = outs.select("t", "o", "stop", "cum", (F.col("cum") - F.col("value")).alias("prev"))
    t_in = ins.groupBy("t").agg(F.max("cum").alias("T_in"))
    t_out = outs.groupBy("t").agg(F.max("cum").alias("W"))
    tt = (t_out.join(t_in, "t", "left").select("t", F.coalesce("T_in", F.lit(0)).alias("T_in"),
                                               F.greatest(F.coalesce("T_in", F.lit(0)), "W").alias("T_fwd")))
    return ins, outs, tt


def keyed_tables(ins: "DataFrame", outs: "DataFrame", tt: "DataFrame", partitions: int) -> dict:
    """The static tables of :func:`_step`, both directions (``d``) together, hash-partitioned once on the
    keys each round joins them on (the caller persists them): a round then shuffles only the tainted state,
    never the chain.

    ``link``  where a tainted output flows, by ``(d, o)``: ``d, o, t, stop, rank`` (forward: the spending
              input, ranked by input id; backward: the output itself, ranked by its id)
    ``dest``  what an active transaction taints, by ``(d, t)``: ``d, t, o, cum, prev, tot`` (forward: its
              outputs, ``tot`` = ``T_fwd``; backward: its in-store inputs, ``tot`` = ``T_in``)."""
    from pyspark.sql import functions as F

    p = max(1, partitions)
    d0, d1 = F.lit(0).cast("tinyint").alias("d"), F.lit(1).cast("tinyint").alias("d")
    link = (ins.select(d0, "o", "t", "stop", F.col("pos").alias("rank"))
            .unionByName(outs.select(d1, "o", "t", "stop", F.col("o").alias("rank"))).repartition(p, "d", "o"))
    dest = (outs.join(tt.select("t", F.col("T_fwd").alias("tot")), "t").select(d0, "t", "o", "cum", "prev", "tot")
            .unionByName(ins.join(tt.select("t", F.col("T_in").alias("tot")), "t")
                         .select(d1, "t", "o", "cum", "prev", "tot"))
            .repartition(p, "d", "t"))
    return {"link": link, "dest": dest, "partitions": p}


def _step(S: "DataFrame", seed_keys: "DataFrame", keyed: dict, max_hops: int) -> "DataFrame":
    """One round, both directions: every output (forward) / spent output (backward) tainted by an active
    transaction, given the taint `S` (``d, g, o, taint, hop, parent``) of the previous round; seeds
    (`seed_keys`: ``g, o``) are left out (they keep their full value). `keyed`: :func:`keyed_tables`: the
    join with ``link`` shuffles `S`, the tainted rows are shuffled once by ``(d, t)``, and the aggregation
    and the join with ``dest`` read those partitions as they are."""
    from pyspark.sql import functions as F

    tainted = F.col("taint") > 0
    flows = (F.col("hop") < max_hops) & ((F.col("hop") == 0) | ~F.col("stop"))  # makes the transaction active
    agg = (S.join(keyed["link"], ["d", "o"]).repartition(keyed["partitions"], "d", "t").groupBy("d", "g", "t")
           .agg(F.max(flows.cast("int")).alias("active"), F.sum(F.when(tainted, F.col("taint"))).alias("X"),
                (F.min(F.when(tainted, F.col("hop"))) + 1).alias("h"),
                F.max(F.when(tainted, F.struct(F.col("taint"), (-F.col("rank")).alias("r"),
                                               F.col("o").alias("p")))).alias("best"))
           .where((F.col("active") == 1) & (F.col("X") > 0) & (F.col("h") <= max_hops)))
    # backward, tot = T_in: value from outside the store is not followed
    return (agg.join(keyed["dest"], ["d", "t"]).where(F.col("tot") > 0).withColumn("X", F.least("X", "tot"))
            .select("d", "g", "o", (muldiv("X", "cum", "tot") - muldiv("X", "prev", "tot")).alias("taint"),
                    F.col("h").cast("int").alias("hop"), F.col("best.p").alias("parent"))
            .where(F.col("taint") > 0)
            .join(seed_keys, ["g", "o"], "left_anti"))


def propagate(seeds: "DataFrame", keyed: dict, max_hops: int, max_rounds: int = 10_000,
              progress=None) -> tuple["DataFrame", int]:
    """The fixed point of :func:`_step` in both directions at once, from the seeds (``g, o, taint, hop,
    parent``) over the static tables `keyed` (:func:`keyed_tables`); returns (``d, g, o, taint, hop, parent``:
    the tainted outputs of every group and direction, the number of rounds). One Spark action per round:
    the new state is checkpointed (no lineage growth) while its row count and two 64-bit hash sums are
    computed; when they equal the previous round's, an exact comparison (anti-join) confirms the fixed
    point."""
    from pyspark.sql import functions as F

    def digest(df):
        r = df.agg(F.count(F.lit(1)).alias("n"), F.sum(F.xxhash64(*key).cast(DEC)).alias("h1"),
                   F.sum(F.xxhash64(F.lit(7), *key).cast(DEC)).alias("h2")).collect()[0]
        return (r["n"], r["h1"], r["h2"])

    seeds = seeds.select(*STATE).localCheckpoint()
    seed_keys = seeds.select("g", "o")
    if seeds.count() <= BROADCAST_SEEDS:  # the anti-join with the seeds then shuffles nothing
        seed_keys = F.broadcast(seed_keys)
    both = seeds.select(F.lit(0).cast("tinyint").alias("d"), *STATE).unionByName(
        seeds.select(F.lit(1).cast("tinyint").alias("d"), *STATE))
    S = both.localCheckpoint()
    if max_hops <= 0:
        return S, 0
    key = ["d", *STATE]
    rounds = 0
    last = digest(S)
    while rounds < max_rounds:
        rounds += 1
        new = _step(S, seed_keys, keyed, max_hops).select(F.col("d").cast("tinyint").alias("d"), *STATE)
        S2 = both.unionByName(new).localCheckpoint(eager=False)
        now = digest(S2)  # computes (and keeps) S2
        if progress is not None:
            progress.advance()
        same = now == last and S2.join(S, key, "left_anti").isEmpty()
        S, last = S2, now
        if same:
            return S, rounds
    raise RuntimeError(f"exposure propagation did not converge in {max_rounds} rounds")  # pragma: no cover
