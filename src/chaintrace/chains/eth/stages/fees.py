"""Transaction fees, exactly (128-bit limbs): fee = gas used x effective gas price (+ blob gas), burned = gas used
x the block's base fee (+ blob gas), tip = fee - burned to the block's fee recipient; and their transfer rows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from chaintrace.chains.eth.stages.read import _Addr, _amounts, _Amounts, _fail, _ints, _SameAs, _u64
from chaintrace.chains.eth.stages.transfers import _part
from chaintrace.chains.eth.stages.validate import Blocks, TxColumns
from chaintrace.model import u128 as U


@dataclass
class Fees:
    """Per transaction, as (lo, hi) uint64 limbs."""

    fee_lo: np.ndarray
    fee_hi: np.ndarray
    burn_lo: np.ndarray
    burn_hi: np.ndarray
    tip_lo: np.ndarray
    tip_hi: np.ndarray


def fees(txs: pa.Table, tblk: np.ndarray, tc: TxColumns, bk: Blocks) -> Fees:
    """Fee, burned and tip of every transaction; an effective gas price below the block's base fee is an error."""
    nt = len(txs)
    gu, eff_lo, has_gas = tc.gu, tc.eff_lo, tc.has_gas
    base_lo, base_fee_null = bk.base_lo, bk.base_fee_null
    fee_lo, fee_hi = U.mul64(gu, eff_lo)
    tx_base = base_lo[tblk] if nt else np.zeros(0, np.uint64)
    tx_base_null = base_fee_null[tblk] if nt else np.zeros(0, bool)
    burn_lo, burn_hi = U.mul64(gu, np.where(tx_base_null, np.uint64(0), tx_base))
    below = (eff_lo < tx_base) & ~tx_base_null & has_gas
    if below.any():
        i = int(np.flatnonzero(below)[0])
        _fail(txs, i, f"effective gas price {int(eff_lo[i])} is below the block's base fee {int(tx_base[i])}")
    blob_used = _ints(txs, "receipt_blob_gas_used", 0, np.uint64)
    if nt and blob_used.any():
        blo, bhi = U.mul64(blob_used, _u64(txs, "receipt_blob_gas_price",
                                           _amounts(txs, "receipt_blob_gas_price", "0")))
        fee_lo, fee_hi = U.add(fee_lo, fee_hi, blo, bhi)
        burn_lo, burn_hi = U.add(burn_lo, burn_hi, blo, bhi)
    tip_lo, tip_hi = U.sub(fee_lo, fee_hi, burn_lo, burn_hi)
    return Fees(fee_lo, fee_hi, burn_lo, burn_hi, tip_lo, tip_hi)


def fee_parts(blocks: pa.Table, tblk: np.ndarray, has_gas: np.ndarray, f: Fees, miners: _Addr) -> list[dict]:
    """The ``fee_burn`` (sender -> nobody) and ``fee_tip`` (sender -> the block's fee recipient) rows."""
    burn_lo, burn_hi, tip_lo, tip_hi = f.burn_lo, f.burn_hi, f.tip_lo, f.tip_hi
    parts = []
    sel = np.flatnonzero(has_gas & ((burn_lo != 0) | (burn_hi != 0)))
    parts.append(_part("fee_burn", tblk[sel], sel, 0, _SameAs("from", sel), _SameAs(None, sel),
                       _Amounts(burn_lo[sel], burn_hi[sel])))
    sel = np.flatnonzero(has_gas & ((tip_lo != 0) | (tip_hi != 0)))
    if not miners.valid[tblk[sel]].all():
        i = int(sel[np.flatnonzero(~miners.valid[tblk[sel]])[0]])
        _fail(blocks, int(tblk[i]), "miner (fee recipient) is missing")
    parts.append(_part("fee_tip", tblk[sel], sel, 0, _SameAs("from", sel), _SameAs("miner", tblk[sel]),
                       _Amounts(tip_lo[sel], tip_hi[sel])))
    return parts
