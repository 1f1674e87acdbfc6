"""Validating a batch before anything is committed: blocks contiguous and linked by parent hash to the stored tip,
transactions in (block, index) order with no gap or duplicate, counts and block hashes as the blocks declare,
receipt fields well-formed. Every failure names the file and line of the row."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import columns as C
from chaintrace.chains.eth.stages.read import (ChainMismatch, _Addr, _amounts, _Amounts, _fail, _first_null, _hash_col,
                                               _hash_words, _ints, _u64, _where)


@dataclass
class Blocks:
    """The checked columns of a batch's blocks."""

    nb_: int
    h0: int  # first height
    hashes: pa.Array  # lower-cased hex strings
    hashes_w: np.ndarray  # (n, 4) uint64 words
    parents: pa.Array
    base_fee_null: np.ndarray
    base: _Amounts
    base_lo: np.ndarray
    miners: _Addr
    btime: np.ndarray


def check_blocks(blocks: pa.Table, expect_parent: str | None) -> Blocks:
    """Blocks in order, contiguous, each the parent of the next, the first a child of `expect_parent` (the
    stored tip's hash; None: an empty store)."""
    nb_ = len(blocks)
    nums = blocks["number"].to_numpy().astype(np.int64)
    h0 = int(nums[0])
    if not np.array_equal(nums, h0 + np.arange(nb_)):
        i = int(np.flatnonzero(nums != h0 + np.arange(nb_))[0])
        _fail(blocks, i, f"block {int(nums[i])} is not the next block (expected {h0 + i}): blocks must be "
                         f"contiguous")
    hashes, hashes_w = _hash_col(blocks, "hash")
    parents, _ = _hash_col(blocks, "parent_hash")
    hl, pl = hashes.to_pylist(), parents.to_pylist()
    for i in range(nb_):
        if expect_parent is not None and pl[i] != expect_parent:
            src, line = _where(blocks, i)
            msg = (f"block {h0 + i} has parent {pl[i]}, expected {expect_parent} (not on the same chain as the "
                   f"block before it)")
            raise ChainMismatch(f"{src}:{line}: {msg}" if line else f"{src}: {msg}")
        expect_parent = hl[i]
    if len(set(hl)) != nb_:
        _fail(blocks, 0, "duplicate block hashes")
    for c in ("timestamp", "gas_used", "gas_limit"):
        if blocks[c].null_count:
            _fail(blocks, _first_null(blocks[c]), f"{c} is missing")
    base_fee_null = blocks["base_fee_per_gas"].is_null().to_numpy(zero_copy_only=False)
    base = _amounts(blocks, "base_fee_per_gas", "0")
    base_lo = _u64(blocks, "base_fee_per_gas", base)
    miners = _Addr.of(blocks, "miner", True)
    btime = blocks["timestamp"].to_numpy().astype(np.int64)
    return Blocks(nb_, h0, hashes, hashes_w, parents, base_fee_null, base, base_lo, miners, btime)


@dataclass
class Txs:
    """The checked columns of a batch's transactions (in block, index order)."""

    txs: pa.Table
    nt: int
    tblk: np.ndarray  # block of each transaction (position in the batch)
    tidx: np.ndarray
    counts: np.ndarray  # transactions per block
    first_in_block: np.ndarray
    thash: pa.Array
    tx_index: C.KeyIndex  # transaction hash -> position in the batch


def check_transactions(txs: pa.Table, blocks: pa.Table, bk: Blocks) -> Txs:
    """Transactions sorted by (block, index), every block's indices 0..n-1, counts as declared, block hashes
    as the blocks'; hashes unique."""
    nb_, h0, hashes_w = bk.nb_, bk.h0, bk.hashes_w
    hl = bk.hashes.to_pylist()
    nt = len(txs)
    for c in ("block_number", "transaction_index", "hash", "from_address"):
        if txs[c].null_count:
            _fail(txs, _first_null(txs[c]), f"{c} is missing")
    tblk = _ints(txs, "block_number") - h0
    tidx = _ints(txs, "transaction_index")
    if nt and np.any((tblk[1:] < tblk[:-1]) | ((tblk[1:] == tblk[:-1]) & (tidx[1:] < tidx[:-1]))):
        txs = txs.take(pc.sort_indices(txs, [("block_number", "ascending"), ("transaction_index", "ascending")]))
        tblk, tidx = _ints(txs, "block_number") - h0, _ints(txs, "transaction_index")
    if nt and (tblk.min() < 0 or tblk.max() >= nb_):
        i = int(np.flatnonzero((tblk < 0) | (tblk >= nb_))[0])
        _fail(txs, i, f"transaction of block {int(tblk[i]) + h0}, which is not in this batch's blocks file range")
    counts = np.bincount(tblk, minlength=nb_) if nt else np.zeros(nb_, np.int64)
    first_in_block = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    if nt:
        expected_idx = np.arange(nt) - first_in_block[tblk]
        bad = np.flatnonzero(tidx != expected_idx)
        if len(bad):
            i = int(bad[0])
            _fail(txs, i, f"transaction index {int(tidx[i])} in block {int(tblk[i]) + h0}: expected "
                          f"{int(expected_idx[i])} (missing or duplicate transactions)")
    decl = blocks["transaction_count"].fill_null(-1).to_numpy()
    badc = np.flatnonzero((decl >= 0) & (decl != counts))
    if len(badc):
        i = int(badc[0])
        _fail(blocks, i, f"block {h0 + i} declares {int(decl[i])} transactions, the export has {int(counts[i])}")
    thash, thash_w = _hash_col(txs, "hash")
    tx_index = C.KeyIndex(4, thash_w)  # transaction hash -> position in the batch
    if tx_index.duplicate >= 0:
        _fail(txs, tx_index.duplicate, f"duplicate transaction {thash[tx_index.duplicate].as_py()}")
    if nt and txs["block_hash"].null_count < nt:
        bh, bh_valid = _hash_words(txs, "block_hash", True)
        same = ~bh_valid | (bh == hashes_w[tblk]).all(axis=1)
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            _fail(txs, i, f"block_hash {txs['block_hash'][i].as_py().lower()} differs from block "
                          f"{int(tblk[i]) + h0}'s hash {hl[int(tblk[i])]}")
    return Txs(txs, nt, tblk, tidx, counts, first_in_block, thash, tx_index)


@dataclass
class TxColumns:
    """Parties, value, gas prices and receipt fields of the transactions."""

    tfrom: _Addr
    tto: _Addr
    tcontract: _Addr
    tvalue: _Amounts
    gas_price: _Amounts
    maxfee: _Amounts
    maxprio: _Amounts
    eff: _Amounts  # effective gas price (receipt, else gas price)
    eff_lo: np.ndarray
    has_gas: np.ndarray  # the receipt's gas used is known
    gu: np.ndarray
    status: np.ndarray  # receipt status, -1 unknown


def tx_columns(txs: pa.Table) -> TxColumns:
    nt = len(txs)
    tfrom = _Addr.of(txs, "from_address", False)
    tto = _Addr.of(txs, "to_address", True)
    tcontract = _Addr.of(txs, "receipt_contract_address", True)
    tvalue = _amounts(txs, "value", "0")
    gas_price = _amounts(txs, "gas_price", "0")
    maxfee = _amounts(txs, "max_fee_per_gas", "0")
    maxprio = _amounts(txs, "max_priority_fee_per_gas", "0")
    eff_t = txs.set_column(txs.column_names.index("receipt_effective_gas_price"), "receipt_effective_gas_price",
                           pc.coalesce(txs["receipt_effective_gas_price"], txs["gas_price"]))
    eff = _amounts(eff_t, "receipt_effective_gas_price", "0")
    eff_lo = _u64(eff_t, "receipt_effective_gas_price", eff)
    has_gas = txs["receipt_gas_used"].is_valid().to_numpy(zero_copy_only=False) if nt else np.zeros(0, bool)
    gu = _ints(txs, "receipt_gas_used", 0, np.uint64)

    # status: receipt, else the top-level call frame, else assumed successful
    status = _ints(txs, "receipt_status", -1)
    if nt and np.any((status != -1) & (status != 0) & (status != 1)):
        i = int(np.flatnonzero((status != -1) & (status != 0) & (status != 1))[0])
        _fail(txs, i, f"receipt_status must be 0 or 1, got {int(status[i])}")
    return TxColumns(tfrom, tto, tcontract, tvalue, gas_price, maxfee, maxprio, eff, eff_lo, has_gas, gu, status)
