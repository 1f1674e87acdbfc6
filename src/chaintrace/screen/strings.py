"""Address and transaction strings of a Bitcoin store as Arrow columns, for the exposure index builder.

A full index build needs every address's lookup key (for the "seen" hashes) and every txid's first bytes
(for transfer references), but strings only for the few addresses and transactions an answer names, and
dense ids only for the registry's keys. Held as Python objects (a str per address, dicts by id and by key)
those maps took about 4 GB at 5 million transactions (8.5 million addresses); here they are Arrow columns
plus one int64 position per id, and the lookups are vectorised (``pc.index_in`` against the wanted keys).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.intel.addresses import LOWERED_PREFIXES

CHUNK = 1 << 20  # strings turned into Python objects at a time (hashing)


def _positions(ids: np.ndarray, n: int) -> np.ndarray:
    pos = np.full(max(n, int(ids.max()) + 1 if len(ids) else 0), -1, np.int64)
    pos[ids] = np.arange(len(ids), dtype=np.int64)
    return pos


def btc_keys(col: pa.Array) -> pa.Array:
    """:func:`chaintrace.intel.addresses.key` of Bitcoin address strings, vectorised (surrounding whitespace
    stripped; bech32 forms lower-cased; base58 and other forms as written)."""
    col = pc.utf8_trim_whitespace(col)
    low = pc.utf8_lower(col)
    bech = pc.starts_with(low, LOWERED_PREFIXES[0])
    for p in LOWERED_PREFIXES[1:]:
        bech = pc.or_(bech, pc.starts_with(low, p))
    return pc.if_else(bech, low, col)


class _ById:
    """A string column of a store table with its dense ids: strings by id without a Python object per row."""

    def __init__(self, tbl: pa.Table, id_col: str, str_col: str, n: int):
        self.ids = tbl.column(id_col).to_numpy().astype(np.int64)
        self.col = tbl.column(str_col).combine_chunks()
        self.pos = _positions(self.ids, n)

    def strings(self, ids: Iterable[int]) -> dict[int, str]:
        """Strings of dense ids (ids the table does not hold are left out)."""
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, np.int64)
        ok = ids[(ids >= 0) & (ids < len(self.pos))]
        ok = ok[self.pos[ok] >= 0]
        return dict(zip(ok.tolist(), self.col.take(pa.array(self.pos[ok])).to_pylist()))


class AddressStrings(_ById):
    """The store's ``addresses`` table (address, address_id): strings by dense id, dense ids of given lookup
    keys, the "seen" hashes of the keys."""

    def __init__(self, tbl: pa.Table, n_addr: int):
        super().__init__(tbl, "address_id", "address", n_addr)
        self.keys = btc_keys(self.col)

    def ids_of(self, keys: Iterable[str], min_id: int = 0) -> dict[str, int]:
        """Dense ids of lookup `keys` (those of addresses with id >= `min_id` the table holds)."""
        wanted = pa.array(sorted(set(keys)), pa.string())
        if not len(wanted) or not len(self.ids):
            return {}
        at = pc.fill_null(pc.index_in(self.keys, value_set=wanted), -1).to_numpy()  # per address: -1 or wanted[at]
        hit = np.flatnonzero((at >= 0) & (self.ids >= min_id))
        names = wanted.to_pylist()
        return {names[int(at[i])]: int(self.ids[i]) for i in hit.tolist()}

    def key_hashes(self, min_id: int = 0) -> np.ndarray:
        """The "seen" hashes (:func:`chaintrace.screen.index.hash_keys`) of the keys of addresses with
        id >= `min_id`, a chunk at a time."""
        from chaintrace.screen.index import hash_keys

        keys = self.keys if not min_id else self.keys.filter(pa.array(self.ids >= min_id))
        parts = [hash_keys(keys.slice(i, CHUNK).to_pylist()) for i in range(0, len(keys), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


class TxStrings(_ById):
    """The store's ``transactions`` table (txid, tx_id): txids by dense id, their hash prefixes."""

    def __init__(self, tbl: pa.Table, n_tx: int):
        super().__init__(tbl, "tx_id", "txid", n_tx)

    def hash8(self) -> np.ndarray:
        """:func:`chaintrace.screen.index.txid_hash8` of every txid, in table order."""
        from chaintrace.screen.index import txid_hash8

        parts = [txid_hash8(self.col.slice(i, CHUNK).to_pylist()) for i in range(0, len(self.col), CHUNK)]
        return np.concatenate(parts) if parts else np.zeros(0, np.uint64)

    def __call__(self, t: int) -> str:
        """The txid of dense transaction id `t` (KeyError when the table does not hold it)."""
        p = int(self.pos[t]) if 0 <= t < len(self.pos) else -1
        if p < 0:
            raise KeyError(t)
        return self.col[p].as_py()
