"""The FastAPI application of `chaintrace serve`: screening, the Chainalysis-compatible sanctions endpoint,
status and health, with API keys, roles, rate limits and the audit log.

:func:`create_app` builds the app for a workspace; other parts of chaintrace add their routers here (one
``app.include_router(...)`` line each, in :func:`create_app`). OpenAPI: ``/openapi.json``, docs at ``/docs``.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chaintrace import __version__
from chaintrace.api.audit import AuditLog
from chaintrace.api.keys import KeyStore, api_dir
from chaintrace.api.ratelimit import SharedRateLimiter
from chaintrace.errors import ChaintraceError
from chaintrace.store.workspace import Workspace


class JSONBody(JSONResponse):
    """JSON through orjson; bytes are sent as they are (precomputed answers)."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def error_body(status: int, error: str, message: str, field: str | None = None) -> dict:
    return {"error": error, "status": status, "field": field, "message": message}


def create_app(ws: Workspace | str | None = None, *, config=None, screener=None, audit: bool = True,
               build_index: bool = False, auto_index: bool = True) -> FastAPI:
    """The service for workspace `ws`: keys from ``DATA/api/keys.json``, audit log in ``DATA/api/``.

    `config`: a :class:`chaintrace.screen.Config` (default: the shipped one); `screener`: an existing
    :class:`chaintrace.screen.Screener` to answer from; `build_index`: build the exposure index at start
    when the current one is missing; `auto_index`: rebuild it in the background after an ingest or an
    import (answers come from the previous index until the new one is complete)."""
    from chaintrace.screen import Screener, load_config

    ws = ws if isinstance(ws, Workspace) else Workspace(ws)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if app.state.audit is not None:
            app.state.audit.close()

    app = FastAPI(title="chaintrace", version=__version__, default_response_class=JSONBody, lifespan=lifespan,
                  description="Screening of addresses and deposits for exposure to hacked or sanctioned funds, "
                              "and the sharing endpoints of chaintrace. Authenticate with `X-API-Key` (or HTTP "
                              "Basic, the key as password).")
    app.state.ws = ws
    app.state.keys = KeyStore(ws)
    app.state.limiter = SharedRateLimiter(api_dir(ws) / "ratelimit.bin")  # global across worker processes
    app.state.audit = AuditLog(api_dir(ws)) if audit else None
    app.state.screener = screener or Screener(ws, config or load_config(), build=build_index, watch=True,
                                                 auto_index=auto_index)
    from chaintrace.api.fastpath import AnswerCache

    app.state.answers = AnswerCache()  # serialized single-address answers (chaintrace.api.fastpath)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        d = exc.detail
        if isinstance(d, dict):
            body = error_body(exc.status_code, d.get("error", "error"), d.get("message", ""), d.get("field"))
        else:
            body = error_body(exc.status_code, "not_found" if exc.status_code == 404 else "error", str(d))
        return JSONBody(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        field = ".".join(str(x) for x in first.get("loc", ()))
        msg = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in errs[:5])
        return JSONBody(error_body(422, "invalid_request", msg, field or None), status_code=422)

    @app.exception_handler(ChaintraceError)
    async def chaintrace_error(request: Request, exc: ChaintraceError):
        return JSONBody(error_body(400, "bad_request", str(exc)), status_code=400)

    from chaintrace.intel.index import get_index

    get_index(ws)  # the registry lookup index of the sanctions endpoint, built before the first request
    from chaintrace.api import routes

    app.include_router(routes.router)
    # other parts of chaintrace: one include_router line each, below
    from chaintrace.api.taxii import mount_taxii

    mount_taxii(app, ws)
    from chaintrace.api import tips as _tips
    app.include_router(_tips.router)        # the public tip line: /v1/tips, /tip (no API key)
    from chaintrace.api import ui as _ui
    app.include_router(_ui.router)          # the web investigation UI: / and /ui/api/* (docs/ui.md)
    return app


def http_error(status: int, error: str, message: str, field: str | None = None, headers=None) -> HTTPException:
    return HTTPException(status, detail={"error": error, "message": message, "field": field}, headers=headers)
