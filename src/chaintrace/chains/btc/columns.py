"""Columnar pieces of Bitcoin ingest: the address dictionary, address strings, and Arrow columns built
straight from byte buffers (no Python object per row).

* :class:`AddressMap`: canonical output script -> dense address id, an open-addressing numba hash table over
  a byte pool (the ``addresses.script`` column is the pool, so it reloads from the store without decoding).
* :func:`address_column`: base58check / bech32 / bech32m strings of new addresses, checksums and all in
  numba (:mod:`chaintrace.chains.btc.sha256`); only bare multisig goes through Python.
* :func:`hex_column`, :func:`binary_column`, :func:`string_codes`: Arrow arrays from numpy buffers.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa

from chaintrace.chains.btc import script as S
from chaintrace.chains.btc.sha256 import sha256d_rows
from chaintrace.chains.btc.utxo import _Grow
from chaintrace.model.networks import BtcNetwork

EMPTY = -1


# ---------------------------------------------------------------- address map


@nb.njit(cache=True, nogil=True)
def _hash(src, off, n):
    h = np.uint64(14695981039346656037)
    for i in range(n):
        h ^= np.uint64(src[off + i])
        h *= np.uint64(1099511628211)
    return h


@nb.njit(cache=True, nogil=True)
def _rehash(slots, pool, off, ln, lo, hi):
    mask = np.uint64(slots.shape[0] - 1)
    for i in range(lo, hi):
        s = _hash(pool, off[i], ln[i]) & mask
        while slots[s] != EMPTY:
            s = (s + np.uint64(1)) & mask
        slots[s] = i


@nb.njit(cache=True, nogil=True)
def _assign(slots, pool, off, ln, n, pool_end, src, koff, klen, out):
    """Id of each key src[koff[i]:koff[i]+klen[i]]; new keys get ids n, n+1, ... and are appended to the
    pool. Returns (n, pool_end) after the batch."""
    mask = np.uint64(slots.shape[0] - 1)
    for i in range(koff.shape[0]):
        o, k = koff[i], klen[i]
        s = _hash(src, o, k) & mask
        while True:
            v = slots[s]
            if v == EMPTY:
                for j in range(k):
                    pool[pool_end + j] = src[o + j]
                off[n] = pool_end
                ln[n] = k
                pool_end += k
                slots[s] = n
                out[i] = n
                n += 1
                break
            if ln[v] == k:
                same = True
                po = off[v]
                for j in range(k):
                    if pool[po + j] != src[o + j]:
                        same = False
                        break
                if same:
                    out[i] = v
                    break
            s = (s + np.uint64(1)) & mask
    return n, pool_end


class AddressMap:
    """Canonical output script -> dense address id (ids in order of first appearance)."""

    def __init__(self):
        self.pool = _Grow(np.uint8, cap=1 << 16)
        self.off = _Grow(np.int64)
        self.ln = _Grow(np.int64)
        self.slots = np.full(1 << 16, EMPTY, np.int64)

    @property
    def n(self) -> int:
        return self.off.n

    @classmethod
    def from_scripts(cls, scripts: pa.Array | pa.ChunkedArray) -> "AddressMap":
        """Rebuild from the ``addresses.script`` column (row i = address id i)."""
        m = cls()
        if isinstance(scripts, pa.ChunkedArray):
            scripts = scripts.combine_chunks() if scripts.num_chunks else pa.array([], pa.binary())
        n = len(scripts)
        if n:
            scripts = scripts.cast(pa.large_binary())
            offs = np.frombuffer(scripts.buffers()[1], np.int64)[scripts.offset:scripts.offset + n + 1]
            data = np.frombuffer(scripts.buffers()[2], np.uint8)
            m.pool.extend(data[offs[0]:offs[-1]])
            m.off.extend(offs[:-1] - offs[0])
            m.ln.extend(np.diff(offs))
            m._grow_slots(n)
        return m

    def _grow_slots(self, need: int) -> None:
        cap = len(self.slots)
        if need * 2 <= cap and self.n == 0:
            return
        while need * 2 > cap:
            cap *= 2
        if cap != len(self.slots) or self.n:
            self.slots = np.full(cap, EMPTY, np.int64)
            _rehash(self.slots, self.pool.a, self.off.a, self.ln.a, 0, self.n)

    def assign(self, src: np.ndarray, koff: np.ndarray, klen: np.ndarray) -> tuple[np.ndarray, int]:
        """Ids of the keys src[koff:koff+klen] (adding new ones); returns (ids, first new id)."""
        first = self.n
        k = len(koff)
        self.pool.reserve(int(klen.sum()))
        self.off.reserve(k)
        self.ln.reserve(k)
        if (first + k) * 2 > len(self.slots):
            cap = len(self.slots)
            while (first + k) * 2 > cap:
                cap *= 2
            self.slots = np.full(cap, EMPTY, np.int64)
            _rehash(self.slots, self.pool.a, self.off.a, self.ln.a, 0, first)
        out = np.empty(k, np.int64)
        n, end = _assign(self.slots, self.pool.a, self.off.a, self.ln.a, first, self.pool.n, src,
                         koff.astype(np.int64), klen.astype(np.int64), out)
        self.off.n = self.ln.n = n
        self.pool.n = end
        return out, first

    def scripts_since(self, first: int) -> pa.Array:
        """Canonical scripts of ids first..n-1, as an Arrow binary array."""
        lo = int(self.off.a[first]) if first < self.n else self.pool.n
        offs = (np.append(self.off.a[first:self.n], self.pool.n) - lo).astype(np.int32)
        data = self.pool.a[lo:self.pool.n].tobytes()
        return pa.Array.from_buffers(pa.binary(), self.n - first, [None, pa.py_buffer(offs), pa.py_buffer(data)])


# ---------------------------------------------------------------- Arrow columns from buffers


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8).copy()


@nb.njit(cache=True, nogil=True)
def _hex(rows, reverse, digits, out):
    w = rows.shape[1]
    for r in range(rows.shape[0]):
        for j in range(w):
            b = rows[r, w - 1 - j] if reverse else rows[r, j]
            out[r * 2 * w + 2 * j] = digits[b >> 4]
            out[r * 2 * w + 2 * j + 1] = digits[b & 15]


def _validity(valid: np.ndarray | None):
    if valid is None or valid.all():
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), int((~valid).sum())


def hex_column(rows: np.ndarray, reverse: bool = True, valid: np.ndarray | None = None) -> pa.Array:
    """Lower-case hex strings of the rows of an (n, w) uint8 array (byte-reversed: display order of hashes);
    rows where `valid` is False are null."""
    n, w = rows.shape
    data = np.empty(n * 2 * w, np.uint8)
    _hex(np.ascontiguousarray(rows), reverse, _HEX_DIGITS, data)
    offs = np.arange(0, 2 * w * (n + 1), 2 * w, dtype=np.int32)
    bitmap, nulls = _validity(valid)
    return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offs), pa.py_buffer(data)], null_count=nulls)


@nb.njit(cache=True, nogil=True)
def _gather(src, off, ln, out, out_off):
    for i in range(off.shape[0]):
        o = out_off[i]
        s = off[i]
        for j in range(ln[i]):
            out[o + j] = src[s + j]


def binary_column(src: np.ndarray, off: np.ndarray, ln: np.ndarray) -> pa.Array:
    """Arrow binary array of the slices src[off[i]:off[i]+ln[i]]."""
    offs = np.zeros(len(off) + 1, np.int64)
    np.cumsum(ln, out=offs[1:])
    data = np.empty(int(offs[-1]), np.uint8)
    _gather(src, off.astype(np.int64), ln.astype(np.int64), data, offs)
    return pa.Array.from_buffers(pa.large_binary(), len(off), [None, pa.py_buffer(offs), pa.py_buffer(data)]
                                 ).cast(pa.binary())


def string_codes(codes: np.ndarray, names) -> pa.Array:
    """Strings names[codes[i]] as an Arrow string array (built as a dictionary array, then decoded)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), pa.array(list(names), pa.string())
                                          ).cast(pa.string())


# ---------------------------------------------------------------- address strings


@nb.njit(cache=True, nogil=True)
def _b58_payloads(src, aoff, version, rows):
    for i in range(aoff.shape[0]):
        rows[i, 0] = version[i]
        for j in range(20):
            rows[i, 1 + j] = src[aoff[i] + j]


@nb.njit(cache=True, nogil=True)
def _programs(src, aoff, alen, progs):
    for i in range(aoff.shape[0]):
        for j in range(alen[i]):
            progs[i, j] = src[aoff[i] + j]


@nb.njit(cache=True, nogil=True)
def _pack(mats_chars, mats_len, which, row, out, out_off):
    """Concatenate row `row[i]` of matrix `which[i]` for every i into out (offsets out_off)."""
    for i in range(which.shape[0]):
        m = which[i]
        r = row[i]
        o = out_off[i]
        for j in range(mats_len[m, r]):
            out[o + j] = mats_chars[m, r, j]


def address_column(src: np.ndarray, atype: np.ndarray, aoff: np.ndarray, alen: np.ndarray, wver: np.ndarray,
                   net: BtcNetwork, multisig_scripts: list[bytes]) -> pa.Array:
    """Address strings of new addresses, one per row: ``atype`` is the address type (P2PK addresses are
    P2PKH here, with the hash160 of the key at src[aoff:aoff+20]); ``aoff``/``alen`` locate the payload (the
    20/32-byte hash or program) in `src`; ``wver`` the witness version. Multisig rows take their string from
    `multisig_scripts` (in row order)."""
    n = len(atype)
    if n == 0:
        return pa.array([], pa.string())
    b58 = np.flatnonzero((atype == S.P2PKH) | (atype == S.P2SH))
    sw = np.flatnonzero((atype == S.P2WPKH) | (atype == S.P2WSH) | (atype == S.P2TR) | (atype == S.WITNESS_UNKNOWN))
    ms = np.flatnonzero(atype == S.MULTISIG)
    if len(b58) + len(sw) + len(ms) != n:
        raise ValueError("address_column: a row has no address type")
    width = 100
    chars = np.zeros((2, max(len(b58), len(sw), 1), width), np.uint8)
    lens = np.zeros((2, chars.shape[1]), np.int64)
    if len(b58):
        version = np.where(atype[b58] == S.P2PKH, net.p2pkh, net.p2sh).astype(np.uint8)
        rows = np.zeros((len(b58), 25), np.uint8)
        _b58_payloads(src, aoff[b58].astype(np.int64), version, rows)
        check = np.zeros((len(b58), 32), np.uint8)
        sha256d_rows(rows, np.int64(21), check)
        rows[:, 21:25] = check[:, :4]
        S._b58_rows(rows, chars[0], lens[0], S._B58)
    if len(sw):
        progs = np.zeros((len(sw), 40), np.uint8)
        _programs(src, aoff[sw].astype(np.int64), alen[sw].astype(np.int64), progs)
        vers = np.where(atype[sw] == S.WITNESS_UNKNOWN, wver[sw], np.where(atype[sw] == S.P2TR, 1, 0))
        S._bech32_rows(np.frombuffer(net.hrp.encode(), np.uint8), vers.astype(np.int64), progs,
                       alen[sw].astype(np.int64), chars[1], lens[1], S._B32, S._GEN)
    which = np.zeros(n, np.int64)
    row = np.zeros(n, np.int64)
    which[sw] = 1
    row[b58] = np.arange(len(b58))
    row[sw] = np.arange(len(sw))
    ln = np.zeros(n, np.int64)
    ln[b58] = lens[0, :len(b58)]
    ln[sw] = lens[1, :len(sw)]
    ms_text = [S.multisig_address(s, net).encode() for s in multisig_scripts]
    if len(ms_text) != len(ms):
        raise ValueError("address_column: one multisig script per multisig row")
    ln[ms] = [len(t) for t in ms_text]
    offs = np.zeros(n + 1, np.int64)
    np.cumsum(ln, out=offs[1:])
    data = np.empty(int(offs[-1]), np.uint8)
    keep = np.flatnonzero(atype != S.MULTISIG)
    _pack(chars, lens, which[keep], row[keep], data, offs[keep])
    for i, t in zip(ms.tolist(), ms_text):
        data[offs[i]:offs[i] + len(t)] = np.frombuffer(t, np.uint8)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offs), pa.py_buffer(data)]
                                 ).cast(pa.string())
