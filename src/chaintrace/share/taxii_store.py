"""Storage of a TAXII 2.1 server: collections, object versions, status resources (SQLite).

Objects are rows ``(collection, seq, date_added, id, version, type, spec_version, tlp, org, is_last, body)``
indexed by ``(collection, date_added, seq)``: a page of 1,000 objects is one index range scan whatever the
collection's size (``bench/bench_share.py``: 1,000,000 objects). ``next`` tokens are the position after the
page's last row. The same (id, version) added twice is stored once (idempotent POST).
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.share import stix
from chaintrace.share import tlp as tlp_rules
from chaintrace.share.tlp import Collection

REGISTRY_COLLECTION = str(uuid.uuid5(stix.CHAINTRACE_NAMESPACE, "taxii|registry"))
MAX_PAGE = 1000

DDL = """
CREATE TABLE IF NOT EXISTS collections (id TEXT PRIMARY KEY, title TEXT, description TEXT, readers TEXT,
    writers TEXT, max_tlp TEXT, hidden TEXT, kind TEXT);
CREATE TABLE IF NOT EXISTS objects (seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL,
    date_added INTEGER NOT NULL, id TEXT NOT NULL, version TEXT NOT NULL, type TEXT, spec_version TEXT, tlp TEXT,
    org TEXT, is_last INTEGER NOT NULL DEFAULT 1, body TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS objects_version ON objects (collection, id, version);
CREATE INDEX IF NOT EXISTS objects_added ON objects (collection, date_added, seq);
CREATE TABLE IF NOT EXISTS status (id TEXT PRIMARY KEY, body TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


def iso_us(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str, what: str) -> int:
    """A TAXII/STIX timestamp -> microseconds since the epoch (UserError naming the parameter)."""
    try:
        s = text.strip().replace("Z", "+00:00")
        d = dt.datetime.fromisoformat(s)
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        return round(d.timestamp() * 1e6)
    except (ValueError, AttributeError):
        raise UserError(f"{what}: {text!r} is not a timestamp (e.g. 2026-01-01T00:00:00.000Z)") from None


def version_of(obj: dict, date_added_us: int) -> str:
    return obj.get("modified") or obj.get("created") or iso_us(date_added_us)


def _token(date_added: int, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{date_added}:{seq}".encode()).decode().rstrip("=")


def _untoken(tok: str) -> tuple[int, int]:
    try:
        a, b = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)).decode().split(":")
        return int(a), int(b)
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"next: {tok!r} is not a token this server gave") from None


class TaxiiStore:
    """A TAXII store in one SQLite file (thread-safe: one connection per thread, WAL)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._last_us = 0
        con = self.con
        con.executescript(DDL)
        con.commit()

    @property
    def con(self) -> sqlite3.Connection:
        c = getattr(self._local, "con", None)
        if c is None:
            c = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            self._local.con = c
        return c

    def _now_us(self) -> int:
        with self._lock:
            now = time.time_ns() // 1000
            self._last_us = max(now, self._last_us + 1)
            return self._last_us

    # -------------------------------------------------------------- collections

    def put_collection(self, c: Collection) -> Collection:
        if c.max_tlp not in tlp_rules.RANK:
            raise UserError(f"--max-tlp: {c.max_tlp!r} is not a TLP level (clear, green, amber, amber+strict, red)")
        self.con.execute("INSERT OR REPLACE INTO collections VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (c.id, c.title, c.description, json.dumps(sorted(c.readers)), json.dumps(sorted(c.writers)),
                          c.max_tlp, json.dumps(sorted(c.hidden)), c.kind))
        self.con.commit()
        return c

    def ensure_registry_collection(self) -> Collection:
        c = self.collection(REGISTRY_COLLECTION)
        if c is None:
            c = self.put_collection(Collection(
                id=REGISTRY_COLLECTION, title="chaintrace shareable registry",
                description="Sanctions addresses, the DPRK incident catalogue and its actors, and shareable "
                            "imported intelligence (read-only; refreshed when the registry changes).",
                readers=frozenset({tlp_rules.ANY}), writers=frozenset(), max_tlp="green", kind="registry"))
        return c

    def collections(self) -> list[Collection]:
        return [self._coll(r) for r in self.con.execute("SELECT * FROM collections ORDER BY title, id").fetchall()]

    def collection(self, cid: str) -> Collection | None:
        r = self.con.execute("SELECT * FROM collections WHERE id = ?", (cid,)).fetchone()
        return self._coll(r) if r else None

    @staticmethod
    def _coll(r) -> Collection:
        return Collection(id=r[0], title=r[1], description=r[2] or "", readers=frozenset(json.loads(r[3])),
                          writers=frozenset(json.loads(r[4])), max_tlp=r[5], hidden=frozenset(json.loads(r[6])),
                          kind=r[7])

    def meta(self, key: str) -> str | None:
        r = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
        self.con.commit()

    # ------------------------------------------------------------------ writing

    def add_objects(self, cid: str, objects: list[dict], org: str, *, check=None) -> dict:
        """Add objects (one date_added for the request); returns a TAXII status resource (stored).
        `check(obj) -> Decision` may refuse single objects (TLP rules): they are listed as failures."""
        now = self._now_us()
        successes, failures = [], []
        rows = []
        seen = set()
        for o in objects:
            oid = o.get("id") if isinstance(o, dict) else None
            if not oid or "--" not in oid or not o.get("type"):
                failures.append({"id": str(oid), "message": "not a STIX object (no type/id)"})
                continue
            ver = version_of(o, now)
            if check is not None:
                d = check(o)
                if not d.allowed:
                    failures.append({"id": oid, "version": ver, "message": d.reason})
                    continue
            if (oid, ver) in seen:
                continue
            seen.add((oid, ver))
            rows.append((cid, now, oid, ver, o["type"], o.get("spec_version", "2.1"), tlp_rules.tlp_of(o), org,
                         json.dumps(o, separators=(",", ":"), ensure_ascii=False)))
        con = self.con
        known = self._known_unversioned(cid, rows)
        rows = [r for r in rows if r[2] not in known]
        with self._lock:
            con.execute("BEGIN")
            try:
                before = con.total_changes
                con.executemany("INSERT OR IGNORE INTO objects (collection, date_added, id, version, type, "
                                "spec_version, tlp, org, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                added = con.total_changes - before
                if added:
                    con.execute("UPDATE objects SET is_last = 0 WHERE collection = ? AND date_added = ? AND "
                                "EXISTS (SELECT 1 FROM objects o2 WHERE o2.collection = objects.collection AND "
                                "o2.id = objects.id AND o2.version > objects.version)", (cid, now))
                    con.execute("UPDATE objects SET is_last = 0 WHERE collection = ? AND is_last = 1 AND "
                                "date_added < ? AND id IN (SELECT id FROM objects WHERE collection = ? AND "
                                "date_added = ?) AND EXISTS (SELECT 1 FROM objects o2 WHERE o2.collection = "
                                "objects.collection AND o2.id = objects.id AND o2.version > objects.version)",
                                (cid, now, cid, now))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        for _, _, oid, ver, *_ in rows:
            successes.append({"id": oid, "version": ver})
        for oid in sorted(known):
            successes.append({"id": oid, "message": "already present"})
        st = {"id": str(uuid.uuid4()), "status": "complete", "request_timestamp": iso_us(now),
              "total_count": len(objects), "success_count": len(successes), "successes": successes,
              "failure_count": len(failures), "failures": failures, "pending_count": 0, "pendings": []}
        con.execute("INSERT INTO status VALUES (?, ?)", (st["id"], json.dumps(st)))
        con.commit()
        return st

    def bulk_load(self, cid: str, objects, org: str, batch: int = 50_000) -> int:
        """Fast load for large collections (benchmarks, registry publication): rows in batches."""
        try:
            from orjson import dumps as _dumps

            def enc(o):
                return _dumps(o).decode()
        except ImportError:
            def enc(o):
                return json.dumps(o, separators=(",", ":"), ensure_ascii=False)
        n = 0
        buf: list[tuple] = []
        for o in objects:
            now = self._now_us()
            buf.append((cid, now, o["id"], version_of(o, now), o["type"], o.get("spec_version", "2.1"),
                        tlp_rules.tlp_of(o), org, enc(o)))
            if len(buf) >= batch:
                n += self._flush(buf)
        return n + self._flush(buf)

    def _known_unversioned(self, cid: str, rows: list) -> set[str]:
        """Ids among `rows` of objects without created/modified (SCOs) already in the collection: their
        version is their first date_added, so adding them again must not make a new version."""
        ids = [r[2] for r in rows if '"modified"' not in r[-1] and '"created"' not in r[-1]]
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out |= {x for (x,) in self.con.execute(
                f"SELECT DISTINCT id FROM objects WHERE collection = ? AND id IN ({','.join('?' * len(chunk))})",
                [cid, *chunk]).fetchall()}
        return out

    def _flush(self, buf: list) -> int:
        if not buf:
            return 0
        known = self._known_unversioned(buf[0][0], buf)
        if known:
            buf[:] = [r for r in buf if r[2] not in known]
        con = self.con
        before = con.total_changes
        con.executemany("INSERT OR IGNORE INTO objects (collection, date_added, id, version, type, spec_version, "
                        "tlp, org, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", buf)
        con.commit()
        buf.clear()
        return con.total_changes - before

    def status(self, sid: str) -> dict | None:
        r = self.con.execute("SELECT body FROM status WHERE id = ?", (sid,)).fetchone()
        return json.loads(r[0]) if r else None

    def delete_object(self, cid: str, oid: str) -> int:
        n = self.con.execute("DELETE FROM objects WHERE collection = ? AND id = ?", (cid, oid)).rowcount
        self.con.commit()
        return n

    # ------------------------------------------------------------------ reading

    def page(self, cid: str, *, limit: int = MAX_PAGE, next_token: str | None = None, added_after: str | None = None,
             ids=None, types=None, versions=None, spec_versions=None, object_id: str | None = None) -> dict:
        """One page of rows: ``{"rows": [(seq, date_added, id, version, type, tlp, org, body)], "more",
        "next"}`` in date_added order. `versions`: None/['last'] (default), ['first'], ['all'] or timestamps."""
        limit = max(1, min(int(limit), MAX_PAGE))
        sql = ("SELECT seq, date_added, id, version, type, tlp, org, body FROM objects o WHERE collection = ?")
        args: list = [cid]
        if next_token:
            da, seq = _untoken(next_token)
            sql += " AND (date_added, seq) > (?, ?)"  # a row-value range: one index seek
            args += [da, seq]
        if added_after:
            sql += " AND date_added > ?"
            args.append(parse_ts(added_after, "added_after"))
        if object_id:
            ids = [object_id]
        if ids:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            args += list(ids)
        if types:
            sql += f" AND type IN ({','.join('?' * len(types))})"
            args += list(types)
        if spec_versions:
            sql += f" AND spec_version IN ({','.join('?' * len(spec_versions))})"
            args += list(spec_versions)
        versions = list(versions or ["last"])
        if "all" not in versions:
            conds = []
            for v in versions:
                if v == "last":
                    conds.append("is_last = 1")
                elif v == "first":
                    conds.append("version = (SELECT min(version) FROM objects o2 WHERE o2.collection = o.collection "
                                 "AND o2.id = o.id)")
                else:
                    parse_ts(v, "match[version]")
                    conds.append("version = ?")
                    args.append(v)
            sql += " AND (" + " OR ".join(conds) + ")"
        sql += " ORDER BY date_added, seq LIMIT ?"
        args.append(limit + 1)
        rows = self.con.execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return {"rows": rows, "more": more, "next": _token(rows[-1][1], rows[-1][0]) if more else None}

    def count(self, cid: str) -> int:
        return self.con.execute("SELECT count(*) FROM objects WHERE collection = ?", (cid,)).fetchone()[0]

    # ------------------------------------------------------- registry publication

    def publish_registry(self, ws, org: str, producer: str = "chaintrace") -> dict:
        """Load the shareable registry (see :func:`chaintrace.share.build_bundle`) into the registry
        collection when the registry changed since the last publication; unchanged objects stay as they are."""
        from chaintrace.intel import registry as reg
        from chaintrace.share.export import build_bundle

        self.ensure_registry_collection()
        gen = str(reg.generation(ws)) if ws is not None else "none"
        if self.meta("registry_generation") == gen:
            return {"published": False, "generation": gen}
        bundle, summary = build_bundle(ws, producer=producer)
        n = self.bulk_load(REGISTRY_COLLECTION, bundle["objects"], org)
        self.set_meta("registry_generation", gen)
        return {"published": True, "generation": gen, "added": n, "objects": summary["objects"]}
