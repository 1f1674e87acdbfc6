"""Column kernels for Ethereum ingest: hex strings, decimal amounts and the address dictionary, straight from
Arrow string buffers (numba), so no per-row Python runs on the ingest path.

* :func:`hex_words` validates fixed-width hex strings (hashes, addresses) and decodes them into uint64
  words; :func:`words_to_strings` writes them back lower-cased; :func:`hex_bytes` decodes variable-length
  hex data (transaction input) to binary.
* :func:`parse_amounts` parses decimal strings into 128-bit limbs ``(lo, hi)``; amounts of 10**38 and more
  are flagged for the ``value_big`` column (their exact text is kept).
* :class:`KeyIndex` is an open-addressing hash table of such words -> dense id: the ingestor's address
  dictionary (:meth:`KeyIndex.assign` looks up a batch's address occurrences and gives the new ones ids in
  order of first appearance) and the per-batch index of transaction hashes.

Errors are reported as the index of the first bad row; callers turn it into a message with file and line.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa

D38 = pa.decimal128(38, 0)
DEC38_DIGITS = 38  # every number of at most 38 digits is below 10**38 (and below 2**127)
MAX_DIGITS = 78  # 2**256 has 78 digits

_HEXVAL = np.full(256, 255, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEXVAL[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEXVAL[_c] = 10 + _i
_HEXCHR = np.frombuffer(b"0123456789abcdef", np.uint8).copy()


def string_buffers(arr) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, data, valid) numpy views of an Arrow string array (chunked arrays are combined)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else (
            arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type))
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    n = len(arr)
    if n == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.bool_)
    bufs = arr.buffers()
    ot = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    off = np.frombuffer(bufs[1], ot, count=arr.offset + n + 1)[arr.offset:]
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(0, np.uint8)
    valid = np.ones(n, np.bool_) if arr.null_count == 0 else arr.is_valid().to_numpy(zero_copy_only=False)
    return off, data, valid


def _fixed_string_array(chars: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Arrow string array from an (n, w) uint8 matrix of fixed-width strings (rows where ~valid are NULL)."""
    n, w = chars.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32) if n else np.zeros(1, np.int32)
    null_count = int(n - valid.sum())
    validity = pa.array(valid).buffers()[1] if null_count else None
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars))],
                                 null_count=null_count)


# ---------------------------------------------------------------- fixed-width hex (hashes, addresses)


def n_words(nbytes: int) -> int:
    return (nbytes + 7) // 8


@nb.njit(cache=True, nogil=True)
def _hex_words(off, data, valid, nbytes, nullable, hexval, words):
    """`0x` + 2*nbytes hex digits (any case) per row -> big-endian uint64 words (the last one holds the
    remaining bytes). Returns (the first bad row (a NULL is bad unless `nullable`) or -1, whether any row
    had an upper-case digit or ``0X``)."""
    w = 2 + 2 * nbytes
    upper = False
    for i in range(off.shape[0] - 1):
        if not valid[i]:
            if not nullable:
                return i, upper
            continue
        s = off[i]
        if off[i + 1] - s != w or data[s] != 48 or (data[s + 1] != 120 and data[s + 1] != 88):
            return i, upper
        if data[s + 1] == 88:
            upper = True
        s += 2
        for k in range(words.shape[1]):
            x = np.uint64(0)
            nd = min(16, 2 * nbytes - 16 * k)
            for j in range(nd):
                c = data[s + 16 * k + j]
                v = hexval[c]
                if v == 255:
                    return i, upper
                if c < 97 and v >= 10:
                    upper = True
                x = (x << np.uint64(4)) | np.uint64(v)
            words[i, k] = x
    return -1, upper


@nb.njit(cache=True, nogil=True)
def _words_hex(words, nbytes, hexchr, out):
    for i in range(words.shape[0]):
        out[i, 0] = 48
        out[i, 1] = 120
        for k in range(words.shape[1]):
            nd = min(16, 2 * nbytes - 16 * k)
            x = words[i, k]
            for j in range(nd - 1, -1, -1):
                out[i, 2 + 16 * k + j] = hexchr[x & np.uint64(15)]
                x >>= np.uint64(4)


def hex_words(arr, nbytes: int, nullable: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(words (n, n_words) uint64, valid, first bad row or -1) of a column of `0x` + 2*nbytes hex digits."""
    words, valid, bad, _ = hex_column(arr, nbytes, nullable, strings=False)
    return words, valid, bad


def hex_column(arr, nbytes: int, nullable: bool, strings: bool = True):
    """(words, valid, first bad row or -1, the column as lower-case strings): the input column itself when
    it is lower-case already (the usual case: no copy), else written from the words."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else (
            arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type))
    off, data, valid = string_buffers(arr)
    n = len(valid)
    words = np.zeros((n, n_words(nbytes)), np.uint64)
    bad, upper = _hex_words(off, data, valid, nbytes, nullable, _HEXVAL, words) if n else (-1, False)
    out = None
    if strings and bad < 0:
        out = arr if not upper and arr.type == pa.string() else words_to_strings(words, nbytes, valid)
    return words, valid, int(bad), out


def words_to_strings(words: np.ndarray, nbytes: int = 20, valid: np.ndarray | None = None) -> pa.Array:
    """Lower-case `0x` hex strings of (n, n_words) words (NULL where not `valid`)."""
    out = np.zeros((len(words), 2 + 2 * nbytes), np.uint8)
    if len(words):
        _words_hex(words, nbytes, _HEXCHR, out)
    return _fixed_string_array(out, np.ones(len(words), np.bool_) if valid is None else valid)


@nb.njit(cache=True, nogil=True)
def _hex_data_sizes(off, data, valid, hexval, sizes):
    for i in range(off.shape[0] - 1):
        if not valid[i]:
            sizes[i] = 0
            continue
        s, e = off[i], off[i + 1]
        if e - s < 2 or data[s] != 48 or (data[s + 1] != 120 and data[s + 1] != 88) or (e - s) % 2:
            return i
        for j in range(s + 2, e):
            if hexval[data[j]] == 255:
                return i
        sizes[i] = (e - s - 2) // 2
    return -1


@nb.njit(cache=True, nogil=True)
def _hex_data_decode(off, data, valid, hexval, out_off, out):
    for i in range(off.shape[0] - 1):
        if not valid[i]:
            continue
        s = off[i] + 2
        o = out_off[i]
        for k in range(out_off[i + 1] - o):
            out[o + k] = (hexval[data[s + 2 * k]] << 4) | hexval[data[s + 2 * k + 1]]


def hex_bytes(arr) -> tuple[pa.Array | None, int]:
    """(binary array, first bad row or -1) of `0x`-prefixed hex data strings (NULL -> empty)."""
    off, data, valid = string_buffers(arr)
    n = len(valid)
    sizes = np.zeros(n, np.int64)
    bad = _hex_data_sizes(off, data, valid, _HEXVAL, sizes) if n else -1
    if bad >= 0:
        return None, int(bad)
    out_off = np.zeros(n + 1, np.int64)
    np.cumsum(sizes, out=out_off[1:])
    if out_off[-1] >= 2**31:
        raise ValueError("more than 2 GiB of transaction input in one batch")
    out = np.zeros(int(out_off[-1]), np.uint8)
    if n:
        _hex_data_decode(off, data, valid, _HEXVAL, out_off, out)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(out_off.astype(np.int32)), pa.py_buffer(out)]), -1


# ---------------------------------------------------------------- decimal amounts


@nb.njit(cache=True, nogil=True)
def _parse_dec(off, data, valid, lo, hi, state):
    """state: 0 small (lo, hi set), 1 big (39..78 significant digits: value_big), 2 bad (NULL, empty, not
    all ASCII digits, more than 78 significant digits)."""
    ten = np.uint64(10)
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    for i in range(off.shape[0] - 1):
        if not valid[i]:
            state[i] = 2
            continue
        s, e = off[i], off[i + 1]
        if e == s:
            state[i] = 2
            continue
        ok = True
        for j in range(s, e):
            c = data[j]
            if c < 48 or c > 57:
                ok = False
                break
        if not ok:
            state[i] = 2
            continue
        while s < e - 1 and data[s] == 48:
            s += 1
        nd = e - s
        if nd > 78:
            state[i] = 2
            continue
        if nd > 38:
            state[i] = 1
            continue
        a = np.uint64(0)
        b = np.uint64(0)
        for j in range(s, e):
            d = np.uint64(data[j] - 48)
            # (b, a) = (b, a) * 10 + d, exact (the result stays below 10**38 < 2**127)
            a0 = a & m32
            a1 = a >> s32
            p0 = a0 * ten + d
            p1 = a1 * ten + (p0 >> s32)
            a = (p0 & m32) | ((p1 & m32) << s32)
            b = b * ten + (p1 >> s32)
        lo[i] = a
        hi[i] = b
        state[i] = 0


def parse_amounts(arr) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array | None, np.ndarray]:
    """Decimal strings -> (lo, hi, big, value_big, bad rows).

    ``big`` marks amounts of 10**38 and more (``lo``/``hi`` are 0 there); ``value_big`` is their canonical
    decimal text (leading zeros dropped) in a string column that is NULL elsewhere, or None when there are
    none. Bad rows: NULL, empty, anything but ASCII digits, 2**256 and more.
    """
    off, data, valid = string_buffers(arr)
    n = len(valid)
    lo = np.zeros(n, np.uint64)
    hi = np.zeros(n, np.uint64)
    state = np.zeros(n, np.uint8)
    if n:
        _parse_dec(off, data, valid, lo, hi, state)
    bad = np.flatnonzero(state == 2)
    big = state == 1
    big_col = None
    if big.any():
        idx = np.flatnonzero(big)
        texts = [bytes(data[off[i]:off[i + 1]]).decode().lstrip("0") or "0" for i in idx.tolist()]
        out: list[str | None] = [None] * n
        for i, t in zip(idx.tolist(), texts):
            if int(t) >= 1 << 256:
                bad = np.union1d(bad, [i])
            out[i] = t
        big_col = pa.array(out, pa.string())
    return lo, hi, big, big_col, bad


# ---------------------------------------------------------------- hash tables of fixed-width keys


@nb.njit(cache=True, nogil=True, inline="always")
def _hashw(keys, i):
    x = np.uint64(0x632BE59BD9B4E019)
    for k in range(keys.shape[1]):
        x = (x ^ keys[i, k]) * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(29)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return x


@nb.njit(cache=True, nogil=True, inline="always")
def _same(tk, h, words, i):
    for k in range(words.shape[1]):
        if tk[h, k] != words[i, k]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _insert(tk, tv, words, ids):
    """Insert rows with their ids; returns the first row whose key is already present (not inserted) or -1."""
    mask = np.uint64(tk.shape[0] - 1)
    for i in range(words.shape[0]):
        h = _hashw(words, i) & mask
        while tv[h] >= 0:
            if _same(tk, h, words, i):
                return i
            h = (h + np.uint64(1)) & mask
        for k in range(words.shape[1]):
            tk[h, k] = words[i, k]
        tv[h] = ids[i]
    return -1


@nb.njit(cache=True, nogil=True)
def _lookup(tk, tv, words, valid, out):
    mask = np.uint64(tk.shape[0] - 1)
    for i in range(words.shape[0]):
        out[i] = -1
        if not valid[i]:
            continue
        h = _hashw(words, i) & mask
        while tv[h] >= 0:
            if _same(tk, h, words, i):
                out[i] = tv[h]
                break
            h = (h + np.uint64(1)) & mask


@nb.njit(cache=True, nogil=True)
def _grown(tk, tv):
    """The table at twice the size, every entry re-inserted."""
    nk = np.zeros((2 * tk.shape[0], tk.shape[1]), np.uint64)
    nv = np.full(2 * tk.shape[0], -1, np.int64)
    mask = np.uint64(nk.shape[0] - 1)
    for h in range(tk.shape[0]):
        if tv[h] < 0:
            continue
        g = _hashw(tk, h) & mask
        while nv[g] >= 0:
            g = (g + np.uint64(1)) & mask
        for k in range(tk.shape[1]):
            nk[g, k] = tk[h, k]
        nv[g] = tv[h]
    return nk, nv


@nb.njit(cache=True, nogil=True)
def _assign(tk, tv, words, valid, key, n_known, ids, first_key, first_occ):
    """Look up every valid row; an unknown key gets the provisional id n_known + (its number among the new
    ones) and remembers its smallest order key. Returns the table (grown when it got half full) and the
    number of new keys."""
    n_new = 0
    for i in range(words.shape[0]):
        if not valid[i]:
            ids[i] = -1
            continue
        if 2 * (n_known + n_new + 1) > tk.shape[0]:
            tk, tv = _grown(tk, tv)
        mask = np.uint64(tk.shape[0] - 1)
        h = _hashw(words, i) & mask
        while True:
            v = tv[h]
            if v < 0:
                for k in range(words.shape[1]):
                    tk[h, k] = words[i, k]
                tv[h] = n_known + n_new
                ids[i] = n_known + n_new
                first_key[n_new] = key[i]
                first_occ[n_new] = i
                n_new += 1
                break
            if _same(tk, h, words, i):
                ids[i] = v
                if v >= n_known and key[i] < first_key[v - n_known]:
                    first_key[v - n_known] = key[i]
                    first_occ[v - n_known] = i
                break
            h = (h + np.uint64(1)) & mask
    return tk, tv, n_new


@nb.njit(cache=True, nogil=True)
def _renumber(vals, ids, n_known, rank):
    for h in range(vals.shape[0]):
        if vals[h] >= n_known:
            vals[h] = n_known + rank[vals[h] - n_known]
    for i in range(ids.shape[0]):
        if ids[i] >= n_known:
            ids[i] = n_known + rank[ids[i] - n_known]


class KeyIndex:
    """Fixed-width keys ((n, w) uint64 words) -> dense ids 0..n-1, as an open-addressing hash table (linear
    probing, at most half full). The Ethereum ingestor keeps one for addresses (the address dictionary)
    and builds one per batch for transaction hashes."""

    def __init__(self, width: int, known: np.ndarray | None = None):
        self.width = width
        known = np.zeros((0, width), np.uint64) if known is None else np.ascontiguousarray(known, np.uint64)
        self.n = len(known)
        self.duplicate = self._rehash(max(1 << 10, _pow2(2 * self.n)), known, np.arange(self.n, dtype=np.int64))

    def _rehash(self, cap: int, words: np.ndarray, ids: np.ndarray) -> int:
        self.keys = np.zeros((cap, self.width), np.uint64)
        self.vals = np.full(cap, -1, np.int64)
        return int(_insert(self.keys, self.vals, words, ids))

    def lookup(self, words: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Ids of the rows' keys (-1: absent or not valid)."""
        out = np.empty(len(words), np.int64)
        _lookup(self.keys, self.vals, words, valid, out)
        return out

    def assign(self, words: np.ndarray, valid: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ids of every row (-1 where not valid). Keys not seen before get ids self.n, self.n + 1, ... in the
        order of their smallest `key` (ties: the first row). Returns (ids, row of the first occurrence of
        each new key, in id order)."""
        n = len(words)
        ids = np.empty(n, np.int64)
        first_key = np.empty(n, np.int64)
        first_occ = np.empty(n, np.int64)
        self.keys, self.vals, n_new = _assign(self.keys, self.vals, np.ascontiguousarray(words, np.uint64), valid,
                                              key, self.n, ids, first_key, first_occ)
        order = np.argsort(first_key[:n_new], kind="stable")
        rank = np.empty(n_new, np.int64)
        rank[order] = np.arange(n_new)
        _renumber(self.vals, ids, self.n, rank)
        self.n += n_new
        return ids, first_occ[:n_new][order]


def _pow2(x: int) -> int:
    return 1 << max(int(x) - 1, 1).bit_length()
