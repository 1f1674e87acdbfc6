"""The tip store: one SQLite file per workspace (``<data>/intake/tips.sqlite``).

What is stored in clear: a random tip id, the UTC day of arrival (not the time), the triage score and
status, the SHA-256 of the receipt code. Everything the tipster sent (addresses, txids, amounts, time,
narrative, contact, attachments) and the screening details are sealed to the analysts' public key before
they reach the database; follow-ups likewise. The server cannot read a stored tip back.
"""
from __future__ import annotations

import base64
import builtins
import datetime as _dt
import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chaintrace.errors import UserError
from chaintrace.intake import crypto
from chaintrace.intake.validate import validate_tip
from chaintrace.store.workspace import Workspace

DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    """CREATE TABLE IF NOT EXISTS tips (id TEXT PRIMARY KEY, received_day TEXT, receipt_sha256 TEXT UNIQUE,
       score INTEGER, status TEXT, sealed BLOB, sealed_screening BLOB, case_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS followups (tip_id TEXT, seq INTEGER, received_day TEXT, sealed BLOB,
       PRIMARY KEY (tip_id, seq))""",
]
_B32 = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"   # no 0/O, 1/I


def new_receipt() -> str:
    """A 120-bit random receipt code, 24 characters in 4 groups (shown once; only its hash is stored)."""
    s = "".join(secrets.choice(_B32) for _ in range(24))
    return "-".join(s[i:i + 6] for i in range(0, 24, 6))


def receipt_hash(code: str) -> str:
    norm = "".join(c for c in code.upper() if c.isalnum())
    return hashlib.sha256(("chaintrace-tip-receipt:" + norm).encode()).hexdigest()


def tips_path(ws: Workspace) -> Path:
    return Path(ws.path) / "intake" / "tips.sqlite"


class TipStore:
    """Tips of one workspace. ``submit`` needs only the public key (installed with ``set_public_key``)."""

    def __init__(self, ws: Workspace | str | None):
        self.ws = ws if isinstance(ws, Workspace) else Workspace(ws)
        self.path = tips_path(self.ws)
        self._lock = threading.RLock()
        self._pk = None
        self._con: sqlite3.Connection | None = None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The store's connection (opened once, schema made once), one transaction per use, serialised by a
        lock; commits are durable (WAL, synchronous=FULL: a receipt is only shown for a stored tip)."""
        with self._lock:
            if self._con is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=FULL")
                for stmt in DDL:
                    con.execute(stmt)
                con.commit()
                self._con = con
            try:
                yield self._con
                self._con.commit()
            except BaseException:
                self._con.rollback()
                raise

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    # ------------------------------------------------------------------------------------------ keys
    def set_public_key(self, text: str) -> None:
        crypto.parse_public(text)
        with self._db() as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES ('public_key', ?)", [text.strip()])
        self._pk = None

    def public_key(self):
        if self._pk is None:
            with self._db() as con:
                row = con.execute("SELECT value FROM meta WHERE key = 'public_key'").fetchone()
            if row is None:
                raise UserError(f"{self.path}: no analysts' public key installed (run `chaintrace tips keygen "
                                "--key FILE` or `chaintrace tips install-key FILE.pub`)")
            self._pk = crypto.parse_public(row[0], str(self.path))
        return self._pk

    # ---------------------------------------------------------------------------------------- submit
    def submit(self, tip: dict, *, screen=None) -> dict:
        """Validate, screen (``screen(tip) -> {"score", ...}``), seal and store a tip. Returns ``{id,
        receipt, score}``; the receipt code is not stored (only its hash)."""
        t = validate_tip(tip)
        pk = self.public_key()
        now = _dt.datetime.now(_dt.UTC)
        t["received_at"] = now.replace(microsecond=0).isoformat()
        result: dict[str, Any] = screen(t) if screen is not None else {"score": 0, "reasons": ["not screened"]}
        tid = "tip-" + secrets.token_hex(6)
        receipt = new_receipt()
        sealed = crypto.seal(pk, json.dumps(t, ensure_ascii=False).encode())
        sealed_s = crypto.seal(pk, json.dumps(result, ensure_ascii=False, default=str).encode())
        with self._db() as con:
            con.execute("INSERT INTO tips VALUES (?, ?, ?, ?, 'new', ?, ?, NULL)",
                        [tid, now.date().isoformat(), receipt_hash(receipt), int(result["score"]), sealed, sealed_s])
        return {"id": tid, "receipt": receipt, "score": int(result["score"])}

    def follow_up(self, receipt: str, tip: dict) -> dict:
        """Add information to the tip of a receipt code (the same validation; sealed the same way)."""
        if not isinstance(receipt, str) or len(receipt) > 64:
            raise UserError("receipt: not a receipt code")
        t = validate_tip(tip)
        t["received_at"] = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
        pk = self.public_key()
        with self._db() as con:
            row = con.execute("SELECT id FROM tips WHERE receipt_sha256 = ?", [receipt_hash(receipt)]).fetchone()
            if row is None:
                raise UserError("receipt: no tip has this receipt code")
            seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM followups WHERE tip_id = ?", [row[0]]).fetchone()[0]
            con.execute("INSERT INTO followups VALUES (?, ?, ?, ?)",
                        [row[0], seq, t["received_at"][:10], crypto.seal(pk, json.dumps(t, ensure_ascii=False).encode())])
        return {"id": row[0], "followup": seq}

    def status(self, receipt: str) -> dict:
        with self._db() as con:
            row = con.execute("SELECT status, (SELECT count(*) FROM followups f WHERE f.tip_id = t.id) "
                              "FROM tips t WHERE receipt_sha256 = ?", [receipt_hash(receipt)]).fetchone()
        if row is None:
            raise UserError("receipt: no tip has this receipt code")
        return {"status": row[0], "followups": row[1]}

    # ------------------------------------------------------------------------------------------ read
    def list(self, key_path: str | None = None) -> list[dict]:
        sk = crypto.load_private(key_path) if key_path else None
        with self._db() as con:
            rows = con.execute("SELECT id, received_day, score, status, case_id, sealed, "
                               "(SELECT count(*) FROM followups f WHERE f.tip_id = t.id) FROM tips t "
                               "ORDER BY score DESC, received_day DESC, id").fetchall()
        out = []
        for tid, day, score, status, case_id, sealed, nf in rows:
            d = {"id": tid, "received_day": day, "score": score, "status": status, "case_id": case_id,
                 "followups": nf}
            if sk is not None:
                t = json.loads(crypto.unseal(sk, sealed, tid))
                d |= {"addresses": len(t["addresses"]), "txids": len(t["txids"]),
                      "narrative": (t.get("narrative") or "")[:80], "anonymous": t["anonymous"]}
            out.append(d)
        return out

    def get(self, tid: str, key_path: str) -> dict:
        sk = crypto.load_private(key_path)
        with self._db() as con:
            row = con.execute("SELECT id, received_day, score, status, case_id, sealed, sealed_screening "
                              "FROM tips WHERE id = ?", [tid]).fetchone()
            fu = con.execute("SELECT seq, received_day, sealed FROM followups WHERE tip_id = ? ORDER BY seq",
                             [tid]).fetchall()
        if row is None:
            raise UserError(f"no tip {tid!r} in {self.path} (see `chaintrace tips list`)")
        return {"id": row[0], "received_day": row[1], "score": row[2], "status": row[3], "case_id": row[4],
                "tip": json.loads(crypto.unseal(sk, row[5], tid)),
                "screening": json.loads(crypto.unseal(sk, row[6], tid)),
                "followups": [{"seq": s, "received_day": d, "tip": json.loads(crypto.unseal(sk, b, f"{tid}#{s}"))}
                              for s, d, b in fu]}

    def ids(self) -> builtins.list[str]:
        with self._db() as con:
            return [r[0] for r in con.execute("SELECT id FROM tips ORDER BY id")]

    def set_case(self, tid: str, case_id: str) -> None:
        with self._db() as con:
            con.execute("UPDATE tips SET status = 'triaged', case_id = ? WHERE id = ?", [case_id, tid])


def attachment_bytes(a: dict) -> bytes:
    return base64.b64decode(a["data"])
