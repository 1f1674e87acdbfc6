"""`chaintrace case ...`: cases with seeds, traces, screening results, notes, exhibits and a hash-chained audit
trail (library: chaintrace.report.cases, chaintrace.report.case_export)."""
from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from chaintrace.cli import main
from chaintrace.cli._common import console, data_option, format_option, print_json, table
from chaintrace.errors import UserError

ANALYST = click.option("--analyst", default=None,
                       help="Who does this (recorded in the audit trail) [env CHAINTRACE_ANALYST; default: OS user].")


@main.group("case")
def case_group():
    """Cases: seeds, traces, screening results, notes and exhibits with an append-only, hash-chained audit trail.

    Then `chaintrace report CASE --lang en|ar --format html|pdf --out FILE` writes the case's report document.
    """


def _entry_text(a: dict) -> str:
    d = {k: v for k, v in (a.get("detail") or {}).items() if k != "analyst_from"}
    if a["action"] == "note":
        return d.get("text", "")
    if "file" in d:
        return f"{d['file']} sha256 {d['sha256']}" + (f" ({d['name']})" if d.get("name") else "")
    return json.dumps(d, ensure_ascii=False, default=str)


@case_group.command("new")
@click.option("--title", required=True, help="What the case is about.")
@click.option("--id", "case_id", default=None, help="The case id (e.g. your case number) [default: case-DATE-RANDOM].")
@click.option("--address", "addresses", multiple=True, help="A seed address (repeatable).")
@click.option("--tx", "txids", multiple=True, help="A seed transaction id (repeatable).")
@click.option("--chain", default=None, help="The chain of the seed addresses (btc, eth, ...), when known.")
@ANALYST
@format_option("text", "json")
@data_option
def case_new(ws, title, case_id, addresses, txids, chain, analyst, fmt):
    """Open a case (library: chaintrace.report.cases.new).

    \b
    Example:
      chaintrace case new --title "Ronin bridge outflows" --address 0x098b716b8aaf21512996dc57eb0615e2383e2f96
    """
    from chaintrace.report import cases

    c = cases.new(ws, title, addresses=[{"chain": chain, "address": a} for a in addresses], txids=list(txids),
                  analyst=analyst, case_id=case_id)
    if fmt == "json":
        return print_json(c)
    console.print(f"case {c['id']} opened by {c['audit'][0]['analyst']}", markup=False)


@case_group.command("list")
@click.option("--status", default=None, help="open, investigating or closed.")
@format_option("text", "json")
@data_option
def case_list(ws, status, fmt):
    """List cases (library: chaintrace.report.cases.list_cases).

    \b
    Example:
      chaintrace case list
    """
    from chaintrace.report import cases

    rows = cases.list_cases(ws, status)
    if fmt == "json":
        return print_json({"cases": rows})
    console.print(table(f"{len(rows)} cases", ["id", "status", "opened", "title", "seeds", "entries", "origin"],
                        [(r["id"], r["status"], r["created_at"], escape(r["title"]),
                          len(r["addresses"]) + len(r["txids"]), r["entries"], escape(json.dumps(r["origin"])))
                         for r in rows]))


@case_group.command("show")
@click.argument("case_id", metavar="CASE")
@format_option("text", "json")
@data_option
def case_show(ws, case_id, fmt):
    """Show a case: seeds, traces, screening results, exhibits, notes and the audit trail
    (library: chaintrace.report.cases.get).

    \b
    Example:
      chaintrace case show case-20261207-a1b2c3
    """
    from chaintrace.report import cases

    c = cases.get(ws, case_id)
    if fmt == "json":
        return print_json(c)
    console.print(f"{c['id']}  {c['status']}  {c['title']}  (opened {c['created_at']}; analysts "
                  f"{', '.join(c['analysts'])})", markup=False)
    for a in c["addresses"]:
        console.print(f"seed address {a.get('chain') or ''} {a['address']}", markup=False)
    for t in c["txids"]:
        console.print(f"seed tx {t}", markup=False)
    for t in c["traces"]:
        console.print(f"trace {t['file']} ({t['chain']}, {t['policy'].get('name')}, data "
                      f"{(t['data'].get('heights') or {}).get('first')}..{(t['data'].get('heights') or {}).get('last')})"
                      f" sha256 {t['sha256']}", markup=False)
    for s in c["screens"]:
        console.print(f"screening {s['file']} ({'run' if s['ran'] else 'added'}): "
                      + ", ".join(f"{k} {v}" for k, v in (s.get("risks") or {}).items()), markup=False)
    for e in c["exhibits"]:
        console.print(f"exhibit {e['name']} ({e['bytes']:,} bytes) sha256 {e['sha256']} {e['description']}",
                      markup=False)
    console.print(table("audit trail (head " + (c["head"] or "?")[:16] + ")", ["#", "at", "analyst", "action", "detail"],
                        [(a["seq"], a["at"], a["analyst"], a["action"], escape(_entry_text(a))) for a in c["audit"]]))


@case_group.command("add")
@click.argument("case_id", metavar="CASE")
@click.option("--seed", "seeds", multiple=True, help="A seed address or transaction id (repeatable).")
@click.option("--chain", default=None, help="The chain of --seed addresses, when known.")
@click.option("--trace", "trace_files", multiple=True, type=click.Path(dir_okay=False),
              help="A trace report in JSON (chaintrace trace ... --out REPORT.json) to keep (repeatable).")
@click.option("--run-trace", "run_policy", default=None, metavar="POLICY",
              help="Trace the case's seeds now under POLICY (haircut, poison, fifo, ...) on --chain, and keep the "
                   "report.")
@click.option("--min-value", type=int, default=None, help="With --run-trace: smallest value followed (base units).")
@click.option("--screen", "screen_files", multiple=True, type=click.Path(dir_okay=False),
              help="A screening result in JSON (chaintrace screen address ... --format json) to keep (repeatable).")
@click.option("--screen-address", "screen_addresses", multiple=True,
              help="Screen this address now and keep the result (repeatable; needs `chaintrace screen index`).")
@click.option("--exhibit", "exhibits", multiple=True, type=click.Path(dir_okay=False),
              help="A file to copy into the case with its SHA-256 (repeatable).")
@click.option("--description", default=None, help="What the --exhibit files are.")
@ANALYST
@format_option("text", "json")
@data_option
def case_add(ws, case_id, seeds, chain, trace_files, run_policy, min_value, screen_files, screen_addresses, exhibits,
             description, analyst, fmt):
    """Add seeds, traces, screening results or exhibits to a case; each is one audit entry, files are kept with
    their SHA-256 (library: chaintrace.report.cases.add_seeds / attach_trace / run_trace / attach_screen /
    run_screen / add_exhibit).

    \b
    Example:
      chaintrace case add case-20261207-a1b2c3 --trace ronin.json --exhibit news.pdf --description "news report"
      chaintrace case add case-20261207-a1b2c3 --seed 0x098b716b8aaf21512996dc57eb0615e2383e2f96 --chain eth
    """
    from chaintrace.report import cases

    if not (seeds or trace_files or run_policy or screen_files or screen_addresses or exhibits):
        raise UserError("nothing to add: give --seed, --trace, --run-trace, --screen, --screen-address or --exhibit")
    before = len(cases.get(ws, case_id)["audit"])
    if seeds:
        cases.add_seeds(ws, case_id, list(seeds), chain=chain, analyst=analyst)
    for f in trace_files:
        cases.attach_trace(ws, case_id, f, analyst=analyst)
    if run_policy:
        cases.run_trace(ws, case_id, chain=chain or "btc", policy=run_policy, analyst=analyst, min_value=min_value)
    for f in screen_files:
        cases.attach_screen(ws, case_id, f, analyst=analyst)
    if screen_addresses:
        cases.run_screen(ws, case_id, list(screen_addresses), analyst=analyst)
    for f in exhibits:
        cases.add_exhibit(ws, case_id, f, description, analyst=analyst)
    added = cases.get(ws, case_id)["audit"][before:]
    if fmt == "json":
        return print_json({"case": case_id, "added": added})
    for a in added:
        console.print(f"#{a['seq']} {a['action']}: {_entry_text(a)}", markup=False)
    if not added:
        console.print("nothing new (the seeds are in the case already)")


@case_group.command("add-trace")
@click.argument("case_id", metavar="CASE")
@click.option("--trace", "trace_file", required=True, type=click.Path(dir_okay=False),
              help="A trace report in JSON to keep with the case (copied, with its SHA-256, audited).")
@ANALYST
@format_option("text", "json")
@data_option
def case_add_trace(ws, case_id, trace_file, analyst, fmt):
    """Attach a trace report to a case (the same as `case add CASE --trace FILE`).

    \b
    Example:
      chaintrace case add-trace case-20261207-1a2b3c --trace ronin.json
    """
    from chaintrace.report import cases

    c = cases.attach_trace(ws, case_id, trace_file, analyst=analyst)
    last = c["audit"][-1]
    if fmt == "json":
        return print_json(last)
    console.print(f"trace {trace_file} attached to case {case_id} as {last['detail']['file']} "
                  f"(sha256 {last['detail']['sha256']})", markup=False)


@case_group.command("note")
@click.argument("case_id", metavar="CASE")
@click.argument("text")
@ANALYST
@format_option("text", "json")
@data_option
def case_note(ws, case_id, text, analyst, fmt):
    """Add a note to a case (library: chaintrace.report.cases.note).

    \b
    Example:
      chaintrace case note case-20261207-a1b2c3 "exchange asked to freeze the deposits" --analyst amina
    """
    from chaintrace.report import cases

    a = cases.note(ws, case_id, text, analyst=analyst)["audit"][-1]
    if fmt == "json":
        return print_json(a)
    console.print(f"#{a['seq']} note by {a['analyst']} at {a['at']}", markup=False)


@case_group.command("status")
@click.argument("case_id", metavar="CASE")
@click.argument("status", type=click.Choice(["open", "investigating", "closed"]))
@ANALYST
@format_option("text", "json")
@data_option
def case_status(ws, case_id, status, analyst, fmt):
    """Set a case's status (audited).

    \b
    Example:
      chaintrace case status case-20261207-a1b2c3 investigating
    """
    from chaintrace.report import cases

    a = cases.set_status(ws, case_id, status, analyst=analyst)["audit"][-1]
    if fmt == "json":
        return print_json(a)
    console.print(f"#{a['seq']} status {a['detail']['from']} -> {a['detail']['to']}", markup=False)


@case_group.command("verify")
@click.argument("case_id", metavar="[CASE]", required=False)
@click.option("--archive", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Check an exported case archive instead (its manifest's hashes and its audit chain).")
@format_option("text", "json")
@data_option
def case_verify(ws, case_id, archive, fmt):
    """Check a case's audit chain (an entry edited or deleted is named) and the SHA-256 of every file it keeps
    (without CASE: every case of the workspace); or an exported archive. Exit status 1 when a check fails (library: chaintrace.report.cases.verify,
    chaintrace.report.case_export.verify_archive).

    \b
    Example:
      chaintrace case verify case-20261207-a1b2c3
      chaintrace case verify
      chaintrace case verify --archive case.zip
    """
    from chaintrace.report import case_export, cases

    if case_id and archive:
        raise UserError("give a CASE or --archive FILE, not both")
    if not case_id and not archive:  # every case of the workspace
        results = [cases.verify(ws, c["id"]) for c in cases.list_cases(ws)]
        if fmt == "json":
            print_json({"cases": results, "ok": all(v["ok"] for v in results)})
        else:
            for v in results:
                console.print(f"{'OK' if v['ok'] else 'FAILED'} {v['case']}: {v['entries']} entries, {v['files']} "
                              f"files" + "".join(f"\n  - {p}" for p in v["problems"]), markup=False)
            console.print(f"{sum(v['ok'] for v in results)} of {len(results)} cases verify", markup=False)
        if not all(v["ok"] for v in results):
            sys.exit(1)
        return
    v = case_export.verify_archive(archive) if archive else cases.verify(ws, case_id)
    if fmt == "json":
        print_json(v)
    else:
        what = f"archive {archive}" if archive else f"case {case_id}"
        if v["ok"]:
            console.print(f"OK {what}: {v['entries']} audit entries chained to head {v['head']}, {v['files']} files "
                          "match their SHA-256", markup=False)
        else:
            console.print(f"FAILED {what}:", markup=False)
            for p in v["problems"]:
                console.print(f"  - {p}", markup=False)
        if v.get("interrupted_writes"):
            console.print(f"{len(v['interrupted_writes'])} temporary file(s) of interrupted writes (not part of the "
                          "case; safe to delete): " + ", ".join(v["interrupted_writes"]), markup=False)
    if not v["ok"]:
        sys.exit(1)


@case_group.command("export")
@click.argument("case_id", metavar="CASE")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The archive to write (.zip).")
@click.option("--lang", "langs", multiple=True, type=click.Choice(["en", "ar"]),
              help="Report language(s) to include [default: en].")
@click.option("--pdf", is_flag=True, help="Include the report as PDF too (headless Chromium).")
@click.option("--no-spread", is_flag=True, help="Do not re-run the trace under the other policies for the report.")
@ANALYST
@format_option("text", "json")
@data_option
def case_export_cmd(ws, case_id, out, langs, pdf, no_spread, analyst, fmt):
    """Write a self-contained archive of a case: case.json (with the audit trail), every file it keeps, the
    report document and manifest.json with the SHA-256 of each file (library:
    chaintrace.report.case_export.export_case).

    \b
    Example:
      chaintrace case export case-20261207-a1b2c3 --out case.zip --lang en --lang ar
    """
    from chaintrace.report.case_export import export_case

    m = export_case(ws, case_id, out, langs=tuple(langs) or ("en",), pdf=pdf, analyst=analyst, spread=not no_spread)
    if fmt == "json":
        return print_json(m)
    console.print(f"wrote {m['out']}: {len(m['files'])} files + manifest.json, audit head {m['audit_head']}, "
                  f"sha256 {m['sha256']}", markup=False)
    if m["report"]:
        console.print(m["report"], markup=False)
