"""Ethereum (account model) tables and views. Documented in docs/ethereum.md.

Dense ids, all 0-based and assigned in chain order, so they are also the chronological order key and arrays
indexed by them need no lookup:

* ``tx_id``: transactions in (block, index in block) order;
* ``transfer_id``: every value movement in (block, tx index, position in the transaction) order; inside a
  transaction the order is gas fee (burned base fee, then the priority tip), the top-level value transfer,
  internal value transfers from the call trace (pre-order = execution order), then token transfers in log
  order; block-level issuance (withdrawals, block/uncle rewards) comes after the block's transactions;
* ``address_id``: accounts in order of first appearance;
* ``asset_id``: 0 is native ETH, tokens follow in order of first appearance.

Amounts are exact integers: ``value DECIMAL(38,0)`` plus ``value_big VARCHAR`` (the decimal string, set only
when the amount does not fit DECIMAL(38,0); see chaintrace.model.amounts). ``from_id`` NULL means issued by
the protocol (withdrawal, block reward, genesis allocation); ``to_id`` NULL means destroyed by the protocol
(the EIP-1559 base fee, EIP-4844 blob fees). Failed transactions move no value but pay gas, so they have fee
transfers only.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from chaintrace.store.schema._sql import scan

D38 = pa.decimal128(38, 0)

BLOCKS = pa.schema([
    ("height", pa.int64()),
    ("hash", pa.string()),
    ("parent_hash", pa.string()),
    ("time", pa.int64()),
    ("miner_id", pa.int64()),
    ("gas_limit", pa.int64()),
    ("gas_used", pa.int64()),
    ("base_fee_per_gas", D38),  # NULL before London
    ("n_tx", pa.int32()),
    ("size", pa.int64()),
    ("difficulty", D38),
    ("total_difficulty", D38),
    ("nonce", pa.string()),
    ("sha3_uncles", pa.string()),
    ("transactions_root", pa.string()),
    ("state_root", pa.string()),
    ("receipts_root", pa.string()),
    ("extra_data", pa.string()),
    ("withdrawals_root", pa.string()),
    ("n_withdrawals", pa.int32()),
    ("blob_gas_used", pa.int64()),
    ("excess_blob_gas", pa.int64()),
    ("first_tx_id", pa.int64()),
    ("first_transfer_id", pa.int64()),
    ("n_transfers", pa.int32()),
])

TRANSACTIONS = pa.schema([
    ("tx_id", pa.int64()),
    ("hash", pa.string()),
    ("height", pa.int64()),
    ("tx_index", pa.int32()),
    ("time", pa.int64()),
    ("nonce", pa.int64()),
    ("from_id", pa.int64()),
    ("to_id", pa.int64()),  # NULL for contract creation
    ("contract_id", pa.int64()),  # the created contract (receipt contractAddress)
    ("value", D38),
    ("value_big", pa.string()),
    ("gas", pa.int64()),
    ("gas_price", D38),
    ("max_fee_per_gas", D38),
    ("max_priority_fee_per_gas", D38),
    ("tx_type", pa.int16()),
    ("input", pa.binary()),
    ("status", pa.int8()),  # 1 success, 0 failed (reverted, out of gas); NULL unknown
    ("gas_used", pa.int64()),  # NULL when the export carried no receipts
    ("cumulative_gas_used", pa.int64()),
    ("effective_gas_price", D38),
    ("fee", D38),  # gas_used * effective_gas_price (+ blob fee)
    ("burned", D38),  # gas_used * base_fee (+ blob fee): destroyed
    ("tip", D38),  # fee - burned: paid to the block's fee recipient
    ("first_transfer_id", pa.int64()),
    ("n_transfers", pa.int32()),
])

# kind: fee_burn, fee_tip, call (top-level value), internal (call trace), create, selfdestruct, token,
# withdrawal, reward, genesis
TRANSFERS = pa.schema([
    ("transfer_id", pa.int64()),
    ("height", pa.int64()),
    ("tx_id", pa.int64()),  # NULL for block-level issuance
    ("tx_index", pa.int32()),
    ("seq", pa.int32()),  # position inside the transaction (or inside the block's issuance)
    ("kind", pa.string()),
    ("asset_id", pa.int32()),
    ("from_id", pa.int64()),  # NULL: issued by the protocol
    ("to_id", pa.int64()),  # NULL: destroyed by the protocol
    ("value", D38),
    ("value_big", pa.string()),
    ("log_index", pa.int32()),  # token transfers
    ("trace_address", pa.string()),  # internal transfers: call path, e.g. "0,2"
])

ADDRESSES = pa.schema([
    ("address_id", pa.int64()),
    ("address", pa.string()),  # 0x + 40 lower-case hex digits
    ("height", pa.int64()),  # block of first appearance
])

ASSETS = pa.schema([
    ("asset_id", pa.int32()),
    ("address", pa.string()),  # token contract; NULL for native ETH
    ("symbol", pa.string()),
    ("name", pa.string()),
    ("decimals", pa.int16()),
    ("standard", pa.string()),  # native, erc20
    ("height", pa.int64()),  # block of first appearance (-1 for native ETH)
])

SCHEMAS: dict[str, pa.Schema] = {
    "blocks": BLOCKS,
    "transactions": TRANSACTIONS,
    "transfers": TRANSFERS,
    "addresses": ADDRESSES,
    "assets": ASSETS,
}


def views(files: dict[str, list[Path]], schema: str = "eth") -> list[str]:
    """DuckDB statements creating the catalog views of an Ethereum store in `schema`.

    Raw tables keep ids (``*_raw``); the plain views join the address strings, the asset symbol and the
    transaction hash in for people writing SQL.
    """
    s = schema
    raw = {t: scan(files.get(t, []), SCHEMAS[t]) for t in SCHEMAS}
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE OR REPLACE VIEW {s}.addresses AS SELECT * FROM {raw['addresses']}",
        f"CREATE OR REPLACE VIEW {s}.assets AS SELECT * FROM {raw['assets']}",
        f"CREATE OR REPLACE VIEW {s}.blocks_raw AS SELECT * FROM {raw['blocks']}",
        f"CREATE OR REPLACE VIEW {s}.transactions_raw AS SELECT * FROM {raw['transactions']}",
        f"CREATE OR REPLACE VIEW {s}.transfers_raw AS SELECT * FROM {raw['transfers']}",
        f"""CREATE OR REPLACE VIEW {s}.blocks AS
            SELECT b.* EXCLUDE (miner_id), b.miner_id, m.address AS miner
            FROM {s}.blocks_raw b LEFT JOIN {s}.addresses m ON m.address_id = b.miner_id""",
        f"""CREATE OR REPLACE VIEW {s}.transactions AS
            SELECT t.tx_id, t.hash, t.height, t.tx_index, t.time, t.nonce, f.address AS from_address,
                   o.address AS to_address, c.address AS contract_address, t.value, t.value_big, t.gas,
                   t.gas_price, t.max_fee_per_gas, t.max_priority_fee_per_gas, t.tx_type, t.input, t.status,
                   t.gas_used, t.cumulative_gas_used, t.effective_gas_price, t.fee, t.burned, t.tip,
                   t.from_id, t.to_id, t.contract_id, t.first_transfer_id, t.n_transfers
            FROM {s}.transactions_raw t
            LEFT JOIN {s}.addresses f ON f.address_id = t.from_id
            LEFT JOIN {s}.addresses o ON o.address_id = t.to_id
            LEFT JOIN {s}.addresses c ON c.address_id = t.contract_id""",
        f"""CREATE OR REPLACE VIEW {s}.transfers AS
            SELECT r.transfer_id, r.height, r.tx_id, t.hash AS tx_hash, r.tx_index, r.seq, r.kind, r.asset_id,
                   a.symbol, a.address AS token_address, f.address AS from_address, o.address AS to_address,
                   r.value, r.value_big, r.log_index, r.trace_address, r.from_id, r.to_id
            FROM {s}.transfers_raw r
            LEFT JOIN {s}.transactions_raw t ON t.tx_id = r.tx_id
            LEFT JOIN {s}.assets a ON a.asset_id = r.asset_id
            LEFT JOIN {s}.addresses f ON f.address_id = r.from_id
            LEFT JOIN {s}.addresses o ON o.address_id = r.to_id""",
    ]
