"""`chaintrace report`: a regulator-grade document (English or Arabic, HTML or PDF) of a trace report
(library: chaintrace.report.document.write_document)."""
from __future__ import annotations

from pathlib import Path

import click

from chaintrace.cli import main
from chaintrace.cli._common import console, data_option, print_json
from chaintrace.errors import UserError


@main.command("report")
@click.argument("case_id", required=False, metavar="[CASE]")
@click.option("--trace", "trace_file", default=None, type=click.Path(dir_okay=False),
              help="A trace report in JSON (chaintrace trace ... --out REPORT.json) [default with CASE: the "
                   "case's latest attached trace].")
@click.option("--lang", type=click.Choice(["en", "ar"]), default="en", show_default=True,
              help="Language: English or Arabic (right-to-left layout).")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html", show_default=True,
              help="Document format: self-contained HTML, or PDF printed by headless Chromium.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--title", default=None, help="Title on the cover [default: Trace report: CHAIN].")
@click.option("--no-spread", is_flag=True,
              help="Do not re-run the trace under the other taint policies (the policy spread is then not shown).")
@click.option("--no-registry", is_flag=True, help="Do not look the cited addresses up in the intelligence registry.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON (for programs).")
@data_option
def report_cmd(ws, case_id, trace_file, lang, fmt, out, title, no_spread, no_registry, as_json):
    """Write the report document of a trace (or of a CASE and its trace): cover (case, analysts, data version,
    dates), summary in plain words, method and policies with the spread between policies (the trace re-run under
    every other policy of the chain), coverage and caveats, flow diagram (Sankey), timeline, cash-out table
    with evidence paths, sanctions and attribution with the precision of their dates, the case's screening
    results, notes, exhibits and audit trail, appendix of identifiers (library:
    chaintrace.report.context.document_inputs + chaintrace.report.document.write_document).

    \b
    Example:
      chaintrace report --trace ronin.json --lang ar --format pdf --out ronin-ar.pdf
      chaintrace report case-20261207-1a2b3c --lang en --format html --out case.html
    """
    from chaintrace.report import cases
    from chaintrace.report.context import document_inputs
    from chaintrace.report.document import write_document

    if not Path(out).resolve().parent.is_dir():
        raise UserError(f"--out {out}: directory {Path(out).resolve().parent} does not exist")
    rep, case, ctx = document_inputs(ws, case_id, trace_file, spread=not no_spread, sanctions=not no_registry)
    p = write_document(rep, out, lang=lang, fmt=fmt, title=title, case=case, context=ctx)
    info = {"out": str(p), "lang": lang, "format": fmt, "bytes": p.stat().st_size, "case": case_id,
            "trace": str(trace_file or cases.case_traces(ws, case)[-1]),
            "partial_seed": bool((rep.coverage or {}).get("partial_seed")), "coverage": bool(rep.coverage),
            "spread": [{"policy": x["name"], "sinks": (x["totals"] or {}).get("sinks"), "error": x["error"]}
                       for x in (ctx["spread"] or {}).get("policies") or []],
            "attributed": len((ctx["attribution"] or {}).get("rows") or [])}
    if as_json:
        return print_json(info)
    console.print(f"wrote {p} ({fmt}, {lang}, {info['bytes']:,} bytes)")
    if not rep.coverage:
        console.print("[yellow]the trace report has no coverage block (made by an older chaintrace): the document "
                      "says coverage is unknown; re-run the trace[/]")
