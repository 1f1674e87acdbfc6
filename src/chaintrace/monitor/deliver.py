"""Delivery of alerts from the persistent outbox: signed webhooks, email (SMTP), JSON lines, syslog.

Every alert gets one outbox row per channel in the same SQLite transaction that records it; a row is marked
delivered only after its channel accepted it (HTTP 2xx, the SMTP server's 250, the line written and
fsync'ed). A failed attempt is retried with exponential backoff (0.5 s doubling to at most 5 minutes). A
crash between sending and marking means the alert is sent again after the restart: delivery is
**at least once**, and receivers drop repeats by the ``dedup_key`` (in the body and the
``X-Chaintrace-Dedup-Key`` header).

Webhook signature: ``X-Chaintrace-Timestamp: <unix seconds>`` and ``X-Chaintrace-Signature: sha256=<hex>``
where ``<hex>`` is HMAC-SHA256 under the shared secret of ``<timestamp>.<body bytes>``; receivers recompute it
(:func:`verify_signature`) and reject stale timestamps, which stops replays.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.monitor import db

MAX_BACKOFF = 300.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, headers, body: bytes, max_age: float = 300.0) -> bool:
    """Check a received webhook: the signature matches and the timestamp is at most `max_age` seconds old."""
    ts = headers.get("X-Chaintrace-Timestamp") or ""
    sig = headers.get("X-Chaintrace-Signature") or ""
    try:
        if abs(time.time() - int(ts)) > max_age:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(sign(secret, ts, body), sig)


DECIMALS = {"BTC": 8, "ETH": 18}


def amount_text(amount, asset: str | None) -> str:
    """Base units as an exact decimal of the asset (BTC: 8 places, ETH: 18); other assets in base units."""
    if amount is None:
        return ""
    n = int(amount)
    d = DECIMALS.get(asset or "")
    if d is None:
        return f"{n} {asset or ''} base units".strip()
    q, r = divmod(abs(n), 10**d)
    frac = f"{r:0{d}d}".rstrip("0")
    return f"{'-' if n < 0 else ''}{q}{'.' + frac if frac else ''} {asset}"


def summary(a: dict) -> str:
    """One line for people."""
    k = a["kind"]
    amt = amount_text(a.get("amount"), a.get("asset"))
    where = f"{a.get('chain')} block {a.get('height')}" if a.get("height") is not None else a.get("chain") or ""
    if k == "moved":
        to = ", ".join(str(d.get("address")) for d in a.get("to", [])[:3])
        return f"[{a.get('watchlist')}] moved {amt} in {a.get('txid')} -> {to} ({where})"
    if k in ("service", "mixer_bridge"):
        s = a.get("service") or {}
        return f"[{a.get('watchlist')}] {amt} reached {s.get('name')} ({s.get('category')}) at {a.get('address')} in {a.get('txid')} ({where})"
    if k == "woke":
        return f"[{a.get('watchlist')}] funds dormant {a.get('dormant_days')} days moved in {a.get('txid')} ({where})"
    if k == "sanctions_change":
        lists = ", ".join(sorted({e['list'] for e in a.get('entries', [])}))
        return f"[{a.get('watchlist')}] {a.get('address')} {a.get('change')} on sanctions list(s) {lists}"
    if k == "retracted":
        return f"[{a.get('watchlist')}] RETRACTED {a.get('retracted_kind')} alert {a.get('retracts')}: {a.get('reason')}"
    return f"[{a.get('watchlist')}] {k}"


@dataclass
class Webhook:
    url: str
    secret: str
    timeout: float = 10.0

    @property
    def id(self) -> str:
        return f"webhook:{self.url}"

    def send(self, alert: dict, body: bytes) -> None:
        ts = str(int(time.time()))
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "chaintrace-monitor",
            "X-Chaintrace-Timestamp": ts, "X-Chaintrace-Signature": sign(self.secret, ts, body),
            "X-Chaintrace-Dedup-Key": alert["dedup_key"], "X-Chaintrace-Event": alert["kind"]})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                r.read()
        except urllib.error.HTTPError as e:
            raise OSError(f"HTTP {e.code}") from None


@dataclass
class Smtp:
    host: str
    port: int
    mail_from: str
    mail_to: list[str] = field(default_factory=list)
    starttls: bool = False
    user: str | None = None
    password: str | None = None

    @property
    def id(self) -> str:
        return f"smtp:{self.host}:{self.port}:{','.join(self.mail_to)}"

    def send(self, alert: dict, body: bytes) -> None:
        msg = EmailMessage()
        msg["Subject"] = f"[chaintrace] {summary(alert)}"[:200]
        msg["From"] = self.mail_from
        msg["To"] = ", ".join(self.mail_to)
        msg["X-Chaintrace-Dedup-Key"] = alert["dedup_key"]
        msg["Message-ID"] = f"<{alert['dedup_key']}@chaintrace>"
        msg.set_content(summary(alert) + "\n\n" + json.dumps(alert, indent=2))
        with smtplib.SMTP(self.host, self.port, timeout=30) as s:
            if self.starttls:
                s.starttls()
            if self.user:
                s.login(self.user, self.password or "")
            s.send_message(msg)


@dataclass
class JsonLines:
    path: str

    @property
    def id(self) -> str:
        return f"jsonl:{Path(self.path).resolve()}"

    def send(self, alert: dict, body: bytes) -> None:
        p = Path(self.path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "ab") as f:
            f.write(body + b"\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class Syslog:
    """RFC 5424 messages (facility local0, severity warning; retractions notice) to a syslog daemon: a UDP
    ``HOST:PORT`` or a Unix datagram socket path (``/dev/log``). Datagrams are not acknowledged: delivered
    means handed to the socket."""

    target: str

    @property
    def id(self) -> str:
        return f"syslog:{self.target}"

    def send(self, alert: dict, body: bytes) -> None:
        import socket

        sev = 5 if alert["kind"] == "retracted" else 4
        ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        msg = (f"<{16 * 8 + sev}>1 {ts} {socket.gethostname()} chaintrace {os.getpid()} {alert['kind']} "
               f"[chaintrace dedup_key=\"{alert['dedup_key']}\"] ").encode() + body
        if self.target.startswith("/"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(msg, self.target)
            return
        host, _, port = self.target.rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--syslog {self.target!r}: expected HOST:PORT (UDP) or a socket path")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(msg, (host, int(port)))


def parse_smtp(spec: str) -> tuple[str, int]:
    host, _, port = spec.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--smtp {spec!r}: expected HOST:PORT")
    return host, int(port)


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 0.5 * 2 ** max(0, attempts - 1))


def deliver_due(con, channels: dict, limit: int = 200) -> dict:
    """Try every due outbox row of the given channels once, oldest first. Returns counts."""
    if not channels:
        return {"delivered": 0, "failed": 0}
    marks = ",".join("?" * len(channels))
    rows = con.execute(
        f"SELECT o.dedup_key, o.channel, o.attempts, a.body FROM outbox o JOIN alerts a USING (dedup_key) "
        f"WHERE o.delivered IS NULL AND o.next_try <= ? AND o.channel IN ({marks}) ORDER BY o.seq LIMIT ?",
        (db.now(), *channels, limit)).fetchall()
    done = failed = 0
    down: set[str] = set()
    for r in rows:
        if r["channel"] in down:  # one failure per channel per pass: keep the order, do not hammer
            continue
        alert = json.loads(r["body"])
        try:
            channels[r["channel"]].send(alert, r["body"].encode())
        except (OSError, smtplib.SMTPException) as e:
            attempts = r["attempts"] + 1
            con.execute("UPDATE outbox SET attempts = ?, next_try = ?, last_error = ? WHERE dedup_key = ? AND "
                        "channel = ?", (attempts, db.now() + backoff(attempts), str(e)[:500], r["dedup_key"],
                                        r["channel"]))
            down.add(r["channel"])
            failed += 1
            continue
        con.execute("UPDATE outbox SET delivered = ?, attempts = attempts + 1 WHERE dedup_key = ? AND channel = ?",
                    (db.now(), r["dedup_key"], r["channel"]))
        done += 1
    return {"delivered": done, "failed": failed}


def next_due(con, channels: dict) -> float | None:
    if not channels:
        return None
    marks = ",".join("?" * len(channels))
    return con.execute(f"SELECT min(next_try) FROM outbox WHERE delivered IS NULL AND channel IN ({marks})",
                       tuple(channels)).fetchone()[0]


def outbox(ws, pending_only: bool = False, limit: int = 100) -> list[dict]:
    """Outbox rows (newest first): dedup key, kind, channel, attempts, delivered time, last error."""
    con = db.connect(ws)
    try:
        q = ("SELECT o.dedup_key, a.kind, a.retracted, o.channel, o.attempts, o.delivered, o.last_error, a.body "
             "FROM outbox o JOIN alerts a USING (dedup_key)"
             + (" WHERE o.delivered IS NULL" if pending_only else "") + " ORDER BY o.seq DESC LIMIT ?")
        out = []
        for r in con.execute(q, (limit,)):
            d = dict(r)
            d["summary"] = summary(json.loads(d.pop("body")))
            out.append(d)
        return out
    finally:
        con.close()
