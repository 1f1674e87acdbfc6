"""The seam between the intelligence registry and screening: every tagged address of a chain as arrays.

:func:`read_sources` reads the registry once per (chain, registry generation, config) and returns the
illicit / high-risk *sources* (addresses whose category or abuse has a severity in the configuration:
sanctioned addresses, ``service_hack`` / ransomware / scam ... tags, attacker-side incident seeds, mixers
and darknet markets) grouped by ``(category, abuse, entity, actor)``, the *services* (every other tagged
address: exchanges, miners...; exposure stops there, tracing-methods.md §4.2), and the direct facts per
address that answers quote (sanctions listings, tags).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np

from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg
from chaintrace.intel.api import load_tags
from chaintrace.screen.config import RANK, Config
from chaintrace.store.workspace import Workspace

NO_DAY = np.iinfo(np.int32).min
KEPT_FORMAT = 1  # of the kept sources (DATA/screen/sources/): raise when read_sources changes what it returns


def _day(iso: str | None) -> int:
    if not iso:
        return int(NO_DAY)
    return (_dt.date.fromisoformat(str(iso)[:10]) - _dt.date(1970, 1, 1)).days


@dataclass
class Sources:
    chain: str
    generation: int
    at: str
    groups: list[dict]  # {category, abuse, entity, actor, severity}
    keys: list[str]  # address keys of the sources
    key_group: np.ndarray  # int32 per key: its (most severe) group
    key_from: np.ndarray  # int32 per key: valid_from as days since 1970 (NO_DAY: always)
    services: set[str]  # tagged addresses that are not sources (exposure stops there)
    direct: dict[str, dict] = field(default_factory=dict)  # key -> {"sanctions": [...], "hits": [...]}
    n_tags: int = 0


def _in_order(tags: list) -> list:
    """The tags in a stable order: the registry returns its tag rows in scan order, which varies between
    runs of a large registry; they are put in import order (import, line, ...), ahead of the rest (sanctions
    periods, incident seeds: already ordered), so that groups are numbered, and direct hits listed, the
    same way every time and two builds over the same data give the same index."""
    def key(it):
        i, t = it
        e = t.extra or {}
        if "import_id" not in e or "line" not in e:
            return (1, i, -1, "", "", "", "", "", "", "")
        line = e.get("line")
        return (0, int(e.get("import_id") or 0), line if isinstance(line, int) else -1, t.address, t.label or "",
                t.category or "", t.abuse or "", t.source or "", t.actor or "",
                (t.valid_from or "") + "|" + (t.valid_to or ""))

    return [t for _, t in sorted(enumerate(tags), key=key)]


def _cache_file(ws: Workspace | None, chain: str, config: Config, at: str):
    """Where the sources of this registry generation, date and configuration are kept (None: no registry).
    A registry generation is an immutable file: its path, size and time name it with the date and config."""
    import hashlib

    r = reg.as_registry(ws) if ws is not None else None
    if r is None or not isinstance(ws, Workspace):
        return None
    try:
        st = r.file().stat()
    except OSError:
        return None
    key = f"{KEPT_FORMAT}|{r.file().resolve()}|{st.st_size}|{st.st_mtime_ns}|{chain}|{at}|{config.digest}"
    return ws.path / "screen" / "sources" / f"{chain}-g{r.generation}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _load_cached(path, chain: str) -> Sources | None:
    import orjson

    try:
        d = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return Sources(chain=chain, generation=d["generation"], at=d["at"], groups=d["groups"], keys=d["keys"],
                   key_group=np.array(d["key_group"], np.int32), key_from=np.array(d["key_from"], np.int32),
                   services=set(d["services"]), direct=d["direct"], n_tags=d["n_tags"])


def _store_cached(path, s: Sources) -> None:
    """Write atomically (temporary file renamed) and keep the newest few files."""
    import os

    import orjson

    doc = {"generation": s.generation, "at": s.at, "groups": s.groups, "keys": s.keys,
           "key_group": s.key_group.tolist(), "key_from": s.key_from.tolist(), "services": sorted(s.services),
           "direct": s.direct, "n_tags": s.n_tags}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, path)
        olds = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for p in olds[:-6]:
            p.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only workspace: read the registry every time


def read_sources(ws: Workspace | None, chain: str, config: Config, at: str | None = None,
                 cache: bool = True) -> Sources:
    """Sources, services and direct facts of `chain` valid at ISO date `at` (default: today, UTC).

    Kept per registry generation, date and configuration in ``DATA/screen/sources/`` (`cache`): reading
    the whole TagPack collection is most of an index refresh after an ingest."""
    at = at or _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    path = _cache_file(ws, chain, config, at) if cache else None
    if path is not None and path.exists():
        got = _load_cached(path, chain)
        if got is not None:
            return got
    s = _read_sources(ws, chain, config, at)
    if path is not None and path.name.startswith(f"{chain}-g{s.generation}-"):  # no import in between
        _store_cached(path, s)
    return s


def _read_sources(ws: Workspace | None, chain: str, config: Config, at: str) -> Sources:
    gen = reg.generation(ws)
    tags = _in_order(load_tags(ws, chain, at=at))
    gid: dict[tuple, int] = {}
    groups: list[dict] = []
    best: dict[str, tuple[int, int, int]] = {}  # key -> (rank, group, from day)
    labeled: set[str] = set()
    direct: dict[str, dict] = {}
    for t in tags:
        k = addr.key(chain, t.address)
        labeled.add(k)
        e = t.extra or {}
        kind = e.get("kind")
        entity = e.get("entity") if kind == "sanction" else (t.label or None)
        abuse = t.abuse or ("sanction" if kind == "sanction" else None)
        sev = config.severity_of(t.category, abuse, t.actor)
        d = direct.setdefault(k, {"sanctions": [], "hits": []})
        if kind == "sanction":
            d["sanctions"].append({"list": t.source.split(" (")[0] if t.source else "sanctions list",
                                   "entity": e.get("entity"), "programmes": list(e.get("programs") or []),
                                   "listed": e.get("listed_date"), "as_of": e.get("last_seen")})
        d["hits"].append({"category": t.category, "abuse": abuse, "entity": entity, "actor": t.actor,
                          "label": t.label, "source": t.source, "severity": sev, "origin": kind or "tag"})
        if sev is None:
            continue
        g = (t.category, abuse, entity, t.actor)
        if g not in gid:
            gid[g] = len(groups)
            groups.append({"category": t.category, "abuse": abuse, "entity": entity, "actor": t.actor,
                           "severity": sev})
        r = RANK[sev]
        # stolen funds only from the theft on: an incident address before its date is not the attacker's yet
        frm = _day(t.valid_from) if abuse not in ("sanction",) else int(NO_DAY)
        if k not in best or r > best[k][0]:
            best[k] = (r, gid[g], frm)
    keys = sorted(best)
    return Sources(chain=chain, generation=gen, at=at, groups=groups, keys=keys,
                   key_group=np.array([best[k][1] for k in keys], np.int32),
                   key_from=np.array([best[k][2] for k in keys], np.int32),
                   services=labeled - set(best), direct=direct, n_tags=len(tags))
