"""Recently screened addresses: a small durable record per workspace (``DATA/screen/history.sqlite``, WAL).

One row per (chain, address) screened (the address as the registry keys it: EVM and bech32 lower-cased) -- by ``chaintrace screen address`` or any screening endpoint of
``chaintrace serve`` -- with the time it was last screened, whether the answer was sanctioned, and the
registry generation the answer stood on. The monitor (``chaintrace watch run``) reads it to raise a
``sanctions_change`` alert when a new sanctions list changes the answer for an address screened within the
retention window (default 90 days; ``CHAINTRACE_SCREEN_RETENTION_DAYS`` overrides it). Older rows are
pruned when the log is written.

Cheap on the request path: :meth:`ScreenLog.note` appends a reference to a buffer (O(1)),
:meth:`ScreenLog.note_results` the (chain, subject, sanctioned) of each valid answer (the answers are not held:
a served batch's are freed with its response, not walked by a collection meanwhile); the addresses are
classified and written in one transaction by
:meth:`ScreenLog.flush` -- at the end of a CLI call, and by the service's snapshot-watcher thread every
few seconds. Writing it never fails a screening answer (errors are kept in ``last_error``); a service
killed hard loses at most the last few seconds of records.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque
from operator import itemgetter
from pathlib import Path

import numpy as np

RETENTION_DAYS = 90.0
_DDL = """
CREATE TABLE IF NOT EXISTS screened (chain TEXT NOT NULL, address TEXT NOT NULL, last_screened REAL NOT NULL,
    sanctioned INTEGER NOT NULL, registry_generation INTEGER, PRIMARY KEY (chain, address));
CREATE INDEX IF NOT EXISTS screened_time ON screened (last_screened);
"""
_UPSERT = ("INSERT INTO screened VALUES (?,?,?,?,?) ON CONFLICT (chain, address) DO UPDATE SET "
           "last_screened = excluded.last_screened, sanctioned = excluded.sanctioned, "
           "registry_generation = excluded.registry_generation WHERE excluded.last_screened >= last_screened")


def retention_days() -> float:
    """The retention window in days (``CHAINTRACE_SCREEN_RETENTION_DAYS``, default 90)."""
    v = os.environ.get("CHAINTRACE_SCREEN_RETENTION_DAYS")
    return float(v) if v else RETENTION_DAYS


def db_path(ws) -> Path:
    return Path(ws.path) / "screen" / "history.sqlite"


def connect(ws) -> sqlite3.Connection:
    p = db_path(ws)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=30, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.executescript(_DDL)
    return con


def generation_of(snap) -> int | None:
    """The registry generation a snapshot's direct (sanctions) facts were read at."""
    dv = snap.data_version
    return dv.get("registry_generation_now", dv.get("registry_generation"))


def record(ws, rows: list[tuple[str, str, bool, int | None]], *, at: float | None = None) -> int:
    """Write (chain, address, sanctioned, registry generation) rows screened at `at` (default: now) and prune
    rows older than the retention window. Returns the number of rows written."""
    t = time.time() if at is None else at
    return _write(ws, [(c, a, t, int(bool(s)), g) for c, a, s, g in rows])


def _write(ws, rows: list[tuple]) -> int:
    con = connect(ws)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.executemany(_UPSERT, rows)
        con.execute("DELETE FROM screened WHERE last_screened < ?", (time.time() - retention_days() * 86400,))
        con.execute("COMMIT")
    finally:
        con.close()
    return len(rows)


def recent(ws, days: float | None = None) -> list[dict]:
    """Addresses screened within the last `days` (default: the retention window), newest first."""
    if not db_path(ws).exists():
        return []
    cutoff = time.time() - (retention_days() if days is None else days) * 86400
    con = connect(ws)
    try:
        cur = con.execute("SELECT chain, address, last_screened, sanctioned, registry_generation FROM screened "
                          "WHERE last_screened >= ? ORDER BY last_screened DESC", (cutoff,))
        return [{"chain": c, "address": a, "last_screened": t, "sanctioned": bool(s), "registry_generation": g}
                for c, a, t, s, g in cur]
    finally:
        con.close()


def _rows_of(item) -> list[tuple[str, str, bool, int | None]]:
    from chaintrace.intel import addresses as addr

    kind, snap, payload, _t = item
    gen = generation_of(snap)
    if kind == "results":
        return [(c, addr.key(c, s), sanctioned, gen) for c, s, sanctioned in payload]
    from chaintrace.screen.service import classify

    want, address = payload
    idx = snap.index
    if idx is not None and address in idx.addr_row:
        chain: str | None = "btc"
    else:
        chain, why = classify(address)
        if why is not None:
            return []
    if chain is None or (want is not None and chain != want):
        return []
    src = snap.sources.get(chain)
    k = addr.key(chain, address)
    d = src.direct.get(k) if src is not None else None
    return [(chain, k, bool(d and d["sanctions"]), gen)]


def _rows(buf: list[tuple]) -> list[tuple]:
    """Rows of the noted items; single addresses of the chain data in canonical form are recognised with one
    vectorised hash probe per snapshot (a service notes thousands a second)."""
    out: list[tuple] = []
    singles: dict[int, list[tuple]] = {}
    for item in buf:
        if item[0] == "one" and item[1].index is not None:
            singles.setdefault(id(item[1]), []).append(item)
        else:
            out.extend((c, a, item[3], int(s), g) for c, a, s, g in _rows_of(item))
    for items in singles.values():
        from chaintrace.intel import addresses as addr
        from chaintrace.screen.index import hash_keys

        snap = items[0][1]
        idx, gen = snap.index, generation_of(snap)
        direct = snap.sources["btc"].direct if "btc" in snap.sources else {}
        addrs = [it[2][1] for it in items]
        keys = [addr.key_any(a) if isinstance(a, str) else "" for a in addrs]
        sh = idx.arrays["seen_hash"]
        h = hash_keys(keys)
        pos = np.minimum(np.searchsorted(sh, h), max(len(sh) - 1, 0))
        seen = ((sh[pos] == h) if len(sh) else np.zeros(len(keys), np.bool_)).tolist()
        for it, a, k, sn in zip(items, addrs, keys, seen):
            if k == a and it[2][0] in (None, "btc") and (sn or a in idx.addr_row):
                d = direct.get(k)
                out.append(("btc", k, it[3], int(bool(d and d["sanctions"])), gen))
            else:
                out.extend((c, x, it[3], int(s), g) for c, x, s, g in _rows_of(it))
    return out


_FIELDS = itemgetter("chain", "subject", "sanctions", "invalid")
_CHAINS = frozenset(("btc", "eth"))


class ScreenLog:
    """The buffer in front of :func:`record` (thread-safe)."""

    def __init__(self, ws):
        self.ws = ws
        self._buf: deque[tuple] = deque()
        self._lock = threading.Lock()
        self.last_error: str | None = None

    def note(self, snap, chain: str | None, address: str) -> None:
        """One address answered from `snap` (chain None: any chain). O(1)."""
        self._buf.append(("one", snap, (chain, address), time.time()))

    def note_results(self, snap, results: list[dict]) -> None:
        """A batch of screening results answered from `snap`: (chain, subject, sanctioned) of the valid ones."""
        # every address answer has these fields (screen.service._empty): one C-level getter per result
        rows = [(c, s, bool(x)) for c, s, x, bad in map(_FIELDS, results) if bad is None and c in _CHAINS]
        self._buf.append(("results", snap, rows, time.time()))

    def flush(self) -> int:
        """Write what was noted since the last flush, in one transaction; returns the rows written."""
        with self._lock:
            buf = []
            while self._buf:
                buf.append(self._buf.popleft())
            from chaintrace.screen.service import gc_paused

            with gc_paused():
                rows = _rows(buf)
            if not rows:
                return 0
            n = 0
            try:
                n = _write(self.ws, rows)
                self.last_error = None
            except (sqlite3.Error, OSError) as e:  # a read-only workspace: screening still answers
                self.last_error = f"screening history not written: {e}"
            return n
