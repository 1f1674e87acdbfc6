"""`chaintrace intel extract` (news -> incident candidates) and `chaintrace intel candidates ...` (review)."""
from __future__ import annotations

import click

from chaintrace.cli._common import (
    console,
    data_option,
    format_option,
    print_json,
    table,
)
from chaintrace.cli.intel import intel_group, usd


def _when(d: dict | None) -> str:
    if not d:
        return ""
    s = d["start"] if d["start"] == d["end"] else f"{d['start']}..{d['end'] or ''}"
    return s + (f" ({d['qualifier']})" if d.get("qualifier") else "") + (" ~" if d.get("year_inferred") else "")


def _who(v: dict | None) -> str:
    if not v:
        return ""
    return v.get("name") or f"({v.get('type')})"


def _actor(a: dict | None) -> str:
    return "" if not a else f"{a['name']}: {a['attribution']}" + (" (inherited)" if a.get("inherited") else "")


def _field_text(k: str, f: dict, c: dict) -> str:
    if k == "amount":
        return usd(c["amount_usd"]) if c["amount_usd"] is not None else f"{f['value']} {f['currency']}"
    if k == "date":
        return _when(f)
    if k == "victim":
        return _who(f)
    if k == "actor":
        return _actor(f)
    return f.get("type") or f.get("name") or ""


@intel_group.command("extract")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--lang", type=click.Choice(["auto", "ar", "en"]), default="auto", show_default=True,
              help="Article language (auto: by script).")
@click.option("--date", "date", default=None, help="Publication date YYYY-MM-DD (resolves months without a year).")
@click.option("--save", is_flag=True, help="Queue the candidates for review (chaintrace intel candidates list).")
@format_option("text", "json")
@data_option
def extract_cmd(ws, files, lang, date, save, fmt):
    """Read news articles (plain text or HTML, Arabic or English) and list incident candidates.

    Each candidate has amount_usd (and crypto amounts), kind (incident, aggregate, attempt, ransom_demand,
    reward), victim, date/period, actor + attribution, attack type and reporting source, each with its
    evidence: character offsets into the original file and the quoted text.

    \b
    Example:
      chaintrace intel extract ../shared/fixtures/news/un-panel-316m.ar.txt --date 2021-02-09
      chaintrace intel extract article.html --format json --save
    """
    from chaintrace.intel.candidates import add
    from chaintrace.intel.extract import extract_files

    r = extract_files(files, lang=lang, date=date)
    if save:
        r["queue"] = add(ws, r["candidates"])
    if fmt == "json":
        return print_json(r)
    rows = [(c["id"], c["kind"], usd(c["amount_usd"]) if c["amount_usd"] is not None else
             (f"{c['amount']['value']} {c['amount']['currency']}" if c.get("amount") else ""), _when(c["date"]),
             _who(c["victim"]), _actor(c["actor"]), (c["attack_type"] or {}).get("type", ""),
             (c["source"] or {}).get("name", ""), f"{c['confidence']:.2f}") for c in r["candidates"]]
    console.print(table(f"{len(rows)} candidates from {len(files)} document(s)",
                        ["id", "kind", "amount", "date", "victim", "actor", "attack", "source", "conf"], rows,
                        {"amount": "right"}))
    if save:
        q = r["queue"]
        console.print(f"queued {q['queued']} new candidate(s) ({q['total']} in the review queue)")


@intel_group.group("candidates")
def candidates_group():
    """Review queue of extracted incident candidates: list, show, accept, merge, reject."""


@candidates_group.command("list")
@click.option("--status", default=None, help="new, accepted, merged or rejected.")
@format_option("text", "json")
@data_option
def cand_list(ws, status, fmt):
    """List queued candidates.

    \b
    Example:
      chaintrace intel candidates list --status new
    """
    from chaintrace.intel.candidates import list_candidates

    rows = list_candidates(ws, status)
    if fmt == "json":
        return print_json({"candidates": rows})
    console.print(table(f"{len(rows)} candidates", ["id", "status", "kind", "amount", "date", "victim", "actor", "conf"],
                        [(r["id"], r["status"], r["kind"], usd(r["amount_usd"]), _when(r["date"]), _who(r["victim"]),
                          _actor(r["actor"]), f"{r['confidence']:.2f}") for r in rows], {"amount": "right"}))


@candidates_group.command("show")
@click.argument("cid")
@format_option("text", "json")
@data_option
def cand_show(ws, cid, fmt):
    """Show a candidate with every field's evidence and the catalogued incidents it may duplicate.

    \b
    Example:
      chaintrace intel candidates show cand-0123456789ab
    """
    from chaintrace.intel.candidates import get

    e = get(ws, cid)
    if fmt == "json":
        return print_json(e)
    c = e["candidate"]
    rows = []
    for k in ("amount", "date", "victim", "actor", "attack_type", "source"):
        f = c.get(k)
        if f:
            ev = f.get("evidence") or {}
            value = _field_text(k, f, c)
            rows.append((k, value, f"{ev.get('start')}-{ev.get('end')}", ev.get("text")))
    console.print(table(f"{cid}: {c['kind']} ({e['status']}), confidence {c['confidence']:.2f}, {c['document']}",
                        ["field", "value", "chars", "evidence"], rows))
    console.print("sentence: " + c["sentence"]["text"])
    for n in c["notes"]:
        console.print(f"note: {n}")
    for m in e["matches"]:
        console.print(f"matches catalogued incident {m['incident_id']} ({m['victim']}, {m['date']}): {m['why']}")


@candidates_group.command("accept")
@click.argument("cid")
@click.option("--id", "incident_id", default=None, help="Incident id to create (default news-<candidate>).")
@click.option("--force", is_flag=True, help="Accept even when it matches a catalogued incident.")
@format_option("text", "json")
@data_option
def cand_accept(ws, cid, incident_id, force, fmt):
    """Accept a candidate: an incident (or aggregate) in the registry, with its source and evidence.

    \b
    Example:
      chaintrace intel candidates accept cand-0123456789ab
    """
    from chaintrace.intel.candidates import accept

    r = accept(ws, cid, incident_id=incident_id, force=force)
    if fmt == "json":
        return print_json(r)
    if r.get("proposed_merges"):
        console.print(r["message"])
        return
    console.print(f"{cid} accepted as incident {r['history'][-1]['incident_id']}")


@candidates_group.command("merge")
@click.argument("cid")
@click.option("--into", required=True, help="The catalogued incident id.")
@format_option("text", "json")
@data_option
def cand_merge(ws, cid, into, fmt):
    """Add a candidate's source and evidence to a catalogued incident.

    \b
    Example:
      chaintrace intel candidates merge cand-0123456789ab --into bangladesh-bank-2016
    """
    from chaintrace.intel.candidates import merge

    r = merge(ws, cid, into)
    if fmt == "json":
        return print_json(r)
    console.print(f"{cid} merged into {into}")


@candidates_group.command("reject")
@click.argument("cid")
@click.option("--reason", required=True, help="Why (kept in the candidate's history).")
@format_option("text", "json")
@data_option
def cand_reject(ws, cid, reason, fmt):
    """Reject a candidate (kept with the reason).

    \b
    Example:
      chaintrace intel candidates reject cand-0123456789ab --reason "opinion piece, no new incident"
    """
    from chaintrace.intel.candidates import reject

    r = reject(ws, cid, reason=reason)
    if fmt == "json":
        return print_json(r)
    console.print(f"{cid} rejected")
