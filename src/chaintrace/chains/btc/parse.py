"""Bitcoin block deserialization into flat arrays.

:func:`parse_blocks` walks the raw bytes of one or more blocks with a numba kernel and returns offsets
and integer fields in numpy arrays (one row per transaction, input and output) — no Python object per
transaction. Hashes (txid, wtxid, merkle root) are then computed with hashlib over slices of the same
buffer. Segwit serialization (BIP-144: marker 0x00, flag 0x01, witness after the outputs) is handled;
the txid hashes the stripped serialization, the wtxid the full one.

Errors are raised as :class:`ParseError` carrying the byte offset (relative to the buffer) so callers can
name the file and absolute offset.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numba as nb
import numpy as np


class ParseError(ValueError):
    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset
        self.message = message


ERR_MESSAGES = {
    1: "unexpected end of data",
    2: "bad varint",
    3: "segwit flag is not 0x01",
    4: "transaction count exceeds block size",
    5: "block has trailing bytes after its last transaction",
    6: "script length exceeds block",
    7: "block holds no transactions",
    8: "segwit transaction without inputs or witness stack too large",
}

HEADER_SIZE = 80


@nb.njit(cache=True, nogil=True)
def _varint(buf, pos, end):
    if pos >= end:
        return -1, -1
    b = buf[pos]
    if b < 0xFD:
        return np.int64(b), pos + 1
    if b == 0xFD:
        n = 2
    elif b == 0xFE:
        n = 4
    else:
        n = 8
    if pos + 1 + n > end:
        return -1, -1
    v = np.int64(0)
    for i in range(n):
        v |= np.int64(buf[pos + 1 + i]) << (8 * i)
    if v < 0:
        return -1, -1
    return v, pos + 1 + n


@nb.njit(cache=True, nogil=True)
def _u32(buf, pos):
    return (np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8) | (np.int64(buf[pos + 2]) << 16)
            | (np.int64(buf[pos + 3]) << 24))


@nb.njit(cache=True, nogil=True)
def _i64(buf, pos):
    v = np.int64(0)
    for i in range(8):
        v |= np.int64(buf[pos + i]) << (8 * i)
    return v


@nb.njit(cache=True, nogil=True)
def _parse_kernel(buf, bstart, bend,
                  blk_ntx, blk_tx0,
                  tx_start, tx_end, tx_version, tx_locktime, tx_segwit, tx_body0, tx_body1,
                  tx_nin, tx_nout, tx_in0, tx_out0,
                  in_prev, in_vout, in_soff, in_slen, in_seq,
                  out_value, out_soff, out_slen):
    """Fill the arrays; return (n_tx, n_in, n_out, err_code, err_pos)."""
    ntx = 0
    nin = 0
    nout = 0
    for b in range(bstart.shape[0]):
        pos = bstart[b] + 80
        end = bend[b]
        if pos > end:
            return ntx, nin, nout, 1, bstart[b]
        count, pos = _varint(buf, pos, end)
        if pos < 0:
            return ntx, nin, nout, 2, bstart[b] + 80
        if count == 0:
            return ntx, nin, nout, 7, bstart[b] + 80
        if ntx + count > tx_start.shape[0]:
            return ntx, nin, nout, 4, bstart[b] + 80
        blk_ntx[b] = count
        blk_tx0[b] = ntx
        for _ in range(count):
            t0 = pos
            if pos + 4 > end:
                return ntx, nin, nout, 1, pos
            ver = _u32(buf, pos)
            if ver >= 0x80000000:
                ver -= 0x100000000
            pos += 4
            segwit = False
            if pos + 2 <= end and buf[pos] == 0 :
                if buf[pos + 1] != 1:
                    return ntx, nin, nout, 3, pos
                segwit = True
                pos += 2
            body0 = pos
            n_in, pos = _varint(buf, pos, end)
            if pos < 0:
                return ntx, nin, nout, 2, body0
            if nin + n_in > in_vout.shape[0]:
                return ntx, nin, nout, 1, body0
            i0 = nin
            for _i in range(n_in):
                if pos + 36 > end:
                    return ntx, nin, nout, 1, pos
                in_prev[nin] = pos
                in_vout[nin] = _u32(buf, pos + 32)
                pos += 36
                sl, p2 = _varint(buf, pos, end)
                if p2 < 0:
                    return ntx, nin, nout, 2, pos
                if p2 + sl + 4 > end:
                    return ntx, nin, nout, 6, pos
                in_soff[nin] = p2
                in_slen[nin] = sl
                pos = p2 + sl
                in_seq[nin] = _u32(buf, pos)
                pos += 4
                nin += 1
            p0 = pos
            n_out, pos = _varint(buf, pos, end)
            if pos < 0:
                return ntx, nin, nout, 2, p0
            if nout + n_out > out_value.shape[0]:
                return ntx, nin, nout, 1, p0
            o0 = nout
            for _o in range(n_out):
                if pos + 8 > end:
                    return ntx, nin, nout, 1, pos
                out_value[nout] = _i64(buf, pos)
                pos += 8
                sl, p2 = _varint(buf, pos, end)
                if p2 < 0:
                    return ntx, nin, nout, 2, pos
                if p2 + sl > end:
                    return ntx, nin, nout, 6, pos
                out_soff[nout] = p2
                out_slen[nout] = sl
                pos = p2 + sl
                nout += 1
            body1 = pos
            if segwit:
                if n_in == 0:
                    return ntx, nin, nout, 8, t0
                for _i in range(n_in):
                    items, pos2 = _varint(buf, pos, end)
                    if pos2 < 0:
                        return ntx, nin, nout, 2, pos
                    pos = pos2
                    for _k in range(items):
                        il, pos2 = _varint(buf, pos, end)
                        if pos2 < 0 or pos2 + il > end:
                            return ntx, nin, nout, 1, pos
                        pos = pos2 + il
            if pos + 4 > end:
                return ntx, nin, nout, 1, pos
            tx_locktime[ntx] = _u32(buf, pos)
            pos += 4
            tx_start[ntx] = t0
            tx_end[ntx] = pos
            tx_version[ntx] = ver
            tx_segwit[ntx] = segwit
            tx_body0[ntx] = body0
            tx_body1[ntx] = body1
            tx_nin[ntx] = n_in
            tx_nout[ntx] = n_out
            tx_in0[ntx] = i0
            tx_out0[ntx] = o0
            ntx += 1
        if pos != end:
            return ntx, nin, nout, 5, pos
    return ntx, nin, nout, 0, 0


@dataclass
class ParsedBlocks:
    """Flat arrays describing every block, transaction, input and output of a buffer.

    Offsets are into ``buf``. ``tx_*`` arrays have one row per transaction in block order; ``in_*`` and
    ``out_*`` one row per input/output; ``tx_in0``/``tx_out0`` are the CSR offsets of each transaction's
    first input/output.
    """

    buf: np.ndarray
    blk_start: np.ndarray
    blk_end: np.ndarray
    blk_ntx: np.ndarray
    blk_tx0: np.ndarray
    tx_start: np.ndarray
    tx_end: np.ndarray
    tx_version: np.ndarray
    tx_locktime: np.ndarray
    tx_segwit: np.ndarray
    tx_body0: np.ndarray
    tx_body1: np.ndarray
    tx_nin: np.ndarray
    tx_nout: np.ndarray
    tx_in0: np.ndarray
    tx_out0: np.ndarray
    in_prev: np.ndarray
    in_vout: np.ndarray
    in_soff: np.ndarray
    in_slen: np.ndarray
    in_seq: np.ndarray
    out_value: np.ndarray
    out_soff: np.ndarray
    out_slen: np.ndarray
    txid: list[bytes] | None = None  # internal byte order
    wtxid: list[bytes] | None = None

    @property
    def n_tx(self) -> int:
        return len(self.tx_start)

    def block_hash(self, b: int) -> bytes:
        s = int(self.blk_start[b])
        return hashlib.sha256(hashlib.sha256(self.buf[s:s + 80].tobytes()).digest()).digest()


def parse_blocks(buf: np.ndarray, starts, ends) -> ParsedBlocks:
    """Parse the blocks found at buf[starts[i]:ends[i]] (each: 80-byte header, tx count, txs)."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    total = int((ends - starts).sum()) if len(starts) else 0
    max_tx = total // 60 + len(starts) + 1
    max_in = total // 41 + 1
    max_out = total // 9 + 1
    nb_ = len(starts)
    i64 = np.int64
    a = dict(
        blk_ntx=np.zeros(nb_, i64), blk_tx0=np.zeros(nb_, i64),
        tx_start=np.empty(max_tx, i64), tx_end=np.empty(max_tx, i64), tx_version=np.empty(max_tx, i64),
        tx_locktime=np.empty(max_tx, i64), tx_segwit=np.empty(max_tx, np.bool_),
        tx_body0=np.empty(max_tx, i64), tx_body1=np.empty(max_tx, i64), tx_nin=np.empty(max_tx, i64),
        tx_nout=np.empty(max_tx, i64), tx_in0=np.empty(max_tx, i64), tx_out0=np.empty(max_tx, i64),
        in_prev=np.empty(max_in, i64), in_vout=np.empty(max_in, i64), in_soff=np.empty(max_in, i64),
        in_slen=np.empty(max_in, i64), in_seq=np.empty(max_in, i64),
        out_value=np.empty(max_out, i64), out_soff=np.empty(max_out, i64), out_slen=np.empty(max_out, i64),
    )
    ntx, nin, nout, err, epos = _parse_kernel(
        buf, starts, ends, a["blk_ntx"], a["blk_tx0"],
        a["tx_start"], a["tx_end"], a["tx_version"], a["tx_locktime"], a["tx_segwit"], a["tx_body0"],
        a["tx_body1"], a["tx_nin"], a["tx_nout"], a["tx_in0"], a["tx_out0"],
        a["in_prev"], a["in_vout"], a["in_soff"], a["in_slen"], a["in_seq"],
        a["out_value"], a["out_soff"], a["out_slen"])
    if err:
        raise ParseError(int(epos), ERR_MESSAGES.get(int(err), f"parse error {err}"))
    cut = {"tx": ntx, "in": nin, "out": nout}
    for k, v in a.items():
        if k.startswith("tx_"):
            a[k] = v[:cut["tx"]]
        elif k.startswith("in_"):
            a[k] = v[:cut["in"]]
        elif k.startswith("out_"):
            a[k] = v[:cut["out"]]
    return ParsedBlocks(buf=buf, blk_start=starts, blk_end=ends, **a)


def hash_transactions(p: ParsedBlocks) -> None:
    """Compute txid and wtxid (internal byte order) of every transaction into ``p.txid``/``p.wtxid``."""
    mv = memoryview(p.buf)
    sha = hashlib.sha256
    txids: list[bytes] = []
    wtxids: list[bytes] = []
    starts, ends = p.tx_start.tolist(), p.tx_end.tolist()
    b0s, b1s, sw = p.tx_body0.tolist(), p.tx_body1.tolist(), p.tx_segwit.tolist()
    for s, e, b0, b1, w in zip(starts, ends, b0s, b1s, sw):
        full = sha(sha(mv[s:e]).digest()).digest()
        if w:
            h = sha(mv[s:s + 4])
            h.update(mv[b0:b1])
            h.update(mv[e - 4:e])
            txids.append(sha(h.digest()).digest())
        else:
            txids.append(full)
        wtxids.append(full)
    p.txid, p.wtxid = txids, wtxids


def merkle_root(hashes: list[bytes]) -> bytes:
    """Bitcoin merkle root (internal byte order) of a list of internal-order hashes."""
    level = list(hashes)
    sha = hashlib.sha256
    while len(level) > 1:
        if len(level) & 1:
            level.append(level[-1])
        level = [sha(sha(level[i] + level[i + 1]).digest()).digest() for i in range(0, len(level), 2)]
    return level[0]


def coinbase_height(script: bytes) -> int | None:
    """Block height committed in a coinbase scriptSig (BIP-34), or None if it does not start with one."""
    if not script:
        return None
    op = script[0]
    if op == 0x00:
        return 0
    if 0x51 <= op <= 0x60:
        return op - 0x50
    if 1 <= op <= 8 and len(script) > op:
        v = int.from_bytes(script[1:1 + op], "little")
        if script[op] & 0x80:  # negative numbers are not heights
            return None
        return v
    return None
