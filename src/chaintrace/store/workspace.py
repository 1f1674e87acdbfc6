"""The workspace: one directory holding every chain store and the DuckDB catalog.

``DATA/`` (``--data``, env ``CHAINTRACE_DATA``, default ``./chaintrace-data``)::

    btc/  eth/        chain stores (see chaintrace.store.segments)
    catalog.duckdb    the catalog: views over the chain segments (refreshed after every commit) and the
                      tables of the other parts of chaintrace (intelligence registry, clusters, ...)

:meth:`Workspace.connect` gives a connection for queries: an in-memory DuckDB database whose views are
built from the current manifests, with the catalog attached read-only, so queries work while another
process ingests.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import duckdb

from chaintrace.store import schema as schema_mod
from chaintrace.store.segments import MANIFEST, ChainStore, StoreError

DEFAULT_DATA = "chaintrace-data"
ENV_DATA = "CHAINTRACE_DATA"
CATALOG = "catalog.duckdb"


def resolve_data_dir(path: str | os.PathLike | None = None) -> Path:
    """The workspace directory: `path`, else $CHAINTRACE_DATA, else ./chaintrace-data."""
    return Path(path or os.environ.get(ENV_DATA) or DEFAULT_DATA).expanduser().absolute()


def _attach_views(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> None:
    """Attach the DuckDB file `path` read-only as `alias` and show each of its tables as ``schema.table``
    (chain schemas excepted: their views come from the manifests). Best effort: a file another process holds
    for writing is skipped (chain data stays queryable)."""
    try:
        con.execute(f'ATTACH {sql_string(str(path))} AS "{alias}" (READ_ONLY)')
    except duckdb.Error:
        return
    rows = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?",
                       [alias]).fetchall()
    for sch, tbl in rows:
        if sch in schema_mod.CHAINS:
            continue
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{sch}"')
        con.execute(f'CREATE OR REPLACE VIEW "{sch}"."{tbl}" AS SELECT * FROM "{alias}"."{sch}"."{tbl}"')


def sql_string(text: str) -> str:
    """`text` as a DuckDB string literal (any path works: quotes, spaces, unicode)."""
    return "'" + text.replace("'", "''") + "'"


def _holds_no_data(d: Path) -> bool:
    """True when the tree under `d` has only directories and empty lock files."""
    for root, _dirs, files in os.walk(d):
        for f in files:
            p = Path(root) / f
            if p.is_symlink() or not (f.endswith(".lock") and p.stat().st_size == 0):
                return False
    return True


class Workspace:
    """A chaintrace workspace directory."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = resolve_data_dir(path)

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @property
    def catalog_path(self) -> Path:
        return self.path / CATALOG

    def chain(self, name: str) -> ChainStore:
        """The store of one chain (it need not exist yet)."""
        return ChainStore(self.path / name, name, schema_mod.schemas(name))

    def chains(self) -> list[str]:
        """Chains that have a committed store in this workspace."""
        if not self.path.exists():
            return []
        schema_mod._load_optional()
        return [c for c in schema_mod.CHAINS if (self.path / c / MANIFEST).exists()]

    def require_chain(self, name: str) -> ChainStore:
        store = self.chain(name)
        if not store.exists:
            raise StoreError(
                f"no {name} data in workspace {self.path} (run `chaintrace ingest ...` first, "
                f"or point --data / {ENV_DATA} at a workspace)")
        return store

    # ------------------------------------------------------------------ clean-up after failures

    def entries(self) -> frozenset[str] | None:
        """Names directly in the workspace directory, or None when it does not exist (see :meth:`discard_new_empty`)."""
        try:
            return frozenset(p.name for p in self.path.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def discard_new_empty(self, before: frozenset[str] | None) -> list[Path]:
        """Remove what a failed command created and left without data: new top-level directories holding only
        (empty) directories and lock files, and the workspace directory itself if it was new and is now empty.
        `before` is :meth:`entries` from before the command. Returns the paths removed."""
        removed: list[Path] = []
        now = self.entries()
        if now is None:
            return removed
        for name in sorted(now - (before or frozenset())):
            p = self.path / name
            if p.is_dir() and not p.is_symlink() and _holds_no_data(p):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        if before is None:
            try:
                self.path.rmdir()  # only succeeds when empty
                removed.append(self.path)
            except OSError:
                pass
        return removed

    # ------------------------------------------------------------------ DuckDB

    def _chain_views(self, con: duckdb.DuckDBPyConnection) -> None:
        for name in self.chains():
            store = self.chain(name)
            files = {t: store.files(t) for t in store.schemas}
            for stmt in schema_mod.CHAINS[name].views(files, schema=name):
                con.execute(stmt)

    def connect(self, *, sandbox: bool = False, attach: Mapping[str, Path] | None = None
                ) -> duckdb.DuckDBPyConnection:
        """A query connection: chain views from the manifests plus the catalog's tables, read-only.

        `attach`: more DuckDB files opened read-only under the given aliases, each of their tables shown as a
        view ``schema.table`` (e.g. the intelligence registry's current generation, whose tables are in schema
        ``intel``; the CLI's ``sql`` passes it, the store does not know the registry).

        With `sandbox`, once the views are set up the connection can read no file outside the chain stores
        (``enable_external_access=false`` with the stores as ``allowed_directories``) and its configuration is
        locked, so no statement can turn that back on (``chaintrace sql`` runs on such a connection).
        """
        con = duckdb.connect(":memory:")
        try:
            self._chain_views(con)
            self._catalog_views(con)
            for alias, path in (attach or {}).items():
                _attach_views(con, Path(path), alias)
            if sandbox:
                con.execute("SET allowed_directories = ?", [[str(self.path / c) + os.sep for c in self.chains()]])
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
        except BaseException:
            con.close()
            raise
        return con

    def _catalog_views(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.catalog_path.exists():
            _attach_views(con, self.catalog_path, "catalog")

    @contextmanager
    def catalog(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the persistent catalog (held briefly: it excludes other writers)."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(self.catalog_path))
        except duckdb.Error as e:  # IOException (another process), ResourceInUse (this process), ...
            raise StoreError(f"{self.catalog_path}: catalog is in use ({e})") from e
        try:
            yield con
        finally:
            con.close()

    def refresh_catalog_views(self) -> bool:
        """Rewrite the catalog's chain views so `duckdb DATA/catalog.duckdb` sees the committed data.

        Best effort: returns False when another process holds the catalog (query commands do not need
        these views; they build their own from the manifests).
        """
        try:
            with self.catalog() as con:
                self._chain_views(con)
            return True
        except StoreError:
            return False
