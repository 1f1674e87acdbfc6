"""Transfer rows: the kinds (code, order inside a transaction), the rows of one source as columns
(:func:`_part`), the top-level value and withdrawal sources, and the one chronological order of all rows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from chaintrace.chains.eth.stages.read import _Addr, _Amounts, _amounts, _fail, _ints, _SameAs, _u64
from chaintrace.model import u128 as U

# transfer kinds: code (the int8 stored in the graph arrays follows chaintrace.graph.eth.KINDS) and the
# order of the kind inside a transaction (fees, top-level value, call trace, logs; block-level issuance)
KINDS = ("fee_burn", "fee_tip", "call", "create", "internal", "selfdestruct", "token", "wrap", "unwrap",
         "withdrawal", "reward", "genesis")
KCODE = {k: i for i, k in enumerate(KINDS)}
KIND_ORDER = {"fee_burn": 0, "fee_tip": 1, "call": 2, "create": 2, "internal": 3, "selfdestruct": 3,
              "token": 4, "wrap": 4, "unwrap": 4, "withdrawal": 5, "reward": 6, "genesis": 7}
TRACE_ORDER = 3  # every value-moving frame of a call trace (calls, creates, selfdestructs) in pre-order
_KIND_ARR = pa.array(KINDS, pa.string())
_KORDER = np.array([KIND_ORDER[k] for k in KINDS], np.int64)


def _part(kind, blk, txpos, sub, frm: _Addr | _SameAs, to: _Addr | _SameAs, amount: _Amounts, token=None, log_index=None,
          trace_address=None, korder=None) -> dict:
    """Transfer rows of one source, as columns. `kind` is a kind name or an int8 code array; `korder` (an
    array) overrides the kinds' order inside the transaction."""
    n = len(blk)
    kind = np.full(n, KCODE[kind], np.int8) if isinstance(kind, str) else np.asarray(kind, np.int8)
    return {
        "blk": np.asarray(blk, np.int64), "txpos": np.broadcast_to(np.asarray(txpos, np.int64), (n,)).copy(),
        "sub": np.broadcast_to(np.asarray(sub, np.int64), (n,)).copy(), "kind": kind,
        "korder": _KORDER[kind] if korder is None else np.asarray(korder, np.int64), "from": frm, "to": to, "amount": amount, "token": token,
        "log_index": np.full(n, -1, np.int64) if log_index is None else np.asarray(log_index, np.int64),
        "trace_address": trace_address,
    }


def value_part(txs: pa.Table, tblk, tvalue: _Amounts, ok_tx, tto: _Addr, tcontract: _Addr, create_to) -> dict:
    """Top-level value of successful transactions: to the recipient, or the created contract (receipt, else
    the create frame of the call trace)."""
    sel = np.flatnonzero(tvalue.nonzero() & ok_tx)
    dest = _Addr(np.where(tto.valid[:, None], tto.words, tcontract.words), tto.valid | tcontract.valid)
    if create_to is not None:
        dest = _Addr(np.where(dest.valid[:, None], dest.words, create_to.words), dest.valid | create_to.valid)
    d = dest.take(sel)
    if not d.valid.all():
        i = int(sel[np.flatnonzero(~d.valid)[0]])
        _fail(txs, i, "contract creation with value but no receipt_contract_address")
    kinds = np.where(tto.valid[sel], KCODE["call"], KCODE["create"]).astype(np.int8)
    return _part(kinds, tblk[sel], sel, 0, _SameAs("from", sel), d, tvalue.take(sel))


def withdrawal_part(wd: pa.Table, h0: int, nb_: int) -> dict:
    """Beacon-chain withdrawals (block-level issuance, after the block's transactions), gwei -> wei."""
    wb = _ints(wd, "block_number") - h0
    if wb.min() < 0 or wb.max() >= nb_:
        _fail(wd, int(np.flatnonzero((wb < 0) | (wb >= nb_))[0]), "withdrawal outside the batch's blocks")
    waddr = _Addr.of(wd, "address", False)
    glo = _u64(wd, "amount", _amounts(wd, "amount", None))
    wlo, whi = U.mul64(glo, np.full(len(glo), 10**9, np.uint64))
    # order inside the block by withdrawal index (as a rank, so the sort key stays small)
    worder = np.lexsort((_ints(wd, "index"), wb))
    wsub = np.empty(len(wb), np.int64)
    wsub[worder] = np.arange(len(wb))
    return _part("withdrawal", wb, -1, wsub, _SameAs(None, wb), waddr, _Amounts(wlo, whi))


@dataclass
class Ordered:
    """Transfer rows of every source in their chronological order."""

    parts: list  # the non-empty parts, in concatenation order
    ntr: int
    cat: dict  # concatenated part columns (blk, txpos, sub, kind, korder, log_index)
    amt: _Amounts  # concatenated amounts
    order: np.ndarray  # concatenated row -> chronological position is rank; order[position] = row
    rank: np.ndarray
    t_blk: np.ndarray  # in chronological order: block (batch position), tx position (-1: block-level), kind
    t_txpos: np.ndarray
    t_kind: np.ndarray
    seq: np.ndarray  # position inside the transaction (or the block's issuance group)


def order_transfers(parts: list[dict], first_in_block, counts) -> Ordered:
    """Concatenate the parts and sort their rows chronologically (:func:`_transfer_order`)."""
    parts = [p for p in parts if len(p["blk"])]
    ntr = sum(len(p["blk"]) for p in parts)
    cat = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64)
           for k in ("blk", "txpos", "sub", "kind", "korder", "log_index")}
    cat["kind"] = cat["kind"].astype(np.int8)
    amt = _Amounts.concat(p["amount"] for p in parts)
    order = _transfer_order(cat["blk"], cat["txpos"], cat["korder"], cat["sub"], first_in_block + counts)
    rank = np.empty(ntr, np.int64)
    rank[order] = np.arange(ntr)
    t_blk = cat["blk"][order]
    t_txpos = cat["txpos"][order]
    t_kind = cat["kind"][order]
    # seq: position inside the transaction (or inside the block's issuance group)
    grp = np.where(t_txpos < 0, -1 - t_blk, t_txpos)
    starts = np.r_[0, np.flatnonzero(grp[1:] != grp[:-1]) + 1] if ntr else np.zeros(0, np.int64)
    run = np.zeros(ntr, np.int64)
    if ntr:
        run[starts] = starts
        run = np.maximum.accumulate(run)
    seq = (np.arange(ntr) - run).astype(np.int32)
    return Ordered(parts, ntr, cat, amt, order, rank, t_blk, t_txpos, t_kind, seq)


def _transfer_order(blk, txpos, korder, sub, block_end) -> np.ndarray:
    """Chronological order of transfer rows: block, transaction (block-level issuance after the block's
    transactions), kind order, then `sub` (log index, call-trace rank, withdrawal rank). One stable integer
    argsort when the composite key fits 63 bits, else a lexsort."""
    n = len(blk)
    if not n:
        return np.zeros(0, np.int64)
    # group: tx position + block, or (first tx of the next block) + block for block-level rows: increasing
    # with (block, position in block), block-level rows last, distinct across blocks (empty ones too)
    g = np.where(txpos >= 0, txpos, block_end[blk]) + blk
    sub_bits = max(int(sub.max()).bit_length(), 1) if n else 1
    g_bits = max(int(g.max()).bit_length(), 1)
    if g_bits + 3 + sub_bits <= 63 and sub.min() >= 0:
        key = (g << (3 + sub_bits)) | (korder << sub_bits) | sub
        return np.argsort(key, kind="stable")
    return np.lexsort((sub, korder, g))
