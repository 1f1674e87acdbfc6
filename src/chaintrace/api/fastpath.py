"""The hot path of the service: single-address GETs answered in front of FastAPI.

``GET /v1/screen/address/{chain}/{address}`` and ``GET /api/v1/address/{address}`` are what a KYT
integration calls for every deposit and withdrawal. This ASGI wrapper (around the app of :func:`chaintrace.api.app.create_app`; ``chaintrace serve`` runs
``FastPath(create_app(...))``) answers them with the same
authentication, rate limits, audit records and bodies as the FastAPI routes (which stay the documented
definition, in /openapi.json), but as a dict lookup of a precomputed, serialized answer per address and
snapshot. Anything it does not handle itself (a missing or bad key, an odd path) goes on to FastAPI, which
answers it (401, 422, ...) as usual.
"""
from __future__ import annotations

import base64
import hashlib
import re

import orjson

from chaintrace.api.auth import Principal
from chaintrace.api.tlp import home_org

_SCREEN = "/v1/screen/address/"
_SANCTIONS = "/api/v1/address/"
_ADDR_OK = re.compile(r"^[!-~]{1,256}$")
CACHE_MAX = 500_000


class AnswerCache:
    """Serialized answers per (endpoint, chain, address) for one snapshot of the data."""

    def __init__(self):
        self.snap = None
        self.entries: dict[tuple, tuple[bytes, dict, dict | None]] = {}

    def get(self, snap, key):
        if snap is not self.snap:
            self.snap = snap
            self.entries = {}
        return self.entries.get(key)

    def put(self, key, value) -> None:
        if len(self.entries) >= CACHE_MAX:
            self.entries = {}
        self.entries[key] = value


def _key_from_headers(headers) -> str | None:
    basic = None
    for k, v in headers:
        if k == b"x-api-key":
            return v.decode("latin-1")
        if k == b"authorization" and v[:6].lower() == b"basic ":
            try:
                basic = base64.b64decode(v[6:].strip(), validate=True).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
    return basic


def _answer_entry(state, snap, kind: str, chain: str | None, address: str):
    """(body, audit answer, audit data version) of one address, from the cache or computed now."""
    key = (kind, chain, address)
    hit = state.answers.get(snap, key)
    if hit is not None:
        return hit
    if kind == "screen":
        from chaintrace.screen.service import screen_one_address

        r = screen_one_address(snap, address)
        if r["chain"] is not None and r["chain"] != chain:
            r.update(risk=None, score=None, exposures=[], sanctions=[], evidence=[],
                     invalid=f"a {r['chain']} address, not {chain}")
        ans = {"results": [r], "data_version": snap.data_version}
        body = orjson.dumps(ans)
        summary: dict = {"sha256": hashlib.sha256(body).hexdigest(),
                         "results": [[r["subject"], r["risk"], r["score"]]]}
        dv = {k: snap.data_version.get(k) for k in ("index", "registry_generation", "config_version", "index_built")}
    else:
        from chaintrace.api.routes import identifications

        ans = {"identifications": identifications(state.ws, address)}
        body = orjson.dumps(ans)
        summary = {"sha256": hashlib.sha256(body).hexdigest(), "identifications": len(ans["identifications"])}
        dv = None
    entry = (body, summary, dv)
    state.answers.put(key, entry)
    return entry


class FastPath:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app):
        self.app = app  # the FastAPI app (its state holds keys, limiter, screener, audit, answers)
        self.state = app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path.startswith(_SCREEN):
            chain, _, address = path[len(_SCREEN):].partition("/")
            if chain not in ("btc", "eth") or not address or len(address) > 256 or "/" in address:
                return await self.app(scope, receive, send)
            kind, action = "screen", "screen.address"
        elif path.startswith(_SANCTIONS):
            address = path[len(_SANCTIONS):]
            if not _ADDR_OK.match(address):
                return await self.app(scope, receive, send)
            chain, kind, action = None, "sanctions", "sanctions.address"
        else:
            return await self.app(scope, receive, send)
        state = self.state
        key = _key_from_headers(scope["headers"])
        rec = state.keys.verify(key) if key else None
        if rec is None:
            return await self.app(scope, receive, send)  # FastAPI answers 401 with its details
        if kind == "screen" and rec.org != home_org():
            return await self.app(scope, receive, send)  # another organisation: FastAPI scrubs what TLP hides
        ok, rl = state.limiter.hit(rec.key_id, rec.limit, rec.window)
        headers = [(b"content-type", b"application/json")] + [(k.encode(), v.encode()) for k, v in rl.items()]
        if not ok:
            from chaintrace.api.app import error_body

            body = orjson.dumps(error_body(429, "rate_limited", f"more than {rec.limit} requests in {rec.window} s "
                                           f"for key {rec.key_id}; retry after {rl['Retry-After']} s"))
            return await _send(send, 429, headers, body)
        snap = state.screener.snapshot()
        body, summary, dv = _answer_entry(state, snap, kind, chain, address)
        state.screener.log.note(snap, chain, address)  # O(1); written by the screener's watcher thread
        if state.audit is not None:
            who = Principal.of(rec)
            req = {"n": 1, "subjects": [address]}
            if chain is not None:
                req["chain"] = chain
            state.audit.append({"key_id": who.key_id, "name": who.name, "org": who.org, "role": who.role,
                                "action": action, "request": req, "answer": summary, "data_version": dv})
        return await _send(send, 200, headers, body)


async def _send(send, status: int, headers: list, body: bytes) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
