"""One chain's on-disk data: Parquet segments by height range, committed atomically through a manifest.

Layout of ``DATA/<chain>/``::

    manifest.json                 the committed state: segments per table, tip, counters, metadata
    <table>/h<lo>-<hi>.c<commit>.parquet
    _staging/                     files of the commit in progress
    .lock                         held by the single writer

Commit protocol (crash-safe at every instant, including ``kill -9``):

1. new and rewritten segment files are written to ``_staging/`` and fsynced;
2. ``manifest.json`` is replaced atomically (write, fsync, rename, fsync the directory): **this is the
   commit point**;
3. staged files are moved into their table directories and superseded files are deleted.

A writer that opens the store first *recovers*: files the manifest names that are still in ``_staging/``
are moved into place (roll forward), and every file the manifest does not name is deleted (roll back of
a commit that never reached step 2). Readers resolve each manifest entry in the table directory or in
``_staging/``, so they never see a half-committed state.

Every table has a ``height`` column; segments cover contiguous, non-overlapping height ranges in chain
order. A reorg is a commit that first truncates every table above the fork height and then appends the
new branch, so it is atomic too.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chaintrace.errors import UserError
from chaintrace.store.atomic import exclusive_lock, fsync_path, replace_json, write_parquet

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STAGING = "_staging"
# A small batch is merged into the table's last segment while that is smaller than this, so interactive
# ingests of a few blocks do not leave thousands of tiny files; a bulk batch gets a segment of its own
# (rewriting the previous segment again and again would cost more than it saves).
MERGE_ROWS = 1_000_000
# A batch of fewer rows than this is small (an interactive ingest of a few blocks).
SMALL_BATCH_ROWS = 100_000
# Segments of different tables are written in parallel (Parquet encoding releases the GIL).
WRITE_THREADS = 4
# Columns worth Parquet dictionary encoding (few distinct values); hashes, ids and addresses are not, and
# trying costs time.
DICTIONARY_COLUMNS = frozenset({"script_type", "kind", "symbol", "name", "standard", "network", "category"})


class StoreError(UserError):
    """The store is missing, locked, corrupt, or was asked for something it cannot do."""


@dataclass(frozen=True)
class Segment:
    file: str
    lo: int
    hi: int
    rows: int

    def as_json(self) -> dict:
        return {"file": self.file, "lo": self.lo, "hi": self.hi, "rows": self.rows}


class ChainStore:
    """Parquet segments and manifest of one chain inside a workspace."""

    def __init__(self, root: Path | str, chain: str, schemas: dict[str, pa.Schema]):
        self.root = Path(root)
        self.chain = chain
        self.schemas = schemas
        self._manifest: dict | None = None
        self._lock_fh = None

    # ------------------------------------------------------------------ state

    @property
    def exists(self) -> bool:
        return (self.root / MANIFEST).exists()

    @property
    def manifest(self) -> dict:
        if self._manifest is None:
            self._manifest = self._load_manifest()
        return self._manifest

    def reload(self) -> None:
        self._manifest = None

    def _empty_manifest(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "chain": self.chain,
            "commit": 0,
            "meta": {},
            "tip": None,
            "counters": {},
            "tables": {name: [] for name in self.schemas},
        }

    def _load_manifest(self) -> dict:
        path = self.root / MANIFEST
        if not path.exists():
            return self._empty_manifest()
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StoreError(f"{path}: unreadable manifest ({e})") from e
        if data.get("format") != FORMAT_VERSION or data.get("chain") != self.chain:
            raise StoreError(f"{path}: not a chaintrace {self.chain} store of format {FORMAT_VERSION}")
        for name in self.schemas:
            data["tables"].setdefault(name, [])
        return data

    @property
    def tip(self) -> dict | None:
        return self.manifest["tip"]

    @property
    def meta(self) -> dict:
        return self.manifest["meta"]

    @property
    def counters(self) -> dict:
        return self.manifest["counters"]

    def segments(self, table: str) -> list[Segment]:
        return [Segment(**s) for s in self.manifest["tables"].get(table, [])]

    def row_count(self, table: str) -> int:
        return sum(s.rows for s in self.segments(table))

    # ------------------------------------------------------------------ reading

    def _resolve(self, table: str, seg: Segment) -> Path:
        final = self.root / table / seg.file
        if final.exists():
            return final
        staged = self.root / STAGING / f"{table}__{seg.file}"
        if staged.exists():
            return staged
        # A writer may be moving it right now (step 3); look once more.
        time.sleep(0.05)
        if final.exists():
            return final
        raise StoreError(f"{final}: segment named by the manifest is missing")

    def files(self, table: str, lo: int | None = None, hi: int | None = None) -> list[Path]:
        """Paths of the committed segments of `table` (optionally only those overlapping [lo, hi])."""
        return [
            self._resolve(table, s)
            for s in self.segments(table)
            if (lo is None or s.hi >= lo) and (hi is None or s.lo <= hi)
        ]

    def read(self, table: str, columns: list[str] | None = None,
             lo: int | None = None, hi: int | None = None) -> pa.Table:
        """Read a table (all segments, or those overlapping heights [lo, hi]) as one Arrow table."""
        schema = self.schemas[table]
        files = self.files(table, lo, hi)
        if not files:
            fields = [schema.field(c) for c in columns] if columns else list(schema)
            return pa.Table.from_batches([], schema=pa.schema(fields))
        filtering = lo is not None or hi is not None
        cols = columns
        if filtering and columns is not None and "height" not in columns:
            cols = [*columns, "height"]
        parts = [pq.read_table(f, columns=cols) for f in files]
        out = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        if filtering:
            mask = None
            if lo is not None:
                mask = pc.greater_equal(out["height"], lo)
            if hi is not None:
                m2 = pc.less_equal(out["height"], hi)
                mask = m2 if mask is None else pc.and_(mask, m2)
            out = out.filter(mask)
            if cols is not columns:
                out = out.drop_columns(["height"])
        return out

    # ------------------------------------------------------------------ writing

    @contextmanager
    def writer(self) -> Iterator["ChainStore"]:
        """Hold the single-writer lock, recover any interrupted commit, and yield the store."""
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.root / ".lock",
                            lambda: StoreError(f"{self.root}: another process is writing to this store")):
            self._lock_fh = True
            try:
                self.reload()
                self.recover()
                yield self
            finally:
                self._lock_fh = None

    def _require_lock(self) -> None:
        if self._lock_fh is None:
            raise StoreError("writing requires ChainStore.writer()")

    def recover(self) -> dict:
        """Finish or discard an interrupted commit. Returns what was done (for logs and tests)."""
        self._require_lock()
        staging = self.root / STAGING
        named: dict[str, set[str]] = {t: {s.file for s in self.segments(t)} for t in self.schemas}
        done = {"rolled_forward": 0, "removed": 0}
        for table, files in named.items():
            tdir = self.root / table
            tdir.mkdir(exist_ok=True)
            for f in files:
                final = tdir / f
                if not final.exists():
                    staged = staging / f"{table}__{f}"
                    if not staged.exists():
                        raise StoreError(f"{final}: committed segment is missing (store damaged)")
                    os.replace(staged, final)
                    done["rolled_forward"] += 1
            for p in tdir.iterdir():
                if p.name not in files:
                    p.unlink()
                    done["removed"] += 1
        if staging.exists():
            for p in staging.iterdir():
                p.unlink()
                done["removed"] += 1
        for p in self.root.glob(MANIFEST + ".tmp*"):
            p.unlink()
        return done

    def commit(self, rows: dict[str, pa.Table], *, tip: dict | None, counters: dict | None = None,
               meta: dict | None = None, truncate_above: int | None = None) -> int:
        """Atomically (optionally) truncate every table above a height, then append `rows`.

        `rows` maps table names to Arrow tables with the table's schema; every appended row's ``height``
        must be above the kept data. Returns the new commit number.
        """
        self._require_lock()
        m = self.manifest
        commit_no = m["commit"] + 1
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        new_tables: dict[str, list[dict]] = {}
        superseded: list[Path] = []
        to_write: list[tuple[pa.Table, Path, Path]] = []  # (data, staged path, final path)

        def stage(table: str, data: pa.Table) -> Segment:
            h = data["height"]
            lo, hi = pc.min(h).as_py(), pc.max(h).as_py()
            name = f"h{lo:09d}-{hi:09d}.c{commit_no:06d}.parquet"
            to_write.append((data, staging / f"{table}__{name}", self.root / table / name))
            return Segment(name, lo, hi, len(data))

        for table, schema in self.schemas.items():
            segs = self.segments(table)
            if truncate_above is not None:
                kept: list[Segment] = []
                for s in segs:
                    if s.hi <= truncate_above:
                        kept.append(s)
                        continue
                    superseded.append(self.root / table / s.file)
                    if s.lo <= truncate_above:
                        old = pq.read_table(self._resolve(table, s))
                        part = old.filter(pc.less_equal(old["height"], truncate_above))
                        if len(part):
                            kept.append(stage(table, part))
                segs = kept
            add = rows.get(table)
            if add is not None and len(add):
                add = add.select(schema.names).cast(schema)
                if segs and pc.min(add["height"]).as_py() <= segs[-1].hi:
                    raise StoreError(f"{table}: appended rows must lie above height {segs[-1].hi}")
                if segs and segs[-1].rows < MERGE_ROWS and len(add) < min(SMALL_BATCH_ROWS, MERGE_ROWS):
                    last = segs.pop()
                    pending = [w for w in to_write if w[2] == self.root / table / last.file]
                    if pending:  # truncated earlier in this commit: not on disk yet
                        to_write.remove(pending[0])
                        old = pending[0][0]
                    else:
                        superseded.append(self.root / table / last.file)
                        old = pq.read_table(self._resolve(table, last))
                    add = pa.concat_tables([old.cast(schema), add])
                segs.append(stage(table, add))
            new_tables[table] = [s.as_json() for s in segs]

        # 1. every new segment written to _staging/ and fsynced (tables in parallel)
        if to_write:
            with ThreadPoolExecutor(min(WRITE_THREADS, len(to_write))) as pool:
                list(pool.map(lambda w: write_parquet(
                    w[0], w[1], use_dictionary=[c for c in w[0].column_names if c in DICTIONARY_COLUMNS]), to_write))
            fsync_path(staging)

        new = dict(m)
        new["commit"] = commit_no
        new["tables"] = new_tables
        new["tip"] = tip
        if counters is not None:
            new["counters"] = counters
        if meta:
            new["meta"] = {**m["meta"], **meta}
        new["committed_at"] = int(time.time())
        # 2. the manifest replaced atomically: the commit point
        replace_json(self.root / MANIFEST, new)
        self._manifest = new

        # 3. staged files moved into place, superseded ones deleted (recover() finishes this after a crash)
        for _data, src, dst in to_write:
            dst.parent.mkdir(exist_ok=True)
            os.replace(src, dst)
        for p in superseded:
            if p.exists() and p.name not in {s["file"] for s in new_tables[p.parent.name]}:
                p.unlink()
        return commit_no
