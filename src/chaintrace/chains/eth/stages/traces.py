"""Call traces (ethereum-etl ``traces.csv``, ``debug_traceBlock``/``trace_block``) -> the internal-transfer
rows, the contract created by top-level create frames, and the status of transactions without a receipt
status. A frame moves value only if neither it nor an ancestor failed (:func:`_ineffective`)."""
from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import columns as C
from chaintrace.chains.eth.records import conform
from chaintrace.chains.eth.stages.read import _Addr, _amounts, _fail, _hash_words, _ints
from chaintrace.chains.eth.stages.transfers import _KORDER, KCODE, TRACE_ORDER, _part


@nb.njit(cache=True, nogil=True)
def _trace_paths(off, data, valid, depth, out, ncol):
    """Parse trace addresses ("0,2,1"; NULL or "" is the top-level frame) into rows of `out` (padded with -1);
    returns the first malformed row or -1. Only the first `ncol` levels are stored (depth is exact)."""
    for i in range(off.shape[0] - 1):
        d = 0
        if valid[i]:
            s, e = off[i], off[i + 1]
            v = -1
            for j in range(s, e + 1):
                c = data[j] if j < e else 44
                if 48 <= c <= 57:
                    v = (0 if v < 0 else v) * 10 + (c - 48)
                    if v > 2_000_000_000:
                        return i
                elif c == 44:
                    if v < 0:
                        if j == e and d == 0:
                            break  # empty string
                        return i
                    if d < ncol:
                        out[i, d] = v
                    d += 1
                    v = -1
                elif c != 32:
                    return i
        depth[i] = d
    return -1


@nb.njit(cache=True, nogil=True)
def _ineffective(grp_start, rows, failed, depth, path):
    """Frames that moved nothing: failed ones, and those below a failed frame of the same transaction.
    `rows` lists the frames grouped by transaction (group g: rows[grp_start[g]:grp_start[g + 1]])."""
    out = failed.copy()
    for g in range(grp_start.shape[0] - 1):
        a, b = grp_start[g], grp_start[g + 1]
        for x in range(a, b):
            f = rows[x]
            if not failed[f]:
                continue
            df = depth[f]
            for y in range(a, b):
                r = rows[y]
                if out[r] or depth[r] < df:
                    continue
                same = True
                for k in range(min(df, path.shape[1])):
                    if path[r, k] != path[f, k]:
                        same = False
                        break
                if same:
                    out[r] = True
    return out


def _tx_positions(t: pa.Table, tx_index: C.KeyIndex, h0: int, tblk: np.ndarray) -> np.ndarray:
    """Positions in the batch's transactions of the rows' ``transaction_hash``, checked against their
    ``block_number``."""
    words, valid = _hash_words(t, "transaction_hash")
    pos = tx_index.lookup(words, valid)
    if np.any(pos < 0):
        i = int(np.flatnonzero(pos < 0)[0])
        _fail(t, i, f"transaction {t['transaction_hash'][i].as_py().lower()} is not in the transactions of "
                    f"this block range")
    b = _ints(t, "block_number") - h0
    bad = np.flatnonzero(tblk[pos] != b)
    if len(bad):
        i = int(bad[0])
        _fail(t, i, f"block_number {int(b[i]) + h0} differs from its transaction's block {int(tblk[pos[i]]) + h0}")
    return pos


def traces_part(traces: pa.Table, thash, tx_index, tblk, h0, nb_, first_in_block, counts, status):
    """Call-trace frames -> the internal-transfer part, the created contract of top-level create frames
    (per transaction) and the status of transactions that have no receipt status."""
    tr = conform("traces", traces)
    n = len(tr)
    nt = len(tblk)
    tcode = pc.index_in(pc.fill_null(pc.utf8_lower(tr["trace_type"]), ""), value_set=pa.array(
        ["call", "create", "create2", "suicide", "selfdestruct", "reward", "genesis"])).fill_null(-1).to_numpy()
    is_call, is_create = tcode == 0, (tcode == 1) | (tcode == 2)
    is_destruct, is_issue = (tcode == 3) | (tcode == 4), (tcode == 5) | (tcode == 6)
    plain_call = pc.is_in(pc.fill_null(pc.utf8_lower(tr["call_type"]), ""),
                          value_set=pa.array(["call", ""])).to_numpy(zero_copy_only=False)
    off, data, valid = C.string_buffers(tr["trace_address"])
    depth = np.zeros(n, np.int64)
    ncol = 1
    path = np.full((n, ncol), -1, np.int64)
    bad = _trace_paths(off, data, valid, depth, path, ncol)
    if bad >= 0:
        _fail(tr, bad, f"trace_address: not a list of call indices: {tr['trace_address'][bad].as_py()!r}")
    if n and depth.max() > ncol:
        ncol = int(depth.max())
        path = np.full((n, ncol), -1, np.int64)
        _trace_paths(off, data, valid, depth, path, ncol)
    top = depth == 0
    failed = tr["error"].is_valid().to_numpy(zero_copy_only=False) | (_ints(tr, "status", -1) == 0)
    has_hash = tr["transaction_hash"].is_valid().to_numpy(zero_copy_only=False)
    has_idx = tr["transaction_index"].is_valid().to_numpy(zero_copy_only=False)
    in_tx = has_hash | has_idx
    b = _ints(tr, "block_number") - h0
    if n and (b.min() < 0 or b.max() >= nb_):
        _fail(tr, int(np.flatnonzero((b < 0) | (b >= nb_))[0]), "trace outside the batch's blocks")
    pos = np.full(n, -1, np.int64)
    if has_hash.all():
        pos = _tx_positions(tr, tx_index, h0, tblk)
    elif has_hash.any():
        sel = np.flatnonzero(has_hash)
        pos[sel] = _tx_positions(tr.take(pa.array(sel)), tx_index, h0, tblk)
    sel = np.flatnonzero(~has_hash & has_idx)
    if len(sel):
        ti = _ints(tr, "transaction_index")[sel]
        bad = np.flatnonzero(ti >= counts[b[sel]])
        if len(bad):
            _fail(tr, int(sel[bad[0]]), f"transaction_index {int(ti[bad[0]])} is not in block {int(b[sel[bad[0]]]) + h0}")
        pos[sel] = first_in_block[b[sel]] + ti
    # frames that move value: neither they nor an ancestor failed
    effective = ~failed
    if (failed & in_tx).any():
        rows = np.flatnonzero(in_tx)
        rows = rows[np.argsort(pos[rows], kind="stable")]
        p = pos[rows]
        grp = np.r_[0, np.flatnonzero(p[1:] != p[:-1]) + 1, len(rows)]
        effective = ~_ineffective(grp, rows, failed, depth, path)
    # status of transactions without a receipt status: their top-level frame
    status = status.copy()
    tops = np.flatnonzero(in_tx & top)
    if len(tops):
        tp = pos[tops]
        s = np.where(failed[tops], 0, 1)
        unknown = status[tp] == -1
        _, first = np.unique(tp, return_index=True)
        firsts = np.zeros(len(tops), bool)
        firsts[first] = True
        setting = unknown & firsts
        status[tp[setting]] = s[setting]
        clash = ~setting & (status[tp] != s) & (is_call | is_create)[tops]
        if clash.any():
            k = int(np.flatnonzero(clash)[0])
            i, p_ = int(tops[k]), int(tp[k])
            _fail(tr, i, f"top-level trace {'failed' if s[k] == 0 else 'succeeded'} but the receipt status of "
                         f"{thash[p_].as_py()} is {int(status[p_])}")
    # the created contract of top-level create frames (the transaction's value goes there)
    create_to = _Addr.null(nt)
    cr = np.flatnonzero(in_tx & top & is_create & tr["to_address"].is_valid().to_numpy(zero_copy_only=False))
    if len(cr):
        a = _Addr.of(tr.take(pa.array(cr)), "to_address", False)
        create_to.words[pos[cr]] = a.words
        create_to.valid[pos[cr]] = True
    # value-moving frames (top-level value comes from the transaction itself)
    value = _amounts(tr, "value", "0")
    moves = ~(in_tx & top) & value.nonzero()
    kind = np.full(n, -1, np.int64)
    kind[moves & ~in_tx & is_issue] = np.where(tcode == 5, KCODE["reward"], KCODE["genesis"])[moves & ~in_tx & is_issue]
    inner = moves & in_tx & effective
    kind[inner & is_call & plain_call] = KCODE["internal"]
    kind[inner & is_create] = KCODE["create"]
    kind[inner & is_destruct] = KCODE["selfdestruct"]  # delegatecall/staticcall/callcode move no value
    keep = np.flatnonzero(kind >= 0)
    sub = tr.select(["from_address", "to_address", "trace_address", "_src", "_line"]).take(pa.array(keep))
    frm = _Addr.of(sub, "from_address", True)
    to = _Addr.of(sub, "to_address", False)
    issued = (kind[keep] == KCODE["reward"]) | (kind[keep] == KCODE["genesis"])
    if np.any(~frm.valid & ~issued):
        _fail(sub, int(np.flatnonzero(~frm.valid & ~issued)[0]), "from_address is missing")
    frm.valid &= ~issued
    # order inside a transaction: call-trace pre-order = lexicographic order of the trace address
    kp, kb = pos[keep], b[keep]
    okey = np.lexsort(tuple(path[keep, j] for j in range(ncol - 1, -1, -1)) + (kp, kb))
    rank_in_block = np.empty(len(keep), np.int64)
    rank_in_block[okey] = np.arange(len(keep))
    ta = sub["trace_address"]
    ta = pc.if_else(pc.equal(pc.fill_null(ta, ""), ""), pa.scalar(None, pa.string()), ta)
    part = _part(kind[keep].astype(np.int8), kb, np.where(issued, -1, kp), rank_in_block, frm, to,
                 value.take(keep), trace_address=ta.combine_chunks() if isinstance(ta, pa.ChunkedArray) else ta,
                 korder=np.where(issued, _KORDER[kind[keep]], TRACE_ORDER))
    return part, create_to, status
