"""Screening endpoints, the Chainalysis-compatible sanctions endpoint, status and health."""
from __future__ import annotations

import datetime as _dt
import hashlib
from enum import Enum
from operator import itemgetter
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from chaintrace.api.app import JSONBody
from chaintrace.api.auth import Principal, ratelimit_headers, require_role
from chaintrace.screen.service import MAX_BATCH, all_warnings, gc_pause, gc_resume

router = APIRouter()
SCREENER = require_role("screener", "analyst")
ANY_KEY = require_role("screener", "analyst")


# ----------------------------------------------------------------------------------------------- models


class Chain(str, Enum):
    btc = "btc"
    eth = "eth"


class AddressesRequest(BaseModel):
    addresses: list[Annotated[str, Field(max_length=256)]] = Field(
        min_length=1, max_length=MAX_BATCH, description=f"Addresses to screen (1 to {MAX_BATCH:,}).")


class TransfersRequest(BaseModel):
    transfers: list[Annotated[str, Field(max_length=256)]] = Field(
        min_length=1, max_length=MAX_BATCH,
        description="Transfer references: `txid:vout` (Bitcoin), `0x<txhash>[:log|trace]` (Ethereum).")


class Exposure(BaseModel):
    """One exposure row (docs/screening.md, "Answers"). Rows of other kinds add the fields below that are
    null/absent on plain rows: `unidentified_service` relations (`value`, `values`, `transfers`, `txids`,
    `detection`), rows carried across a bridge (`via`, `bridge`, `probabilistic`, `confidence`, `matches`,
    `n_matches`), rows of recognised mixers (`detection`)."""
    category: str | None = None
    abuse: str | None = None
    entity: str | None = None
    actor: str | None = None
    type: str = Field(description="direct | indirect")
    direction: str = Field(description="incoming | outgoing (`self` on unidentified_service rows)")
    hops_min: int
    amount: str | None = Field(description="base units (satoshi, wei) as a decimal string; null on relation rows")
    share: float | None = None
    asset: str | None = Field(None, description="eth: `ETH` or the token's contract address (the amount's unit)")
    severity: str | None = Field(None, description="the configuration's severity of the category (null: informational)")
    counts: bool | None = Field(None, description="whether its severity's rule fired (else listed, informational)")
    value: str | None = Field(None, description="unidentified_service rows (Bitcoin): what the transactions paid, "
                              "satoshi")
    values: dict[str, str] | None = Field(None, description="unidentified_service rows (Ethereum): {asset: exact sum}")
    transfers: int | None = Field(None, description="unidentified_service rows: how many transactions/transfers")
    txids: list[str] | None = Field(None, description="unidentified_service rows: up to three of them")
    detection: dict | None = Field(None, description="the behavioural detection behind the row "
                                   "({address, kind, confidence, hub, features, txids})")
    via: str | None = Field(None, description="`bridge`: carried across a bridge from another chain")
    bridge: dict | None = Field(None, description="{entity, from_chain, to_chain, onward?} of a bridge row")
    probabilistic: bool | None = Field(None, description="bridge rows: true unless every match behind it is "
                                       "deterministic")
    confidence: float | None = Field(None, description="bridge rows: the best match's confidence")
    matches: list[dict] | None = Field(None, description="bridge rows: up to five matches {deposit, release, rule, "
                                       "confidence, deposit_taint, deposit_value, carried}")
    n_matches: int | None = None


class Detection(BaseModel):
    kind: str = Field(description="peel_chain | structuring | pass_through | dormancy (docs/screening.md)")
    role: str
    confidence: float | None = None
    severity: str | None = None
    count: int = 0
    evidence: list[dict] = []
    thresholds: dict = {}


class Sanction(BaseModel):
    list: str
    entity: str | None = None
    programmes: list[str] = []
    listed: str | None = None
    as_of: str | None = None


class Result(BaseModel):
    subject: str
    chain: str | None = None
    risk: str | None = Field(description="severe | high | medium | low | none (null when invalid / unknown)")
    score: int | None = Field(None, description="0-100")
    exposures: list[Exposure] = []
    sanctions: list[Sanction] = []
    evidence: list[dict] = []
    warnings: list[str] = []
    invalid: str | None = None
    bridges: list[dict] = Field([], description="address answers: deposits into / releases out of a bridge, each "
                                "with its match on the other chain, rule, confidence and thresholds "
                                "(docs/screening.md, Bridges)")
    detections: list[Detection] = Field([], description="address answers: the laundering shapes the address takes "
                                        "part in (docs/screening.md, Detections in answers)")


class ScreenResponse(BaseModel):
    results: list[Result]
    data_version: dict


class Identification(BaseModel):
    category: str
    name: str
    description: str
    url: str | None = None


class Identifications(BaseModel):
    identifications: list[Identification]


class Error(BaseModel):
    error: str
    status: int
    field: str | None = None
    message: str


ERRORS = {400: {"model": Error}, 401: {"model": Error}, 403: {"model": Error}, 404: {"model": Error},
          422: {"model": Error}, 429: {"model": Error}}


# ----------------------------------------------------------------------------------------------- audit

_SUMMARY = itemgetter("subject", "risk", "score")  # per result in the audit record


class _Digest:
    """The audit record's ``answer`` part of a screening, computed by the audit writer thread (the response
    does not wait for it): the body's SHA-256 and (subject, risk, score) per result. It holds the answer,
    under a pause of garbage collection taken by the request, until it has been summarised; then it drops the
    answer (freed there, in the writer thread, not on the response's path) and ends the pause: no collection
    ever walks a batch's 100,000 answers."""

    def __init__(self, answer: dict, body: bytes):
        gc_pause()
        self.answer: dict | None = answer
        self.body: bytes | None = body

    def __call__(self) -> dict:
        if self.answer is None or self.body is None:
            raise RuntimeError("audit digest taken twice")
        try:
            return {"sha256": hashlib.sha256(self.body).hexdigest(),
                    "results": list(map(_SUMMARY, self.answer["results"]))}  # tuples: JSON arrays
        finally:
            self.answer = self.body = None
            gc_resume()

    def __del__(self):  # a record dropped unwritten (the writer failed) still ends the pause
        if self.answer is not None:
            self.answer = self.body = None
            gc_resume()


def audit(request: Request, who: Principal, action: str, request_summary: dict, answer: dict,
          body: bytes) -> None:
    log = request.app.state.audit
    if log is None:
        return
    digest = _Digest(answer, body)
    log.append({"key_id": who.key_id, "name": who.name, "org": who.org, "role": who.role, "action": action,
                "request": request_summary, "answer": digest if len(answer["results"]) >= 1000 else digest(),
                "data_version": {k: answer["data_version"].get(k) for k in
                                 ("index", "registry_generation", "config_version", "index_built")}})


def _answer(request: Request, who: Principal, action: str, summary: dict, answer: dict) -> JSONBody:
    from chaintrace.api.tlp import restricted_strings, scrubbed_body

    answer, body = scrubbed_body(answer, restricted_strings(request, who))  # TLP: a partner never reads RED
    audit(request, who, action, summary, answer, body)  # the record holds the answer until it is written
    return JSONBody(body, headers=ratelimit_headers(request))


# ----------------------------------------------------------------------------------------------- screening


@router.post("/v1/screen/addresses", response_model=ScreenResponse, responses=ERRORS, tags=["screening"])
def screen_addresses(req: AddressesRequest, request: Request, who: Principal = Depends(SCREENER)):
    """Screen up to 100,000 addresses: risk, exposures (direct/indirect, incoming/outgoing), sanctions,
    path evidence; one result per address in order."""
    from chaintrace.screen.service import gc_paused

    with gc_paused():  # up to 100,000 answers: no collection walks them; freed by the audit writer (_Digest)
        return _answer(request, who, "screen.addresses", {"n": len(req.addresses), "subjects": req.addresses},
                       request.app.state.screener.addresses(req.addresses))


@router.post("/v1/screen/transfers", response_model=ScreenResponse, responses=ERRORS, tags=["screening"])
def screen_transfers(req: TransfersRequest, request: Request, who: Principal = Depends(SCREENER)):
    """Screen deposits by reference: the source of funds of each transfer (haircut over up to N hops)."""
    ans = request.app.state.screener.transfers(req.transfers)
    return _answer(request, who, "screen.transfers", {"n": len(req.transfers), "subjects": req.transfers}, ans)


@router.get("/v1/screen/address/{chain}/{address}", response_model=ScreenResponse, responses=ERRORS,
            tags=["screening"])
def screen_address(request: Request, chain: Chain, address: Annotated[str, Path(max_length=256)],
                   who: Principal = Depends(SCREENER)):
    """Screen one address of `chain`."""
    ans = request.app.state.screener.addresses([address])
    r = ans["results"][0]
    if r["chain"] is not None and r["chain"] != chain.value:
        r.update(risk=None, score=None, exposures=[], sanctions=[], evidence=[],
                 invalid=f"a {r['chain']} address, not {chain.value}")
    return _answer(request, who, "screen.address", {"n": 1, "subjects": [address], "chain": chain.value}, ans)


# ----------------------------------------------------------------------------------------------- sanctions


def identifications(ws, address: str) -> list[dict]:
    """Chainalysis-shaped identifications of `address`: one per sanctions listing valid today."""
    from chaintrace.intel.index import KIND_SANCTION, get_index

    idx = get_index(ws)
    today = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    out = []
    for kind, row in idx.get(address, at=today):
        if kind != KIND_SANCTION:
            continue
        d = idx.detail(kind, row)
        progs = ", ".join(d.get("programs") or [])
        listed = d.get("listed_date")
        listed = listed.isoformat() if hasattr(listed, "isoformat") else listed
        name = f"SANCTIONS: {d['list_name']} {d.get('entity') or ''}".strip()
        if listed:
            name += f" {listed}"
        desc = (f"{d.get('entity') or 'An entity'} is listed on the {d['list_name']}"
                + (f" under programme(s) {progs}" if progs else "")
                + (f" since {listed}" if listed else "") + f"; this {d['asset']} address is named in the listing"
                + (f" (uid {d['uid']})." if d.get("uid") else "."))
        url = ("https://sanctionssearch.ofac.treas.gov/Details.aspx?id=" + str(d["uid"])
               if d.get("uid") and "OFAC" in d["list_name"].upper() else None)
        out.append({"category": "sanctions", "name": name, "description": desc, "url": url})
    return out


@router.get("/api/v1/address/{address}", response_model=Identifications, responses=ERRORS, tags=["sanctions"])
def sanctions_address(request: Request,
                      address: Annotated[str, Path(max_length=256, pattern=r"^[!-~]+$",
                                                   description="an address (printable ASCII)")],
                      who: Principal = Depends(ANY_KEY)):
    """Compatible with Chainalysis' free sanctions API: ``{"identifications": [...]}``, empty when the
    address is not on a sanctions list the registry holds."""
    ans = {"identifications": identifications(request.app.state.ws, address)}
    body = orjson.dumps(ans)
    log = request.app.state.audit
    if log is not None:
        log.append({"key_id": who.key_id, "name": who.name, "org": who.org, "role": who.role,
                    "action": "sanctions.address", "request": {"n": 1, "subjects": [address]},
                    "answer": {"sha256": hashlib.sha256(body).hexdigest(),
                               "identifications": len(ans["identifications"])}, "data_version": None})
    return JSONBody(body, headers=ratelimit_headers(request))


# ----------------------------------------------------------------------------------------------- service


@router.get("/status", responses=ERRORS, tags=["service"])
def status(request: Request, who: Principal = Depends(require_role("screener", "analyst"))):
    """Data version the answers stand on, warnings, and your key's quota."""
    from chaintrace import __version__

    st = request.app.state
    snap = st.screener.snapshot()
    rec = st.keys.keys()[who.key_id]
    return {"version": __version__, "data_version": snap.data_version, "warnings": all_warnings(snap),
            "key": {"key_id": who.key_id, "name": who.name, "role": who.role, "org": who.org,
                    "quota": st.limiter.peek(who.key_id, rec.limit, rec.window)}}


@router.get("/v1/audit/verify", responses=ERRORS, tags=["service"])
def audit_verify(request: Request, who: Principal = Depends(require_role("admin"))):
    """Recompute the audit log's hash chain (admin keys only); same answer as `chaintrace audit verify`."""
    from chaintrace.api.audit import verify
    from chaintrace.api.keys import api_dir

    if request.app.state.audit is not None:
        request.app.state.audit.flush()
    return verify(api_dir(request.app.state.ws))


@router.get("/health", tags=["service"])
def health():
    """Liveness: no key needed."""
    return {"status": "ok"}
