"""Derived tables: Parquet tables computed from a chain store by another engine (``chaintrace spark run
stats``...), kept under ``DATA/<chain>/derived/`` and committed like the store itself.

``derived/state.json`` names, per table, its files, the store commit it was computed from and who computed
it. A writer (one at a time: ``derived/.lock``) writes new files under a directory no committed state names
(``<table>.g<generation>/``), replaces ``state.json`` atomically (the commit point) and deletes what the new
state no longer names; a writer that dies before the commit leaves the previous tables intact, and the next
writer removes its leftovers. Every committed table is the DuckDB view ``<chain>.<table>``
(:func:`catalog_views`), so ``chaintrace sql`` queries it like any other table.
"""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from chaintrace.errors import UserError
from chaintrace.store import atomic

STATE = "state.json"
LOCK = ".lock"
DIR = "derived"


class DerivedTables:
    """The derived tables of one chain store (``DATA/<chain>/derived/``)."""

    def __init__(self, store_root: Path):
        self.root = Path(store_root) / DIR

    def state(self) -> dict:
        p = self.root / STATE
        if not p.exists():
            return {"generation": 0, "tables": {}}
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{p}: unreadable derived-table state ({e}); delete {self.root} and recompute") from e

    def table(self, name: str) -> dict | None:
        """The committed entry of a table (``files``, ``store_commit``, ``engine``, ...) or None."""
        return self.state()["tables"].get(name)

    def files(self, name: str) -> list[Path]:
        t = self.table(name)
        return [self.root / f for f in t["files"]] if t else []

    @contextmanager
    def writer(self) -> Iterator[tuple[int, dict]]:
        """Hold the lock, remove leftovers; yields (new generation, a copy of the state to modify and pass
        to :meth:`commit`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        busy = lambda: UserError(f"{self.root}: another process is writing derived tables")  # noqa: E731
        with atomic.exclusive_lock(self.root / LOCK, busy):
            st = self.state()
            self.cleanup(st)
            yield st["generation"] + 1, json.loads(json.dumps(st))

    def new_dir(self, name: str, gen: int) -> Path:
        return self.root / f"{name}.g{gen:06d}"

    def commit(self, state: dict, gen: int) -> None:
        state["generation"] = gen
        atomic.replace_json(self.root / STATE, state)
        self.cleanup(state)

    def cleanup(self, state: dict) -> None:
        keep = {Path(f).parts[0] for t in state["tables"].values() for f in t["files"]}
        for p in self.root.iterdir():
            if p.name in (STATE, LOCK) or p.name in keep:
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        for d in keep:  # files in a kept directory that the state does not name (Spark's .crc files...)
            named = {f for t in state["tables"].values() for f in t["files"] if Path(f).parts[0] == d}
            for p in (self.root / d).iterdir() if (self.root / d).is_dir() else ():
                if p.is_file() and p.relative_to(self.root).as_posix() not in named:
                    p.unlink(missing_ok=True)


def catalog_views(store_root: Path, schema: str) -> list[str]:
    """``CREATE VIEW <schema>.<table>`` over every committed derived table of the store at `store_root`."""
    from chaintrace.store.schema._sql import scan  # noqa: F401  (same quoting as the chain views)

    d = DerivedTables(store_root)
    try:
        tables = d.state()["tables"]
    except UserError:
        return []
    out = []
    for name, t in sorted(tables.items()):
        files = [d.root / f for f in t["files"]]
        if files:
            quoted = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            out.append(f"CREATE OR REPLACE VIEW {schema}.{name} AS SELECT * FROM read_parquet([{quoted}])")
    return out
