"""Reading batch columns, checked: 32-byte hashes, addresses (as uint64 words), amounts (128-bit limbs, exact
text beyond 10**38), integers; every failure names the file and line of the row (:func:`_fail`)."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import columns as C
from chaintrace.errors import UserError
from chaintrace.model import u128 as U


class EthDataError(UserError):
    pass


class ChainMismatch(EthDataError):
    """A block does not extend the block before it (a reorg happened between reads, or the input is broken)."""


def _where(t: pa.Table, i: int) -> tuple[str, int]:
    return t["_src"][i].as_py(), t["_line"][i].as_py()


def _fail(t: pa.Table, i: int, msg: str):
    src, line = _where(t, i)
    raise EthDataError(f"{src}:{line}: {msg}" if line else f"{src}: {msg}")


def _first_null(col) -> int:
    return int(np.flatnonzero(~col.is_valid().to_numpy(zero_copy_only=False))[0])


def _hash_words(t: pa.Table, col: str, nullable: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A column of 32-byte hashes, checked, as (n, 4) uint64 words + validity."""
    words, valid, bad = C.hex_words(t[col], 32, nullable)
    if bad >= 0:
        _fail(t, bad, f"{col}: not a 32-byte hex hash: {t[col][bad].as_py()!r}")
    return words, valid


def _hash_col(t: pa.Table, col: str) -> tuple[pa.Array, np.ndarray]:
    """A column of 32-byte hashes, checked: (lower-cased strings, words)."""
    words, _, bad, strings = C.hex_column(t[col], 32, False)
    if bad >= 0:
        _fail(t, bad, f"{col}: not a 32-byte hex hash: {t[col][bad].as_py()!r}")
    return strings, words


class _Addr:
    """An address column as (n, 3) uint64 words + validity (NULL where absent)."""

    __slots__ = ("words", "valid")

    def __init__(self, words: np.ndarray, valid: np.ndarray):
        self.words, self.valid = words, valid

    @classmethod
    def of(cls, t: pa.Table, col: str, nullable: bool) -> "_Addr":
        words, valid, bad = C.hex_words(t[col], 20, nullable)
        if bad >= 0:
            _fail(t, bad, f"{col}: not an address: {t[col][bad].as_py()!r}")
        return cls(words, valid)

    @classmethod
    def null(cls, n: int) -> "_Addr":
        return cls(np.zeros((n, 3), np.uint64), np.zeros(n, np.bool_))

    def take(self, idx) -> "_Addr":
        return _Addr(self.words[idx], self.valid[idx])

    def __len__(self) -> int:
        return len(self.valid)

    @staticmethod
    def concat(parts) -> "_Addr":
        parts = list(parts)
        if not parts:
            return _Addr.null(0)
        return _Addr(np.concatenate([p.words for p in parts]), np.concatenate([p.valid for p in parts]))


class _SameAs:
    """Transfer-side addresses that are another column's (the transaction's sender, the block's miner) at
    rows `idx`, or none (`source` None): they need no lookup, and are never an address's first appearance
    (the transaction or block that names them comes first)."""

    __slots__ = ("source", "idx")

    def __init__(self, source: str | None, idx):
        self.source, self.idx = source, np.asarray(idx, np.int64)

    def __len__(self) -> int:
        return len(self.idx)


class _Amounts:
    """An amount column in 128-bit limbs; ``big`` marks amounts of 10**38 and more, whose exact text is in
    ``big_text`` (a string column, NULL elsewhere; None when there are none)."""

    __slots__ = ("lo", "hi", "big", "big_text")

    def __init__(self, lo, hi, big=None, big_text=None):
        self.lo, self.hi = lo, hi
        self.big = np.zeros(len(lo), np.bool_) if big is None else big
        self.big_text = big_text

    def take(self, idx) -> "_Amounts":
        idx = np.asarray(idx, np.int64)
        return _Amounts(self.lo[idx], self.hi[idx], self.big[idx],
                        None if self.big_text is None or not self.big[idx].any() else self.big_text.take(pa.array(idx)))

    def nonzero(self) -> np.ndarray:
        return (self.lo != 0) | (self.hi != 0) | self.big

    def decimal(self, null: np.ndarray | None = None) -> pa.Array:
        """The ``DECIMAL(38,0)`` column (NULL where big or `null`)."""
        mask = self.big if null is None else (self.big | null)
        if not mask.any():
            return U.to_decimal(self.lo, self.hi)
        return U.to_decimal(np.where(mask, 0, self.lo), np.where(mask, 0, self.hi), mask)

    def big_column(self) -> pa.Array:
        return pa.nulls(len(self.lo), pa.string()) if self.big_text is None else self.big_text

    @staticmethod
    def concat(parts) -> "_Amounts":
        parts = list(parts)
        lo = np.concatenate([p.lo for p in parts]) if parts else np.zeros(0, np.uint64)
        hi = np.concatenate([p.hi for p in parts]) if parts else np.zeros(0, np.uint64)
        big = np.concatenate([p.big for p in parts]) if parts else np.zeros(0, np.bool_)
        text = None
        if big.any():
            text = pa.concat_arrays([p.big_column() for p in parts])
        return _Amounts(lo, hi, big, text)


def _amounts(t: pa.Table, col: str, default: str | None = None) -> _Amounts:
    c = t[col]
    if default is not None and c.null_count:
        c = pc.fill_null(c, default)
    lo, hi, big, text, bad = C.parse_amounts(c)
    if len(bad):
        i = int(bad[0])
        _fail(t, i, f"{col}: not an amount in base units (0 .. 2**256-1): {t[col][i].as_py()!r}")
    return _Amounts(lo, hi, big, text)


def _u64(t: pa.Table, col: str, a: _Amounts) -> np.ndarray:
    over = (a.hi != 0) | a.big
    if over.any():
        i = int(np.flatnonzero(over)[0])
        _fail(t, i, f"{col}: {t[col][i].as_py()} exceeds 2**64")
    return a.lo


def _ints(t: pa.Table, col: str, fill: int = 0, dtype=np.int64) -> np.ndarray:
    c = t[col]
    if c.null_count:
        c = pc.fill_null(c, fill)
    return c.to_numpy().astype(dtype, copy=False) if len(c) else np.zeros(0, dtype)
