"""The intelligence registry in the workspace catalog (DuckDB schema ``intel``).

Tables (all queryable with ``chaintrace sql``, e.g. ``SELECT * FROM intel.imports``):

``imports``           one row per imported file: kind, path, sha256, when, as-of date, row counts, and
                      ``superseded_by`` once a newer version of the same source replaced it
``tags``              address attributions (TagPacks, label scrapes): chain, address, key, label, category,
                      abuse, actor, source, confidence, TLP, validity, lastmod, context, line
``sanctions``         sanctions-list addresses as each list snapshot states them (asset, entity, uid,
                      programs, listing date)
``sanction_periods``  derived from all snapshots: when each address was sanctioned (from its listing date
                      until the first later snapshot that dropped it)
``actors``, ``actor_aliases``, ``actor_relations``   threat actors and services, their aliases and links
``incidents``, ``incident_seeds``, ``aggregates``    hacks with their seed addresses, sourced totals
``rejects``           every row a source held that was not taken, with file, line and reason
``meta``              ``generation``: bumped on every change (lookup indexes are cached per generation)

An import is one DuckDB transaction: a file lands whole or not at all, and importing the same bytes again
does nothing. A changed file (same kind and path, new sha256) replaces its previous version; list snapshots
of a sanctions list accumulate, one per as-of date, because time validity is computed from their history.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator, Union

import duckdb
import pyarrow as pa

from chaintrace.errors import ChaintraceError
from chaintrace.intel import addresses as addr
from chaintrace.intel.model import Parsed
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace

SCHEMA = "intel"
SNAPSHOT_KINDS = frozenset({"ofac-sdn"})

DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.imports (
        import_id INTEGER, kind VARCHAR, path VARCHAR, file_name VARCHAR, sha256 VARCHAR,
        content_sha256 VARCHAR, imported_at TIMESTAMP, as_of DATE, title VARCHAR, creator VARCHAR,
        description VARCHAR, list_name VARCHAR, assets VARCHAR[], n_tags INTEGER, n_actors INTEGER,
        n_incidents INTEGER, n_seeds INTEGER, n_aggregates INTEGER, n_sanctions INTEGER, n_rejected INTEGER,
        n_duplicates INTEGER, superseded_by INTEGER, options VARCHAR, licence VARCHAR, restricted BOOLEAN)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.tags (
        import_id INTEGER, kind VARCHAR, chain VARCHAR, address VARCHAR, addr_key VARCHAR, label VARCHAR,
        category VARCHAR, entity_category VARCHAR, abuse VARCHAR, actor VARCHAR, source VARCHAR,
        currency VARCHAR, network VARCHAR, confidence INTEGER, confidence_id VARCHAR, tlp VARCHAR,
        is_public BOOLEAN, is_cluster_definer BOOLEAN, valid_from DATE, valid_to DATE, lastmod DATE,
        context VARCHAR, concepts VARCHAR[], tag_type VARCHAR, line INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sanctions (
        import_id INTEGER, list_name VARCHAR, as_of DATE, asset VARCHAR, chain VARCHAR, address VARCHAR,
        addr_key VARCHAR, uid VARCHAR, entity VARCHAR, party_type VARCHAR, programs VARCHAR[],
        listed_date DATE, line INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sanction_periods (
        list_name VARCHAR, asset VARCHAR, chain VARCHAR, address VARCHAR, addr_key VARCHAR, uid VARCHAR,
        entity VARCHAR, party_type VARCHAR, programs VARCHAR[], listed_date DATE, valid_from DATE,
        valid_to DATE, first_seen DATE, last_seen DATE, snapshots INTEGER, absent_before DATE)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.actors (
        import_id INTEGER, actor_id VARCHAR, name VARCHAR, country VARCHAR, categories VARCHAR[],
        uri VARCHAR, refs VARCHAR[], source_ref VARCHAR, lastmod DATE, line INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.actor_aliases (
        import_id INTEGER, actor_id VARCHAR, alias VARCHAR, alias_norm VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.actor_relations (
        import_id INTEGER, actor_id VARCHAR, related_id VARCHAR, relation VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.incidents (
        import_id INTEGER, incident_id VARCHAR, date DATE, date_end DATE, victim VARCHAR, title VARCHAR,
        kind VARCHAR, chains VARCHAR[], asset VARCHAR, amount_asset VARCHAR, amount_usd DECIMAL(18,2),
        actor VARCHAR, actor_detail VARCHAR, attribution VARCHAR, attributed_by VARCHAR, sources VARCHAR[],
        notes VARCHAR, line INTEGER, tlp VARCHAR, confidence INTEGER, producer VARCHAR, context VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.incident_seeds (
        import_id INTEGER, incident_id VARCHAR, chain VARCHAR, address VARCHAR, addr_key VARCHAR,
        txid VARCHAR, role VARCHAR, side VARCHAR, source VARCHAR, line INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.aggregates (
        import_id INTEGER, aggregate_id VARCHAR, period_start DATE, period_end DATE, scope VARCHAR,
        amount_usd DECIMAL(18,2), actor VARCHAR, sources VARCHAR[], line INTEGER)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.rejects (
        import_id INTEGER, file VARCHAR, line INTEGER, address VARCHAR, chain VARCHAR, reason VARCHAR)""",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (key VARCHAR, value VARCHAR)",
]

DATA_TABLES = ("tags", "sanctions", "actors", "actor_aliases", "actor_relations", "incidents", "incident_seeds",
               "aggregates", "rejects")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def norm_alias(name: str) -> str:
    """Alias comparison form: lower-case letters and digits only ('APT 38' == 'apt38')."""
    return "".join(c for c in name.lower() if c.isalnum())


# -------------------------------------------------------------------------------------------- directory

ENV_REGISTRY = "CHAINTRACE_REGISTRY"
POINTER = "CURRENT"
KEEP_GENERATIONS = 8  # older generation files are deleted (a reader holding one keeps its open file)
_OVERRIDE: ContextVar[Path | None] = ContextVar("chaintrace_registry_override", default=None)


def user_data_dir() -> Path:
    """The per-user data directory: $XDG_DATA_HOME/chaintrace (default ~/.local/share/chaintrace) on Linux,
    ~/Library/Application Support/chaintrace on macOS, %APPDATA%\\chaintrace on Windows."""
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "chaintrace"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "chaintrace"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "chaintrace"


def default_registry_dir() -> Path:
    """Where the registry lives unless told: ``--registry DIR`` (see :func:`use`), else env
    ``CHAINTRACE_REGISTRY``, else ``<user data dir>/registry`` (:func:`user_data_dir`)."""
    o = _OVERRIDE.get()
    if o is not None:
        return o
    env = os.environ.get(ENV_REGISTRY)
    return Path(env).expanduser() if env else user_data_dir() / "registry"


@contextmanager
def use(path: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, workspaces use the registry in `path` (the CLI's ``--registry DIR``)."""
    token = _OVERRIDE.set(Path(path).expanduser() if path is not None else _OVERRIDE.get())
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


class Registry:
    """The intelligence registry: a directory shared by every workspace (and the service).

    Layout: ``CURRENT`` names the current generation; ``generations/g000042.duckdb`` is generation 42, a
    DuckDB database that is never changed once published. An import copies the current generation to a new
    file, writes it in one transaction, checkpoints it and publishes it by replacing ``CURRENT`` atomically
    (``os.replace``) under an exclusive lock. A reader opens the generation ``CURRENT`` names and keeps it:
    a lookup during an import sees the old or the new generation, never a mix.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"Registry({str(self.path)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Registry) and self.path.resolve() == other.path.resolve()

    def __hash__(self) -> int:
        return hash(str(self.path))

    @property
    def generation(self) -> int:
        """The current generation (0: nothing imported yet)."""
        try:
            text = (self.path / POINTER).read_text().strip()
        except FileNotFoundError:
            return 0
        try:
            return int(text.lstrip("g"))
        except ValueError:
            raise ChaintraceError(f"{self.path / POINTER}: not a registry generation pointer ({text[:40]!r})") from None

    def file(self, generation: int | None = None) -> Path:
        g = self.generation if generation is None else generation
        return self.path / "generations" / f"g{g:06d}.duckdb"

    @property
    def catalog_path(self) -> Path:
        """The DuckDB file of the current generation."""
        return self.file()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to a new generation; published when the block ends without an error."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "generations").mkdir(exist_ok=True)
        with open(self.path / ".lock", "a+") as lock:
            _lock(lock)
            old = self.generation
            new = old + 1
            target = self.file(new)
            tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
            for p in (tmp, tmp.with_name(tmp.name + ".wal")):
                p.unlink(missing_ok=True)
            if old:
                shutil.copyfile(self.file(old), tmp)
            con = duckdb.connect(str(tmp))
            try:
                ensure_schema(con)
                yield con
                con.execute("CHECKPOINT")
            except BaseException as e:
                con.close()
                for p in (tmp, tmp.with_name(tmp.name + ".wal")):
                    p.unlink(missing_ok=True)
                if isinstance(e, NothingToPublish):
                    return
                raise
            con.close()
            os.replace(tmp, target)
            ptr = self.path / (POINTER + ".tmp")
            ptr.write_text(f"g{new:06d}\n")
            os.replace(ptr, self.path / POINTER)
            for g in range(max(1, new - 4 * KEEP_GENERATIONS), new - KEEP_GENERATIONS + 1):
                self.file(g).unlink(missing_ok=True)


class NothingToPublish(Exception):
    """Raised inside :meth:`Registry.writer` to drop the new generation (nothing changed)."""


def _lock(f) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: one writer at a time is the caller's duty
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)


# What the library functions take as their first argument: a Registry, a registry directory, a Workspace (the
# registry every workspace shares) or None (no registry: the built-in catalogue only).
RegistryLike = Union[Registry, Workspace, str, os.PathLike, None]


def as_registry(x: RegistryLike) -> Registry | None:
    """The registry an argument stands for: a :class:`Registry`, a directory path, None (no registry:
    built-in data only), or a Workspace: the registry it was bound to (:func:`bind`), else the registry every
    workspace shares (:func:`default_registry_dir`, resolved once per Workspace object and then kept, so one
    object never switches registry half-way)."""
    if x is None or isinstance(x, Registry):
        return x
    if isinstance(x, (str, os.PathLike)):
        return Registry(x)
    bound = getattr(x, "_intel_registry", None)
    if isinstance(bound, Registry):
        return bound
    return bind(x, default_registry_dir())


def bind(ws: Workspace, path: str | os.PathLike) -> Registry:
    """Make workspace object `ws` use the registry in `path` (e.g. a service or a test with its own)."""
    r = Registry(path)
    try:
        ws._intel_registry = r  # type: ignore[attr-defined]
    except AttributeError:  # an object that takes no attributes: resolved on every call
        pass
    return r


# ------------------------------------------------------------------------------------------- connections


@contextmanager
def reader(ws: RegistryLike, generation: int | None = None) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only connection to one registry generation (default: the current one), or None when the
    registry is empty. `ws`: anything :func:`as_registry` takes."""
    r = as_registry(ws)
    if r is None:
        yield None
        return
    g = r.generation if generation is None else generation
    if not g:
        yield None
        return
    if generation is None:
        g = _migrated(r, g)
    path = r.file(g)
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        raise StoreError(f"{path}: cannot open registry generation {g} ({e})") from e
    try:
        yield con
    finally:
        con.close()


# Versioned layout: ``intel.meta`` key ``schema_version``. A generation written by older code is migrated
# when it is opened for writing (every import) and, when the registry directory is writable, when it is
# opened for reading (:func:`reader` publishes a migrated generation first). Version 1: the layout before
# licences (``imports`` without ``licence``/``restricted``, ``incidents`` without the STIX provenance).
SCHEMA_VERSION = 2
MIGRATIONS: dict[int, list[str]] = {
    2: [f"ALTER TABLE {SCHEMA}.imports ADD COLUMN IF NOT EXISTS licence VARCHAR",
        f"ALTER TABLE {SCHEMA}.imports ADD COLUMN IF NOT EXISTS restricted BOOLEAN",
        # the terms imports of these kinds get by default (chaintrace.intel.importer.DEFAULT_TERMS)
        f"UPDATE {SCHEMA}.imports SET licence = 'public domain (U.S. government work, OFAC SDN list)', "
        "restricted = FALSE WHERE kind = 'ofac-sdn' AND licence IS NULL",
        f"UPDATE {SCHEMA}.imports SET licence = 'block explorer terms of service (scraped labels; redistribution "
        "not permitted)', restricted = TRUE WHERE kind = 'labels' AND licence IS NULL",
        f"UPDATE {SCHEMA}.imports SET restricted = FALSE WHERE restricted IS NULL",
        *(f"ALTER TABLE {SCHEMA}.incidents ADD COLUMN IF NOT EXISTS {c}"
          for c in ("tlp VARCHAR", "confidence INTEGER", "producer VARCHAR", "context VARCHAR"))],
}


class SchemaError(ChaintraceError):
    """A registry generation written by a newer chaintrace (a schema version this code does not know)."""


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The layout version of an opened generation: ``intel.meta`` ``schema_version``; 1 for a registry made
    before versions were recorded (it has ``intel.imports`` but no version row); 0 for an empty database."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [SCHEMA]).fetchall()}
    if "imports" not in tables:
        return 0
    if "meta" in tables:
        row = con.execute(f"SELECT max(CAST(value AS INTEGER)) FROM {SCHEMA}.meta WHERE key = 'schema_version'"
                          ).fetchone()
        if row and row[0] is not None:
            return int(row[0])
    return 1


def current_generation(r: Registry) -> int:
    """`r`'s current generation after migrating an older layout (see :func:`_migrated`); 0 when empty."""
    g = r.generation
    return _migrated(r, g) if g else 0


_CURRENT_LAYOUT: set[tuple[str, int]] = set()  # (registry dir, generation) known to have SCHEMA_VERSION


def _migrated(r: Registry, g: int) -> int:
    """Generation `g` of `r`, or, when it has an older layout and the directory is writable, the generation
    published with the layout migrated (:func:`ensure_schema`). A read-only registry is read as it is."""
    key = (str(r.path), g)
    if key in _CURRENT_LAYOUT:
        return g
    try:
        con = duckdb.connect(str(r.file(g)), read_only=True)
    except duckdb.Error:
        return g  # the caller reports it
    try:
        found = schema_version(con)
    finally:
        con.close()
    if found < SCHEMA_VERSION and os.access(r.path, os.W_OK):
        with r.writer():
            pass
        g = r.generation
    _CURRENT_LAYOUT.add((str(r.path), g))
    return g


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables of a new generation, or migrate one written by older code to
    :data:`SCHEMA_VERSION` (each migration once, in order); refuses a newer layout."""
    found = schema_version(con)
    if found > SCHEMA_VERSION:
        raise SchemaError(f"registry schema version {found} is newer than this chaintrace understands "
                          f"({SCHEMA_VERSION}); upgrade chaintrace")
    for stmt in DDL:
        con.execute(stmt)
    if found == SCHEMA_VERSION:
        return
    if found:  # an older layout: the tables exist, bring them up to date
        for v in range(found + 1, SCHEMA_VERSION + 1):
            for stmt in MIGRATIONS.get(v, []):
                con.execute(stmt)
    con.execute(f"DELETE FROM {SCHEMA}.meta WHERE key = 'schema_version'")
    con.execute(f"INSERT INTO {SCHEMA}.meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])


def generation(ws: RegistryLike) -> int:
    """The registry's current generation (0 for none): the cache key of lookup indexes."""
    r = as_registry(ws)
    return r.generation if r is not None else 0


# --------------------------------------------------------------------------------------------- columns


def _insert(con, table: str, columns: dict[str, list], types: dict[str, pa.DataType] | None = None) -> int:
    n = len(next(iter(columns.values()))) if columns else 0
    if not n:
        return 0
    arrays = {k: pa.array(v, type=(types or {}).get(k)) for k, v in columns.items()}
    tbl = pa.table(arrays)
    con.register("_intel_rows", tbl)
    try:
        cols = ", ".join(columns)
        con.execute(f"INSERT INTO {SCHEMA}.{table} ({cols}) SELECT {cols} FROM _intel_rows")
    finally:
        con.unregister("_intel_rows")
    return n


def _date(s: str | None):
    return _dt.date.fromisoformat(s) if s else None


_STR_LIST = pa.list_(pa.string())


def _rows_for(p: Parsed, import_id: int) -> dict[str, tuple[dict, dict]]:
    out: dict[str, tuple[dict, dict]] = {}
    if p.tags:
        cols = {k: [] for k in ("import_id", "kind", "chain", "address", "addr_key", "label", "category",
                                "entity_category", "abuse", "actor", "source", "currency", "network", "confidence",
                                "confidence_id", "tlp", "is_public", "is_cluster_definer", "valid_from",
                                "valid_to", "lastmod", "context", "concepts", "tag_type", "line")}
        for t in p.tags:
            e = t.extra or {}
            cols["import_id"].append(import_id)
            cols["kind"].append(p.kind)
            cols["chain"].append(t.chain)
            cols["address"].append(e.get("address_as_written") or t.address)
            cols["addr_key"].append(addr.key(t.chain, t.address))
            cols["label"].append(t.label)
            cols["category"].append(t.category)
            cols["entity_category"].append(e.get("entity_category"))
            cols["abuse"].append(t.abuse)
            cols["actor"].append(t.actor)
            cols["source"].append(t.source)
            cols["currency"].append(e.get("currency"))
            cols["network"].append(e.get("network"))
            cols["confidence"].append(t.confidence)
            cols["confidence_id"].append(e.get("confidence_id"))
            cols["tlp"].append(t.tlp)
            cols["is_public"].append(t.is_public)
            cols["is_cluster_definer"].append(e.get("is_cluster_definer"))
            cols["valid_from"].append(_date(t.valid_from))
            cols["valid_to"].append(_date(t.valid_to))
            cols["lastmod"].append(_date(t.lastmod))
            cols["context"].append(e.get("context"))
            cols["concepts"].append(e.get("concepts"))
            cols["tag_type"].append(e.get("tag_type"))
            cols["line"].append(e.get("line"))
        out["tags"] = (cols, {"confidence": pa.int32(), "line": pa.int32(), "concepts": _STR_LIST,
                              "valid_from": pa.date32(), "valid_to": pa.date32(), "lastmod": pa.date32(),
                              "is_cluster_definer": pa.bool_()})
    if p.sanctions:
        as_of = _date(p.meta.get("as_of"))
        cols = {k: [] for k in ("import_id", "list_name", "as_of", "asset", "chain", "address", "addr_key", "uid",
                                "entity", "party_type", "programs", "listed_date", "line")}
        for s in p.sanctions:
            for k, v in (("import_id", import_id), ("list_name", p.meta.get("list_name")), ("as_of", as_of),
                         ("asset", s.asset), ("chain", s.chain), ("address", s.address),
                         ("addr_key", addr.key(s.chain, s.address)), ("uid", s.uid), ("entity", s.entity),
                         ("party_type", s.party_type), ("programs", s.programs),
                         ("listed_date", _date(s.listed_date)), ("line", s.line)):
                cols[k].append(v)
        out["sanctions"] = (cols, {"as_of": pa.date32(), "listed_date": pa.date32(), "programs": _STR_LIST,
                                   "line": pa.int32(), "uid": pa.string(), "entity": pa.string(),
                                   "party_type": pa.string()})
    if p.actors:
        cols = {k: [] for k in ("import_id", "actor_id", "name", "country", "categories", "uri", "refs",
                                "source_ref", "lastmod", "line")}
        al = {k: [] for k in ("import_id", "actor_id", "alias", "alias_norm")}
        rel = {k: [] for k in ("import_id", "actor_id", "related_id", "relation")}
        for a in p.actors:
            for k, v in (("import_id", import_id), ("actor_id", a.id), ("name", a.name), ("country", a.country),
                         ("categories", a.categories), ("uri", a.uri), ("refs", a.references),
                         ("source_ref", a.source_ref), ("lastmod", _date(a.lastmod)), ("line", a.line)):
                cols[k].append(v)
            names = [a.id, a.name] + list(a.aliases)
            seen = set()
            for n in names:
                k = norm_alias(n)
                if k and k not in seen:
                    seen.add(k)
                    al["import_id"].append(import_id)
                    al["actor_id"].append(a.id)
                    al["alias"].append(n)
                    al["alias_norm"].append(k)
            for rid, relation in a.related:
                rel["import_id"].append(import_id)
                rel["actor_id"].append(a.id)
                rel["related_id"].append(rid)
                rel["relation"].append(relation)
        out["actors"] = (cols, {"categories": _STR_LIST, "refs": _STR_LIST, "lastmod": pa.date32(),
                                "line": pa.int32(), "country": pa.string(), "uri": pa.string(),
                                "source_ref": pa.string()})
        out["actor_aliases"] = (al, {})
        if rel["actor_id"]:
            out["actor_relations"] = (rel, {})
    if p.incidents:
        cols = {k: [] for k in ("import_id", "incident_id", "date", "date_end", "victim", "title", "kind",
                                "chains", "asset", "amount_asset", "amount_usd", "actor", "actor_detail",
                                "attribution", "attributed_by", "sources", "notes", "line", "tlp", "confidence",
                                "producer", "context")}
        for i in p.incidents:
            for k, v in (("import_id", import_id), ("incident_id", i.id), ("date", _date(i.date)),
                         ("date_end", _date(i.date_end)), ("victim", i.victim), ("title", i.title),
                         ("kind", i.kind), ("chains", i.chains), ("asset", i.asset),
                         ("amount_asset", i.amount_asset), ("amount_usd", i.amount_usd), ("actor", i.actor),
                         ("actor_detail", i.actor_detail), ("attribution", i.attribution),
                         ("attributed_by", i.attributed_by), ("sources", i.sources), ("notes", i.notes),
                         ("line", i.line), ("tlp", i.tlp), ("confidence", i.confidence),
                         ("producer", i.producer), ("context", i.context)):
                cols[k].append(v)
        out["incidents"] = (cols, {"date": pa.date32(), "date_end": pa.date32(), "chains": _STR_LIST,
                                   "sources": _STR_LIST, "amount_usd": pa.decimal128(18, 2), "line": pa.int32(),
                                   "confidence": pa.int32(),
                                   **{c: pa.string() for c in ("title", "kind", "asset", "amount_asset", "actor",
                                                               "actor_detail", "attribution", "attributed_by",
                                                               "notes", "tlp", "producer", "context")}})
    if p.seeds:
        cols = {k: [] for k in ("import_id", "incident_id", "chain", "address", "addr_key", "txid", "role", "side",
                                "source", "line")}
        for s in p.seeds:
            for k, v in (("import_id", import_id), ("incident_id", s.incident), ("chain", s.chain),
                         ("address", s.address), ("addr_key", addr.key(s.chain, s.address) if s.address else None),
                         ("txid", s.txid), ("role", s.role), ("side", s.side), ("source", s.source),
                         ("line", s.line)):
                cols[k].append(v)
        out["incident_seeds"] = (cols, {"line": pa.int32(), **{c: pa.string() for c in (
            "address", "addr_key", "txid", "role", "side", "source")}})
    if p.aggregates:
        cols = {k: [] for k in ("import_id", "aggregate_id", "period_start", "period_end", "scope", "amount_usd",
                                "actor", "sources", "line")}
        for g in p.aggregates:
            for k, v in (("import_id", import_id), ("aggregate_id", g.id), ("period_start", _date(g.period_start)),
                         ("period_end", _date(g.period_end)), ("scope", g.scope), ("amount_usd", g.amount_usd),
                         ("actor", g.actor), ("sources", g.sources), ("line", g.line)):
                cols[k].append(v)
        out["aggregates"] = (cols, {"period_start": pa.date32(), "period_end": pa.date32(), "sources": _STR_LIST,
                                    "amount_usd": pa.decimal128(18, 2), "line": pa.int32(), "actor": pa.string()})
    if p.rejects:
        cols = {"import_id": [import_id] * len(p.rejects), "file": [r.file for r in p.rejects],
                "line": [r.line for r in p.rejects], "address": [r.address for r in p.rejects],
                "chain": [r.chain for r in p.rejects], "reason": [r.reason for r in p.rejects]}
        out["rejects"] = (cols, {"line": pa.int32(), "address": pa.string(), "chain": pa.string()})
    return out


# ---------------------------------------------------------------------------------------------- writing


def existing_import(ws: RegistryLike, kind: str, sha: str) -> int | None:
    """The id of a current import of these exact bytes, if any."""
    with reader(ws) as con:
        if con is None:
            return None
        row = con.execute(f"SELECT import_id FROM {SCHEMA}.imports WHERE kind = ? AND (sha256 = ? OR "
                          f"content_sha256 = ?) AND superseded_by IS NULL ORDER BY import_id LIMIT 1",
                          [kind, sha, sha]).fetchone()
        return row[0] if row else None


def write_imports(ws: RegistryLike, parsed: list[tuple[Parsed, dict]]) -> list[int]:
    """Store parsed files in one transaction. Each item is (Parsed, info) with info: sha256, path, options.
    Returns the new import ids. Either every file lands or none does."""
    ids: list[int] = []
    with as_registry(ws).writer() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            next_id = con.execute(f"SELECT coalesce(max(import_id), 0) + 1 FROM {SCHEMA}.imports").fetchone()[0]
            snapshots_changed = False
            for p, info in parsed:
                iid = next_id
                next_id += 1
                # Same content already current (e.g. a .xml and its .xml.bz2): nothing to do.
                dup = con.execute(
                    f"SELECT import_id FROM {SCHEMA}.imports WHERE kind = ? AND superseded_by IS NULL AND "
                    f"(sha256 = ? OR (content_sha256 IS NOT NULL AND content_sha256 = ?))",
                    [p.kind, info["sha256"], info.get("content_sha256") or info["sha256"]]).fetchone()
                if dup:
                    info["skipped_as"] = dup[0]
                    continue
                if p.kind in SNAPSHOT_KINDS:
                    old = con.execute(f"SELECT import_id FROM {SCHEMA}.imports WHERE kind = ? AND list_name = ? "
                                      f"AND as_of = ? AND superseded_by IS NULL",
                                      [p.kind, p.meta.get("list_name"), _date(p.meta.get("as_of"))]).fetchall()
                    snapshots_changed = True
                else:
                    old = con.execute(f"SELECT import_id FROM {SCHEMA}.imports WHERE kind = ? AND path = ? AND "
                                      f"superseded_by IS NULL", [p.kind, info["path"]]).fetchall()
                for (oid,) in old:
                    for t in DATA_TABLES:
                        con.execute(f"DELETE FROM {SCHEMA}.{t} WHERE import_id = ?", [oid])
                    con.execute(f"UPDATE {SCHEMA}.imports SET superseded_by = ? WHERE import_id = ?", [iid, oid])
                    info.setdefault("replaced", []).append(oid)
                counts = {}
                for table, (cols, types) in _rows_for(p, iid).items():
                    counts[table] = _insert(con, table, cols, types)
                con.execute(
                    f"INSERT INTO {SCHEMA}.imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    f"?, ?, NULL, ?, ?, ?)",
                    [iid, p.kind, info["path"], Path(info["path"]).name, info["sha256"], info.get("content_sha256"),
                     _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None), _date(p.meta.get("as_of")),
                     p.meta.get("title"), p.meta.get("creator"), p.meta.get("description"),
                     p.meta.get("list_name"), p.meta.get("assets"), len(p.tags), len(p.actors), len(p.incidents),
                     len(p.seeds), len(p.aggregates), len(p.sanctions), len(p.rejects), p.duplicates,
                     json.dumps(info.get("options") or {}, sort_keys=True), info.get("licence"),
                     bool(info.get("restricted"))])
                ids.append(iid)
            if snapshots_changed:
                rebuild_sanction_periods(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if not ids:
            raise NothingToPublish
    return ids


def remove_import(ws: RegistryLike, import_id: int) -> dict:
    """Delete the rows of one import (its record stays, marked superseded by 0)."""
    r = as_registry(ws)
    with r.writer() as con:
        row = con.execute(f"SELECT kind, path, superseded_by FROM {SCHEMA}.imports WHERE import_id = ?",
                          [import_id]).fetchone()
        if row is None:
            raise ChaintraceError(f"no import #{import_id} in the registry {r.path} (see `chaintrace intel imports`)")
        con.execute("BEGIN TRANSACTION")
        try:
            for t in DATA_TABLES:
                con.execute(f"DELETE FROM {SCHEMA}.{t} WHERE import_id = ?", [import_id])
            con.execute(f"UPDATE {SCHEMA}.imports SET superseded_by = 0 WHERE import_id = ?", [import_id])
            if row[0] in SNAPSHOT_KINDS:
                rebuild_sanction_periods(con)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return {"import_id": import_id, "kind": row[0], "path": row[1], "removed": True}


def rebuild_sanction_periods(con) -> None:
    """Recompute ``sanction_periods`` from every current list snapshot (the list history).

    Per list, asset and address, a period runs from the as-of date of a snapshot that holds the address to
    the as-of date of the first later snapshot that covers the asset and no longer holds it (a removal), or
    stays open. The entity's listing date is kept beside it but does not open the period: the SDN list gives
    no date per address (an address can be added to an old entry years later), so the entry date is only a
    lower bound. ``absent_before`` is the latest snapshot covering the asset that did not hold the address
    before the period began. :func:`chaintrace.intel.history.status_at` answers true / false / unknown
    from these rows.
    """
    snaps = con.execute(f"SELECT import_id, list_name, as_of, assets FROM {SCHEMA}.imports WHERE kind IN "
                        f"({', '.join(repr(k) for k in SNAPSHOT_KINDS)}) AND superseded_by IS NULL "
                        f"ORDER BY as_of, import_id").fetchall()
    rows = con.execute(f"SELECT import_id, asset, chain, address, addr_key, uid, entity, party_type, programs, "
                       f"listed_date FROM {SCHEMA}.sanctions").fetchall()
    by_snap: dict[int, dict] = {}
    for iid, asset, chain, address, k, uid, entity, ptype, programs, listed in rows:
        by_snap.setdefault(iid, {})[(asset, k)] = (chain, address, uid, entity, ptype, programs, listed)
    out = []
    lists: dict[str, list] = {}
    for iid, lname, as_of, assets in snaps:
        lists.setdefault(lname, []).append((iid, as_of, set(assets) if assets else None))
    for lname, seq in lists.items():
        state: dict[tuple, dict] = {}
        last_cover: dict[str, object] = {}  # asset -> as-of of the latest snapshot covering it (seen so far)
        for iid, as_of, assets in seq:
            present = by_snap.get(iid, {})
            for ident, st in state.items():
                if ident not in present and (assets is None or ident[0] in assets):
                    if st["open"]:
                        st["periods"].append((st["start"], as_of, st["absent"]))
                        st["open"] = False
                    st["absent"] = as_of
            for ident, info in present.items():
                st = state.get(ident)
                chain, address, uid, entity, ptype, programs, listed = info
                if st is None:
                    st = state[ident] = {"open": False, "periods": [], "first": as_of, "n": 0,
                                         "absent": max((x for x in (last_cover.get("*"), last_cover.get(ident[0]))
                                                         if x is not None), default=None)}
                st["last"] = as_of
                st["n"] += 1
                st["address"], st["chain"] = address, chain
                if entity or st.get("entity") is None:
                    st.update(uid=uid, entity=entity, ptype=ptype, programs=programs)
                if listed is not None:
                    st["listed"] = listed
                if not st["open"]:
                    st["start"], st["open"] = as_of, True
            for a in (assets if assets is not None else {"*"}):
                last_cover[a] = as_of
            if assets is None:
                for a in list(last_cover):
                    last_cover[a] = as_of
        for (asset, k), st in state.items():
            periods = st["periods"] + ([(st["start"], None, st["absent"])] if st["open"] else [])
            for start, end, absent in periods:
                out.append((lname, asset, st["chain"], st["address"], k, st.get("uid"), st.get("entity"),
                            st.get("ptype"), st.get("programs"), st.get("listed"), start, end, st["first"],
                            st["last"], st["n"], absent if absent is not None and absent < start else None))
    con.execute(f"DELETE FROM {SCHEMA}.sanction_periods")
    if out:  # one Arrow insert (executemany is a round trip per row)
        names = ("list_name", "asset", "chain", "address", "addr_key", "uid", "entity", "party_type", "programs",
                 "listed_date", "valid_from", "valid_to", "first_seen", "last_seen", "snapshots", "absent_before")
        types = {"programs": _STR_LIST, "snapshots": pa.int32(),
                 **{c: pa.date32() for c in ("listed_date", "valid_from", "valid_to", "first_seen", "last_seen",
                                             "absent_before")}}
        _insert(con, "sanction_periods", {n: [r[i] for r in out] for i, n in enumerate(names)},
                {n: types.get(n, pa.string()) for n in names})
