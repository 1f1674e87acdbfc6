"""`chaintrace report`: a regulator-grade document (English or Arabic, HTML or PDF) of a trace report
(library: chaintrace.report.document.write_document)."""
from __future__ import annotations

from pathlib import Path

import click

from chaintrace.cli import main
from chaintrace.cli._common import console, print_json
from chaintrace.errors import ChaintraceError, UserError


@main.command("report")
@click.option("--trace", "trace_file", required=True, type=click.Path(dir_okay=False),
              help="A trace report in JSON (chaintrace trace ... --out REPORT.json).")
@click.option("--lang", type=click.Choice(["en", "ar"]), default="en", show_default=True,
              help="Language: English or Arabic (right-to-left layout).")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html", show_default=True,
              help="Document format: self-contained HTML, or PDF printed by headless Chromium.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--title", default=None, help="Title on the cover [default: Trace report: CHAIN].")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON (for programs).")
def report_cmd(trace_file, lang, fmt, out, title, as_json):
    """Write the report document of a trace: cover (data version, dates), summary in plain words, method and
    policies, coverage and caveats, cash-out table with evidence paths, appendix of identifiers.

    \b
    Example:
      chaintrace report --trace ronin.json --lang ar --format pdf --out ronin-ar.pdf
    """
    from chaintrace.report.document import write_document
    from chaintrace.trace.report import TraceReport

    if not Path(out).resolve().parent.is_dir():
        raise UserError(f"--out {out}: directory {Path(out).resolve().parent} does not exist")
    if not Path(trace_file).is_file():
        raise UserError(f"--trace {trace_file}: no such file")
    try:
        rep = TraceReport.read_json(trace_file)
    except ChaintraceError as e:
        raise UserError(str(e)) from None
    p = write_document(rep, out, lang=lang, fmt=fmt, title=title)
    info = {"out": str(p), "lang": lang, "format": fmt, "bytes": p.stat().st_size,
            "partial_seed": bool((rep.coverage or {}).get("partial_seed")), "coverage": bool(rep.coverage)}
    if as_json:
        return print_json(info)
    console.print(f"wrote {p} ({fmt}, {lang}, {info['bytes']:,} bytes)")
    if not rep.coverage:
        console.print("[yellow]the trace report has no coverage block (made by an older chaintrace): the document "
                      "says coverage is unknown; re-run the trace[/]")
