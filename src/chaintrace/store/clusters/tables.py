"""Arrow schemas of the cluster tables stored under ``DATA/btc/clusters/`` and their construction from arrays
(no I/O).

Each table is stored as Parquet under ``DATA/btc/clusters/`` and seen in DuckDB as the view ``btc.<name>`` of
:data:`VIEW_TABLES` (see :mod:`.views`). The ``coinjoins`` table is built by
:func:`chaintrace.graph.cluster.edges.coinjoin_table` (it needs the CoinJoin detectors' protocol codes).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

EDGES = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("tx_id", pa.int64()), ("height", pa.int64()),
                   ("heuristic", pa.string()), ("confidence", pa.float64()), ("coinjoin", pa.uint8())])
COINJOINS = pa.schema([("tx_id", pa.int64()), ("height", pa.int64()), ("protocol", pa.string()),
                       ("detectors", pa.string()), ("partial", pa.bool_()), ("denomination", pa.int64()),
                       ("n_equal", pa.int32()), ("n_inputs", pa.int32()), ("n_outputs", pa.int32())])
UNIONS = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("tx_id", pa.int64()), ("height", pa.int64()),
                    ("heuristic", pa.string()), ("confidence", pa.float64()), ("size_a", pa.int64()),
                    ("size_b", pa.int64())])
REFUSALS = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("tx_id", pa.int64()), ("height", pa.int64()),
                      ("heuristic", pa.string()), ("confidence", pa.float64()), ("reason", pa.string()),
                      ("detail", pa.string()), ("size_a", pa.int64()), ("size_b", pa.int64())])
ADDRESS_CLUSTERS = pa.schema([("address_id", pa.int64()), ("cluster_id", pa.int64()), ("cluster_size", pa.int64())])

# catalog views (btc.<name>) over the committed files; see chaintrace.store.schema.btc
VIEW_TABLES = {"address_clusters": ADDRESS_CLUSTERS, "cluster_unions": UNIONS, "cluster_refusals": REFUSALS,
               "cluster_edges": EDGES, "coinjoins": COINJOINS}



def _constant_strings(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([value])).cast(pa.string()) \
        if n else pa.array([], pa.string())


def edge_table(a: np.ndarray, b: np.ndarray, tx: np.ndarray, height: np.ndarray, heuristic: str,
               confidence: np.ndarray | None = None, coinjoin: np.ndarray | None = None) -> pa.Table:
    """Candidate edges of one layer (`confidence` default 1, `coinjoin` protocol code default 0)."""
    n = len(a)
    return pa.table({"a": a, "b": b, "tx_id": tx, "height": height, "heuristic": _constant_strings(heuristic, n),
                     "confidence": np.ones(n, np.float64) if confidence is None else confidence.astype(np.float64),
                     "coinjoin": np.zeros(n, np.uint8) if coinjoin is None else coinjoin}, schema=EDGES)


def union_table(edges: pa.Table, rows: np.ndarray, a: np.ndarray, b: np.ndarray, size_a: np.ndarray,
                size_b: np.ndarray) -> pa.Table:
    """The unions performed: rows `rows` of `edges` with the sizes of both sides before the union."""
    take = pa.array(rows)
    return pa.table({"a": a[rows].astype(np.int64), "b": b[rows].astype(np.int64),
                     "tx_id": edges["tx_id"].take(take), "height": edges["height"].take(take),
                     "heuristic": edges["heuristic"].take(take), "confidence": edges["confidence"].take(take),
                     "size_a": size_a[rows], "size_b": size_b[rows]}, schema=UNIONS)


def refusal_table(edges: pa.Table, rows: np.ndarray, a: np.ndarray, b: np.ndarray, reason: np.ndarray,
                  detail: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> pa.Table:
    """The refused unions: rows `rows` of `edges` with a reason and detail each (aligned with `rows`)."""
    take = pa.array(rows)
    return pa.table({"a": a[rows].astype(np.int64), "b": b[rows].astype(np.int64),
                     "tx_id": edges["tx_id"].take(take), "height": edges["height"].take(take),
                     "heuristic": edges["heuristic"].take(take), "confidence": edges["confidence"].take(take),
                     "reason": pa.array(reason.tolist(), pa.string()), "detail": pa.array(detail.tolist(), pa.string()),
                     "size_a": size_a[rows], "size_b": size_b[rows]}, schema=REFUSALS)


def address_cluster_table(cluster_of: np.ndarray, cluster_size: np.ndarray) -> pa.Table:
    """``address_clusters``: one row per address id."""
    return pa.table({"address_id": np.arange(len(cluster_of), dtype=np.int64),
                     "cluster_id": cluster_of.astype(np.int64), "cluster_size": cluster_size.astype(np.int64)},
                    schema=ADDRESS_CLUSTERS)
