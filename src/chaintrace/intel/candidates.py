"""The review queue of extracted incident candidates (``chaintrace intel candidates ...``).

Candidates live in one JSON file of the workspace (``<data>/intake/candidates.json``, written atomically),
each with a status (``new``, ``accepted``, ``merged``, ``rejected``) and a history of review actions.
Accepting imports the candidate into the intel registry as an incident (or an aggregate) with its source
and evidence (through the ordinary incidents-CSV importer); a candidate that matches a catalogued incident
(same victim, amount within 5%, overlapping period) is not accepted as a duplicate: the answer proposes
``merge``, which adds the candidate's source and evidence to that incident.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
from decimal import Decimal
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel import registry as reg
from chaintrace.store.workspace import Workspace

STATUSES = ("new", "accepted", "merged", "rejected")
_INC_COLS = ["id", "date", "date_end", "victim", "title", "kind", "chains", "asset", "amount_asset", "amount_usd",
             "actor", "actor_detail", "attribution", "attributed_by", "sources", "notes"]
_ATTR = {"confirmed": "confirmed", "attributed": "confirmed", "suspected": "suspected"}


def _path(ws: Workspace) -> Path:
    return Path(ws.path) / "intake" / "candidates.json"


def _load(ws: Workspace) -> dict:
    p = _path(ws)
    if not p.exists():
        return {"candidates": {}}
    try:
        return json.loads(p.read_text("utf-8"))
    except ValueError as e:
        raise UserError(f"{p}: not a candidates file ({e})") from None


def _save(ws: Workspace, data: dict) -> None:
    p = _path(ws)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), "utf-8")
    os.replace(tmp, p)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def add(ws: Workspace, candidates: list[dict]) -> dict:
    """Queue candidates (a candidate already queued, same id, is kept as it is). Returns counts."""
    data = _load(ws)
    new = 0
    for c in candidates:
        if c["id"] in data["candidates"]:
            continue
        data["candidates"][c["id"]] = {"candidate": c, "status": "new",
                                       "history": [{"at": _now(), "action": "queued"}]}
        new += 1
    _save(ws, data)
    return {"queued": new, "already_queued": len(candidates) - new, "total": len(data["candidates"])}


def list_candidates(ws: Workspace, status: str | None = None) -> list[dict]:
    if status is not None and status not in STATUSES:
        raise UserError(f"--status {status!r} is not one of {', '.join(STATUSES)}")
    rows = []
    for cid, e in _load(ws)["candidates"].items():
        if status is None or e["status"] == status:
            rows.append({"id": cid, "status": e["status"], **{k: e["candidate"].get(k) for k in (
                "kind", "amount_usd", "date", "victim", "actor", "confidence", "document")}})
    return rows


def get(ws: Workspace, cid: str) -> dict:
    data = _load(ws)
    e = data["candidates"].get(cid)
    if e is None:
        raise UserError(f"no candidate {cid!r} in {_path(ws)} (see `chaintrace intel candidates list`)")
    return {"id": cid, **e, "matches": matches(ws, e["candidate"])}


def _norm(s: str | None) -> str:
    return reg.norm_alias(s or "")


def _overlap(c: dict, inc: dict) -> bool:
    d = c.get("date")
    if not d or not d.get("start_date"):
        return True
    lo, hi = str(inc["date"]), str(inc.get("date_end") or inc["date"])
    # a month's slack each side: news dates are coarse
    lo2 = (_dt.date.fromisoformat(lo[:10]) - _dt.timedelta(days=31)).isoformat()
    hi2 = (_dt.date.fromisoformat(hi[:10]) + _dt.timedelta(days=31)).isoformat()
    return d["start_date"] <= hi2 and d["end_date"] >= lo2


def matches(ws: Workspace, c: dict) -> list[dict]:
    """Catalogued incidents this candidate may duplicate: same victim (or, without a named victim, the same
    amount), amount within 5% when both have one, overlapping period."""
    from chaintrace.intel.incidents import all_incidents

    out = []
    v = c.get("victim") or {}
    names = {_norm(v.get("name")), _norm(v.get("id"))} - {""}
    amt = Decimal(str(c["amount_usd"])) if c.get("amount_usd") is not None else None
    for inc in all_incidents(ws)[0]:
        inames = {_norm(inc.get("victim")), _norm(inc.get("title")), _norm(inc.get("incident_id"))} - {""}
        same_victim = any(n == m or (len(n) >= 4 and n in m) for n in names for m in inames)
        ia = Decimal(str(inc["amount_usd"])) if inc.get("amount_usd") is not None else None
        same_amount = amt is not None and ia is not None and abs(amt - ia) <= ia * Decimal("0.05")
        if names and not same_victim:
            continue
        if not names and not same_amount:
            continue
        if amt is not None and ia is not None and not same_amount:
            continue
        if not _overlap(c, inc):
            continue
        out.append({"incident_id": inc["incident_id"], "victim": inc.get("victim"), "date": str(inc["date"]),
                    "amount_usd": inc.get("amount_usd"), "why": ", ".join(
                        x for x, ok in (("same victim", same_victim), ("same amount", same_amount),
                                        ("overlapping period", True)) if ok)})
    return out


def _evidence_note(c: dict) -> str:
    parts = [f"extracted by chaintrace intel extract from {c.get('document') or 'text'}"]
    for k in ("amount", "date", "victim", "actor"):
        f = c.get(k)
        if f and f.get("evidence"):
            e = f["evidence"]
            parts.append(f"{k}: chars {e['start']}-{e['end']} \"{e['text']}\"")
    return "; ".join(parts)


def _sources(c: dict) -> list[str]:
    out = []
    if c.get("source"):
        out.append(c["source"]["name"])
    if c.get("document"):
        out.append(str(c["document"]))
    return out


def _import_csv(ws: Workspace, cid: str, header: list[str], row: dict) -> dict:
    from chaintrace.intel.api import import_paths

    d = Path(ws.path) / "intake" / "accepted"
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{cid}.csv"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header)
    w.writeheader()
    w.writerow(row)
    p.write_text(buf.getvalue(), "utf-8")
    return import_paths(ws, "incidents", [p])


def _record(ws: Workspace, cid: str, status: str, action: dict) -> dict:
    data = _load(ws)
    e = data["candidates"][cid]
    e["status"] = status
    e["history"].append({"at": _now(), **action})
    _save(ws, data)
    return {"id": cid, **e}


def _require(ws: Workspace, cid: str, allowed=("new",)) -> dict:
    e = get(ws, cid)
    if e["status"] not in allowed:
        raise UserError(f"candidate {cid} is {e['status']} already (history: "
                        f"{', '.join(h['action'] for h in e['history'])})")
    return e


def accept(ws: Workspace, cid: str, *, incident_id: str | None = None, force: bool = False,
           reviewer: str | None = None) -> dict:
    """Create an incident (or an aggregate, for kind=aggregate) from a candidate. Refuses when the candidate
    matches a catalogued incident (returns the proposed merges) unless ``force``."""
    e = _require(ws, cid)
    c = e["candidate"]
    if c["kind"] in ("reward", "ransom_demand", "attempt") and not force:
        raise UserError(f"candidate {cid} is a {c['kind']}, not a theft: reject it or accept with --force")
    if e["matches"] and not force:
        return {"id": cid, "status": "new", "proposed_merges": e["matches"],
                "message": "matches a catalogued incident: merge it (chaintrace intel candidates merge "
                           f"{cid} --into {e['matches'][0]['incident_id']}) or accept with --force"}
    d = c.get("date") or {}
    if not d.get("start_date"):
        raise UserError(f"candidate {cid} has no date: an incident needs one (edit the source text or reject)")
    iid = incident_id or f"news-{cid[5:]}"
    if c["kind"] == "aggregate":
        header = ["id", "period_start", "period_end", "scope", "amount_usd", "actor", "sources"]
        if c.get("amount_usd") is None:
            raise UserError(f"candidate {cid} is an aggregate without a USD amount")
        row = {"id": iid, "period_start": d["start_date"], "period_end": d["end_date"],
               "scope": _evidence_note(c), "amount_usd": str(c["amount_usd"]),
               "actor": (c.get("actor") or {}).get("id") or "", "sources": "|".join(_sources(c))}
    else:
        header = _INC_COLS
        v = c.get("victim") or {}
        a = c.get("actor") or {}
        crypto = (c.get("crypto_amounts") or [None])[0]
        row = {"id": iid, "date": d["start_date"], "date_end": d["end_date"] if d["end_date"] != d["start_date"] else "",
               "victim": v.get("name") or f"unnamed {v.get('type') or 'victim'}",
               "title": (c.get("sentence") or {}).get("text", "")[:200], "kind": (c.get("attack_type") or {}).get("type") or "",
               "chains": "", "asset": crypto["asset"] if crypto else ("USD" if c.get("amount_usd") is not None else ""),
               "amount_asset": crypto["value"] if crypto else "",
               "amount_usd": "" if c.get("amount_usd") is None else str(c["amount_usd"]),
               "actor": a.get("id") or "", "actor_detail": a.get("name") or "",
               "attribution": _ATTR.get(a.get("attribution") or "", ""),
               "attributed_by": (c.get("source") or {}).get("name", ""), "sources": "|".join(_sources(c)),
               "notes": _evidence_note(c)}
    r = _import_csv(ws, cid, header, row)
    return _record(ws, cid, "accepted", {"action": "accepted", "incident_id": iid, "reviewer": reviewer,
                                          "import": r["files"][0].get("import_id") if r.get("files") else None})


def merge(ws: Workspace, cid: str, into: str, *, reviewer: str | None = None) -> dict:
    """Add a candidate's source and evidence to a catalogued incident (re-imported with the same id)."""
    from chaintrace.intel.incidents import all_incidents

    e = _require(ws, cid)
    c = e["candidate"]
    inc = next((i for i in all_incidents(ws)[0] if i["incident_id"] == into), None)
    if inc is None:
        raise UserError(f"--into {into!r} is not a catalogued incident (see `chaintrace intel incidents`)")
    row = {k: "" for k in _INC_COLS}
    for k in _INC_COLS:
        v = inc.get("incident_id" if k == "id" else k)
        if isinstance(v, list):
            v = (";" if k == "chains" else "|").join(str(x) for x in v)
        row[k] = "" if v is None else str(v)
    row["sources"] = "|".join(list(dict.fromkeys([s for s in row["sources"].split("|") if s] + _sources(c))))
    row["notes"] = "; ".join(x for x in (row["notes"], "also reported: " + _evidence_note(c)) if x)
    _import_csv(ws, cid, _INC_COLS, row)
    return _record(ws, cid, "merged", {"action": "merged", "incident_id": into, "reviewer": reviewer})


def reject(ws: Workspace, cid: str, *, reason: str, reviewer: str | None = None) -> dict:
    if not reason.strip():
        raise UserError("--reason is required to reject a candidate")
    _require(ws, cid)
    return _record(ws, cid, "rejected", {"action": "rejected", "reason": reason, "reviewer": reviewer})
