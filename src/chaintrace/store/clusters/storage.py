"""The files under ``DATA/btc/clusters/`` and their atomic commits (:class:`ClusterStore`).

``state.json`` names every committed file: candidate edges per layer, CoinJoins, unions, refusals (Parquet
lists of ``{"file", "rows", "lo", "hi"}`` covering transactions ``lo..hi-1``), the union-find directory
(``uf.g<gen>/*.npy``), ``address_clusters.g<gen>.parquet`` and the address -> outputs index segments. A
build writes new files under names no committed state refers to (each carries the build's generation),
replaces ``state.json`` atomically (the commit point: :func:`chaintrace.store.atomic.replace_json`) and then
deletes what the new state no longer names. A build that dies before the commit leaves the previous state
intact; the next writer removes its leftovers (:meth:`ClusterStore.cleanup`). One writer at a time.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chaintrace.errors import UserError
from chaintrace.store import atomic
from chaintrace.store.workspace import Workspace

FORMAT = 2  # 2: union-find linked by index (every parent below its child); 1 (union by size) needs --full
STATE = "state.json"
LOCK = ".lock"
MERGE_ROWS = 1_000_000  # a file smaller than this is merged with the next rows of the same kind


def file_name(kind: str, lo: int, hi: int, gen: int, suffix: str = ".parquet", unit: str = "t") -> str:
    """Name of the `kind` file of transactions (`unit` "t"; "o": outputs) lo..hi-1 written by build generation
    `gen`."""
    return f"{kind}/{unit}{lo:012d}-{hi:012d}.g{gen:06d}{suffix}"


class ClusterStore:
    """The files under ``DATA/btc/clusters/`` and their committed state."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.root = ws.path / "btc" / "clusters"

    # ------------------------------------------------------------------ committed state

    @property
    def exists(self) -> bool:
        return (self.root / STATE).exists()

    def state(self, any_format: bool = False) -> dict | None:
        """The committed cluster state (None before the first build); another format is an error unless
        `any_format` (a full rebuild replaces it)."""
        p = self.root / STATE
        if not p.exists():
            return None
        try:
            s = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{p}: unreadable cluster state ({e}); delete {self.root} and rebuild") from e
        if s.get("format") != FORMAT and not any_format:
            raise UserError(f"{p}: cluster state of format {s.get('format')}, expected {FORMAT}; rebuild with "
                            "`chaintrace cluster build --full`")
        return s

    def require(self) -> dict:
        s = self.state()
        if s is None:
            raise UserError(f"no clusters in workspace {self.ws.path} yet: run `chaintrace cluster build`")
        return s

    @staticmethod
    def referenced(state: dict | None) -> set[str]:
        """Relative paths of every file and directory a state names."""
        if not state:
            return set()
        out: set[str] = set()
        for layer in state.get("layers", {}).values():
            out |= {f["file"] for f in layer["files"]}
        out |= {f["file"] for f in state.get("coinjoins", {}).get("files", [])}
        out |= {f["file"] for f in (state.get("address_outputs") or {}).get("files", [])}
        u = state.get("union") or {}
        for k in ("unions", "refusals"):
            out |= {f["file"] for f in u.get(k, [])}
        if u.get("uf"):
            out.add(u["uf"])
        if state.get("address_clusters"):
            out.add(state["address_clusters"])
        return out

    # ------------------------------------------------------------------ writing

    @contextmanager
    def writer(self) -> Iterator["ClusterStore"]:
        """Hold the single-writer lock and remove the leftovers of an interrupted build."""
        self.root.mkdir(parents=True, exist_ok=True)
        busy = lambda: UserError(f"{self.root}: another process is building clusters")  # noqa: E731
        with atomic.exclusive_lock(self.root / LOCK, busy):
            self.cleanup(self.state())
            yield self

    def cleanup(self, state: dict | None) -> int:
        """Delete every file under the root that `state` does not name (leftovers of interrupted builds)."""
        keep = self.referenced(state)
        removed = 0
        for p in sorted(self.root.rglob("*"), key=lambda x: -len(x.parts)):
            rel = p.relative_to(self.root).as_posix()
            if rel in (STATE, LOCK) or rel in keep or any(k.startswith(rel + "/") for k in keep):
                continue
            if any(rel.startswith(k + "/") for k in keep):
                continue
            if p.is_dir():
                if not any(p.iterdir()):
                    p.rmdir()
                continue
            p.unlink()
            removed += 1
        return removed

    def write_parquet(self, rel: str, table: pa.Table) -> dict:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_parquet(table, path)
        return {"file": rel, "rows": len(table)}

    def append(self, files: list[dict], kind: str, lo: int, hi: int, gen: int, table: pa.Table,
               schema: pa.Schema) -> None:
        """Add the rows of transactions lo..hi-1 to a file list; a small last file that ends at `lo` is merged
        with them into one new file (incremental builds after every block would otherwise leave thousands of
        tiny files). The replaced file stays on disk until the commit names the new one."""
        if files and files[-1]["hi"] == lo and files[-1]["rows"] < MERGE_ROWS:
            last = files.pop()
            table = pa.concat_tables([pq.read_table(self.root / last["file"]).cast(schema), table.cast(schema)])
            lo = last["lo"]
        f = self.write_parquet(file_name(kind, lo, hi, gen), table)
        files.append({**f, "lo": lo, "hi": hi})

    def save_arrays(self, rel_dir: str, arrays: dict[str, np.ndarray]) -> str:
        """Write ``<rel_dir>/<name>.npy`` for every array (durably); returns `rel_dir`."""
        d = self.root / rel_dir
        d.mkdir(parents=True, exist_ok=True)
        for name, arr in arrays.items():
            atomic.save_npy(d / f"{name}.npy", arr)
        return rel_dir

    def commit(self, state: dict) -> None:
        """Replace ``state.json`` (the commit point), then delete the files it no longer names."""
        atomic.replace_json(self.root / STATE, state)
        self.cleanup(state)

    # ------------------------------------------------------------------ reading

    def read(self, files: list[dict], columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
        parts = [pq.read_table(self.root / f["file"], columns=columns) for f in files]
        if not parts:
            sch = schema if columns is None else pa.schema([schema.field(c) for c in columns])
            return pa.Table.from_batches([], schema=sch)
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    def read_range(self, files: list[dict], lo: int, hi: int, cache: dict) -> pa.Table | None:
        """Rows with lo <= tx_id < hi of a file list (None when none); `cache` keeps the last file read, so
        that consecutive windows of one file read it once."""
        parts = []
        for f in files:
            if f["hi"] <= lo or f["lo"] >= hi:
                continue
            t = cache.get(f["file"])
            if t is None:
                t = pq.read_table(self.root / f["file"])
                cache.clear()
                cache[f["file"]] = t
            if f["lo"] < lo or f["hi"] > hi:
                t = t.filter(pc.and_(pc.greater_equal(t["tx_id"], lo), pc.less(t["tx_id"], hi)))
            parts.append(t)
        if not parts:
            return None
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    def load_array(self, rel_dir: str, name: str, mmap: bool = False) -> np.ndarray | None:
        """``<rel_dir>/<name>.npy`` (memory-mapped with `mmap`), or None when the file does not exist."""
        p = self.root / rel_dir / f"{name}.npy"
        if not p.exists():
            return None
        return np.load(p, mmap_mode="r" if mmap else None)
