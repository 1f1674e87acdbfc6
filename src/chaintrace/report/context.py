"""What a report document needs beyond the trace report itself, gathered from the workspace
(:func:`case_context`): the spread between taint policies (the trace re-run under every other policy the
chain's tracer supports), sanctions and attribution of the addresses cited (intelligence registry, with the
precision of each sanctions date from the list history) and the case's screening results.

:func:`chaintrace.report.document.render_document` stays a pure function of the report, the case and this
context, so the web UI and ``chaintrace report`` render the same document.
"""
from __future__ import annotations

from chaintrace.errors import ChaintraceError
from chaintrace.trace.report import TraceReport, entities

KEYS = ("seeded", "sinks", "holdings", "stopped", "fees")


def _totals(r: TraceReport, asset: str) -> dict:
    t = r.totals(asset) if asset in r.assets else dict.fromkeys(KEYS, 0)
    return {k: int(t[k]) for k in KEYS} | {"entities": len([e for e in entities(r) if e["asset"] == asset])}


def rerun(ws, report: TraceReport, policy: str) -> TraceReport:
    """`report`'s trace again, with the same seeds, chain, limits and tag files, under `policy` (no paths)."""
    from chaintrace.trace import trace

    lim, par = report.limits or {}, (report.policy or {}).get("params") or {}
    return trace(ws, [s.spec for s in report.seeds], chain=report.chain, policy=policy,
                 fee_mode=par.get("fee_mode", "tail"), max_hops=lim.get("max_hops"),
                 min_value=None if lim.get("min_value") is None else int(lim["min_value"]),
                 min_share=float(lim.get("min_share") or 0.0), since=lim.get("since"), until=lim.get("until"),
                 max_txs=lim.get("max_txs"), tags=(report.tags or {}).get("files") or (),
                 registry=bool((report.tags or {}).get("registry", True)),
                 clusters=bool((report.tags or {}).get("clusters", True)), top_paths=0,
                 coinjoins=lim.get("coinjoins") or "follow", follow_services=lim.get("services") == "follow")


def policy_spread(ws, report: TraceReport, policies: tuple[str, ...] | None = None) -> dict:
    """The key figures of `report` under every policy of its chain's tracer (or `policies`): ``{"asset",
    "policies": [{"name", "totals": {seeded, sinks, holdings, stopped, fees, entities}, "error", "source"}],
    "min": {...}, "max": {...}, "entities": [{"entity", "category", "amounts": {policy: int}, "min", "max"}],
    "data_match": bool, "note"}``. The report's own policy is taken from the report (not re-run); a policy that
    cannot run is listed with its error. ``data_match`` is False when the workspace's data is not the data
    the report was made from (then the spread compares different data and ``note`` says so)."""
    from chaintrace.trace import get_tracer
    from chaintrace.trace.report import compare

    asset = report.asset
    own = (report.policy or {}).get("name")
    try:
        names = tuple(policies or get_tracer(report.chain).policies)
    except ChaintraceError as e:
        return {"asset": asset, "policies": [], "error": str(e), "data_match": False, "note": str(e)}
    rows: list[dict] = [{"name": own, "totals": _totals(report, asset), "error": None, "source": "report"}]
    ok_reports = [report]
    match, note = True, None
    for p in names:
        if p == own:
            continue
        try:
            r = rerun(ws, report, p)
        except (ChaintraceError, ValueError, OSError) as e:
            rows.append({"name": p, "totals": None, "error": str(e), "source": "re-run"})
            continue
        ok_reports.append(r)
        rows.append({"name": p, "totals": _totals(r, asset), "error": None, "source": "re-run"})
        same = ((r.coverage or {}).get("heights") == (report.coverage or {}).get("heights")
                and r.stats.get("store_commit") == report.stats.get("store_commit"))
        if not same:
            match = False
            note = ("the workspace's data differs from the data of the report (store commit / block range): the "
                    "other policies were run on the workspace's data")
    errors = {x["error"] for x in rows[1:] if x["error"]}
    if len(rows) > 1 and len(errors) == 1 and all(x["error"] for x in rows[1:]):
        return {"asset": asset, "policies": rows, "error": errors.pop(), "data_match": False, "note": None}
    good = [x["totals"] for x in rows if x["totals"]]
    ents = []
    for row in compare(ok_reports)[:12]:
        if row["asset"] != asset:
            continue
        amounts = {ok_reports[i].policy.get("name"): int(a) for i, a in enumerate(row["amounts"])}
        ents.append({"entity": row["entity"], "category": row["category"], "amounts": amounts,
                     "min": min(amounts.values()), "max": max(amounts.values())})
    return {"asset": asset, "policies": rows, "data_match": match, "note": note, "error": None,
            "min": {k: min(t[k] for t in good) for k in KEYS + ("entities",)} if good else {},
            "max": {k: max(t[k] for t in good) for k in KEYS + ("entities",)} if good else {},
            "entities": ents}


def date_precision(s: dict) -> list[str]:
    """What a sanctions list history can say of when an address was listed (one sanction of
    :func:`chaintrace.intel.lookup.lookup`): ``listed no later than F`` (the first imported snapshot holding
    it), ``not on the snapshot of A`` (so added between A and F), ``entry dates from L`` (the list's entry date,
    not the address's), ``removed by T``."""
    out = []
    if s.get("valid_from"):
        out.append(f"listed no later than {s['valid_from']} (first imported list snapshot holding the address)")
    if s.get("absent_before"):
        out.append(f"not on the snapshot of {s['absent_before']}")
    if s.get("listed_date"):
        out.append(f"entry dates from {s['listed_date']} (the list gives no date per address)")
    elif not s.get("absent_before"):
        out.append("no earlier snapshot imported")
    if s.get("valid_to"):
        out.append(f"removed by {s['valid_to']} (not on that snapshot)")
    return out


def cited_addresses(report: TraceReport, case: dict | None = None, limit: int = 120) -> list[tuple[str, str]]:
    """(address, role) of the seeds, the case's addresses, the sinks (largest first) and the largest holdings;
    role: ``seed``, ``case_seed``, ``sink`` or ``holding``."""
    out: dict[str, str] = {}
    for sd in report.seeds:
        if sd.kind == "address":
            out.setdefault(sd.spec, "seed")
    for a in (case or {}).get("addresses") or []:
        out.setdefault(a["address"], "case_seed")
    for s in sorted(report.sinks, key=lambda s: -s.amount)[:limit]:
        out.setdefault(s.address, "sink")
    for h in sorted(report.holdings, key=lambda h: -h.amount)[:20]:
        if h.address:
            out.setdefault(h.address, "holding")
    return list(out.items())[:limit]


def attribution(ws, report: TraceReport, case: dict | None = None) -> dict:
    """Sanctions, tags and incidents the intelligence registry holds for the addresses cited, with their
    sources and the precision of each sanctions date: ``{"basis": {...}, "rows": [{"address", "role",
    "sanctioned", "sanction_reason", "sanctions": [... + "precision": [...]], "tags", "incidents"}]}`` (only
    addresses the registry knows); ``error`` when the registry cannot be read."""
    from chaintrace.intel.lookup import answer_basis, lookup

    cited = cited_addresses(report, case)
    try:
        found = lookup(ws, [a for a, _ in cited]) if cited else []
        basis = answer_basis(ws)
    except (ChaintraceError, OSError, ValueError) as e:
        return {"basis": None, "rows": [], "error": str(e)}
    rows = []
    for (a, role), hit in zip(cited, found):
        if not hit.get("known"):
            continue
        rows.append({"address": a, "role": role, "sanctioned": hit.get("sanctioned"),
                     "sanction_reason": hit.get("sanction_reason"),
                     "sanctions": [s | {"precision": date_precision(s)} for s in hit.get("sanctions") or []],
                     "tags": [{k: t.get(k) for k in ("label", "category", "source", "trust")}
                              for t in hit.get("tags") or []][:6],
                     "incidents": [{k: i.get(k) for k in ("incident_id", "title", "date", "role", "source", "actor")}
                                   for i in hit.get("incidents") or []][:6],
                     "actors": hit.get("actors") or []})
    lists = [{k: x.get(k) for k in ("name", "list", "snapshots", "first", "latest", "version", "source")
              if k in x} for x in (basis or {}).get("sanctions_lists") or []]
    return {"basis": {"at": (basis or {}).get("at"), "lists": lists, "warnings": (basis or {}).get("warnings", [])},
            "rows": rows, "services": service_sources(report), "error": None}


def service_sources(report: TraceReport, limit: int = 40) -> list[dict]:
    """Where the trace's attribution of each receiving service comes from (its sink transfers' tags): ``{entity,
    category, labels, sources, via_cluster, addresses}``, largest service first."""
    from chaintrace.trace.report import entity_key, entity_name

    groups: dict[tuple, dict] = {}
    for s in sorted(report.sinks, key=lambda s: -s.amount):
        g = groups.setdefault((entity_key(s), s.category), {
            "entity": entity_name(s), "category": s.category, "amount": 0, "labels": set(), "sources": set(),
            "via_cluster": 0, "addresses": set()})
        g["amount"] += s.amount
        g["labels"].add(s.label)
        g["sources"].add(s.source or "unknown")
        g["via_cluster"] += int(bool(s.via_cluster))
        g["addresses"].add(s.address)
    out = sorted(groups.values(), key=lambda g: -g["amount"])[:limit]
    return [g | {"labels": sorted(g["labels"])[:5], "sources": sorted(g["sources"]), "addresses": len(g["addresses"])}
            for g in out]


def case_context(ws, report: TraceReport, case: dict | None = None, *, spread: bool = True,
                 sanctions: bool = True) -> dict:
    """Everything :func:`chaintrace.report.document.render_document` shows beyond the report and the case:
    ``{"spread": policy_spread(...) | None, "attribution": attribution(...) | None, "screens": [...]}``."""
    from chaintrace.report.cases import case_screens

    return {"spread": policy_spread(ws, report) if spread else None,
            "attribution": attribution(ws, report, case) if sanctions else None,
            "screens": case_screens(ws, case) if case else []}


def document_inputs(ws, case_id: str | None = None, trace_file=None, *, spread: bool = True,
                    sanctions: bool = True) -> tuple[TraceReport, dict | None, dict]:
    """(report, case, context) for a report document: the trace `trace_file`, else the latest trace attached to
    `case_id`; then ``render_document(report, lang, case=case, context=context)`` or ``write_document(...)``.
    Raises UserError for a case without a trace, a missing or unreadable trace file."""
    from pathlib import Path

    from chaintrace.errors import UserError
    from chaintrace.report import cases

    case = cases.get(ws, case_id) if case_id else None
    if trace_file is None:
        if case is None:
            raise UserError("give --trace REPORT.json or a CASE with an attached trace")
        attached = cases.case_traces(ws, case)
        if not attached:
            raise UserError(f"case {case_id} has no trace: chaintrace case add {case_id} --trace REPORT.json")
        trace_file = attached[-1]
    if not Path(trace_file).is_file():
        raise UserError(f"--trace {trace_file}: no such file")
    try:
        rep = TraceReport.read_json(trace_file)
    except ChaintraceError as e:
        raise UserError(str(e)) from None
    return rep, case, case_context(ws, rep, case, spread=spread, sanctions=sanctions)
