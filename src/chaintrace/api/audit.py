"""The audit log of the service: every screening appended as one JSON line, chained by hashes.

``DATA/api/audit.jsonl`` holds one record per screening: ``seq``, ``time``, who (``key_id``, ``name``,
``org``), what (``action``, ``request``), the answer (per subject: subject, risk, score; and the SHA-256
of the full answer body), the ``data_version`` it stood on, ``prev`` (the hash of the previous record) and
``hash`` = SHA-256 of ``prev`` + the record's canonical JSON (sorted keys, without ``hash``).
``DATA/api/audit.head`` holds the sequence number and hash of the last record, so deleting records at the
end is detected too. :func:`verify` (``chaintrace audit verify``) recomputes the chain and names the first
line that was edited, inserted, reordered or deleted.

Appends from several worker processes serialise on an exclusive ``flock`` of the head file; each process
writes its queued records in batches every few milliseconds (group commit), one ``write`` and one
``fdatasync`` of the log, then of the head, per batch. Durability (docs/screening.md, "Audit"): by default an
answer leaves once its record is *queued*; a crash of the server process loses the records queued in the
last interval (5 ms) plus the batch being written; a crash of the machine also loses what the last
``fdatasync`` had not yet covered (the same few milliseconds). ``AuditLog(sync=True)`` writes and syncs each
record before the answer leaves (no acknowledged record is lost; much slower). A crash between the
log's and the head's sync leaves the head behind the log, and a crash inside a write can leave a partial
last line: the next :class:`AuditLog` opened on the directory repairs both (advances the head to the last
complete record whose hash verifies; cuts the partial line, which was never complete on disk). The chain
proves integrity against edits made without rewriting every later hash; anchor the head elsewhere
(``chaintrace audit verify --format json`` prints it) to protect against a full rewrite.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import os
import threading
import time
from pathlib import Path

import orjson

from chaintrace.errors import UserError

GENESIS = "0" * 64
HEAD_SIZE = 96
LOG_FILE = "audit.jsonl"
HEAD_FILE = "audit.head"


def _digest(prev: str, body: dict) -> str:
    return hashlib.sha256(prev.encode("ascii") + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _read_head(fd: int) -> tuple[int, str]:
    raw = os.pread(fd, HEAD_SIZE, 0).decode("ascii", "replace").strip()
    if not raw:
        return 0, GENESIS
    seq, h = raw.split()
    return int(seq), h


class AuditLog:
    """Appends hash-chained records to ``DIR/audit.jsonl`` (safe across threads and processes).

    Group commit: :meth:`append` queues the record (with its time) and a writer thread appends everything
    queued, every `interval` seconds, under one lock of the head file: one write per batch, so the log
    keeps up with thousands of screenings a second. ``sync=True`` writes before returning instead.
    :meth:`flush` writes what is queued now; :meth:`close` flushes and stops the writer."""

    def __init__(self, directory: str | os.PathLike, *, sync: bool = False, interval: float = 0.005,
                 fsync: bool = True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / LOG_FILE
        self.head_path = self.dir / HEAD_FILE
        self._log = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        self._head = os.open(self.head_path, os.O_RDWR | os.O_CREAT, 0o600)
        self.fsync = fsync
        self.repaired: list[str] = []
        self._recover()
        self._lock = threading.Lock()
        self._queue: list[tuple[dict, int]] = []
        self._qlock = threading.Lock()
        self.sync = sync
        self.interval = interval
        self._wake = threading.Event()
        self._stop = False
        self._thread = None
        if not sync:
            self._thread = threading.Thread(target=self._run, name="chaintrace-audit", daemon=True)
            self._thread.start()

    def _recover(self) -> None:
        """After a crash: cut a partial last line, and advance a head left behind the log's last record."""
        fcntl.flock(self._head, fcntl.LOCK_EX)
        try:
            size = os.fstat(self._log).st_size
            if not size:
                return
            tail = os.pread(self._log, min(size, 1 << 20), max(0, size - (1 << 20)))
            if not tail.endswith(b"\n"):
                cut = tail.rfind(b"\n") + 1  # 0: no complete line in the tail window
                keep = size - len(tail) + cut
                os.ftruncate(self._log, keep)
                self.repaired.append(f"cut a partial last record ({size - keep} bytes) left by a crash")
                tail = tail[:cut]
            lines = tail.splitlines()
            if not lines:
                return
            try:
                body = orjson.loads(lines[-1])
                h = body.pop("hash")
                seq = int(body["seq"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                return  # not ours to repair: `audit verify` names it
            head_seq, _ = _read_head(self._head)
            if seq > head_seq and _digest(str(body.get("prev")), body) == h:
                os.pwrite(self._head, f"{seq} {h}".ljust(HEAD_SIZE - 1).encode("ascii") + b"\n", 0)
                self.repaired.append(f"head advanced from record {head_seq} to {seq} (a crash between the writes)")
        finally:
            fcntl.flock(self._head, fcntl.LOCK_UN)

    def append(self, record: dict) -> None:
        """Queue `record` (who/what/answer/data_version); it gets seq, time, prev and hash when written. A
        value may be a zero-argument callable: the writer calls it and records what it returns (a batch's
        answer digest and per-result summary are computed there, off the path of the response)."""
        item = (record, time.time_ns())
        if self.sync:
            with self._lock:
                self._write([item])
            return
        with self._qlock:
            self._queue.append(item)

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        """Write what is queued; returns once every record queued before the call is on disk (a write the
        writer thread has in progress included: `audit verify` right after sees log and head agree)."""
        with self._lock:
            with self._qlock:
                items, self._queue = self._queue, []
            if items:
                self._write(items)

    def _write(self, items: list[tuple[dict, int]]) -> None:
        """Append `items` (the caller holds ``self._lock``)."""
        fcntl.flock(self._head, fcntl.LOCK_EX)
        try:
            seq, prev = _read_head(self._head)
            lines = []
            for record, ns in items:
                seq += 1
                body = {**{k: v() if callable(v) else v for k, v in record.items()}, "seq": seq,
                        "prev": prev, "time": _dt.datetime.fromtimestamp(ns / 1e9, _dt.timezone.utc).isoformat()}
                raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
                prev = hashlib.sha256(body["prev"].encode("ascii") + raw).hexdigest()
                lines.append(raw[:-1] + b',"hash":"' + prev.encode("ascii") + b'"}\n')
            os.write(self._log, b"".join(lines))
            if self.fsync:
                os.fdatasync(self._log)
            os.pwrite(self._head, f"{seq} {prev}".ljust(HEAD_SIZE - 1).encode("ascii") + b"\n", 0)
            if self.fsync:
                os.fdatasync(self._head)
        finally:
            fcntl.flock(self._head, fcntl.LOCK_UN)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()
        for fd in (self._log, self._head):
            try:
                os.close(fd)
            except OSError:
                pass


def verify(directory: str | os.PathLike) -> dict:
    """Recompute the chain of ``DIR/audit.jsonl``: ``{ok, records, head, problems: [{line, problem}]}``.

    Detected: an edited record (its hash no longer matches), a deleted or inserted record (sequence gap,
    broken ``prev`` link), records deleted at the end (the head file names a later record), an unreadable
    line."""
    d = Path(directory)
    log, head = d / LOG_FILE, d / HEAD_FILE
    if not log.exists():
        raise UserError(f"{log}: no audit log (nothing was screened through `chaintrace serve` yet)")
    problems: list[dict] = []
    prev, seq, n = GENESIS, 0, 0
    with open(log, "rb") as f:
        for lineno, line in enumerate(f, 1):
            n += 1
            try:
                body = orjson.loads(line)
                h = body.pop("hash")
            except (orjson.JSONDecodeError, KeyError, AttributeError, TypeError):
                problems.append({"line": lineno, "problem": "not a JSON audit record"})
                continue
            if body.get("seq") != seq + 1:
                problems.append({"line": lineno, "problem": f"sequence {body.get('seq')} follows {seq}: "
                                                            "records deleted, inserted or reordered"})
            if body.get("prev") != prev:
                problems.append({"line": lineno, "problem": "prev does not match the previous record's hash"})
            if _digest(str(body.get("prev")), body) != h:
                problems.append({"line": lineno, "problem": f"record {body.get('seq')} was modified "
                                                            "(hash mismatch)"})
            prev, seq = h, body.get("seq") if isinstance(body.get("seq"), int) else seq + 1
    head_seq, head_hash = 0, GENESIS
    if head.exists():
        raw = head.read_text("ascii", "replace").strip()
        if raw:
            try:
                s, head_hash = raw.split()
                head_seq = int(s)
            except ValueError:
                problems.append({"line": None, "problem": f"{head}: unreadable head"})
    else:
        problems.append({"line": None, "problem": f"{head}: head file missing"})
    if (head_seq, head_hash) != (seq, prev):
        problems.append({"line": None, "problem": f"head names record {head_seq} ({head_hash[:16]}...), the log "
                                                  f"ends at record {seq}: records deleted at the end or the "
                                                  "head rewritten"})
    return {"ok": not problems, "records": n, "last_seq": seq, "head": {"seq": head_seq, "hash": head_hash},
            "log": str(log), "problems": problems}
