"""In-memory spend index used while ingesting: txid -> dense tx id, and per-output value/address/spent.

BlockSci-style flat arrays: an open-addressing hash table keyed by the first 8 bytes of the txid (verified
against the full 32 bytes), CSR offsets from transactions to outputs, and one value/address/spent entry per
output. It is rebuilt from the store when an ingest starts, so it never needs its own crash recovery.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa

EMPTY = -1


@nb.njit(cache=True, nogil=True)
def _key(txids, row):
    k = np.uint64(0)
    for i in range(8):
        k |= np.uint64(txids[row, i]) << np.uint64(8 * i)
    return k


@nb.njit(cache=True, nogil=True)
def _same(a, ra, b, rb):
    for i in range(32):
        if a[ra, i] != b[rb, i]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _insert(slots, txids, lo, hi):
    mask = np.uint64(slots.shape[0] - 1)
    for row in range(lo, hi):
        s = _key(txids, row) & mask
        while True:
            v = slots[s]
            if v == EMPTY:
                slots[s] = row
                break
            if _same(txids, v, txids, row):  # duplicate txid (BIP-30): the later one wins
                slots[s] = row
                break
            s = (s + np.uint64(1)) & mask


@nb.njit(cache=True, nogil=True)
def _lookup(slots, txids, q, qrows, out):
    mask = np.uint64(slots.shape[0] - 1)
    for i in range(qrows.shape[0]):
        r = qrows[i]
        s = _key(q, r) & mask
        out[i] = EMPTY
        while True:
            v = slots[s]
            if v == EMPTY:
                break
            if _same(txids, v, q, r):
                out[i] = v
                break
            s = (s + np.uint64(1)) & mask


@nb.njit(cache=True, nogil=True)
def _resolve(tx_of, vout, spender_tx, out0, nout, out_value, out_addr, out_spent,
             r_oid, r_value, r_addr):
    """Resolve inputs to outputs; return (error code, input index). 1 = vout out of range, 2 = double
    spend, 3 = spends an output of the same or a later transaction."""
    for i in range(tx_of.shape[0]):
        t = tx_of[i]
        if t < 0:
            r_oid[i] = -1
            r_value[i] = -1
            r_addr[i] = -1
            continue
        if vout[i] >= nout[t]:
            return 1, i
        if t >= spender_tx[i]:
            return 3, i
        o = out0[t] + vout[i]
        if out_spent[o]:
            return 2, i
        out_spent[o] = True
        r_oid[i] = o
        r_value[i] = out_value[o]
        r_addr[i] = out_addr[o]
    return 0, 0


@nb.njit(cache=True, nogil=True)
def hex_to_internal(ascii_hex, out):
    """Decode display-order hex txids (n x 64 ASCII) into internal byte order (n x 32)."""
    for r in range(ascii_hex.shape[0]):
        for j in range(32):
            hi = ascii_hex[r, 2 * j]
            lo = ascii_hex[r, 2 * j + 1]
            hv = hi - 48 if hi <= 57 else (hi - 87 if hi >= 97 else hi - 55)
            lv = lo - 48 if lo <= 57 else (lo - 87 if lo >= 97 else lo - 55)
            out[r, 31 - j] = (hv << 4) | lv


@nb.njit(cache=True, nogil=True)
def _gather32(buf, offsets, out):
    for i in range(offsets.shape[0]):
        o = offsets[i]
        for j in range(32):
            out[i, j] = buf[o + j]


def gather32(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The 32-byte strings at buf[offsets[i]:offsets[i]+32], as an (n, 32) uint8 array."""
    out = np.empty((len(offsets), 32), np.uint8)
    _gather32(buf, offsets, out)
    return out


def txid_strings_to_internal(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow array of 64-char hex txids -> (n, 32) uint8 array in internal byte order."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    out = np.empty((n, 32), np.uint8)
    if n == 0:
        return out
    arr = arr.cast(pa.large_string()) if not pa.types.is_large_string(arr.type) else arr
    offs = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset:arr.offset + n + 1]
    if not np.all(np.diff(offs) == 64):
        raise ValueError("txid column holds values that are not 64 hex characters")
    data = np.frombuffer(arr.buffers()[2], np.uint8)[offs[0]:offs[-1]].reshape(n, 64)
    hex_to_internal(data, out)
    return out


class _Grow:
    """A numpy array with amortised append."""

    def __init__(self, dtype, shape_tail=(), cap=1024):
        self.a = np.zeros((cap, *shape_tail), dtype)
        self.n = 0

    def reserve(self, extra: int) -> None:
        need = self.n + extra
        if need > len(self.a):
            cap = max(need, 2 * len(self.a))
            b = np.zeros((cap, *self.a.shape[1:]), self.a.dtype)
            b[:self.n] = self.a[:self.n]
            self.a = b

    def extend(self, values) -> None:
        values = np.asarray(values)
        self.reserve(len(values))
        self.a[self.n:self.n + len(values)] = values
        self.n += len(values)

    @property
    def view(self) -> np.ndarray:
        return self.a[:self.n]


class SpendIndex:
    """txid -> tx id hash table plus per-output state, for resolving inputs during ingest."""

    def __init__(self):
        self.txids = _Grow(np.uint8, (32,))
        self.out0 = _Grow(np.int64)
        self.nout = _Grow(np.int64)
        self.value = _Grow(np.int64)
        self.addr = _Grow(np.int64)
        self.spent = _Grow(np.bool_)
        self.slots = np.full(1 << 16, EMPTY, np.int64)

    @property
    def n_tx(self) -> int:
        return self.txids.n

    def _rehash(self, need: int) -> None:
        cap = len(self.slots)
        if need * 2 <= cap:
            return
        while need * 2 > cap:
            cap *= 2
        self.slots = np.full(cap, EMPTY, np.int64)
        _insert(self.slots, self.txids.a, 0, self.txids.n)

    def add_transactions(self, txids: np.ndarray, out0: np.ndarray, nout: np.ndarray) -> None:
        lo = self.txids.n
        self.txids.extend(txids)
        self.out0.extend(out0)
        self.nout.extend(nout)
        if (self.txids.n) * 2 > len(self.slots):
            self._rehash(self.txids.n)
        else:
            _insert(self.slots, self.txids.a, lo, self.txids.n)

    def add_outputs(self, value: np.ndarray, addr: np.ndarray) -> None:
        self.value.extend(value)
        self.addr.extend(addr)
        self.spent.extend(np.zeros(len(value), np.bool_))

    def lookup(self, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        out = np.empty(len(rows), np.int64)
        _lookup(self.slots, self.txids.a, q, rows.astype(np.int64), out)
        return out

    def resolve(self, tx_of: np.ndarray, vout: np.ndarray, spender_tx: np.ndarray):
        n = len(tx_of)
        oid = np.empty(n, np.int64)
        val = np.empty(n, np.int64)
        adr = np.empty(n, np.int64)
        err, at = _resolve(tx_of, vout, spender_tx, self.out0.a, self.nout.a, self.value.a, self.addr.a,
                           self.spent.a, oid, val, adr)
        return int(err), int(at), oid, val, adr

    def mark_spent(self, output_ids: np.ndarray) -> None:
        self.spent.a[output_ids] = True
