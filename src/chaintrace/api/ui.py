"""The web investigation UI of `chaintrace serve`: the single-page app at ``/`` (built from ``web/`` into
``chaintrace/api/static``) and its JSON endpoints under ``/ui/api/``.

Access (docs/ui.md): the same API keys as the screening service (``X-API-Key``). Roles: a *screener* key may
only screen (``POST /ui/api/screen``) and ask who it is; *analyst* keys search, open address / transaction /
entity / incident pages, run traces and work on cases; *admin* keys all of that plus the key list. Object by
object: traces and cases belong to the organisation of the key that made them (admin keys see every
organisation's); tags marked TLP:RED / AMBER+STRICT / AMBER are shown only to keys of the server's own
organisation (``CHAINTRACE_ORG``, default ``local``), by the pure rules of :mod:`chaintrace.share.tlp`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from chaintrace.api.app import JSONBody, http_error
from chaintrace.api.auth import Principal, require_role
from chaintrace.api.tlp import home_org, restricted_strings, scrub, tlp_visible  # noqa: F401 (re-exported)
from chaintrace.errors import UserError

router = APIRouter(tags=["ui"])
STATIC = Path(__file__).with_name("static")
ANY_KEY = require_role("screener", "analyst")
SCREENER = require_role("screener", "analyst")
ANALYST = require_role("analyst")
ADMIN = require_role("admin")
TXID_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def _user_error(e: UserError):
    return http_error(400, "bad_request", str(e))


# ----------------------------------------------------------------------------------------------- static


@router.get("/", include_in_schema=False)
def index() -> HTMLResponse:
    """The single-page app (no data in it: every answer comes from the JSON endpoints with the key)."""
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"),
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy":
                                 "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:"})


@router.get("/ui/static/{name}", include_in_schema=False)
def static(name: str):
    path = STATIC / name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith(".") or not path.is_file():
        raise http_error(404, "not_found", f"no static file {name!r}")
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


# ----------------------------------------------------------------------------------------------- TLP


def filter_lookup(d: dict, who: Principal) -> dict:
    """A registry lookup answer without the tags `who` may not see (primary label, conflicts, categories and
    actors recomputed from what is left); ``restricted`` says how many were withheld."""
    from chaintrace.intel.lookup import rank_by_trust

    tags = [t for t in d["tags"] if tlp_visible(t.get("tlp"), who)]
    hidden = len(d["tags"]) - len(tags)
    if not hidden:
        return d | {"restricted": 0}
    top, conflicts = rank_by_trust(list(tags))
    primary = d["primary"] if d["primary"] and d["primary"].get("category") == "sanction" and d["sanctioned"] else (
        {k: top[k] for k in ("category", "trust", "source", "label")} if top else None)
    keep = {t.get("actor") for t in tags} | {s.get("actor") for s in d["sanctions"]} | \
        {i.get("actor") for i in d["incidents"]}
    cats = {t["category"] for t in tags if t.get("category")} | ({"sanction"} if d["sanctioned"] else set())
    if any(i.get("side") != "victim" for i in d["incidents"]):
        cats.add("service_hack")
    return d | {"tags": tags, "primary": primary, "conflicts": conflicts, "categories": sorted(cats),
                "actors": [a for a in d["actors"] if a["id"] in keep],
                "known": bool(tags or d["sanctions"] or d["incidents"]), "restricted": hidden}


def visible_incidents(rows: list[dict], who: Principal) -> list[dict]:
    """Incidents (shared ones carry the producer's TLP) that `who` may see."""
    return [i for i in rows if tlp_visible(i.get("tlp"), who)]


def _restricted_addresses(ws, addresses: list[str], who: Principal) -> set[str]:
    """Addresses whose every registry tag is hidden from `who` (their sink labels are withheld)."""
    from chaintrace.intel import lookup

    if who.org == home_org() or not addresses:
        return set()
    out = set()
    for d in lookup(ws, addresses):
        if d["tags"] and not any(tlp_visible(t.get("tlp"), who) for t in d["tags"]) and not d["sanctioned"]:
            out.add(d["address"])
    return out


def redact_trace(request: Request, report: dict, who: Principal) -> dict:
    """The trace report with the labels of sinks known only through restricted tags withheld (and any other
    value naming a restricted tag)."""
    ws = request.app.state.ws
    report = scrub(report, restricted_strings(request, who))
    addrs = sorted({s["address"] for s in report.get("sinks") or [] if s.get("address")})
    hide = _restricted_addresses(ws, addrs, who)
    if not hide:
        return report
    sinks = [s | {"label": "restricted", "category": "restricted", "actor": None, "actor_name": None,
                  "source": None} if s.get("address") in hide else s for s in report["sinks"]]

    def steps(p):
        return p | {"steps": [st | {"label": None} if st.get("address") in hide else st for st in p["steps"]]}

    return report | {"sinks": sinks, "paths": [steps(p) for p in report.get("paths") or []],
                     "restricted_sinks": len(hide)}


# ----------------------------------------------------------------------------------------------- who, search


@router.get("/ui/api/me")
def me(who: Principal = Depends(ANY_KEY)):
    """The key's name, role and organisation (the UI shows only what the role may use)."""
    return {"key_id": who.key_id, "name": who.name, "role": who.role, "org": who.org, "home_org": home_org()}


@router.get("/ui/api/search")
def search(request: Request, q: Annotated[str, Query(min_length=1, max_length=256)],
           who: Principal = Depends(ANALYST)):
    """What `q` names: an address (any chain the registry knows), a transaction id, actors (entities) and
    incidents (id, victim or title); a list of ``{"type", "id", "title"}``."""
    from chaintrace import intel
    from chaintrace.intel import addresses as addr

    ws, q = request.app.state.ws, q.strip()
    hits: list[dict] = []
    if TXID_RE.fullmatch(q):
        hits.append({"type": "tx", "id": q, "title": q})
    chain = addr.detect(q)
    if chain is not None:
        hits.append({"type": "address", "id": q, "title": f"{q} ({chain})"})
    if len(q) >= 3:
        for a in intel.find_actors(ws, q)[:10]:
            hits.append({"type": "entity", "id": a["id"], "title": a.get("name") or a["id"]})
        low = q.lower()
        for i in visible_incidents(intel.timeline(ws)["incidents"], who):
            text = " ".join(str(i.get(k) or "") for k in ("incident_id", "victim", "title")).lower()
            if low in text:
                hits.append({"type": "incident", "id": i["incident_id"],
                             "title": f"{i['date']} {i.get('victim') or i.get('title') or ''}".strip()})
    return {"query": q, "results": hits[:50]}


# ----------------------------------------------------------------------------------------------- pages


def _chain_data(ws, chain: str | None, address: str) -> dict | None:
    try:
        if chain == "eth":
            from chaintrace.chains.eth import query as q

            return q.eth_address(ws, address)
        from chaintrace.store import query

        return query.btc_address(ws, address)
    except UserError as e:
        return {"error": str(e)}
    except Exception as e:  # noqa: BLE001 - an empty or missing table: say so, do not fail the page
        return {"error": f"no chain data for this address ({type(e).__name__})"}


@router.get("/ui/api/address/{address}")
def address_page(request: Request, address: str, who: Principal = Depends(ANALYST)):
    """An address: registry labels (TLP-filtered), sanctions with their list history (dates and the state
    at today), incidents, the screening answer (exposure) and the chain's own data (balance, recent)."""
    from chaintrace import intel
    from chaintrace.intel import addresses as addr
    from chaintrace.intel.lookup import answer_basis

    ws = request.app.state.ws
    if len(address) > 256:
        raise http_error(422, "invalid_request", "address longer than 256 characters", "address")
    info = filter_lookup(intel.lookup(ws, [address])[0], who)
    screening = request.app.state.screener.addresses([address])
    chain = addr.detect(address)
    info["incidents"] = visible_incidents(info["incidents"], who)
    return scrub({"address": address, "chain": chain, "intel": info, "basis": answer_basis(ws),
                  "screening": screening["results"][0], "data_version": screening["data_version"],
                  "chain_data": _chain_data(ws, chain, address) if chain in ("btc", "eth") else None},
                 restricted_strings(request, who))


@router.get("/ui/api/tx/{txid}")
def tx_page(request: Request, txid: str, who: Principal = Depends(ANALYST)):
    """A transaction of the workspace's chain data (inputs, outputs, fee)."""
    ws = request.app.state.ws
    if not TXID_RE.fullmatch(txid):
        raise http_error(422, "invalid_request", f"{txid!r} is not a transaction id (64 hex digits)", "txid")
    try:
        if txid.startswith("0x"):
            from chaintrace.chains.eth import query as q

            return {"chain": "eth", "tx": q.eth_tx(ws, txid)}
        from chaintrace.store import query

        return {"chain": "btc", "tx": query.btc_tx(ws, txid)}
    except UserError as e:
        raise http_error(404, "not_found", str(e)) from None


@router.get("/ui/api/entity/{ident}")
def entity_page(request: Request, ident: str, who: Principal = Depends(ANALYST)):
    """An actor (entity) with aliases and its incident timeline."""
    from chaintrace import intel

    ws = request.app.state.ws
    actors = intel.find_actors(ws, ident)
    if not actors:
        raise http_error(404, "not_found", f"no actor named {ident!r} (see `chaintrace intel actors`)")
    try:
        tl = intel.timeline(ws, actor=actors[0]["id"])
    except UserError:
        tl = {"incidents": [], "total_usd": 0}
    inc = visible_incidents(tl["incidents"], who)
    return {"actor": actors[0], "others": actors[1:10], "incidents": inc, "total_usd": _total(inc)}


@router.get("/ui/api/incidents")
def incidents(request: Request, actor: str | None = None, who: Principal = Depends(ANALYST)):
    """The incident timeline (built-in DPRK catalogue and imports), optionally of one actor."""
    from chaintrace import intel

    try:
        tl = intel.timeline(request.app.state.ws, actor=actor)
    except UserError as e:
        raise _user_error(e) from None
    inc = visible_incidents(tl["incidents"], who)
    return {"incidents": inc, "aggregates": tl["aggregates"], "total_usd": _total(inc),
            "counted": sum(1 for i in inc if i.get("amount_usd") is not None)}


def _total(incidents: list[dict]) -> str:
    from decimal import Decimal

    return str(sum((Decimal(str(i["amount_usd"])) for i in incidents if i.get("amount_usd") is not None), Decimal(0)))


# ----------------------------------------------------------------------------------------------- screening


class ScreenBody(BaseModel):
    addresses: list[Annotated[str, Field(max_length=256)]] = Field(min_length=1, max_length=1000)


@router.post("/ui/api/screen")
def screen(body: ScreenBody, request: Request, who: Principal = Depends(SCREENER)):
    """Screen up to 1,000 addresses (the screening service's answer, audited the same way)."""
    from chaintrace.api.routes import audit
    from chaintrace.api.tlp import scrubbed_body

    ans, raw = scrubbed_body(request.app.state.screener.addresses(body.addresses), restricted_strings(request, who))
    audit(request, who, "ui.screen", {"n": len(body.addresses), "subjects": body.addresses}, ans, raw)
    return JSONBody(raw)


from chaintrace.api import ui_cases  # noqa: E402 - traces, cases, report downloads, admin

router.include_router(ui_cases.router)
