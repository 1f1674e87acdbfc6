"""A fast synthetic Ethereum chain written as an ethereum-etl CSV export, for tests and benchmarks.

Not the scenario simulator (``chaintrace simulate eth`` models an economy with ground truth); this writes a
random but well-formed chain — linked block hashes, transactions with receipts and EIP-1559 fees, failed
transactions, internal transfers in ``traces.csv``, ERC-20 transfers and token swaps against a pool — of a
requested size, vectorised so that millions of transfers take seconds. Account 0 is the *thief*: the first
transaction of the chain moves a large amount of ETH from account 1 (the victim) to it. Accounts 2..n_exchanges+1
are exchange deposit addresses, listed in the returned tags (GraphSense TagPack form).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

E18 = 10**18
BLOCK_COLS = ["number", "hash", "parent_hash", "nonce", "sha3_uncles", "logs_bloom", "transactions_root",
              "state_root", "receipts_root", "miner", "difficulty", "total_difficulty", "size", "extra_data",
              "gas_limit", "gas_used", "timestamp", "transaction_count", "base_fee_per_gas"]
TX_COLS = ["hash", "nonce", "block_hash", "block_number", "transaction_index", "from_address", "to_address", "value",
           "gas", "gas_price", "input", "block_timestamp", "max_fee_per_gas", "max_priority_fee_per_gas",
           "transaction_type", "receipt_cumulative_gas_used", "receipt_gas_used", "receipt_contract_address",
           "receipt_root", "receipt_status", "receipt_effective_gas_price"]
TT_COLS = ["token_address", "from_address", "to_address", "value", "transaction_hash", "log_index", "block_number"]
TRACE_COLS = ["block_number", "transaction_hash", "transaction_index", "from_address", "to_address", "value", "input",
              "output", "trace_type", "call_type", "reward_type", "gas", "gas_used", "subtraces", "trace_address",
              "error", "status", "trace_id"]


def _hex(prefix: int, ids: np.ndarray, width: int) -> np.ndarray:
    """Deterministic distinct hex strings: 0x + `prefix` (2 hex digits) + zero-padded id."""
    fmt = np.char.zfill(np.char.mod("%x", ids.astype(np.int64)), width - 2)
    return np.char.add(f"0x{prefix:02x}", fmt)


def _table(cols: dict) -> pa.Table:
    """pa.table with scalars broadcast to the length of the array columns."""
    n = max(len(v) for v in cols.values() if not np.isscalar(v) and not isinstance(v, str))
    return pa.table({k: (pa.array(np.full(n, v)) if np.isscalar(v) or isinstance(v, str) else v)
                     for k, v in cols.items()})


def address(i) -> np.ndarray:
    return _hex(0xa1, np.asarray(i), 40)


def write_export(out: str | Path, n_transfers: int = 100_000, n_accounts: int = 5_000, n_tokens: int = 4,
                 n_exchanges: int = 20, txs_per_block: int = 100, seed: int = 1) -> dict:
    """Write blocks.csv, transactions.csv, token_transfers.csv, traces.csv into `out`. Returns a summary
    (counts, the thief and exchange addresses, the hack transaction hash)."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # transfers per tx: fee burn + tip, plus the value moves; about 3.2 transfers per tx on average
    n_tx = max(10, n_transfers // 3)
    n_blocks = max(1, (n_tx + txs_per_block - 1) // txs_per_block)
    kind = rng.choice(5, n_tx, p=[0.45, 0.25, 0.12, 0.10, 0.08])  # 0 eth, 1 token, 2 internal fan-out, 3 swap, 4 failed
    kind[0] = 0
    blk = np.minimum(np.arange(n_tx) // txs_per_block, n_blocks - 1)
    idx = np.arange(n_tx) - blk * txs_per_block
    # senders: skewed activity, the thief (0) active after the hack
    frm = np.minimum(rng.zipf(1.3, n_tx) - 1 + n_exchanges + 2, n_accounts - 1)
    thief_tx = rng.random(n_tx) < 0.02
    frm[thief_tx] = 0
    frm[0] = 1
    to = rng.integers(2, n_accounts, n_tx)
    to[0] = 0
    value = (rng.integers(1, 2_000_000, n_tx).astype(object) * (10**13))  # up to 20 ETH (> 2**64 wei)
    value[0] = 50_000 * E18
    token_ids = rng.integers(0, n_tokens, n_tx)
    token_ids2 = (token_ids + 1 + rng.integers(0, max(n_tokens - 1, 1), n_tx)) % max(n_tokens, 1)
    pool = n_accounts  # a pool contract account
    mover = n_accounts + 1  # a contract doing internal fan-outs
    token_addr = _hex(0xc0, np.arange(n_tokens), 40)
    tx_hash = _hex(0xe0, np.arange(n_tx), 64)
    blk_hash = _hex(0xb0, np.arange(n_blocks), 64)
    parent = np.concatenate([[_hex(0xb1, np.array([0]), 64)[0]], blk_hash[:-1]])
    base_fee = 10**9
    tip = rng.integers(1, 3, n_tx) * 10**8
    gas_used = np.where(kind == 0, 21000, rng.integers(40_000, 160_000, n_tx))
    status = np.where(kind == 4, 0, 1)
    addr = address(np.arange(n_accounts + 2))
    tx_to = np.where(kind == 0, addr[to], np.where(kind == 1, token_addr[token_ids],
                     np.where(kind == 2, addr[mover], np.where(kind == 3, addr[pool], addr[mover]))))
    tx_value = np.where((kind == 0) | (kind == 2) | (kind == 4), value, 0)
    txs = _table({
        "hash": tx_hash, "nonce": np.arange(n_tx), "block_hash": blk_hash[blk], "block_number": blk,
        "transaction_index": idx, "from_address": addr[frm], "to_address": tx_to,
        "value": pa.array([str(v) for v in tx_value]), "gas": gas_used + 10_000,
        "gas_price": base_fee + tip, "input": np.where(kind == 0, "0x", "0xa9059cbb"), "block_timestamp": 1_600_000_000 + blk * 12,
        "max_fee_per_gas": base_fee * 2 + tip, "max_priority_fee_per_gas": tip, "transaction_type": 2,
        "receipt_cumulative_gas_used": gas_used, "receipt_gas_used": gas_used, "receipt_contract_address": pa.nulls(n_tx, pa.string()),
        "receipt_root": pa.nulls(n_tx, pa.string()), "receipt_status": status, "receipt_effective_gas_price": base_fee + tip,
    })
    # token transfers: kind 1 (from -> to), kind 3 swap (from -> pool in token A, pool -> from in token B)
    t1 = np.flatnonzero(kind == 1)
    t3 = np.flatnonzero(kind == 3)
    tok_val = rng.integers(1, 10**9, n_tx).astype(object) * (10**12)
    tt_tx = np.concatenate([t1, t3, t3])
    tt_from = np.concatenate([addr[frm[t1]], addr[frm[t3]], np.full(len(t3), addr[pool])])
    tt_to = np.concatenate([addr[to[t1]], np.full(len(t3), addr[pool]), addr[frm[t3]]])
    tt_tok = np.concatenate([token_addr[token_ids[t1]], token_addr[token_ids[t3]], token_addr[token_ids2[t3]]])
    tt_val = np.concatenate([tok_val[t1], tok_val[t3], tok_val[t3] * 2])
    tt_li = np.concatenate([np.zeros(len(t1), np.int64), np.zeros(len(t3), np.int64), np.ones(len(t3), np.int64)])
    o = np.lexsort((tt_li, tt_tx))
    tts = pa.table({"token_address": tt_tok[o], "from_address": tt_from[o], "to_address": tt_to[o],
                    "value": pa.array([str(v) for v in tt_val[o]]), "transaction_hash": tx_hash[tt_tx[o]],
                    "log_index": tt_li[o], "block_number": blk[tt_tx[o]]})
    # traces: kind 2 fan-out: mover pays 2 recipients half and a quarter of the value; a failed tx gets a
    # reverted top-level frame
    t2 = np.flatnonzero(kind == 2)
    r1 = rng.integers(2, n_accounts, len(t2))
    r2 = rng.integers(2, n_accounts, len(t2))
    half = np.array([v // 2 for v in value[t2]], dtype=object)
    quarter = np.array([v // 4 for v in value[t2]], dtype=object)
    t4 = np.flatnonzero(kind == 4)
    tr_tx = np.concatenate([t2, t2, t2, t4])
    tr_addr = np.concatenate([np.full(len(t2), ""), np.full(len(t2), "0"), np.full(len(t2), "1"), np.full(len(t4), "")])
    tr_from = np.concatenate([addr[frm[t2]], np.full(2 * len(t2), addr[mover]), addr[frm[t4]]])
    tr_to = np.concatenate([np.full(len(t2), addr[mover]), addr[r1], addr[r2], np.full(len(t4), addr[mover])])
    tr_val = np.concatenate([value[t2], half, quarter, value[t4]])
    tr_err = np.concatenate([np.full(3 * len(t2), None, dtype=object), np.full(len(t4), "Reverted", dtype=object)])
    tr_status = np.concatenate([np.ones(3 * len(t2), np.int64), np.zeros(len(t4), np.int64)])
    o = np.lexsort((tr_addr, tr_tx))
    traces = _table({
        "block_number": blk[tr_tx[o]], "transaction_hash": tx_hash[tr_tx[o]], "transaction_index": idx[tr_tx[o]],
        "from_address": tr_from[o], "to_address": tr_to[o], "value": pa.array([str(v) for v in tr_val[o]]),
        "input": "0x", "output": "0x", "trace_type": "call", "call_type": "call", "reward_type": pa.nulls(len(o), pa.string()),
        "gas": 50_000, "gas_used": 30_000, "subtraces": np.where(tr_addr[o] == "", 2, 0).astype(np.int64),
        "trace_address": tr_addr[o], "error": pa.array(tr_err[o], pa.string()), "status": tr_status[o],
        "trace_id": np.char.add("call_", tx_hash[tr_tx[o]]),
    })
    counts = np.bincount(blk, minlength=n_blocks)
    gas_blk = np.bincount(blk, weights=gas_used, minlength=n_blocks).astype(np.int64)
    blocks = _table({
        "number": np.arange(n_blocks), "hash": blk_hash, "parent_hash": parent, "nonce": "0x0000000000000000",
        "sha3_uncles": "0x" + "1d" * 32, "logs_bloom": "0x", "transactions_root": "0x" + "00" * 32,
        "state_root": "0x" + "00" * 32, "receipts_root": "0x" + "00" * 32, "miner": addr[n_exchanges + 2],
        "difficulty": "0", "total_difficulty": "0", "size": 1000, "extra_data": "0x", "gas_limit": 30_000_000,
        "gas_used": gas_blk, "timestamp": 1_600_000_000 + np.arange(n_blocks) * 12, "transaction_count": counts,
        "base_fee_per_gas": base_fee,
    })
    for name, t, cols in (("blocks.csv", blocks, BLOCK_COLS), ("transactions.csv", txs, TX_COLS),
                          ("token_transfers.csv", tts, TT_COLS), ("traces.csv", traces, TRACE_COLS)):
        t = t.select(cols)
        pacsv.write_csv(t, out / name, write_options=pacsv.WriteOptions(quoting_style="needed"))
    exchanges = addr[2:2 + n_exchanges].tolist()
    tags = {"title": "synthetic exchanges", "creator": "chaintrace synth", "currency": "ETH", "category": "exchange",
            "confidence": "ownership", "is_public": True,
            "tags": [{"address": a, "label": f"Exchange {i % 4}"} for i, a in enumerate(exchanges)]}
    return {"dir": str(out), "blocks": n_blocks, "transactions": n_tx, "thief": addr[0], "victim": addr[1],
            "hack_tx": tx_hash[0], "exchanges": exchanges, "tagpack": tags,
            "token_transfers": len(tts), "traces": len(traces)}


def write_tagpack(path: str | Path, tagpack: dict) -> Path:
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(tagpack, sort_keys=False))
    return path
