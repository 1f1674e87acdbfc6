"""API keys of `chaintrace serve`: roles, organisations, rate limits; stored hashed.

A key is ``ct_<key_id>_<secret>`` (the secret: 32 random bytes, URL-safe base64). Only its SHA-256 is
stored, in ``DATA/api/keys.json`` (written atomically, mode 0600): whoever reads the file cannot use a key.
The full key is printed once, when it is created.

Roles (what each may call is decided by the endpoints through :func:`chaintrace.api.auth.require_role`):

``screener``  screening endpoints (address, transfer, the sanctions endpoint, status)
``analyst``   screening plus the analyst endpoints other parts of chaintrace add (sharing, tips, cases)
``admin``     everything; every ``require_role(...)`` check admits an admin key

Each key belongs to an ``org`` (organisation; default ``local``) and has a rate limit of ``limit`` requests
per ``window`` seconds (fixed windows; see :mod:`chaintrace.api.ratelimit`).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace

ROLES = ("screener", "analyst", "admin")
DEFAULT_ORG = "local"
DEFAULT_LIMIT = {"screener": (1000, 1), "analyst": (1000, 1), "admin": (1000, 1)}  # requests per seconds
KEYS_FILE = "keys.json"
_KEY_RE = re.compile(r"^ct_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,99}$")


def api_dir(ws: Workspace) -> Path:
    """``DATA/api``: keys and the audit log of the service."""
    return ws.path / "api"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_limit(text: str) -> tuple[int, int]:
    """``"5000/300"`` (requests per seconds) or ``"100"`` (per second) -> (limit, window)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:/\s*(\d+)\s*s?)?\s*", str(text))
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise UserError(f"--limit {text!r}: expected REQUESTS or REQUESTS/SECONDS, e.g. 5000/300")
    return int(m.group(1)), int(m.group(2) or 1)


@dataclass
class ApiKey:
    key_id: str
    name: str
    role: str
    org: str
    hash: str
    created: str
    limit: int
    window: int
    revoked: str | None = None
    extra: dict = field(default_factory=dict)

    def public(self) -> dict:
        """Everything but the hash."""
        d = asdict(self)
        d.pop("hash")
        return d


class KeyStore:
    """The key file of a workspace, re-read when it changes (checked at most once a second)."""

    def __init__(self, ws: Workspace):
        self.path = api_dir(ws) / KEYS_FILE
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple | None = None
        self._checked = 0.0
        self._verified: dict[str, tuple[dict, ApiKey]] = {}  # key -> (key set it was checked in, record)

    # ------------------------------------------------------------------ file

    def _file_stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self) -> dict[str, ApiKey]:
        stamp = self._file_stamp()
        if stamp is None:
            return {}
        try:
            doc = json.loads(self.path.read_text("utf-8"))
            return {k["key_id"]: ApiKey(**k) for k in doc.get("keys", [])}
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise UserError(f"{self.path}: cannot read the API key file ({e})") from e

    def keys(self, fresh: bool = False) -> dict[str, ApiKey]:
        """Key id -> record; the file is checked for changes at most once a second (`fresh`: now)."""
        now = time.monotonic()
        if not fresh and now - self._checked < 1.0 and self._stamp is not None:
            return self._keys
        with self._lock:
            self._checked = now
            stamp = self._file_stamp()
            if stamp != self._stamp:
                self._keys = self._load()
                self._stamp = stamp
            return self._keys

    def _write(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.tmp{os.getpid()}")
        data = json.dumps({"format": 1, "keys": [asdict(k) for k in keys.values()]}, indent=1)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._stamp = None
        self._checked = 0.0

    # ------------------------------------------------------------------ operations

    def create(self, role: str, name: str, org: str = DEFAULT_ORG, limit: str | tuple[int, int] | None = None
               ) -> tuple[str, ApiKey]:
        """A new key: (the key itself, shown only now; its stored record)."""
        if role not in ROLES:
            raise UserError(f"--role {role!r}: expected one of {', '.join(ROLES)}")
        if not _NAME_RE.match(name or ""):
            raise UserError(f"--name {name!r}: 1-100 characters, letters, digits, space and ._@:-")
        if not _NAME_RE.match(org or ""):
            raise UserError(f"--org {org!r}: 1-100 characters, letters, digits, space and ._@:-")
        lim, win = (DEFAULT_LIMIT[role] if limit is None else
                    parse_limit(limit) if isinstance(limit, str) else (int(limit[0]), int(limit[1])))
        with self._lock:
            keys = dict(self._load())
            key_id = secrets.token_hex(6)
            while key_id in keys:
                key_id = secrets.token_hex(6)
            secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            key = f"ct_{key_id}_{secret}"
            rec = ApiKey(key_id=key_id, name=name, role=role, org=org, hash=key_hash(key),
                         created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                         limit=lim, window=win)
            keys[key_id] = rec
            self._write(keys)
        return key, rec

    def list(self) -> list[ApiKey]:
        return sorted(self._load().values(), key=lambda k: (k.created, k.key_id))

    def revoke(self, ident: str) -> ApiKey:
        """Revoke a key by key id or name (a name must be unambiguous among active keys)."""
        with self._lock:
            keys = dict(self._load())
            rec = keys.get(ident)
            if rec is None:
                named = [k for k in keys.values() if k.name == ident and k.revoked is None]
                if len(named) > 1:
                    raise UserError(f"{ident!r} names {len(named)} active keys; revoke by key id "
                                    f"({', '.join(k.key_id for k in named)})")
                rec = named[0] if named else None
            if rec is None:
                raise UserError(f"no API key with id or name {ident!r} (see `chaintrace keys list`)")
            if rec.revoked is None:
                rec.revoked = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
                self._write(keys)
            return rec

    def verify(self, key: str) -> ApiKey | None:
        """The active key record of `key`, or None (unknown, malformed or revoked)."""
        keys = self.keys()
        hit = self._verified.get(key)
        if hit is not None and hit[0] is keys:  # verified against this very key set before
            return hit[1]
        m = _KEY_RE.match(key or "")
        if not m:
            return None
        rec = self.keys().get(m.group(1))
        if rec is None:  # perhaps created a moment ago: look at the file now (a stat when unchanged)
            rec = self.keys(fresh=True).get(m.group(1))
        if rec is None or rec.revoked is not None:
            return None
        if not hmac.compare_digest(rec.hash, key_hash(key)):
            return None
        if len(self._verified) > 10_000:
            self._verified.clear()
        self._verified[key] = (self.keys(), rec)
        return rec


def create_key(ws: Workspace, role: str, name: str, org: str = DEFAULT_ORG, limit: str | None = None) -> dict:
    """Create an API key; returns ``{"key": ..., **record}`` (the key is not stored, only its hash)."""
    key, rec = KeyStore(ws).create(role, name, org, limit)
    return {"key": key, **rec.public()}


def list_keys(ws: Workspace) -> list[dict]:
    return [k.public() for k in KeyStore(ws).list()]


def revoke_key(ws: Workspace, ident: str) -> dict:
    return KeyStore(ws).revoke(ident).public()
