"""Token transfer rows (ethereum-etl ``token_transfers.csv``, Transfer logs; WETH Deposit/Withdrawal as wrap/unwrap),
checked against their transactions (present in the batch, same block, successful)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth.records import conform
from chaintrace.chains.eth.stages.read import _Addr, _amounts, _fail, _first_null, _ints
from chaintrace.chains.eth.stages.traces import _tx_positions
from chaintrace.chains.eth.stages.transfers import KCODE, _part


def token_part(tt: pa.Table, thash, tx_index, tblk, h0, ok_tx) -> dict:
    tt = conform("token_transfers", tt)
    pos = _tx_positions(tt, tx_index, h0, tblk)
    if np.any(~ok_tx[pos]):
        i = int(np.flatnonzero(~ok_tx[pos])[0])
        _fail(tt, i, f"token transfer in failed transaction {thash[int(pos[i])].as_py()}")
    token = _Addr.of(tt, "token_address", False)
    frm = _Addr.of(tt, "from_address", False)
    to = _Addr.of(tt, "to_address", False)
    value = _amounts(tt, "value", None)
    if tt["log_index"].null_count:
        _fail(tt, _first_null(tt["log_index"]), "log_index is missing")
    li = _ints(tt, "log_index")
    ev = pc.fill_null(tt["event"], "transfer")
    kinds = np.where(pc.equal(ev, "deposit").to_numpy(zero_copy_only=False), KCODE["wrap"],
                     np.where(pc.equal(ev, "withdrawal").to_numpy(zero_copy_only=False), KCODE["unwrap"],
                              KCODE["token"])).astype(np.int8)
    return _part(kinds, tblk[pos], pos, li, frm, to, value, token=token, log_index=li)
