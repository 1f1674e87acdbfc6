"""`chaintrace report`: a regulator-grade document (English or Arabic, HTML or PDF) of a trace report
(library: chaintrace.report.document.write_document)."""
from __future__ import annotations

from pathlib import Path

import click

from chaintrace.cli import main
from chaintrace.cli._common import console, data_option, format_option, print_json
from chaintrace.cli.tips import case_group
from chaintrace.errors import ChaintraceError, UserError


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
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON (for programs).")
@data_option
def report_cmd(ws, case_id, trace_file, lang, fmt, out, title, as_json):
    """Write the report document of a trace (or of a CASE and its trace): cover (case, analysts, data version,
    dates), summary in plain words, method and policies, coverage and caveats, cash-out table with evidence
    paths, the case's audit trail, appendix of identifiers.

    \b
    Example:
      chaintrace report --trace ronin.json --lang ar --format pdf --out ronin-ar.pdf
      chaintrace report case-20261207-1a2b3c --lang en --format html --out case.html
    """
    from chaintrace.report import cases
    from chaintrace.report.document import write_document
    from chaintrace.trace.report import TraceReport

    case = cases.get(ws, case_id) if case_id else None
    if trace_file is None:
        attached = cases.case_traces(ws, case) if case else []
        if not case:
            raise UserError("give --trace REPORT.json or a CASE with an attached trace")
        if not attached:
            raise UserError(f"case {case_id} has no trace: chaintrace case add-trace {case_id} --trace REPORT.json")
        trace_file = str(attached[-1])

    if not Path(out).resolve().parent.is_dir():
        raise UserError(f"--out {out}: directory {Path(out).resolve().parent} does not exist")
    if not Path(trace_file).is_file():
        raise UserError(f"--trace {trace_file}: no such file")
    try:
        rep = TraceReport.read_json(trace_file)
    except ChaintraceError as e:
        raise UserError(str(e)) from None
    p = write_document(rep, out, lang=lang, fmt=fmt, title=title, case=case)
    info = {"out": str(p), "lang": lang, "format": fmt, "bytes": p.stat().st_size, "case": case_id,
            "trace": str(trace_file),
            "partial_seed": bool((rep.coverage or {}).get("partial_seed")), "coverage": bool(rep.coverage)}
    if as_json:
        return print_json(info)
    console.print(f"wrote {p} ({fmt}, {lang}, {info['bytes']:,} bytes)")
    if not rep.coverage:
        console.print("[yellow]the trace report has no coverage block (made by an older chaintrace): the document "
                      "says coverage is unknown; re-run the trace[/]")


@case_group.command("add-trace")
@click.argument("case_id", metavar="CASE")
@click.option("--trace", "trace_file", required=True, type=click.Path(dir_okay=False),
              help="A trace report in JSON to keep with the case (copied, with its SHA-256, audited).")
@format_option("text", "json")
@data_option
def case_add_trace(ws, case_id, trace_file, fmt):
    """Attach a trace report to a case (a copy with its SHA-256 in the case's append-only audit trail).

    \b
    Example:
      chaintrace case add-trace case-20261207-1a2b3c --trace ronin.json
    """
    from chaintrace.report import cases

    c = cases.attach_trace(ws, case_id, trace_file)
    last = c["audit"][-1]
    if fmt == "json":
        return print_json(last)
    console.print(f"trace {trace_file} attached to case {case_id} as {last['detail']['file']} "
                  f"(sha256 {last['detail']['sha256']})", markup=False)
