"""Exact unsigned 128-bit amounts as pairs of uint64 limbs ``(lo, hi)``: vectorised numpy helpers for ingest
and scalar numba helpers for the trace kernels.

Ether and token amounts exceed 64 bits (18.4 ETH is 2**64 wei), so flat int64 arrays cannot hold them. Every
amount below 2**128 (this covers the whole ``DECIMAL(38,0)`` range the store uses) is two uint64 arrays; the
rare amounts at or above 2**128 (``value_big``, spam tokens) are handled by exact Python-int code paths.

The Arrow ``decimal128`` layout is 16-byte little-endian two's complement, so a column of non-negative
decimals *is* an ``(n, 2)`` uint64 array ``[lo, hi]``: conversion both ways is a buffer view, no Python loop.
"""
from __future__ import annotations

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

D38 = pa.decimal128(38, 0)
DEC38_LIMIT = 10**38
TWO64 = 1 << 64
MASK64 = TWO64 - 1
_U32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


# ---------------------------------------------------------------- numpy (vectorised)


def from_decimal(arr) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) uint64 arrays of a non-negative decimal128 Arrow array (NULL -> 0)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    if arr.type != D38:
        arr = pc.cast(arr, D38)
    buf = arr.buffers()[1]
    words = np.frombuffer(buf, np.uint64, count=2 * (arr.offset + n))[2 * arr.offset:].reshape(n, 2)
    lo, hi = words[:, 0].copy(), words[:, 1].copy()
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        lo[~valid] = 0
        hi[~valid] = 0
    if np.any(hi >> np.uint64(63)):
        raise ValueError("negative amount in a decimal column")
    return lo, hi


def to_decimal(lo: np.ndarray, hi: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """decimal128(38,0) Arrow array from (lo, hi); `mask` marks NULLs. Every value must be below 10**38."""
    lo = np.ascontiguousarray(lo, np.uint64)
    hi = np.ascontiguousarray(hi, np.uint64)
    n = len(lo)
    if n and not np.all(lt_const(lo, hi, DEC38_LIMIT) | (mask if mask is not None else False)):
        raise ValueError("amount does not fit DECIMAL(38,0)")
    words = np.empty((n, 2), np.uint64)
    words[:, 0] = lo
    words[:, 1] = hi
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.array(~mask).buffers()[1]
        null_count = int(mask.sum())
    return pa.Array.from_buffers(D38, n, [validity, pa.py_buffer(words)], null_count=null_count)


def lt_const(lo: np.ndarray, hi: np.ndarray, c: int) -> np.ndarray:
    """Element-wise (lo, hi) < c for a Python int constant c < 2**128."""
    chi, clo = np.uint64(c >> 64), np.uint64(c & MASK64)
    return (hi < chi) | ((hi == chi) & (lo < clo))


def mul64(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact 64x64 -> 128-bit products of uint64 arrays, as (lo, hi)."""
    a = a.astype(np.uint64)
    b = b.astype(np.uint64)
    a0, a1 = a & _U32, a >> _S32
    b0, b1 = b & _U32, b >> _S32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    p11 = a1 * b1
    mid = (p00 >> _S32) + (p01 & _U32) + (p10 & _U32)
    lo = (p00 & _U32) | ((mid & _U32) << _S32)
    hi = p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    return lo, hi


def add(alo, ahi, blo, bhi):
    lo = alo + blo
    carry = (lo < alo).astype(np.uint64)
    return lo, ahi + bhi + carry


def sub(alo, ahi, blo, bhi):
    """a - b (caller guarantees a >= b)."""
    lo = alo - blo
    borrow = (alo < blo).astype(np.uint64)
    return lo, ahi - bhi - borrow


def to_ints(lo, hi) -> list[int]:
    lo, hi = np.asarray(lo, np.uint64), np.asarray(hi, np.uint64)
    if not hi.any():
        return lo.tolist()
    return ((hi.astype(object) << 64) | lo.astype(object)).tolist()


def from_ints(values) -> tuple[np.ndarray, np.ndarray]:
    vals = list(values)
    lo = np.array([v & MASK64 for v in vals], np.uint64)
    hi = np.array([v >> 64 for v in vals], np.uint64)
    return lo, hi


_DIGITS = r"^[0-9]+$"


def parse_amounts(strings: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Decimal strings -> (value decimal128 column, value_big string column, bad-row indices).

    Leading zeros are dropped; amounts of 10**38 and more go to ``value_big`` (as their canonical decimal
    string); amounts of 2**256 and more, negative or non-integral strings are reported as bad rows (NULL in
    the input is bad too: callers fill defaults first).
    """
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if not pa.types.is_string(strings.type) and not pa.types.is_large_string(strings.type):
        strings = pc.cast(strings, pa.string())
    n = len(strings)
    ok = pc.fill_null(pc.match_substring_regex(strings, _DIGITS), False).to_numpy(zero_copy_only=False)
    s = pc.replace_substring_regex(strings, r"^0+(\d)", r"\1")
    length = pc.fill_null(pc.utf8_length(s), 0).to_numpy(zero_copy_only=False)
    small = ok & (length <= 38)
    big = ok & (length > 38)
    bad = np.flatnonzero(~ok | (length > 78))
    safe = pc.if_else(pa.array(small), s, pa.scalar("0"))
    value = pc.cast(safe, D38)
    value_big = pa.nulls(n, pa.string())
    if big.any():
        idx = np.flatnonzero(big)
        texts = s.take(pa.array(idx)).to_pylist()
        out = [None] * n
        for i, t in zip(idx.tolist(), texts):
            if int(t) >= 1 << 256:
                bad = np.union1d(bad, [i])
            out[i] = t
        value_big = pa.array(out, pa.string())
        value = pc.if_else(pa.array(big), pa.scalar(None, D38), value)
    return value, value_big, bad


# ---------------------------------------------------------------- numba (scalar, for kernels)


@nb.njit(cache=True, inline="always")
def u_add(alo, ahi, blo, bhi):
    lo = alo + blo
    c = np.uint64(1) if lo < alo else np.uint64(0)
    return lo, ahi + bhi + c


@nb.njit(cache=True, inline="always")
def u_sub(alo, ahi, blo, bhi):
    lo = alo - blo
    b = np.uint64(1) if alo < blo else np.uint64(0)
    return lo, ahi - bhi - b


@nb.njit(cache=True, inline="always")
def u_lt(alo, ahi, blo, bhi):
    return ahi < bhi or (ahi == bhi and alo < blo)


@nb.njit(cache=True, inline="always")
def u_le(alo, ahi, blo, bhi):
    return ahi < bhi or (ahi == bhi and alo <= blo)


@nb.njit(cache=True, inline="always")
def u_iszero(lo, hi):
    return lo == np.uint64(0) and hi == np.uint64(0)


@nb.njit(cache=True, inline="always")
def u_min(alo, ahi, blo, bhi):
    if ahi < bhi or (ahi == bhi and alo <= blo):
        return alo, ahi
    return blo, bhi


@nb.njit(cache=True)
def _digits16(lo, hi, out, off):
    m = np.uint64(0xFFFF)
    for k in range(4):
        out[off + k] = np.int64((lo >> np.uint64(16 * k)) & m)
        out[off + 4 + k] = np.int64((hi >> np.uint64(16 * k)) & m)


@nb.njit(cache=True)
def u_muldiv(alo, ahi, blo, bhi, clo, chi):
    """floor(a * b / c) for 128-bit a, b, c (c > 0); the quotient must fit 128 bits (true when a <= c or
    b <= c). Knuth's algorithm D on 16-bit digits, so every intermediate fits a signed 64-bit integer."""
    z = np.uint64(0)
    # fast path: everything small enough for one 64-bit product
    if ahi == z and bhi == z and chi == z and alo < np.uint64(1 << 32) and blo < np.uint64(1 << 32):
        return (alo * blo) // clo, z
    a = np.zeros(8, np.int64)
    b = np.zeros(8, np.int64)
    v = np.zeros(8, np.int64)
    _digits16(alo, ahi, a, 0)
    _digits16(blo, bhi, b, 0)
    _digits16(clo, chi, v, 0)
    B = np.int64(1 << 16)
    M = np.int64(0xFFFF)
    # u = a * b (16 digits)
    u = np.zeros(17, np.int64)
    for i in range(8):
        if a[i] == 0:
            continue
        carry = np.int64(0)
        for j in range(8):
            t = a[i] * b[j] + u[i + j] + carry
            u[i + j] = t & M
            carry = t >> 16
        k = i + 8
        while carry:
            t = u[k] + carry
            u[k] = t & M
            carry = t >> 16
            k += 1
    n = 8
    while n > 0 and v[n - 1] == 0:
        n -= 1
    m = 16
    while m > 0 and u[m - 1] == 0:
        m -= 1
    q = np.zeros(17, np.int64)
    if m < n:
        return z, z
    if n == 1:
        r = np.int64(0)
        d = v[0]
        for j in range(m - 1, -1, -1):
            t = r * B + u[j]
            q[j] = t // d
            r = t - q[j] * d
    else:
        # normalise
        s = 0
        top = v[n - 1]
        while top < (1 << 15):
            top <<= 1
            s += 1
        vn = np.zeros(8, np.int64)
        un = np.zeros(18, np.int64)
        for i in range(n - 1, 0, -1):
            vn[i] = ((v[i] << s) | (v[i - 1] >> (16 - s))) & M
        vn[0] = (v[0] << s) & M
        un[m] = u[m - 1] >> (16 - s)
        for i in range(m - 1, 0, -1):
            un[i] = ((u[i] << s) | (u[i - 1] >> (16 - s))) & M
        un[0] = (u[0] << s) & M
        for j in range(m - n, -1, -1):
            num = un[j + n] * B + un[j + n - 1]
            qhat = num // vn[n - 1]
            rhat = num - qhat * vn[n - 1]
            while qhat >= B or qhat * vn[n - 2] > B * rhat + un[j + n - 2]:
                qhat -= 1
                rhat += vn[n - 1]
                if rhat >= B:
                    break
            k = np.int64(0)
            for i in range(n):
                p = qhat * vn[i]
                t = un[i + j] - k - (p & M)
                un[i + j] = t & M
                k = (p >> 16) - (t >> 16)
            t = un[j + n] - k
            un[j + n] = t & M
            q[j] = qhat
            if t < 0:
                q[j] -= 1
                k = np.int64(0)
                for i in range(n):
                    t = un[i + j] + vn[i] + k
                    un[i + j] = t & M
                    k = t >> 16
                un[j + n] = (un[j + n] + k) & M
    lo = np.uint64(0)
    hi = np.uint64(0)
    for k in range(4):
        lo |= np.uint64(q[k]) << np.uint64(16 * k)
        hi |= np.uint64(q[4 + k]) << np.uint64(16 * k)
    return lo, hi
