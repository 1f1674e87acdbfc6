"""Bitcoin tables and views.

Dense ids: ``tx_id``, ``output_id``, ``input_id`` and ``address_id`` are 0-based row numbers assigned in
chain order (height, index in block, then output/input index), so they are also the chronological order
key, and arrays indexed by them need no lookup. ``transactions.first_output_id``/``first_input_id`` with
``n_outputs``/``n_inputs`` are CSR offsets into outputs and inputs.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from chaintrace.store.schema._sql import scan

BLOCKS = pa.schema([
    ("height", pa.int64()),
    ("hash", pa.string()),
    ("prev_hash", pa.string()),
    ("merkle_root", pa.string()),
    ("time", pa.int64()),
    ("version", pa.int64()),
    ("bits", pa.int64()),
    ("nonce", pa.int64()),
    ("n_tx", pa.int32()),
    ("size", pa.int64()),
    ("stripped_size", pa.int64()),
    ("weight", pa.int64()),
    ("first_tx_id", pa.int64()),
])

TRANSACTIONS = pa.schema([
    ("tx_id", pa.int64()),
    ("txid", pa.string()),
    ("wtxid", pa.string()),
    ("height", pa.int64()),
    ("tx_index", pa.int32()),
    ("time", pa.int64()),
    ("is_coinbase", pa.bool_()),
    ("version", pa.int64()),
    ("locktime", pa.int64()),
    ("size", pa.int32()),
    ("vsize", pa.int32()),
    ("weight", pa.int32()),
    ("n_inputs", pa.int32()),
    ("n_outputs", pa.int32()),
    ("first_input_id", pa.int64()),
    ("first_output_id", pa.int64()),
    ("input_value", pa.int64()),  # NULL when a spent output is not in the store
    ("output_value", pa.int64()),
    ("fee", pa.int64()),  # NULL when input_value is NULL; 0 for coinbase
])

OUTPUTS = pa.schema([
    ("output_id", pa.int64()),
    ("tx_id", pa.int64()),
    ("height", pa.int64()),
    ("n", pa.int32()),
    ("value", pa.int64()),
    ("script_type", pa.string()),
    ("address_id", pa.int64()),  # NULL for OP_RETURN and non-standard scripts
    ("script", pa.binary()),
])

INPUTS = pa.schema([
    ("input_id", pa.int64()),
    ("tx_id", pa.int64()),
    ("height", pa.int64()),
    ("n", pa.int32()),
    ("prev_txid", pa.string()),  # NULL for coinbase
    ("prev_vout", pa.int64()),
    ("spent_output_id", pa.int64()),  # NULL when the spent output is not in the store (or coinbase)
    ("value", pa.int64()),
    ("address_id", pa.int64()),
    ("sequence", pa.int64()),
])

ADDRESSES = pa.schema([
    ("address_id", pa.int64()),
    ("address", pa.string()),
    ("script_type", pa.string()),
    ("script", pa.binary()),  # canonical output script paying this address
    ("height", pa.int64()),  # height where the address first appears
])

SCHEMAS: dict[str, pa.Schema] = {
    "blocks": BLOCKS,
    "transactions": TRANSACTIONS,
    "outputs": OUTPUTS,
    "inputs": INPUTS,
    "addresses": ADDRESSES,
}


def views(files: dict[str, list[Path]], schema: str = "btc") -> list[str]:
    """DuckDB statements creating the catalog views of a Bitcoin store in `schema`."""
    s = schema
    raw = {t: scan(files.get(t, []), SCHEMAS[t]) for t in SCHEMAS}
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE OR REPLACE VIEW {s}.blocks AS SELECT * FROM {raw['blocks']}",
        f"CREATE OR REPLACE VIEW {s}.transactions AS SELECT * FROM {raw['transactions']}",
        f"CREATE OR REPLACE VIEW {s}.addresses AS SELECT * FROM {raw['addresses']}",
        f"CREATE OR REPLACE VIEW {s}.inputs_raw AS SELECT * FROM {raw['inputs']}",
        f"CREATE OR REPLACE VIEW {s}.outputs_raw AS SELECT * FROM {raw['outputs']}",
        f"""CREATE OR REPLACE VIEW {s}.inputs AS
            SELECT i.input_id, i.tx_id, t.txid, i.height, i.n, i.prev_txid, i.prev_vout, i.spent_output_id,
                   i.value, i.address_id, a.address, i.sequence
            FROM {s}.inputs_raw i
            JOIN {s}.transactions t USING (tx_id)
            LEFT JOIN {s}.addresses a ON a.address_id = i.address_id""",
        f"""CREATE OR REPLACE VIEW {s}.outputs AS
            SELECT o.output_id, o.tx_id, t.txid, o.height, o.n, o.value, o.script_type, o.address_id,
                   a.address, o.script, i.tx_id AS spending_tx_id, st.txid AS spending_txid,
                   i.n AS spending_input, i.height AS spending_height
            FROM {s}.outputs_raw o
            JOIN {s}.transactions t USING (tx_id)
            LEFT JOIN {s}.addresses a ON a.address_id = o.address_id
            LEFT JOIN {s}.inputs_raw i ON i.spent_output_id = o.output_id
            LEFT JOIN {s}.transactions st ON st.tx_id = i.tx_id""",
        *_cluster_views(files, s),
        *_derived_views(files, s),
    ]


def _derived_views(files: dict[str, list[Path]], s: str) -> list[str]:
    """Derived tables (issue 19: ``chaintrace spark run stats`` ...) committed under ``DATA/btc/derived/``."""
    seg = next((p for fs in files.values() for p in fs), None)
    if seg is None:
        return []
    from chaintrace.store.derived import catalog_views

    return catalog_views(Path(seg).parent.parent, s)


def _cluster_views(files: dict[str, list[Path]], s: str) -> list[str]:
    """Address clusters (issue 7): ``{s}.address_clusters`` (address_id, cluster_id, cluster_size),
    ``cluster_unions``, ``cluster_refusals``, ``cluster_edges``, ``coinjoins`` over the Parquet files that
    ``chaintrace cluster build`` commits under ``DATA/btc/clusters/`` (empty until the first build)."""
    seg = next((p for fs in files.values() for p in fs), None)
    if seg is None:
        return []
    from chaintrace.store.clusters.views import catalog_views  # lazy: clusters.views imports the workspace

    return catalog_views(Path(seg).parent.parent, s)
