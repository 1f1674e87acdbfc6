"""The canonical form of Ethereum records between a source (ethereum-etl export, JSON-RPC node) and the store.

Every source produces :class:`EthBatch` objects: Arrow tables with ethereum-etl's column names (so an
ethereum-etl export is already almost canonical), amounts as decimal strings, and two bookkeeping columns,
``_src`` (file or URL) and ``_line`` (1-based line, or 0), that error messages use to point at the record.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

S, I = pa.string(), pa.int64()

BLOCK_COLS = {
    "number": I, "hash": S, "parent_hash": S, "nonce": S, "sha3_uncles": S, "transactions_root": S,
    "state_root": S, "receipts_root": S, "miner": S, "difficulty": S, "total_difficulty": S, "size": I,
    "extra_data": S, "gas_limit": I, "gas_used": I, "timestamp": I, "transaction_count": I,
    "base_fee_per_gas": S, "withdrawals_root": S, "blob_gas_used": I, "excess_blob_gas": I,
}
WITHDRAWAL_COLS = {"block_number": I, "index": I, "validator_index": I, "address": S, "amount": S}
TX_COLS = {
    "hash": S, "nonce": I, "block_hash": S, "block_number": I, "transaction_index": I, "from_address": S,
    "to_address": S, "value": S, "gas": I, "gas_price": S, "input": S, "block_timestamp": I,
    "max_fee_per_gas": S, "max_priority_fee_per_gas": S, "transaction_type": I,
    "receipt_cumulative_gas_used": I, "receipt_gas_used": I, "receipt_contract_address": S,
    "receipt_status": I, "receipt_effective_gas_price": S, "receipt_blob_gas_used": I,
    "receipt_blob_gas_price": S,
}
TOKEN_TRANSFER_COLS = {
    "token_address": S, "from_address": S, "to_address": S, "value": S, "transaction_hash": S,
    "log_index": I, "block_number": I, "event": S,  # event: NULL/transfer, deposit, withdrawal (WETH)
}
TRACE_COLS = {
    "block_number": I, "transaction_hash": S, "transaction_index": I, "from_address": S, "to_address": S,
    "value": S, "trace_type": S, "call_type": S, "reward_type": S, "trace_address": S, "error": S,
    "status": I, "subtraces": I,
}
RECEIPT_COLS = {
    "transaction_hash": S, "block_number": I, "cumulative_gas_used": I, "gas_used": I,
    "contract_address": S, "status": I, "effective_gas_price": S, "blob_gas_used": I, "blob_gas_price": S,
}
LOG_COLS = {"log_index": I, "transaction_hash": S, "block_number": I, "address": S, "data": S, "topics": S}
TOKEN_COLS = {"address": S, "symbol": S, "name": S, "decimals": I, "block_number": I}
BOOK = {"_src": pa.dictionary(pa.int32(), S), "_line": I}  # _src: one dictionary entry per file

KINDS = {
    "blocks": BLOCK_COLS, "withdrawals": WITHDRAWAL_COLS, "transactions": TX_COLS,
    "token_transfers": TOKEN_TRANSFER_COLS, "traces": TRACE_COLS, "receipts": RECEIPT_COLS, "logs": LOG_COLS,
    "tokens": TOKEN_COLS,
}

# event topics
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
DEPOSIT_TOPIC = "0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c"  # WETH Deposit(dst, wad)
WITHDRAWAL_TOPIC = "0x7fcf532c15f0a6db0bd6d0e038bea71d30d808c7d98cb3bf7268a95bf5081b65"  # Withdrawal(src, wad)
ZERO_ADDRESS = "0x" + "0" * 40


def empty(kind: str) -> pa.Table:
    cols = {**KINDS[kind], **BOOK}
    return pa.table({c: pa.array([], t) for c, t in cols.items()})


def conform(kind: str, table: pa.Table) -> pa.Table:
    """Select and cast the canonical columns of `kind` (missing optional columns become NULL)."""
    cols = {**KINDS[kind], **BOOK}
    out = {}
    n = len(table)
    for c, t in cols.items():
        if c in table.column_names:
            col = table[c]
            out[c] = col if col.type == t else col.cast(t)
        else:
            out[c] = pa.nulls(n, t)
    return pa.table(out)


@dataclass
class EthBatch:
    """Records of a contiguous range of blocks, in canonical columns."""

    blocks: pa.Table
    transactions: pa.Table = field(default_factory=lambda: empty("transactions"))
    token_transfers: pa.Table = field(default_factory=lambda: empty("token_transfers"))
    traces: pa.Table | None = None  # None: the source has no call traces (internal transfers unknown)
    withdrawals: pa.Table = field(default_factory=lambda: empty("withdrawals"))
    tokens: pa.Table = field(default_factory=lambda: empty("tokens"))
    has_receipts: bool = True
