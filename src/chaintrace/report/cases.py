"""A minimal case store: cases with their addresses and an append-only audit trail.

One SQLite file per workspace (``<data>/cases/cases.sqlite``). ``audit`` rows are never updated or
deleted (SQLite triggers refuse it); every action on a case (opened, note, status) appends one row with the
time, the analyst and the details. The reports issue builds on this store.
"""
from __future__ import annotations

import datetime as _dt
import getpass
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaintrace.errors import ChaintraceError, UserError
from chaintrace.store.workspace import Workspace

STATUSES = ("open", "investigating", "closed")
DDL = [
    """CREATE TABLE IF NOT EXISTS cases (id TEXT PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL,
       created_at TEXT NOT NULL, origin TEXT, addresses TEXT, txids TEXT, detail TEXT)""",
    """CREATE TABLE IF NOT EXISTS audit (case_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,
       analyst TEXT, action TEXT NOT NULL, detail TEXT, PRIMARY KEY (case_id, seq))""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
]


def cases_path(ws: Workspace) -> Path:
    return Path(ws.path) / "cases" / "cases.sqlite"


@contextmanager
def _db(ws: Workspace) -> Iterator[sqlite3.Connection]:
    p = cases_path(ws)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=30)
    try:
        for s in DDL:
            con.execute(s)
        yield con
        con.commit()
    finally:
        con.close()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def _who(analyst: str | None) -> str:
    if analyst:
        return analyst
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _append(con, case_id: str, action: str, analyst: str | None, detail: dict | None) -> None:
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM audit WHERE case_id = ?", [case_id]).fetchone()[0]
    con.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)",
                [case_id, seq, _now(), _who(analyst), action, json.dumps(detail or {}, ensure_ascii=False)])


def new(ws: Workspace, title: str, *, addresses: list | None = None, txids: list | None = None,
        origin: dict | None = None, detail: dict | None = None, analyst: str | None = None) -> dict:
    """Open a case. ``addresses``: strings or ``{"chain", "address"}``."""
    if not title or not title.strip():
        raise UserError("--title is required")
    cid = "case-" + _dt.date.today().strftime("%Y%m%d") + "-" + secrets.token_hex(3)
    addrs = [a if isinstance(a, dict) else {"chain": None, "address": a} for a in (addresses or [])]
    with _db(ws) as con:
        con.execute("INSERT INTO cases VALUES (?, ?, 'open', ?, ?, ?, ?, ?)",
                    [cid, title.strip(), _now(), json.dumps(origin or {}), json.dumps(addrs),
                     json.dumps(txids or []), json.dumps(detail or {}, ensure_ascii=False, default=str)])
        _append(con, cid, "opened", analyst, {"title": title.strip(), "origin": origin or {},
                                              "addresses": len(addrs), "txids": len(txids or [])})
    return get(ws, cid)


def _row(r) -> dict:
    return {"id": r[0], "title": r[1], "status": r[2], "created_at": r[3], "origin": json.loads(r[4] or "{}"),
            "addresses": json.loads(r[5] or "[]"), "txids": json.loads(r[6] or "[]"),
            "detail": json.loads(r[7] or "{}")}


def get(ws: Workspace, case_id: str) -> dict:
    with _db(ws) as con:
        r = con.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone()
        if r is None:
            raise UserError(f"no case {case_id!r} in {cases_path(ws)} (see `chaintrace case list`)")
        audit = con.execute("SELECT seq, at, analyst, action, detail FROM audit WHERE case_id = ? ORDER BY seq",
                            [case_id]).fetchall()
    return _row(r) | {"audit": [{"seq": s, "at": at, "analyst": a, "action": act, "detail": json.loads(d)}
                                for s, at, a, act, d in audit]}


def list_cases(ws: Workspace, status: str | None = None) -> list[dict]:
    if status is not None and status not in STATUSES:
        raise UserError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    if not cases_path(ws).exists():
        return []
    with _db(ws) as con:
        rows = con.execute("SELECT * FROM cases" + (" WHERE status = ?" if status else "") + " ORDER BY created_at, id",
                           [status] if status else []).fetchall()
    return [_row(r) for r in rows]


def note(ws: Workspace, case_id: str, text: str, analyst: str | None = None) -> dict:
    get(ws, case_id)
    with _db(ws) as con:
        _append(con, case_id, "note", analyst, {"text": text})
    return get(ws, case_id)


def set_status(ws: Workspace, case_id: str, status: str, analyst: str | None = None) -> dict:
    if status not in STATUSES:
        raise UserError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    old = get(ws, case_id)["status"]
    with _db(ws) as con:
        con.execute("UPDATE cases SET status = ? WHERE id = ?", [status, case_id])
        _append(con, case_id, "status", analyst, {"from": old, "to": status})
    return get(ws, case_id)


def attach_trace(ws: Workspace, case_id: str, path: str | Path, analyst: str | None = None) -> dict:
    """Keep a copy of the trace report JSON at `path` in the case (``cases/<id>/traces/<sha256>.json``) and
    append an audited ``trace`` action with its SHA-256, chain, policy, limits and data coverage."""
    import hashlib

    from chaintrace.trace.report import TraceReport

    get(ws, case_id)
    try:
        data = Path(path).read_bytes()
        rep = TraceReport.from_dict(json.loads(data))
    except OSError as e:
        raise UserError(f"--trace {path}: {e.strerror}") from None
    except (ChaintraceError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--trace {path}: not a chaintrace trace report ({e})") from None
    digest = hashlib.sha256(data).hexdigest()
    dest = cases_path(ws).parent / case_id / "traces" / f"{digest[:16]}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    cov = rep.coverage or {}
    with _db(ws) as con:
        _append(con, case_id, "trace", analyst, {
            "file": str(dest.relative_to(cases_path(ws).parent)), "source": str(path), "sha256": digest,
            "chain": rep.chain, "policy": rep.policy, "limits": rep.limits, "seeds": [s.spec for s in rep.seeds],
            "data": {"heights": cov.get("heights"), "times": cov.get("times"), "sources": cov.get("sources")}})
    return get(ws, case_id)


def case_traces(ws: Workspace, case: dict) -> list[Path]:
    """The trace reports attached to `case` (from its audit trail), oldest first."""
    root = cases_path(ws).parent
    return [root / a["detail"]["file"] for a in case["audit"] if a["action"] == "trace"]
