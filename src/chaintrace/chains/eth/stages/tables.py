"""The Arrow tables a batch commits: ``blocks``, ``transactions`` and ``transfers`` (ids continue the store's
counters `n_tx`, `n_transfers`; each transaction and block names the range of its transfers)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import columns as C
from chaintrace.chains.eth.stages.fees import Fees
from chaintrace.chains.eth.stages.ids import Ids
from chaintrace.chains.eth.stages.read import _amounts, _fail, _ints
from chaintrace.chains.eth.stages.transfers import _KIND_ARR, Ordered
from chaintrace.chains.eth.stages.validate import Blocks, TxColumns, Txs
from chaintrace.model import u128 as U
from chaintrace.store.schema import eth as schema


def _nz(a):
    return pa.array(a, mask=a < 0)


def transaction_table(tx: Txs, tc: TxColumns, f: Fees, bk: Blocks, o: Ordered, ids: Ids, n_tx: int,
                      n_transfers: int) -> pa.Table:
    txs, nt, tblk, tidx, first_in_block, thash = tx.txs, tx.nt, tx.tblk, tx.tidx, tx.first_in_block, tx.thash
    t_blk, t_txpos = o.t_blk, o.t_txpos
    from_id, to_id, contract_id = ids.from_id, ids.to_id, ids.contract_id
    tvalue, gas_price, maxfee, maxprio, eff, status = tc.tvalue, tc.gas_price, tc.maxfee, tc.maxprio, tc.eff, tc.status
    fee_lo, fee_hi, burn_lo, burn_hi, tip_lo, tip_hi = f.fee_lo, f.fee_hi, f.burn_lo, f.burn_hi, f.tip_lo, f.tip_hi
    nofee = ~tc.has_gas
    btime, h0 = bk.btime, bk.h0
    tx_pos = np.arange(nt, dtype=np.int64)
    tx_ids = n_tx + np.arange(nt, dtype=np.int64)
    tx_h = tblk + h0
    # per-tx transfer ranges
    big_k = np.int64(1 << 32)
    tr_key = t_blk * big_k + np.where(t_txpos < 0, big_k - 1, t_txpos - (first_in_block[t_blk] if nt else 0))
    tx_key = tblk * big_k + (tx_pos - first_in_block[tblk]) if nt else np.zeros(0, np.int64)
    lo_i = np.searchsorted(tr_key, tx_key, side="left")
    hi_i = np.searchsorted(tr_key, tx_key, side="right")
    tx_first_tr = n_transfers + lo_i.astype(np.int64)
    tx_n_tr = (hi_i - lo_i).astype(np.int32)

    status_col = pa.array(np.where(status < 0, 0, status).astype(np.int8), mask=status < 0)
    inp, bad = C.hex_bytes(txs["input"])
    if bad >= 0:
        _fail(txs, bad, "input: not hex data")
    transactions = pa.table({
        "tx_id": tx_ids, "hash": thash, "height": tx_h, "tx_index": tidx.astype(np.int32),
        "time": btime[tblk] if nt else np.zeros(0, np.int64), "nonce": txs["nonce"],
        "from_id": from_id, "to_id": _nz(to_id), "contract_id": _nz(contract_id),
        "value": tvalue.decimal(), "value_big": tvalue.big_column(), "gas": txs["gas"],
        "gas_price": gas_price.decimal(),
        "max_fee_per_gas": maxfee.decimal(txs["max_fee_per_gas"].is_null().to_numpy(zero_copy_only=False)),
        "max_priority_fee_per_gas": maxprio.decimal(
            txs["max_priority_fee_per_gas"].is_null().to_numpy(zero_copy_only=False)),
        "tx_type": pc.cast(txs["transaction_type"], pa.int16()), "input": inp, "status": status_col,
        "gas_used": txs["receipt_gas_used"], "cumulative_gas_used": txs["receipt_cumulative_gas_used"],
        "effective_gas_price": eff.decimal(nofee),
        "fee": U.to_decimal(fee_lo, fee_hi, nofee), "burned": U.to_decimal(burn_lo, burn_hi, nofee),
        "tip": U.to_decimal(tip_lo, tip_hi, nofee),
        "first_transfer_id": tx_first_tr, "n_transfers": tx_n_tr,
    }, schema=schema.TRANSACTIONS)
    return transactions


def transfer_table(tx: Txs, o: Ordered, ids: Ids, asset_id: np.ndarray, trace_part: dict | None, h0: int, n_tx: int,
                   n_transfers: int) -> pa.Table:
    nt, tidx = tx.nt, tx.tidx
    parts, ntr, cat, amt, order, rank = o.parts, o.ntr, o.cat, o.amt, o.order, o.rank
    t_blk, t_txpos, t_kind, seq = o.t_blk, o.t_txpos, o.t_kind, o.seq
    trf_id, trt_id = ids.trf_id, ids.trt_id
    tr_ids = n_transfers + np.arange(ntr, dtype=np.int64)
    t_amt = amt.take(order) if ntr else amt
    t_li = cat["log_index"][order]
    trace_addr = pa.nulls(ntr, pa.string())
    if trace_part is not None and trace_part["trace_address"] is not None and len(trace_part["blk"]):
        k0 = sum(len(p["blk"]) for p in parts[:next(i for i, p in enumerate(parts) if p is trace_part)])
        src = np.full(ntr, -1, np.int64)
        src[rank[k0:k0 + len(trace_part["blk"])]] = np.arange(len(trace_part["blk"]))
        trace_addr = trace_part["trace_address"].take(pa.array(src, mask=src < 0))
    tx_of = np.where(t_txpos >= 0, n_tx + t_txpos, -1)
    transfers = pa.table({
        "transfer_id": tr_ids, "height": t_blk + h0, "tx_id": _nz(tx_of),
        "tx_index": pa.array(np.where(t_txpos >= 0, tidx[np.maximum(t_txpos, 0)] if nt else 0, 0).astype(np.int32),
                             mask=t_txpos < 0),
        "seq": seq, "kind": pa.DictionaryArray.from_arrays(pa.array(t_kind, pa.int8()), _KIND_ARR).cast(pa.string()),
        "asset_id": asset_id, "from_id": _nz(trf_id[order]), "to_id": _nz(trt_id[order]),
        "value": t_amt.decimal(), "value_big": t_amt.big_column(),
        "log_index": pa.array(t_li.astype(np.int32), mask=t_li < 0),
        "trace_address": trace_addr,
    }, schema=schema.TRANSFERS)
    return transfers


def block_table(blocks: pa.Table, bk: Blocks, tx: Txs, o: Ordered, ids: Ids, wd: pa.Table, n_tx: int,
                n_transfers: int) -> pa.Table:
    nb_, h0, hashes, parents, btime = bk.nb_, bk.h0, bk.hashes, bk.parents, bk.btime
    base, base_fee_null = bk.base, bk.base_fee_null
    counts, first_in_block = tx.counts, tx.first_in_block
    t_blk, ntr, miner_id = o.t_blk, o.ntr, ids.miner_id
    heights = h0 + np.arange(nb_, dtype=np.int64)
    blk_n_tr = np.bincount(t_blk, minlength=nb_).astype(np.int32) if ntr else np.zeros(nb_, np.int32)
    blk_first_tr = n_transfers + np.concatenate([[0], np.cumsum(blk_n_tr)[:-1]]).astype(np.int64)

    def opt_int(c):
        return blocks[c] if c in blocks.column_names else pa.nulls(nb_, pa.int64())

    diff = _amounts(blocks, "difficulty", "0")
    tdiff = _amounts(blocks, "total_difficulty", "0")
    nwd = np.bincount(_ints(wd, "block_number") - h0, minlength=nb_) if len(wd) else np.zeros(nb_)
    blocks_t = pa.table({
        "height": heights, "hash": hashes, "parent_hash": parents, "time": btime, "miner_id": _nz(miner_id),
        "gas_limit": blocks["gas_limit"], "gas_used": blocks["gas_used"],
        "base_fee_per_gas": base.decimal(base_fee_null),
        "n_tx": counts.astype(np.int32), "size": blocks["size"],
        "difficulty": diff.decimal(blocks["difficulty"].is_null().to_numpy(zero_copy_only=False)),
        "total_difficulty": tdiff.decimal(blocks["total_difficulty"].is_null().to_numpy(zero_copy_only=False)),
        "nonce": blocks["nonce"], "sha3_uncles": blocks["sha3_uncles"],
        "transactions_root": blocks["transactions_root"], "state_root": blocks["state_root"],
        "receipts_root": blocks["receipts_root"], "extra_data": blocks["extra_data"],
        "withdrawals_root": blocks["withdrawals_root"], "n_withdrawals": nwd.astype(np.int32),
        "blob_gas_used": opt_int("blob_gas_used"), "excess_blob_gas": opt_int("excess_blob_gas"),
        "first_tx_id": n_tx + first_in_block, "first_transfer_id": blk_first_tr, "n_transfers": blk_n_tr,
    }, schema=schema.BLOCKS)
    return blocks_t
