"""The lookup index: every address the registry knows, with its hits in flat numpy arrays.

Built once per registry generation (and cached in memory per workspace). Distinct address keys map to a
unique-key id through a dict (C-speed probing: a batch of 1 million addresses in about a second, one
address in about a microsecond); each id owns a run of hits in numpy arrays (kind, row, validity days),
so expanding hits and filtering ``--at DATE`` are vectorised. The same keys are also kept as a sorted
array of 64-bit hashes (``match_keys_hashed``: fully vectorised numpy probing, compared in the benchmark).

Each distinct key points at a run of *hits*: rows of ``intel.tags``, ``intel.sanction_periods`` or the
incident seeds, with their validity interval as day numbers so ``--at DATE`` filters vectorised.
"""
from __future__ import annotations

import datetime as _dt
import threading
from dataclasses import dataclass

import numpy as np

from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg

KIND_TAG, KIND_SANCTION, KIND_SEED = 0, 1, 2
KIND_NAMES = ("tag", "sanction", "incident")
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1
_NO_FROM = np.iinfo(np.int32).min
_NO_TO = np.iinfo(np.int32).max
_EPOCH = _dt.date(1970, 1, 1)


def day(d) -> int | None:
    if d is None:
        return None
    if isinstance(d, str):
        d = _dt.date.fromisoformat(d)
    if isinstance(d, _dt.datetime):
        d = d.date()
    return (d - _EPOCH).days


def pack(keys: list[bytes], width: int) -> np.ndarray:
    """Keys as an (n, width/8) uint64 matrix (zero padded); `width` is a multiple of 8."""
    arr = np.array(keys, dtype=f"S{width}") if keys else np.zeros(0, dtype=f"S{width}")
    return np.ascontiguousarray(arr).view(np.uint64).reshape(len(keys), width // 8)


def hash_words(words: np.ndarray) -> np.ndarray:
    """FNV-1a-style mix over 8-byte words, vectorised over rows."""
    h = np.full(words.shape[0], _FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    shift = np.uint64(29)
    for j in range(words.shape[1]):
        h ^= words[:, j]
        h *= prime
        h ^= h >> shift
    return h


def hash_one(key: bytes, width: int) -> int:
    """The same hash as :func:`hash_words` for one key, in plain Python."""
    b = key.ljust(width, b"\0")
    h = _FNV_OFFSET
    for j in range(0, width, 8):
        h ^= int.from_bytes(b[j:j + 8], "little")
        h = (h * _FNV_PRIME) & _MASK
        h ^= h >> 29
    return h


@dataclass
class Hits:
    """Result of a batch lookup: parallel arrays, one entry per (query, hit) pair."""

    query: np.ndarray  # index into the queried addresses
    kind: np.ndarray  # KIND_TAG / KIND_SANCTION / KIND_SEED
    row: np.ndarray  # row in the index's tables of that kind

    def __len__(self) -> int:
        return len(self.query)


class LookupIndex:
    """Sorted hashes of every known address key, with their hits. Build with :func:`get_index`."""

    def __init__(self, keys: list[str], kinds: np.ndarray, rows: np.ndarray, vfrom: np.ndarray, vto: np.ndarray,
                 tables: dict[str, list[dict]], generation: int):
        self.generation = generation
        self.tables = tables  # "tag" | "sanction" | "incident" -> list of row dicts (detail, on demand)
        enc = [k.encode("utf-8") for k in keys]
        maxlen = max((len(k) for k in enc), default=8)
        self.width = max(8, (maxlen + 7) // 8 * 8)
        if enc:
            packed = np.array(enc, dtype=f"S{self.width}")
            uniq, inverse = np.unique(packed, return_inverse=True)
        else:
            uniq, inverse = np.zeros(0, dtype=f"S{self.width}"), np.zeros(0, dtype=np.int64)
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(uniq)) if len(uniq) else np.zeros(0, dtype=np.int64)
        self.start = np.zeros(len(uniq) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.start[1:])
        self.hit_kind = kinds[order].astype(np.int8)
        self.hit_row = rows[order].astype(np.int64)
        self.hit_from = vfrom[order].astype(np.int32)
        self.hit_to = vto[order].astype(np.int32)
        h = hash_words(np.ascontiguousarray(uniq).view(np.uint64).reshape(len(uniq), self.width // 8))
        srt = np.argsort(h, kind="stable")
        self.hashes = h[srt]
        self.uid = srt.astype(np.int64)  # sorted position -> unique-key id
        self.keys = uniq  # unique keys (S{width}), by unique-key id
        self.n_keys = len(uniq)
        # str key -> unique-key id: C-speed probing for batches and single lookups
        self.ids = {k.decode("utf-8"): i for i, k in enumerate(uniq.tolist())}
        self.n_hits = len(self.hit_row)

    # --------------------------------------------------------------------------------------- single

    def find_key(self, key: str) -> int:
        """Unique-key id of `key` (already normalised), or -1."""
        return self.ids.get(key, -1)

    def find_key_hashed(self, key: str) -> int:
        """Same as :meth:`find_key` through the sorted hash array (the structure that can be memory-mapped)."""
        b = key.encode("utf-8")
        if len(b) > self.width or not self.n_keys:
            return -1
        h = np.uint64(hash_one(b, self.width))
        pos = int(np.searchsorted(self.hashes, h))
        n = self.n_keys
        while pos < n and self.hashes[pos] == h:
            u = int(self.uid[pos])
            if self.keys[u] == b:
                return u
            pos += 1
        return -1

    def get(self, address: str, at: str | None = None) -> list[tuple[int, int]]:
        """(kind, row) of every hit of one address (valid at ISO date `at` if given)."""
        u = self.find_key(addr.key_any(address))
        if u < 0:
            return []
        a, b = int(self.start[u]), int(self.start[u + 1])
        if at is None:
            return list(zip(self.hit_kind[a:b].tolist(), self.hit_row[a:b].tolist()))
        d = day(at)
        return [(int(k), int(r)) for k, r, f, t in zip(self.hit_kind[a:b], self.hit_row[a:b], self.hit_from[a:b],
                                                       self.hit_to[a:b]) if f <= d < t]

    # ---------------------------------------------------------------------------------------- batch

    def match_keys(self, keys: list[str]) -> np.ndarray:
        """Unique-key id per (normalised) key, -1 where unknown."""
        get = self.ids.get
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))

    def match_keys_hashed(self, keys: list[str]) -> np.ndarray:
        """Same as :meth:`match_keys` through the sorted hash array, vectorised (kept for comparison)."""
        n = len(keys)
        out = np.full(n, -1, dtype=np.int64)
        if not n or not self.n_keys:
            return out
        enc = [k.encode("utf-8") for k in keys]
        lens = np.fromiter((len(k) for k in enc), dtype=np.int64, count=n)
        packed = np.array(enc, dtype=f"S{self.width}")  # longer keys are cut: masked out below
        words = np.ascontiguousarray(packed).view(np.uint64).reshape(n, self.width // 8)
        qh = hash_words(words)
        pos = np.searchsorted(self.hashes, qh)
        found = pos < self.n_keys
        pos_c = np.where(found, pos, 0)
        found &= self.hashes[pos_c] == qh
        found &= lens <= self.width
        cand = self.uid[pos_c]
        ok = found & (self.keys[cand] == packed)
        out[ok] = cand[ok]
        for i in np.nonzero(found & ~ok)[0]:  # hash collisions between distinct known keys: rare
            out[i] = self.find_key_hashed(keys[i])
        return out

    def lookup(self, addresses: list[str], at: str | None = None, normalised: bool = False) -> Hits:
        """Every hit of every address (valid at `at` if given), as parallel arrays."""
        u = self.match_keys(addresses if normalised else [addr.key_any(a) for a in addresses])
        q = np.nonzero(u >= 0)[0]
        if not len(q):
            e = np.zeros(0, dtype=np.int64)
            return Hits(e, e.astype(np.int8), e)
        uu = u[q]
        a, b = self.start[uu], self.start[uu + 1]
        cnt = b - a
        qi = np.repeat(q, cnt)
        offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(a, cnt)
        kind, row = self.hit_kind[offs], self.hit_row[offs]
        if at is not None:
            d = day(at)
            keep = (self.hit_from[offs] <= d) & (d < self.hit_to[offs])
            qi, kind, row = qi[keep], kind[keep], row[keep]
        return Hits(qi, kind, row)

    def detail(self, kind: int, row: int) -> dict:
        return self.tables[KIND_NAMES[kind]][row]


# ----------------------------------------------------------------------------------------------- build


def build(ws, gen: int | None = None) -> LookupIndex:
    """Read every address key of one registry generation (default: the current one) -- tags, sanctions
    periods, incident seeds -- into an index."""
    from chaintrace.intel.tags import _TAG_SQL, _periods, _tag_from_row, incident_seed_rows

    ws = reg.as_registry(ws)
    gen = reg.generation(ws) if gen is None else gen
    keys: list[str] = []
    kinds: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    vf: list[np.ndarray] = []
    vt: list[np.ndarray] = []
    tables: dict[str, list] = {"tag": _LazyTags(ws, gen), "sanction": [], "incident": []}

    def add(kind, ks, froms, tos):
        keys.extend(ks)
        kinds.append(np.full(len(ks), kind, dtype=np.int8))
        rows.append(np.arange(len(ks), dtype=np.int64))
        vf.append(np.array([_NO_FROM if f is None else day(f) for f in froms], dtype=np.int64))
        vt.append(np.array([_NO_TO if t is None else day(t) for t in tos], dtype=np.int64))

    with reg.reader(ws, gen) as con:
        if con is not None:
            import pyarrow.compute as pc

            tbl = con.sql(f"SELECT rowid AS r, addr_key, (valid_from - DATE '1970-01-01') AS f, "
                              f"(valid_to - DATE '1970-01-01') AS t "
                              f"FROM {reg.SCHEMA}.tags").to_arrow_table()
            keys.extend(tbl.column("addr_key").to_pylist())
            kinds.append(np.zeros(tbl.num_rows, dtype=np.int8))
            rows.append(tbl.column("r").to_numpy().astype(np.int64))
            vf.append(pc.fill_null(tbl.column("f"), _NO_FROM).to_numpy().astype(np.int64))
            vt.append(pc.fill_null(tbl.column("t"), _NO_TO).to_numpy().astype(np.int64))
            periods = _periods(con)
            tables["sanction"] = periods
            add(KIND_SANCTION, [p["addr_key"] for p in periods], [p["valid_from"] for p in periods],
                [p["valid_to"] for p in periods])
    seeds = incident_seed_rows(ws)
    tables["incident"] = seeds
    add(KIND_SEED, [s["addr_key"] for s in seeds], [None] * len(seeds), [None] * len(seeds))
    def cat(xs, dt):
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dtype=dt)

    idx = LookupIndex(keys, cat(kinds, np.int8), cat(rows, np.int64), cat(vf, np.int64), cat(vt, np.int64),
                      tables, gen)
    tables["tag"].bind(_TAG_SQL, _tag_from_row)
    return idx


class _LazyTags:
    """Tag rows fetched from the catalog (by rowid) only for the rows a lookup hit."""

    def __init__(self, ws, generation: int):
        self.ws = ws
        self.generation = generation
        self.cache: dict[int, object] = {}

    def bind(self, sql, conv):
        self.sql = sql.replace("SELECT chain,", "SELECT t.rowid, chain,", 1)
        self.conv = conv

    def fetch(self, rows) -> None:
        need = sorted({int(r) for r in rows if int(r) not in self.cache})
        if not need:
            return
        with reg.reader(self.ws, self.generation) as con:
            for r in con.execute(self.sql + " WHERE t.rowid IN (SELECT unnest(?::BIGINT[]))", [need]).fetchall():
                self.cache[int(r[0])] = self.conv(r[1:])

    def __getitem__(self, row: int):
        if row not in self.cache:
            self.fetch([row])
        return self.cache[row]


_CACHE: dict[str, LookupIndex] = {}
_LOCK = threading.Lock()


def get_index(ws) -> LookupIndex:
    """The lookup index of a registry (or of the registry a workspace uses; see
    :func:`chaintrace.intel.registry.as_registry`), built once per registry generation and kept in memory.
    Whether the cached index is current is one read of the registry's generation pointer."""
    r = reg.as_registry(ws)
    key = str(r.path.resolve()) if r is not None else ""
    gen = reg.current_generation(r) if r is not None else 0  # an older layout is migrated first
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None and hit.generation == gen:
        return hit
    idx = build(r, gen)
    with _LOCK:
        _CACHE[key] = idx
    return idx


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def _stamp(ws) -> tuple:
    """A cheap stamp of the registry `ws` uses: changes when a new generation is published."""
    r = reg.as_registry(ws)
    return () if r is None else (str(r.path), r.generation)
