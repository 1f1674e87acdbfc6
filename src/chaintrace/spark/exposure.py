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
ALL_MARKED = "spark.checkpoint.checkpointAllMarkedAncestors"
BROADCAST_ROWS = 2_000_000  # rows up to which the small side of a join (seeds, changes) is broadcast


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
    """The static tables of the rounds, both directions (``d``) together (the caller persists them):

    ``link``  where an output flows, by ``(d, o)``: ``d, o, nx, stop, rank`` (forward: ``nx`` the spending
              transaction, ``rank`` the input id; backward: ``nx`` the transaction that made it, ``rank`` the
              output id); only used to place the seeds;
    ``dest``  what a transaction taints, by ``(d, t)``: ``d, t, o, cum, prev, tot`` (forward: its outputs,
              ``tot`` = ``T_fwd``; backward: its in-store inputs, ``tot`` = ``T_in``), each row with its
              ``link`` (``nx, stop, rank``: where that output flows next), so that a tainted row carries the
              transaction it makes active and a round never joins the chain's links again."""
    from pyspark.sql import functions as F

    p = max(1, partitions)
    d0, d1 = F.lit(0).cast("tinyint").alias("d"), F.lit(1).cast("tinyint").alias("d")
    link = (ins.select(d0, "o", F.col("t").alias("nx"), "stop", F.col("pos").alias("rank"))
            .unionByName(outs.select(d1, "o", F.col("t").alias("nx"), "stop", F.col("o").alias("rank"))))
    dest = (outs.join(tt.select("t", F.col("T_fwd").alias("tot")), "t").select(d0, "t", "o", "cum", "prev", "tot")
            .unionByName(ins.join(tt.select("t", F.col("T_in").alias("tot")), "t")
                         .select(d1, "t", "o", "cum", "prev", "tot")))
    dest = (dest.where(F.col("tot") > 0)  # backward, tot = T_in: value from outside the store is not followed
            .join(link, ["d", "o"], "left").withColumn("stop", F.coalesce("stop", F.lit(False)))
            .repartition(p, "d", "t"))
    return {"link": link.repartition(p, "d", "o"), "dest": dest, "partitions": p}


def _small(df: "DataFrame", n: int) -> "DataFrame":
    """`df` marked for broadcast when it has at most :data:`BROADCAST_ROWS` rows (`n`): the join then scans
    the other side where it lies, without a shuffle or a sort."""
    from pyspark.sql import functions as F

    return F.broadcast(df) if n <= BROADCAST_ROWS else df


def _step(S: "DataFrame", A: "DataFrame", n_a: int, seed_keys: "DataFrame", keyed: dict,
          max_hops: int) -> "DataFrame":
    """The rows the transactions `A` (``d, g, t``: the affected ones, `n_a` rows) taint, recomputed from the
    whole state `S` (``d, g, o, taint, hop, parent, t, nx, stop, rank``): each one's tainted inputs (forward;
    outputs, backward) are the rows of `S` whose ``nx`` it is. Seeds (`seed_keys`: ``g, o``) are left out
    (they keep their full value)."""
    from pyspark.sql import functions as F

    tainted = F.col("taint") > 0
    flows = (F.col("hop") < max_hops) & ((F.col("hop") == 0) | ~F.col("stop"))  # makes the transaction active
    into = S.join(_small(A.withColumnRenamed("t", "nx"), n_a), ["d", "g", "nx"], "left_semi")
    agg = (into.groupBy("d", "g", F.col("nx").alias("t"))
           .agg(F.max(flows.cast("int")).alias("active"), F.sum(F.when(tainted, F.col("taint"))).alias("X"),
                (F.min(F.when(tainted, F.col("hop"))) + 1).alias("h"),
                F.max(F.when(tainted, F.struct(F.col("taint"), (-F.col("rank")).alias("r"),
                                               F.col("o").alias("p")))).alias("best"))
           .where((F.col("active") == 1) & (F.col("X") > 0) & (F.col("h") <= max_hops)))
    return (keyed["dest"].join(_small(agg, n_a), ["d", "t"]).withColumn("X", F.least("X", "tot"))
            .select(F.col("d").cast("tinyint").alias("d"), "g", "o",
                    (muldiv("X", "cum", "tot") - muldiv("X", "prev", "tot")).alias("taint"),
                    F.col("h").cast("int").alias("hop"), F.col("best.p").alias("parent"), "t", "nx", "stop", "rank")
            .where(F.col("taint") > 0)
            .join(seed_keys, ["g", "o"], "left_anti"))


def _changed(old: "DataFrame", new: "DataFrame") -> "DataFrame":
    """``d, g, o, nx`` of the rows that differ between `old` and `new` (added, removed or with another
    amount, hop or parent): what the next round must look at."""
    from pyspark.sql import functions as F

    a, b = old.alias("a"), new.alias("b")
    same = F.lit(True)
    for c in ("taint", "hop", "parent"):
        same = same & F.col(f"a.{c}").eqNullSafe(F.col(f"b.{c}"))
    return (a.join(b, ["d", "g", "o"], "full_outer").where(~same)
            .select("d", "g", "o", F.coalesce(F.col("a.nx"), F.col("b.nx")).alias("nx")))


def propagate(seeds: "DataFrame", keyed: dict, max_hops: int, max_rounds: int = 10_000,
              progress=None) -> tuple["DataFrame", int]:
    """The fixed point of the rounds in both directions at once, from the seeds (``g, o, taint, hop,
    parent``) over the static tables `keyed` (:func:`keyed_tables`); returns (``d, g, o, taint, hop, parent``
    and more columns: the tainted outputs of every group and direction, the number of rounds).

    Semi-naive: a round recomputes only the transactions *affected* by the previous round's changes (those
    an added, removed or changed row flows into: its ``nx``), each from all its tainted inputs in the state,
    and replaces their rows (every non-seed row records the transaction ``t`` that made it). A transaction
    none of whose inputs changed would give the rows it gave last time, so the state after each round is
    the one recomputing everything gives, round for round; the fixed point is the round with no change.
    Small sides (the changes, the affected transactions) are broadcast: a round scans the state and the
    ``dest`` table where they lie and shuffles only the changes. One Spark action per round (counting the
    changes); its frames are checkpointed as that action computes them (no lineage growth)."""
    from pyspark.sql import functions as F

    seeds = seeds.select(*STATE).localCheckpoint()
    seed_keys = seeds.select("g", "o")
    if seeds.count() <= BROADCAST_ROWS:  # the anti-join with the seeds then shuffles nothing
        seed_keys = F.broadcast(seed_keys)
    link = keyed["link"]
    both = seeds.select(F.lit(0).cast("tinyint").alias("d"), *STATE).unionByName(
        seeds.select(F.lit(1).cast("tinyint").alias("d"), *STATE))
    S = (both.join(link, ["d", "o"], "left").select("d", *STATE, F.lit(-1).cast("long").alias("t"), "nx",
                                                    F.coalesce("stop", F.lit(False)).alias("stop"), "rank")
         .localCheckpoint())
    if max_hops <= 0:
        return S, 0
    D, n_d = S.select("d", "g", "o", "nx"), S.count()
    sc = S.sparkSession.sparkContext
    # the round's action must truncate the lineage of every frame checkpointed on its way (not only the first
    # one it meets): else the rounds' plans and shuffles pile up, each job walking all the earlier rounds
    before = sc.getLocalProperty(ALL_MARKED)
    sc.setLocalProperty(ALL_MARKED, "true")
    try:
        return _rounds(S, D, n_d, seed_keys, keyed, max_hops, max_rounds, progress)
    finally:
        sc.setLocalProperty(ALL_MARKED, before)  # type: ignore[arg-type]  # None removes it


def _rounds(S, D, n_d, seed_keys, keyed, max_hops, max_rounds, progress):
    from pyspark.sql import functions as F

    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        # lazy checkpoints: the one action of the round (the count of the changes) computes and keeps them all
        A = (D.where(F.col("nx").isNotNull()).select("d", "g", F.col("nx").alias("t")).distinct()
             .localCheckpoint(eager=False))
        n_a = n_d  # at most one affected transaction per changed row
        new = _step(S, A, n_a, seed_keys, keyed, max_hops).localCheckpoint(eager=False)
        old = S.join(_small(A, n_a), ["d", "g", "t"], "left_semi")
        D = _changed(old, new).localCheckpoint(eager=False)
        n_d = D.count()
        # a union adds up the partitions of both sides: coalesced back, or every round would scan more of them
        S = (S.join(_small(A, n_a), ["d", "g", "t"], "left_anti").unionByName(new)
             .coalesce(keyed["partitions"]).localCheckpoint(eager=False))
        if progress is not None:
            progress.advance()
        if n_d == 0:
            return S, rounds
    raise RuntimeError(f"exposure propagation did not converge in {max_rounds} rounds")  # pragma: no cover
