"""Address ids: every address of the batch (block fee recipients, transaction parties, transfer parties) is looked
up in the store's address dictionary, and a new address gets the next id in chronological order of its first
appearance (height, then position: miner, sender, recipient, created contract, transfers in order)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from chaintrace.chains.eth import columns as C
from chaintrace.chains.eth.stages.read import _Addr, _SameAs
from chaintrace.chains.eth.stages.transfers import Ordered
from chaintrace.chains.eth.stages.validate import Blocks, TxColumns, Txs
from chaintrace.store.schema import eth as schema


@dataclass
class Ids:
    new_addr: pa.Table  # the ``addresses`` rows of new addresses
    miner_id: np.ndarray  # per block
    from_id: np.ndarray  # per transaction
    to_id: np.ndarray
    contract_id: np.ndarray
    trf_id: np.ndarray  # per transfer row, in concatenation order (-1: none)
    trt_id: np.ndarray


def address_ids(book: C.KeyIndex, od: Ordered, bk: Blocks, tx: Txs, tc: TxColumns) -> Ids:
    """Assign ids (`book`, the store's address dictionary, grows) to every address of the batch."""
    parts, cat, rank, ntr = od.parts, od.cat, od.rank, od.ntr
    nb_, h0, miners = bk.nb_, bk.h0, bk.miners
    nt, tblk = tx.nt, tx.tblk
    tfrom, tto, tcontract = tc.tfrom, tc.tto, tc.tcontract
    tx_pos = np.arange(nt, dtype=np.int64)
    heights = h0 + np.arange(nb_, dtype=np.int64)
    tx_h = tblk + h0
    # address occurrences in chronological order: per block, miner, then txs (from, to, contract), then
    # transfers; the order key is (height, position)
    offs = np.cumsum([0] + [len(p["blk"]) for p in parts])
    looked_up = [(p[side], np.arange(o, o + len(p["blk"])), j) for j, side in enumerate(("from", "to"))
                 for p, o in zip(parts, offs) if isinstance(p[side], _Addr)]
    occ_addr = _Addr.concat([miners, tfrom, tto, tcontract] + [a for a, _, _ in looked_up])
    occ_h = np.concatenate([heights, tx_h, tx_h, tx_h] + [cat["blk"][rows] + h0 for _, rows, _ in looked_up])
    occ_pos = np.concatenate([np.zeros(nb_, np.int64), (tx_pos + 1) * 4, (tx_pos + 1) * 4 + 1, (tx_pos + 1) * 4 + 2]
                             + [(nt + 1) * 4 + 2 * rank[rows] + j for _, rows, j in looked_up])
    n_before = book.n
    ids, first = book.assign(occ_addr.words, occ_addr.valid, occ_h * (1 << 40) + occ_pos)
    new_addr = pa.table({"address_id": np.arange(n_before, book.n, dtype=np.int64),
                         "address": C.words_to_strings(occ_addr.words[first], 20), "height": occ_h[first]},
                        schema=schema.ADDRESSES)
    miner_id, from_id, to_id, contract_id = np.split(ids, np.cumsum([nb_, nt, nt, nt]))[:4]
    side_ids = (np.full(ntr, -1, np.int64), np.full(ntr, -1, np.int64))
    k = 3 * nt + nb_
    for _a, rows, j in looked_up:
        side_ids[j][rows] = ids[k:k + len(rows)]
        k += len(rows)
    for j, side in enumerate(("from", "to")):
        for p, o in zip(parts, offs):
            if isinstance(p[side], _SameAs) and p[side].source is not None:
                src = from_id if p[side].source == "from" else miner_id
                side_ids[j][o:o + len(p["blk"])] = src[p[side].idx]
    trf_id, trt_id = side_ids
    return Ids(new_addr, miner_id, from_id, to_id, contract_id, trf_id, trt_id)
