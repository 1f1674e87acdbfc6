"""TAXII 2.1 server for ``chaintrace serve``: an APIRouter under ``/taxii2/``.

Endpoints (TAXII 2.1 section 4-5): discovery, API root, collections, a collection, objects (GET with
``limit``/``next`` paging, ``added_after``, ``match[id|type|version|spec_version]``; POST of an envelope
answered 202 with a status resource), one object (GET, DELETE), its versions, the manifest, status.
Media type ``application/taxii+json;version=2.1`` (406 on another Accept, 415 on another Content-Type,
413 over ``max_content_length``); ``X-TAXII-Date-Added-First``/``-Last`` headers.

Access: every endpoint but discovery needs an API key (``X-API-Key`` or the HTTP Basic password, as TAXII
clients send it), resolved by the `principal` dependency given to :func:`taxii_router` (in ``serve``:
``chaintrace.api.auth.require_role``). A collection says which organisations read and write it; TLP rules
(:mod:`chaintrace.share.tlp`) are applied object by object when storing and when serving, and a collection's
hidden properties (amounts, notes) are removed before serving. The default collection publishes the
shareable registry (read-only).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from chaintrace.errors import UserError
from chaintrace.share import tlp as rules
from chaintrace.share.taxii_store import MAX_PAGE, REGISTRY_COLLECTION, TaxiiStore, iso_us

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
API_ROOT = "chaintrace"
MAX_CONTENT = 50 * 1024 * 1024
WRITE_ROLES = frozenset({"analyst", "admin"})


class TaxiiError(Exception):
    def __init__(self, status: int, title: str, description: str = ""):
        super().__init__(title)
        self.status, self.title, self.description = status, title, description


def _resp(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False), status_code=status,
                    media_type=TAXII, headers=headers)


def _error(e: TaxiiError) -> Response:
    return _resp({"title": e.title, "description": e.description, "http_status": str(e.status)}, e.status)


def _accepts(request: Request) -> None:
    acc = request.headers.get("accept", "*/*").replace(" ", "").lower()
    if "*/*" in acc or "application/*" in acc:
        return
    for part in acc.split(","):
        if part.startswith("application/taxii+json") and ("version=" not in part or "version=2.1" in part):
            return
    raise TaxiiError(406, "Not Acceptable", f"Accept must be {TAXII}")


def taxii_router(store: TaxiiStore | Callable[[], TaxiiStore], principal: Callable, *, ws=None,
                 server_org: str = "local", title: str = "chaintrace TAXII 2.1",
                 producer: str = "chaintrace") -> APIRouter:
    """The TAXII router. `store`: a :class:`TaxiiStore` (or a callable giving one); `principal`: a FastAPI
    dependency returning an object with ``org`` and ``role`` (401/403 on a bad key); `ws`: the workspace
    whose shareable registry the default collection publishes."""
    router = APIRouter(prefix="/taxii2")
    get_store = store if callable(store) else (lambda: store)

    def guard(fn):
        import functools
        import inspect

        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                _accepts(kwargs["request"])
                res = fn(*args, **kwargs)
                return await res if inspect.isawaitable(res) else res
            except TaxiiError as e:
                return _error(e)
            except UserError as e:
                return _error(TaxiiError(400, "Bad Request", str(e)))
        return wrapper

    def collection(cid: str, who, *, write: bool = False) -> rules.Collection:
        st = get_store()
        st.ensure_registry_collection()
        c = st.collection(cid)
        if c is None or not (c.can_read(who.org) or c.can_write(who.org)):
            raise TaxiiError(404, "Collection not found", f"no collection {cid} (or not visible to {who.org})")
        if write and not (c.can_write(who.org) and who.role in WRITE_ROLES):
            raise TaxiiError(403, "Forbidden", f"{who.org}/{who.role} may not write collection {cid}")
        if not write and not c.can_read(who.org):
            raise TaxiiError(403, "Forbidden", f"{who.org} may not read collection {cid}")
        if c.kind == "registry" and ws is not None and not write:
            st.publish_registry(ws, server_org, producer)
        return c

    def coll_json(c: rules.Collection, org: str) -> dict:
        return {"id": c.id, "title": c.title, "description": c.description, "can_read": c.can_read(org),
                "can_write": c.can_write(org), "media_types": [STIX]}

    def filters(request: Request) -> dict:
        q = request.query_params

        def lst(name):
            v = q.get(name)
            return [x.strip() for x in v.split(",") if x.strip()] if v else None
        try:
            limit = int(q.get("limit", MAX_PAGE))
        except ValueError:
            raise TaxiiError(400, "Bad Request", f"limit: {q.get('limit')!r} is not a number") from None
        if limit < 1:
            raise TaxiiError(400, "Bad Request", "limit must be at least 1")
        return {"limit": limit, "next_token": q.get("next"), "added_after": q.get("added_after"),
                "ids": lst("match[id]"), "types": lst("match[type]"), "versions": lst("match[version]"),
                "spec_versions": lst("match[spec_version]")}

    def served(c: rules.Collection, who, f: dict, object_id: str | None = None):
        page = get_store().page(c.id, object_id=object_id, **f)
        hide = rules.hidden_names(c.hidden)
        rows = []
        for _seq, date_added, oid, version, _typ, tlp, org, body in page["rows"]:
            if rules.may_serve(tlp, org, c, who.org).allowed:
                rows.append((date_added, oid, version, body))
        headers = {}
        if page["rows"]:
            headers = {"X-TAXII-Date-Added-First": iso_us(page["rows"][0][1]),
                       "X-TAXII-Date-Added-Last": iso_us(page["rows"][-1][1])}
        return page, rows, hide, headers

    @router.get("/")
    @guard
    def discovery(request: Request):
        base = str(request.base_url).rstrip("/")
        return _resp({"title": title, "description": "chaintrace intelligence sharing (STIX 2.1 over TAXII 2.1)",
                      "default": f"{base}/taxii2/{API_ROOT}/", "api_roots": [f"{base}/taxii2/{API_ROOT}/"]})

    @router.get("/{root}/")
    @guard
    def api_root(request: Request, root: str, who=Depends(principal)):
        _root(root)
        return _resp({"title": title, "description": "collections of this chaintrace server",
                      "versions": [TAXII], "max_content_length": MAX_CONTENT})

    @router.get("/{root}/collections/")
    @guard
    def collections(request: Request, root: str, who=Depends(principal)):
        _root(root)
        st = get_store()
        st.ensure_registry_collection()
        return _resp({"collections": [coll_json(c, who.org) for c in st.collections()
                                      if c.can_read(who.org) or c.can_write(who.org)]})

    @router.get("/{root}/collections/{cid}/")
    @guard
    def one_collection(request: Request, root: str, cid: str, who=Depends(principal)):
        _root(root)
        c = collection(cid, who)
        return _resp(coll_json(c, who.org))

    @router.get("/{root}/collections/{cid}/objects/")
    @guard
    def get_objects(request: Request, root: str, cid: str, who=Depends(principal)):
        _root(root)
        c = collection(cid, who)
        page, rows, hide, headers = served(c, who, filters(request))
        if hide:
            bodies = [json.dumps(rules.redact(json.loads(b), hide), separators=(",", ":"), ensure_ascii=False)
                      for _, _, _, b in rows]
        else:
            bodies = [b for _, _, _, b in rows]  # stored as compact JSON: spliced, not re-encoded
        head = {"more": page["more"], **({"next": page["next"]} if page["next"] else {})}
        raw = json.dumps(head)[:-1] + ',"objects":[' + ",".join(bodies) + "]}"
        return Response(raw.encode("utf-8"), status_code=200, media_type=TAXII, headers=headers)

    @router.post("/{root}/collections/{cid}/objects/")
    @guard
    async def post_objects(request: Request, root: str, cid: str, who=Depends(principal)):
        _root(root)
        ctype = request.headers.get("content-type", "").replace(" ", "").lower()
        if not ctype.startswith("application/taxii+json") or ("version=" in ctype and "version=2.1" not in ctype):
            raise TaxiiError(415, "Unsupported Media Type", f"Content-Type must be {TAXII}")
        if int(request.headers.get("content-length") or 0) > MAX_CONTENT:
            raise TaxiiError(413, "Payload Too Large", f"max_content_length is {MAX_CONTENT}")
        c = collection(cid, who, write=True)
        raw = await request.body()
        if len(raw) > MAX_CONTENT:
            raise TaxiiError(413, "Payload Too Large", f"max_content_length is {MAX_CONTENT}")
        try:
            env = json.loads(raw)
        except ValueError as e:
            raise TaxiiError(400, "Bad Request", f"body is not JSON ({e})") from None
        if not isinstance(env, dict) or not isinstance(env.get("objects"), list):
            raise TaxiiError(400, "Bad Request", "body must be an envelope {\"objects\": [...]}")
        st = get_store().add_objects(c.id, env["objects"], who.org,
                                     check=lambda o: rules.may_store(rules.tlp_of(o), who.org, c))
        return _resp(st, 202)

    @router.get("/{root}/collections/{cid}/manifest/")
    @guard
    def manifest(request: Request, root: str, cid: str, who=Depends(principal)):
        _root(root)
        c = collection(cid, who)
        page, rows, _, headers = served(c, who, filters(request))
        body = {"more": page["more"], "objects": [{"id": oid, "date_added": iso_us(da), "version": ver,
                                                   "media_type": STIX} for da, oid, ver, _ in rows]}
        if page["next"]:
            body["next"] = page["next"]
        return _resp(body, headers=headers)

    @router.get("/{root}/collections/{cid}/objects/{oid}/")
    @guard
    def get_object(request: Request, root: str, cid: str, oid: str, who=Depends(principal)):
        _root(root)
        c = collection(cid, who)
        f = filters(request)
        f.pop("ids")
        page, rows, hide, headers = served(c, who, f, object_id=oid)
        if not rows:
            raise TaxiiError(404, "Object not found", f"no object {oid} in collection {cid}")
        body = {"more": page["more"], "objects": [rules.redact(json.loads(b), hide) for *_, b in rows]}
        if page["next"]:
            body["next"] = page["next"]
        return _resp(body, headers=headers)

    @router.delete("/{root}/collections/{cid}/objects/{oid}/")
    @guard
    def delete_object(request: Request, root: str, cid: str, oid: str, who=Depends(principal)):
        _root(root)
        c = collection(cid, who, write=True)
        if not get_store().delete_object(c.id, oid):
            raise TaxiiError(404, "Object not found", f"no object {oid} in collection {cid}")
        return _resp({})

    @router.get("/{root}/collections/{cid}/objects/{oid}/versions/")
    @guard
    def versions(request: Request, root: str, cid: str, oid: str, who=Depends(principal)):
        _root(root)
        c = collection(cid, who)
        f = filters(request)
        f.pop("ids")
        f["versions"] = ["all"]
        page, rows, _, headers = served(c, who, f, object_id=oid)
        if not rows:
            raise TaxiiError(404, "Object not found", f"no object {oid} in collection {cid}")
        return _resp({"more": page["more"], "versions": sorted({ver for _, _, ver, _ in rows})}, headers=headers)

    @router.get("/{root}/status/{sid}/")
    @guard
    def status(request: Request, root: str, sid: str, who=Depends(principal)):
        _root(root)
        st = get_store().status(sid)
        if st is None:
            raise TaxiiError(404, "Status not found", f"no status {sid}")
        return _resp(st)

    return router


def _root(root: str) -> None:
    if root != API_ROOT:
        raise TaxiiError(404, "API root not found", f"this server has one API root: {API_ROOT}")


__all__ = ["REGISTRY_COLLECTION", "TAXII", "TaxiiError", "mount_taxii", "taxii_router"]


ENV_ORG = "CHAINTRACE_ORG"


def mount_taxii(app, ws) -> None:
    """Add the TAXII router to the app of ``chaintrace serve``: store ``DATA/share/taxii.sqlite``, keys of
    any role may read (per collection), analysts and admins may write; the server's own organisation (owner
    of the registry collection's objects) is ``$CHAINTRACE_ORG`` (default ``local``)."""
    import os

    from chaintrace.api.auth import require_role
    from chaintrace.share.taxii_server import store_for

    state: dict = {}

    def store() -> TaxiiStore:
        if "store" not in state:
            state["store"] = store_for(ws)
        return state["store"]

    app.state.taxii_store = store
    app.include_router(taxii_router(store, require_role("screener", "analyst"), ws=ws,
                                    server_org=os.environ.get(ENV_ORG, "local")))
