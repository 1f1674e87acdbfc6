"""CoinJoin detection on Spark: every candidate transaction's inputs and outputs gathered into one row
(arrays ordered by position), then handed to the embedded detector kernel
(:func:`chaintrace.detect.coinjoin._detect_range`) a whole Arrow batch at a time through ``mapInArrow``:
the rules are the embedded engine's own compiled code, run once per batch of thousands of transactions (no
per-row Python), so both engines flag exactly the same transactions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from chaintrace.chains.btc.script import SCRIPT_TYPES
from chaintrace.detect.coinjoin import PROTOCOLS, CoinJoinParams

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame

RESULT = ("tx_id long, height long, protocol int, mask int, partial boolean, denomination long, n_equal int, "
          "n_inputs int, n_outputs int")


def _type_code(col):
    from pyspark.sql import functions as F

    m = F.create_map(*[x for i, name in enumerate(SCRIPT_TYPES) for x in (F.lit(name), F.lit(i))])
    return F.coalesce(m[col], F.lit(0))


def candidate_rows(tx: "DataFrame", inputs: "DataFrame", outputs: "DataFrame") -> "DataFrame":
    """One row per non-coinbase transaction with two or more outputs: ``tx_id, height`` and the arrays
    ``ins``/``outs`` of ``(n, known, value, type, address)`` structs ordered by position."""
    from pyspark.sql import functions as F

    spent = outputs.select(F.col("output_id").alias("spent_output_id"), _type_code(F.col("script_type")).alias("t"))
    i = (inputs.select("tx_id", "n", "spent_output_id", "value", "address_id")
         .join(spent, "spent_output_id", "left")
         .select("tx_id", F.struct(F.col("n"), F.col("spent_output_id").isNotNull().alias("k"),
                                   F.coalesce("value", F.lit(-1)).alias("v"), F.coalesce("t", F.lit(-1)).alias("t"),
                                   F.coalesce("address_id", F.lit(-1)).alias("a")).alias("s")))
    o = outputs.select("tx_id", F.struct(F.col("n"), F.lit(True).alias("k"), F.col("value").alias("v"),
                                         _type_code(F.col("script_type")).alias("t"),
                                         F.coalesce("address_id", F.lit(-1)).alias("a")).alias("s"))
    cand = tx.where(~F.col("is_coinbase") & (F.col("n_outputs") >= 2)).select("tx_id", "height")
    ins = i.join(cand.select("tx_id"), "tx_id").groupBy("tx_id").agg(F.sort_array(F.collect_list("s")).alias("ins"))
    outs = o.join(cand.select("tx_id"), "tx_id").groupBy("tx_id").agg(F.sort_array(F.collect_list("s")).alias("outs"))
    return cand.join(ins, "tx_id").join(outs, "tx_id")


def _ro(a, dtype):
    a = np.ascontiguousarray(a, dtype)
    a.flags.writeable = False
    return a


def classify_batches(params: CoinJoinParams, mainnet: bool, coordinator_ids: np.ndarray):
    """The ``mapInArrow`` function: Arrow batches of :func:`candidate_rows` in, rows of the detected
    CoinJoins (:data:`RESULT`) out."""
    coords = np.asarray(coordinator_ids, np.int64)

    def run(batches):
        import pyarrow as pa

        from chaintrace.detect.coinjoin import _detect_range, _kernel_params

        kp = _kernel_params(params, mainnet, coords)
        for b in batches:
            n = b.num_rows
            if n == 0:
                continue
            ins, outs = b.column("ins"), b.column("outs")
            io = np.asarray(ins.offsets, np.int64)
            oo = np.asarray(outs.offsets, np.int64)
            iv, ov = ins.values, outs.values
            # the inputs' spent outputs are appended after the outputs: in_output points at them
            n_flat_out = len(ov)
            known = iv.field("k").to_numpy(zero_copy_only=False)
            in_output = np.where(known, n_flat_out + np.arange(len(iv)), -1)
            val = np.concatenate([ov.field("v").to_numpy(), iv.field("v").to_numpy()])
            typ = np.concatenate([ov.field("t").to_numpy(), iv.field("t").to_numpy()])
            adr = np.concatenate([ov.field("a").to_numpy(), iv.field("a").to_numpy()])
            res = [np.zeros(n, np.uint8), np.zeros(n, np.uint8), np.zeros(n, np.bool_), np.zeros(n, np.int64),
                   np.zeros(n, np.int32)]
            _detect_range(np.int64(0), np.int64(n), _ro(io, np.int64), _ro(oo, np.int64),
                          _ro(np.zeros(n, np.bool_), np.bool_), _ro(b.column("height").to_numpy(), np.int64),
                          _ro(in_output, np.int64), _ro(val, np.int64), _ro(typ, np.int8), _ro(adr, np.int64),
                          *kp, *res)
            hit = np.flatnonzero(res[0])
            if not len(hit):
                continue
            yield pa.record_batch({
                "tx_id": pa.array(b.column("tx_id").to_numpy()[hit], pa.int64()),
                "height": pa.array(b.column("height").to_numpy()[hit], pa.int64()),
                "protocol": pa.array(res[0][hit].astype(np.int32)), "mask": pa.array(res[1][hit].astype(np.int32)),
                "partial": pa.array(res[2][hit]), "denomination": pa.array(res[3][hit]),
                "n_equal": pa.array(res[4][hit]),
                "n_inputs": pa.array((io[hit + 1] - io[hit]).astype(np.int32)),
                "n_outputs": pa.array((oo[hit + 1] - oo[hit]).astype(np.int32))})

    return run


def detect(tx: "DataFrame", inputs: "DataFrame", outputs: "DataFrame", params: CoinJoinParams, mainnet: bool,
           coordinator_ids: np.ndarray) -> "DataFrame":
    """Detected CoinJoins with the columns of the ``coinjoins`` table (:data:`chaintrace.graph.cluster.COINJOINS`)
    plus ``code`` (the protocol code, for the edges' ``coinjoin`` column)."""
    from pyspark.sql import functions as F

    raw = candidate_rows(tx, inputs, outputs).mapInArrow(classify_batches(params, mainnet, coordinator_ids), RESULT)
    names = F.create_map(*[x for c, name in PROTOCOLS.items() for x in (F.lit(c), F.lit(name))])
    dets = F.concat_ws(",", *[F.when((F.col("mask").bitwiseAND(1 << (c - 1))) != 0, F.lit(PROTOCOLS[c]))
                              for c in sorted(PROTOCOLS)])
    return raw.select("tx_id", "height", names[F.col("protocol")].alias("protocol"), dets.alias("detectors"),
                      "partial", "denomination", "n_equal", "n_inputs", "n_outputs",
                      F.col("protocol").alias("code"))
