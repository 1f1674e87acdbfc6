"""Traces and cases of the web UI (analyst and admin keys): run a trace, keep its report, draw its flow graph,
download its report document; list, open and annotate cases, attach traces, download the case report.

Objects belong to the organisation of the key that made them: a trace report is kept as
``DATA/ui/traces/<id>.json`` with ``<id>.meta.json`` naming its organisation; a case made from the UI carries
``detail.org``. Keys of other organisations get 404 (the object's existence is not revealed); admin keys see
all. Cases made with the CLI (no organisation) belong to the server's own organisation.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from chaintrace.api.app import http_error
from chaintrace.api.auth import Principal, require_role
from chaintrace.errors import UserError

router = APIRouter(tags=["ui"])
ANALYST = require_role("analyst")
ID_RE = re.compile(r"^[0-9a-f]{16}$")
MAX_TRACE_PATHS = 200


def traces_dir(ws) -> Path:
    return ws.path / "ui" / "traces"


def _may(who: Principal, org: str | None) -> bool:
    from chaintrace.api.ui import home_org

    return who.role == "admin" or (org or home_org()) == who.org


def _bad(e: Exception):
    return http_error(400, "bad_request", str(e))


# ----------------------------------------------------------------------------------------------- traces


class TraceBody(BaseModel):
    seeds: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(min_length=1, max_length=64)
    chain: str = Field("btc", pattern=r"^(btc|eth)$")
    policy: str = Field("haircut", max_length=20)
    max_hops: int | None = Field(None, ge=0, le=1000)
    top_paths: int = Field(50, ge=0, le=MAX_TRACE_PATHS)


def load_trace(ws, tid: str, who: Principal) -> tuple[dict, Path]:
    if not ID_RE.fullmatch(tid):
        raise http_error(404, "not_found", f"no trace {tid!r}")
    p = traces_dir(ws) / f"{tid}.json"
    meta = p.with_suffix(".meta.json")
    if not p.is_file() or not meta.is_file() or not _may(who, json.loads(meta.read_text())["org"]):
        raise http_error(404, "not_found", f"no trace {tid!r} for organisation {who.org}")
    return json.loads(p.read_bytes()), p


def _trace_answer(request: Request, tid: str, report: dict, who: Principal) -> dict:
    from chaintrace.api.ui import redact_trace
    from chaintrace.api.ui_graph import trace_graph

    report = redact_trace(request, report, who)
    return {"id": tid, "report": report, "graph": trace_graph(report)}


@router.post("/ui/api/trace")
def run_trace(body: TraceBody, request: Request, who: Principal = Depends(ANALYST)):
    """Run a trace (seeds, chain, policy, hops), keep its report for the key's organisation, answer the report
    and its flow graph."""
    from chaintrace.trace import trace

    ws = request.app.state.ws
    try:
        rep = trace(ws, body.seeds, chain=body.chain, policy=body.policy, max_hops=body.max_hops,
                    top_paths=body.top_paths)
    except UserError as e:
        raise _bad(e) from None
    data = json.dumps(rep.to_dict(), ensure_ascii=False, sort_keys=True).encode()
    import hashlib

    tid = hashlib.sha256(data + who.org.encode()).hexdigest()[:16]
    d = traces_dir(ws)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{tid}.json").write_bytes(data)
    (d / f"{tid}.meta.json").write_text(json.dumps({"org": who.org, "key_id": who.key_id, "name": who.name,
                                                    "at": _dt.datetime.now(_dt.timezone.utc).isoformat()}))
    return _trace_answer(request, tid, json.loads(data), who)


@router.get("/ui/api/trace/{tid}")
def get_trace(tid: str, request: Request, who: Principal = Depends(ANALYST)):
    """A kept trace: report and flow graph."""
    report, _ = load_trace(request.app.state.ws, tid, who)
    return _trace_answer(request, tid, report, who)


def _document(request: Request, report_dict: dict, lang: str, fmt: str, case: dict | None, name: str,
              who: Principal) -> Response:
    """The report document as `chaintrace report` writes it (library: chaintrace.report.context.case_context +
    chaintrace.report.document.write_document): policy spread, attribution with sources, the case's screens;
    values naming intelligence `who` may not see are withheld."""
    from chaintrace.api.ui import restricted_strings, scrub
    from chaintrace.report.context import case_context
    from chaintrace.report.document import write_document
    from chaintrace.trace.report import TraceReport

    ws = request.app.state.ws
    rep = TraceReport.from_dict(report_dict)
    ctx = scrub(case_context(ws, rep, case), restricted_strings(request, who))
    with tempfile.TemporaryDirectory(prefix="chaintrace-ui-") as tmp:
        out = Path(tmp) / f"{name}.{fmt}"
        try:
            write_document(rep, out, lang=lang, fmt=fmt, case=case, context=ctx)
        except UserError as e:
            raise http_error(503, "unavailable", str(e)) from None
        body = out.read_bytes()
    media = "application/pdf" if fmt == "pdf" else "text/html; charset=utf-8"
    return Response(body, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}-{lang}.{fmt}"'})


LANG = Query("en", pattern="^(en|ar)$")
FMT = Query("html", pattern="^(html|pdf)$")


@router.get("/ui/api/trace/{tid}/report")
def trace_report(tid: str, request: Request, lang: str = LANG, format: str = FMT,
                 who: Principal = Depends(ANALYST)):
    """The report document of a kept trace (``chaintrace report --trace``), HTML or PDF, English or Arabic."""
    from chaintrace.api.ui import redact_trace

    report, _ = load_trace(request.app.state.ws, tid, who)
    return _document(request, redact_trace(request, report, who), lang, format, None, f"trace-{tid}", who)


# ----------------------------------------------------------------------------------------------- cases


def _case(ws, cid: str, who: Principal) -> dict:
    from chaintrace.report import cases

    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cid):
        raise http_error(404, "not_found", f"no case {cid!r}")
    try:
        c = cases.get(ws, cid)
    except UserError:
        raise http_error(404, "not_found", f"no case {cid!r}") from None
    if not _may(who, (c.get("detail") or {}).get("org")):
        raise http_error(404, "not_found", f"no case {cid!r} for organisation {who.org}")
    return c


class CaseBody(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    addresses: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list, max_length=1000)


class NoteBody(BaseModel):
    text: str = Field(min_length=1, max_length=10000)


class AttachBody(BaseModel):
    trace_id: str = Field(pattern=r"^[0-9a-f]{16}$")


@router.get("/ui/api/cases")
def list_cases(request: Request, who: Principal = Depends(ANALYST)):
    """The cases the key's organisation may see (admin: all)."""
    from chaintrace.report import cases

    rows = [c for c in cases.list_cases(request.app.state.ws) if _may(who, (c.get("detail") or {}).get("org"))]
    return {"cases": rows}


@router.post("/ui/api/cases")
def new_case(body: CaseBody, request: Request, who: Principal = Depends(ANALYST)):
    """Open a case for the key's organisation (the key's name is the analyst in its audit trail)."""
    from chaintrace.report import cases

    try:
        return cases.new(request.app.state.ws, body.title, addresses=body.addresses,
                         detail={"org": who.org}, analyst=who.name)
    except UserError as e:
        raise _bad(e) from None


@router.get("/ui/api/cases/{cid}")
def show_case(cid: str, request: Request, who: Principal = Depends(ANALYST)):
    """A case with its audit trail (notes, traces attached)."""
    return _case(request.app.state.ws, cid, who)


@router.post("/ui/api/cases/{cid}/notes")
def add_note(cid: str, body: NoteBody, request: Request, who: Principal = Depends(ANALYST)):
    from chaintrace.report import cases

    _case(request.app.state.ws, cid, who)
    return cases.note(request.app.state.ws, cid, body.text, analyst=who.name)


@router.post("/ui/api/cases/{cid}/traces")
def attach(cid: str, body: AttachBody, request: Request, who: Principal = Depends(ANALYST)):
    """Attach a kept trace (of the key's organisation) to the case."""
    from chaintrace.report import cases

    ws = request.app.state.ws
    _case(ws, cid, who)
    _, path = load_trace(ws, body.trace_id, who)
    return cases.attach_trace(ws, cid, path, analyst=who.name)


@router.get("/ui/api/cases/{cid}/report")
def case_report(cid: str, request: Request, lang: str = LANG, format: str = FMT,
                who: Principal = Depends(ANALYST)):
    """The case report document (its latest trace, cover and audit trail), HTML or PDF, English or Arabic."""
    from chaintrace.api.ui import redact_trace
    from chaintrace.report import cases

    ws = request.app.state.ws
    c = _case(ws, cid, who)
    paths = cases.case_traces(ws, c)
    if not paths:
        raise http_error(409, "conflict", f"case {cid} has no trace attached: run a trace and attach it first")
    report = redact_trace(request, json.loads(paths[-1].read_bytes()), who)
    return _document(request, report, lang, format, c, cid, who)


# ----------------------------------------------------------------------------------------------- admin


@router.get("/ui/api/admin/keys")
def keys(request: Request, who: Principal = Depends(require_role("admin"))):
    """The service's keys (ids, names, roles, organisations; never the keys): admin only."""
    from chaintrace.api.keys import list_keys

    return {"keys": list_keys(request.app.state.ws)}

