"""Test helpers for the TAXII server: a key -> principal dependency shaped like chaintrace.api.auth's
(X-API-Key or the HTTP Basic password), and a real uvicorn server on a free 127.0.0.1 port in a thread."""
from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from chaintrace.api.taxii import taxii_router
from chaintrace.share.taxii_store import TaxiiStore


@dataclass(frozen=True)
class Principal:
    key_id: str
    name: str
    role: str
    org: str


def key_principal(keys: dict[str, tuple[str, str, str]]):
    """keys: api key -> (name, role, org)."""

    def dep(request: Request) -> Principal:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if key is None and auth.lower().startswith("basic "):
            try:
                key = base64.b64decode(auth[6:]).decode().split(":", 1)[1]
            except (ValueError, IndexError):
                key = None
        if key not in keys:
            raise HTTPException(401, "a valid API key is required", headers={"WWW-Authenticate": "Basic"})
        name, role, org = keys[key]
        return Principal(key_id=key[:4], name=name, role=role, org=org)

    return dep


def taxii_app(store: TaxiiStore, keys: dict, *, ws=None, org: str = "local") -> FastAPI:
    app = FastAPI()
    app.include_router(taxii_router(store, key_principal(keys), ws=ws, server_org=org))
    return app


@contextlib.contextmanager
def serve(app):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    t = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    t.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)
        sock.close()
