"""Cases: what an investigation holds, with an append-only, hash-chained audit trail of analyst actions.

Library of ``chaintrace case ...`` (and of the web UI's case view). One SQLite file per workspace
(``<data>/cases/cases.sqlite``) and one folder per case (``<data>/cases/<CASE>/``) for the files it keeps:
``traces/`` (trace reports), ``screens/`` (screening results) and ``exhibits/`` (any file), each stored under
its SHA-256.

A case holds seeds (addresses and transactions), traces (with their parameters and data version), screening
results, notes, exhibits and its audit trail. Every action appends one audit entry ``{seq, at, analyst,
action, detail, prev, hash}``: ``hash`` is the SHA-256 of the entry's fields and ``prev``, the hash of the
entry before it, and the case row keeps the hash of the last entry (``head``). SQLite triggers refuse UPDATE
and DELETE on the trail; an edit or deletion made around them (another tool, a restored file) breaks the chain
and :func:`verify` names the entry. The state of the case (traces, screens, notes, exhibits) is read from the
trail, so what is verified is what the case shows.

Writes are all-or-nothing: a file is streamed to a temporary name in its folder, hashed, flushed and renamed;
only then is its audit entry written, in one SQLite transaction (``BEGIN IMMEDIATE``: concurrent writers wait
for each other). An interrupted write leaves no entry and no file under a final name.

The analyst of an action is ``analyst=`` (CLI ``--analyst``), else ``$CHAINTRACE_ANALYST``, else the OS user;
how it was known is recorded (``detail["analyst_from"]``).

>>> c = new(ws, "Ronin bridge outflows", addresses=["0x098b716b8aaf21512996dc57eb0615e2383e2f96"])  # doctest: +SKIP
>>> attach_trace(ws, c["id"], "ronin.json"); note(ws, c["id"], "exchange asked to freeze")       # doctest: +SKIP
>>> verify(ws, c["id"])["ok"]                                                                    # doctest: +SKIP
True
"""
from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaintrace.errors import ChaintraceError, UserError
from chaintrace.store.workspace import Workspace

STATUSES = ("open", "investigating", "closed")
ENV_ANALYST = "CHAINTRACE_ANALYST"
GENESIS = "0" * 64
KINDS = ("traces", "screens", "exhibits")
DDL = [
    """CREATE TABLE IF NOT EXISTS cases (id TEXT PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL,
       created_at TEXT NOT NULL, origin TEXT, addresses TEXT, txids TEXT, detail TEXT, head TEXT)""",
    """CREATE TABLE IF NOT EXISTS audit (case_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,
       analyst TEXT, action TEXT NOT NULL, detail TEXT, prev TEXT, hash TEXT, PRIMARY KEY (case_id, seq))""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
]
_HEX64 = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")


def cases_path(ws: Workspace) -> Path:
    return Path(ws.path) / "cases" / "cases.sqlite"


def case_dir(ws: Workspace, case_id: str) -> Path:
    """The folder of the files a case keeps (``traces/``, ``screens/``, ``exhibits/``)."""
    return cases_path(ws).parent / case_id


def _migrate(con: sqlite3.Connection) -> None:
    """Add the hash-chain columns to a store made by an older chaintrace (its entries stay unchained)."""
    for table, cols in (("cases", ("head",)), ("audit", ("prev", "hash"))):
        have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
        for c in cols:
            if c not in have:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {c} TEXT")


@contextmanager
def _db(ws: Workspace) -> Iterator[sqlite3.Connection]:
    """One transaction on the case store: ``BEGIN IMMEDIATE`` (writers queue), COMMIT, or ROLLBACK on any
    exception (KeyboardInterrupt included): nothing half-written."""
    p = cases_path(ws)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=60, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            for s in DDL:
                con.execute(s)
            _migrate(con)
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def identify(analyst: str | None = None) -> tuple[str, str]:
    """(analyst name, how it is known): ``option`` (given), ``env`` ($CHAINTRACE_ANALYST), ``os-user``."""
    if analyst and analyst.strip():
        return analyst.strip(), "option"
    env = (os.environ.get(ENV_ANALYST) or "").strip()
    if env:
        return env, "env"
    try:
        return getpass.getuser(), "os-user"
    except (OSError, KeyError):
        return "unknown", "unknown"


def entry_hash(case_id: str, seq: int, at: str, analyst: str | None, action: str, detail: str, prev: str) -> str:
    """SHA-256 of one audit entry (``detail`` as stored: its JSON text) chained to the previous hash."""
    body = json.dumps([case_id, seq, at, analyst, action, detail, prev], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _append(con, case_id: str, action: str, analyst: str | None, detail: dict | None) -> dict:
    who, how = identify(analyst)
    last = con.execute("SELECT seq, hash FROM audit WHERE case_id = ? ORDER BY seq DESC LIMIT 1", [case_id]).fetchone()
    seq, prev = (last[0] + 1, last[1] or GENESIS) if last else (1, GENESIS)
    at = _now()
    text = json.dumps((detail or {}) | {"analyst_from": how}, ensure_ascii=False, default=str)
    h = entry_hash(case_id, seq, at, who, action, text, prev)
    con.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [case_id, seq, at, who, action, text, prev, h])
    con.execute("UPDATE cases SET head = ? WHERE id = ?", [h, case_id])
    return {"seq": seq, "at": at, "analyst": who, "action": action, "detail": json.loads(text), "prev": prev, "hash": h}


def new(ws: Workspace, title: str, *, addresses: list | None = None, txids: list | None = None,
        origin: dict | None = None, detail: dict | None = None, analyst: str | None = None,
        case_id: str | None = None) -> dict:
    """Open a case. ``addresses``: strings or ``{"chain", "address"}``; ``txids``: transaction ids; `case_id`:
    the case's id (letters, digits, ``.``, ``_``, ``-``; e.g. the agency's case number) [default:
    ``case-YYYYMMDD-xxxxxx``]."""
    if not title or not title.strip():
        raise UserError("--title is required")
    if case_id is not None and not _ID.fullmatch(case_id):
        raise UserError(f"--id {case_id!r}: use 3 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
                        "digit")
    cid = case_id or "case-" + _dt.date.today().strftime("%Y%m%d") + "-" + secrets.token_hex(3)
    addrs = [a if isinstance(a, dict) else {"chain": None, "address": a} for a in (addresses or [])]
    with _db(ws) as con:
        if con.execute("SELECT 1 FROM cases WHERE id = ?", [cid]).fetchone():
            raise UserError(f"--id {cid}: a case with this id exists already")
        con.execute("INSERT INTO cases VALUES (?, ?, 'open', ?, ?, ?, ?, ?, NULL)",
                    [cid, title.strip(), _now(), json.dumps(origin or {}), json.dumps(addrs),
                     json.dumps(txids or []), json.dumps(detail or {}, ensure_ascii=False, default=str)])
        _append(con, cid, "opened", analyst, {"title": title.strip(), "origin": origin or {},
                                              "addresses": [a["address"] for a in addrs], "txids": txids or []})
    return get(ws, cid)


def _audit_rows(con, case_id: str) -> list[dict]:
    rows = con.execute("SELECT seq, at, analyst, action, detail, prev, hash FROM audit WHERE case_id = ? ORDER BY seq",
                       [case_id]).fetchall()
    return [{"seq": s, "at": at, "analyst": a, "action": act, "detail": json.loads(d or "{}"), "prev": p, "hash": h,
             "_text": d} for s, at, a, act, d, p, h in rows]


def _state(case: dict) -> dict:
    """What the case holds, read from its audit trail."""
    def files(action: str) -> list[dict]:
        return [a["detail"] | {"seq": a["seq"], "at": a["at"], "analyst": a["analyst"]}
                for a in case["audit"] if a["action"] == action]
    return {"traces": files("trace"), "screens": files("screen"), "exhibits": files("exhibit"),
            "notes": [{"seq": a["seq"], "at": a["at"], "analyst": a["analyst"], "text": a["detail"].get("text", "")}
                      for a in case["audit"] if a["action"] == "note"],
            "analysts": sorted({a["analyst"] for a in case["audit"] if a["analyst"]})}


def get(ws: Workspace, case_id: str) -> dict:
    """The case: ``{id, title, status, created_at, origin, addresses, txids, detail, head, audit, traces,
    screens, exhibits, notes, analysts}`` (``audit`` oldest first; file entries carry ``file`` (relative to
    ``<data>/cases/``), ``sha256`` and ``bytes``)."""
    if not cases_path(ws).exists():
        raise UserError(f"no case {case_id!r}: no case store at {cases_path(ws)} (chaintrace case new --title ...)")
    with _db(ws) as con:
        r = con.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone()
        if r is None:
            raise UserError(f"no case {case_id!r} in {cases_path(ws)} (see `chaintrace case list`)")
        audit = _audit_rows(con, case_id)
    for a in audit:
        a.pop("_text")
    c = _row(r) | {"audit": audit}
    return c | _state(c)


def _row(r) -> dict:
    return {"id": r[0], "title": r[1], "status": r[2], "created_at": r[3], "origin": json.loads(r[4] or "{}"),
            "addresses": json.loads(r[5] or "[]"), "txids": json.loads(r[6] or "[]"),
            "detail": json.loads(r[7] or "{}"), "head": r[8]}


def list_cases(ws: Workspace, status: str | None = None) -> list[dict]:
    """Every case (without its audit trail), oldest first; `status` filters."""
    if status is not None and status not in STATUSES:
        raise UserError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    if not cases_path(ws).exists():
        return []
    with _db(ws) as con:
        rows = con.execute("SELECT * FROM cases" + (" WHERE status = ?" if status else "") + " ORDER BY created_at, id",
                           [status] if status else []).fetchall()
        counts = dict(con.execute("SELECT case_id, count(*) FROM audit GROUP BY case_id").fetchall())
    return [_row(r) | {"entries": counts.get(r[0], 0)} for r in rows]


def _check_case(con, case_id: str) -> None:
    if con.execute("SELECT 1 FROM cases WHERE id = ?", [case_id]).fetchone() is None:
        raise UserError(f"no case {case_id!r} in the case store (see `chaintrace case list`)")


def note(ws: Workspace, case_id: str, text: str, analyst: str | None = None) -> dict:
    """Append a note to the case; returns the case."""
    if not text or not text.strip():
        raise UserError("the note is empty")
    with _db(ws) as con:
        _check_case(con, case_id)
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


def add_seeds(ws: Workspace, case_id: str, seeds: list[str], chain: str | None = None,
              analyst: str | None = None) -> dict:
    """Add seeds: a 64-hex-digit string (``0x`` optional, ``:vout`` allowed) is a transaction, anything else an
    address. Seeds the case has already are skipped; returns the case."""
    seeds = [s.strip() for s in seeds if s and s.strip()]
    if not seeds:
        raise UserError("no seed given (--seed ADDRESS|TXID)")
    with _db(ws) as con:
        _check_case(con, case_id)
        addrs, txids = (json.loads(x or "[]") for x in
                        con.execute("SELECT addresses, txids FROM cases WHERE id = ?", [case_id]).fetchone())
        have = {a["address"].lower() for a in addrs} | {t.lower() for t in txids}
        added_a, added_t = [], []
        for s in seeds:
            if s.lower() in have:
                continue
            have.add(s.lower())
            if _HEX64.fullmatch(s.split(":")[0]):
                added_t.append(s)
            else:
                added_a.append({"chain": chain, "address": s})
        if added_a or added_t:
            con.execute("UPDATE cases SET addresses = ?, txids = ? WHERE id = ?",
                        [json.dumps(addrs + added_a), json.dumps(txids + added_t), case_id])
            _append(con, case_id, "seed", analyst, {"addresses": [a["address"] for a in added_a], "txids": added_t,
                                                   "chain": chain})
    return get(ws, case_id)


# ---------------------------------------------------------------------------------------------- files


def _safe_name(name: str) -> str:
    n = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._") or "file"
    return n[:80]


def store_file(folder: Path, src: Path | bytes, name: str, *, chunk: int = 1 << 20) -> tuple[Path, str, int, bool]:
    """Copy `src` (a path or bytes) into `folder` as ``<sha256[:16]>-<name>`` (or ``<sha256[:16]>.json`` for a
    ``*.json`` name), all or nothing: streamed to a temporary file (``.tmp-*``) while hashing, flushed to disk,
    then renamed. Returns (final path, SHA-256, bytes, whether the file is new). On an error or interruption the
    temporary file is removed (a killed process can leave one; it is never under a final name)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".tmp-{secrets.token_hex(6)}"
    h, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            if isinstance(src, bytes):
                h.update(src)
                out.write(src)
                size = len(src)
            else:
                with open(src, "rb") as fh:
                    while block := fh.read(chunk):
                        h.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        final = folder / (f"{digest[:16]}.json" if name == "*.json" else f"{digest[:16]}-{_safe_name(name)}")
        fresh = not final.exists()
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final, digest, size, fresh


def _read(path: str | Path, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"{option} {path}: {e.strerror or e}") from None


def _keep(ws: Workspace, case_id: str, kind: str, src: Path | bytes, name: str, action: str, detail: dict,
          analyst: str | None) -> dict:
    get(ws, case_id)
    root = cases_path(ws).parent
    final, digest, size, fresh = store_file(case_dir(ws, case_id) / kind, src, name)
    try:
        with _db(ws) as con:
            _check_case(con, case_id)
            e = _append(con, case_id, action, analyst, {"file": final.relative_to(root).as_posix(), "sha256": digest,
                                                        "bytes": size} | detail)
    except BaseException:
        if fresh:  # no entry was written: the file is not part of the case
            final.unlink(missing_ok=True)
        raise
    return e


def attach_trace(ws: Workspace, case_id: str, path: str | Path, analyst: str | None = None) -> dict:
    """Keep a copy of the trace report JSON at `path` in the case (``<CASE>/traces/<sha256[:16]>.json``) and
    append a ``trace`` entry with its SHA-256, parameters (chain, policy, limits, seeds, tag files) and data
    version (report schema, store commit, block/height and date range, sources). Returns the case."""
    from chaintrace.trace.report import TraceReport

    data = _read(path, "--trace")
    try:
        rep = TraceReport.from_dict(json.loads(data))
    except (ChaintraceError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(f"--trace {path}: not a chaintrace trace report ({e})") from None
    cov = rep.coverage or {}
    _keep(ws, case_id, "traces", data, "*.json", "trace", {
        "source": str(path), "chain": rep.chain, "network": rep.network, "policy": rep.policy, "limits": rep.limits,
        "seeds": [s.spec for s in rep.seeds], "tag_files": (rep.tags or {}).get("files", []),
        "data": {"schema": rep.schema, "store_commit": rep.stats.get("store_commit"), "heights": cov.get("heights"),
                 "times": cov.get("times"), "sources": cov.get("sources"), "partial_seed": cov.get("partial_seed")},
        "totals": {k: str(v) for k, v in rep.totals(rep.asset).items()}, "asset": rep.asset}, analyst)
    return get(ws, case_id)


def run_trace(ws: Workspace, case_id: str, *, chain: str = "btc", policy: str = "haircut",
              analyst: str | None = None, **limits) -> dict:
    """Trace the case's seeds now (:func:`chaintrace.trace.trace` with `chain`, `policy` and `limits`, e.g.
    ``min_value``, ``max_hops``, ``tags``) and keep the report in the case like :func:`attach_trace`."""
    from chaintrace.trace import trace

    c = get(ws, case_id)
    seeds = [a["address"] for a in c["addresses"] if a.get("chain") in (None, chain)] + list(c["txids"])
    if not seeds:
        raise UserError(f"case {case_id} has no seed to trace (chaintrace case add {case_id} --seed ...)")
    rep = trace(ws, seeds, chain=chain, policy=policy, **limits)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="chaintrace-case-") as tmp:
        p = rep.write_json(Path(tmp) / "trace.json")
        return attach_trace(ws, case_id, p, analyst=analyst)


def _screen_summary(ans: dict) -> dict:
    rows = ans.get("results") or []
    return {"subjects": [r.get("subject") for r in rows][:50], "risks": {r.get("subject"): r.get("risk") for r in rows[:50]},
            "data_version": ans.get("data_version") or {}}


def attach_screen(ws: Workspace, case_id: str, path: str | Path, analyst: str | None = None) -> dict:
    """Keep a screening result (``chaintrace screen address|transfer ... --format json``) in the case
    (``<CASE>/screens/``) with a ``screen`` entry: its SHA-256, subjects, risk of each, data version."""
    data = _read(path, "--screen")
    try:
        ans = json.loads(data)
        if not isinstance(ans, dict) or not isinstance(ans.get("results"), list):
            raise ValueError('no "results" list')
    except ValueError as e:
        raise UserError(f"--screen {path}: not a chaintrace screening result in JSON ({e}); make one with "
                        "chaintrace screen address ... --format json") from None
    _keep(ws, case_id, "screens", data, "*.json", "screen", {"source": str(path), "ran": False}
          | _screen_summary(ans), analyst)
    return get(ws, case_id)


def run_screen(ws: Workspace, case_id: str, addresses: list[str], analyst: str | None = None,
               config_path: str | None = None) -> dict:
    """Screen `addresses` now (:func:`chaintrace.screen.screen_addresses`) and keep the result in the case."""
    from chaintrace.screen import load_config, screen_addresses

    if not addresses:
        raise UserError("no address to screen")
    get(ws, case_id)
    ans = screen_addresses(ws, list(addresses), config=load_config(config_path))
    data = json.dumps(ans, ensure_ascii=False, indent=1, default=str).encode()
    _keep(ws, case_id, "screens", data, "*.json", "screen", {"source": None, "ran": True} | _screen_summary(ans),
          analyst)
    return get(ws, case_id)


def add_exhibit(ws: Workspace, case_id: str, path: str | Path, description: str | None = None,
                analyst: str | None = None) -> dict:
    """Copy a file into the case (``<CASE>/exhibits/<sha256[:16]>-<name>``) with an ``exhibit`` entry: its
    original name, SHA-256, size and `description`."""
    p = Path(path)
    if not p.exists() or p.is_dir():
        raise UserError(f"--exhibit {path}: no such file")
    try:
        _keep(ws, case_id, "exhibits", p, p.name, "exhibit", {"name": p.name, "description": description or ""},
              analyst)
    except PermissionError as e:
        raise UserError(f"--exhibit {path}: {e.strerror}") from None
    return get(ws, case_id)


def case_traces(ws: Workspace, case: dict) -> list[Path]:
    """The trace reports attached to `case` (from its audit trail), oldest first."""
    root = cases_path(ws).parent
    return [root / a["detail"]["file"] for a in case["audit"] if a["action"] == "trace"]


def case_screens(ws: Workspace, case: dict) -> list[dict]:
    """The screening results kept in `case`, oldest first: ``{seq, at, analyst, ran, file, sha256, answer}``."""
    root = cases_path(ws).parent
    out = []
    for s in case.get("screens") or []:
        try:
            ans = json.loads((root / s["file"]).read_text("utf-8"))
        except (OSError, ValueError):
            ans = None
        out.append(s | {"answer": ans})
    return out


# -------------------------------------------------------------------------------------------- verify


def verify_chain(case_id: str, audit: list[dict], head: str | None) -> list[str]:
    """Problems of an audit trail (entries oldest first, each with its stored ``detail`` JSON text in ``_text``
    or its ``detail`` dict): a changed entry, a missing or reordered one, a head that is not the last hash."""
    problems: list[str] = []
    prev = GENESIS
    for i, a in enumerate(audit, 1):
        if a["seq"] != i:
            problems.append(f"entry {i} is missing (the next entry is #{a['seq']}): an entry was deleted")
            break
        if a.get("hash") is None:
            problems.append(f"entry #{a['seq']} has no hash (written before the hash chain; unverifiable)")
            prev = GENESIS
            continue
        text = a["_text"] if "_text" in a else json.dumps(a["detail"], ensure_ascii=False, default=str)
        if a["prev"] != prev:
            problems.append(f"entry #{a['seq']} does not follow #{a['seq'] - 1} (prev hash differs): an earlier "
                            "entry was changed or removed")
        if entry_hash(case_id, a["seq"], a["at"], a["analyst"], a["action"], text, a["prev"]) != a["hash"]:
            problems.append(f"entry #{a['seq']} ({a['action']}, {a['at']}) was changed after it was written")
        prev = a["hash"]
    if audit and head is not None and audit[-1].get("hash") and head != audit[-1]["hash"]:
        problems.append(f"the last entry #{audit[-1]['seq']} is not the case's head: later entries were deleted")
    if not audit:
        problems.append("the audit trail is empty")
    return problems


def verify(ws: Workspace, case_id: str) -> dict:
    """Check a case: its audit chain (every entry's hash, the links, the head) and every file it keeps
    (present, SHA-256 as recorded). ``{"case", "ok", "entries", "head", "files", "problems": [...]}``."""
    get(ws, case_id)
    with _db(ws) as con:
        audit = _audit_rows(con, case_id)
        head = con.execute("SELECT head FROM cases WHERE id = ?", [case_id]).fetchone()[0]
    problems = verify_chain(case_id, audit, head)
    root = cases_path(ws).parent
    nfiles = 0
    for a in audit:
        f, want = a["detail"].get("file"), a["detail"].get("sha256")
        if not f or not want:
            continue
        nfiles += 1
        p = root / f
        if not p.is_file():
            problems.append(f"entry #{a['seq']}: file {f} is missing")
        elif _sha256_file(p) != want:
            problems.append(f"entry #{a['seq']}: file {f} does not match its SHA-256 (changed after it was kept)")
    stray = sorted(p.relative_to(root).as_posix() for p in case_dir(ws, case_id).glob("*/.tmp-*"))
    return {"case": case_id, "ok": not problems, "entries": len(audit), "head": head, "files": nfiles,
            "problems": problems, "interrupted_writes": stray}


def _sha256_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()
