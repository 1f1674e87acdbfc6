"""Authentication and roles for the service: the FastAPI dependency :func:`require_role`.

A client sends its key as the ``X-API-Key`` header or as the password of HTTP Basic authentication (the
user name is ignored; TAXII clients use Basic). Unknown, malformed or revoked keys get 401, a key whose role
is not admitted gets 403, a key over its rate limit gets 429 (with ``Retry-After``). Every admitted answer
carries the ``RateLimit-*`` headers of the key.

Other parts of chaintrace protect their routers the same way::

    from chaintrace.api.auth import Principal, require_role

    @router.get("/taxii2/")
    def discovery(who: Principal = Depends(require_role("analyst"))): ...

``require_role("analyst")`` admits analyst and admin keys (admin passes every check).
"""
from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBasicCredentials

from chaintrace.api.keys import ROLES, ApiKey

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                               description="API key (`chaintrace keys create`)")
_basic = HTTPBasic(auto_error=False, description="HTTP Basic: any user name, the API key as password")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name, role and organisation."""

    key_id: str
    name: str
    role: str
    org: str

    @classmethod
    def of(cls, rec: ApiKey) -> "Principal":
        return cls(rec.key_id, rec.name, rec.role, rec.org)


def authenticate(request: Request, key: str | None) -> tuple[ApiKey, dict[str, str]]:
    """Check a presented key and count it against its rate limit: (record, RateLimit headers).

    Raises 401 (no or bad key) or 429 (over the limit)."""
    state = request.app.state
    if not key:
        raise HTTPException(401, detail={"error": "unauthorized", "field": "X-API-Key",
                                         "message": "send an API key as X-API-Key or as the HTTP Basic password"},
                            headers={"WWW-Authenticate": 'Basic realm="chaintrace"'})
    rec = state.keys.verify(key)
    if rec is None:
        raise HTTPException(401, detail={"error": "unauthorized", "field": "X-API-Key",
                                         "message": "unknown or revoked API key"},
                            headers={"WWW-Authenticate": 'Basic realm="chaintrace"'})
    ok, headers = state.limiter.hit(rec.key_id, rec.limit, rec.window)
    if not ok:
        raise HTTPException(429, detail={"error": "rate_limited",
                                         "message": f"more than {rec.limit} requests in {rec.window} s for key "
                                                    f"{rec.key_id}; retry after {headers['Retry-After']} s"},
                            headers=headers)
    return rec, headers


def require_role(*roles: str):
    """A FastAPI dependency admitting keys with one of `roles` (admin always); returns the :class:`Principal`."""
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown roles {bad}; expected {ROLES}")
    allowed = frozenset(roles) | {"admin"}

    def dependency(request: Request, response: Response, api_key: str | None = Depends(_api_key_header),
                   basic: HTTPBasicCredentials | None = Depends(_basic)) -> Principal:
        key = api_key or (basic.password if basic is not None else None)
        rec, headers = authenticate(request, key)
        for k, v in headers.items():
            response.headers[k] = v
        request.state.ratelimit = headers  # for routes that return a Response of their own (reply())
        if rec.role not in allowed:
            raise HTTPException(403, detail={"error": "forbidden", "field": "X-API-Key",
                                             "message": f"role {rec.role!r} may not call this endpoint "
                                                        f"(needs {' or '.join(sorted(allowed))})"},
                                headers=headers)
        principal = Principal.of(rec)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_role_{'_'.join(roles) or 'any'}"
    return dependency


def ratelimit_headers(request: Request) -> dict[str, str]:
    """The RateLimit-* headers of the request's key (set by :func:`require_role`)."""
    return getattr(request.state, "ratelimit", None) or {}
