"""Benchmark: time to a report document (issue 16): a trace of the simulator's DPRK scenario with many evidence
paths, kept in a case (notes, audit trail), rendered as an English and an Arabic PDF of about 50 pages
(``chaintrace.report.write_document``, headless Chromium) with everything the document shows: the policy spread
(the trace re-run under every other policy, ``chaintrace.report.context.case_context``), the Sankey diagram and
timeline (inline SVG), sanctions and attribution from the registry. Baseline in the same run: the HTML trace
summary (``chaintrace.report.write_html``) printed to PDF by the same Chromium (the browser's fixed start-up and
print cost).

Full scale:   python bench/bench_report.py --txs 10000 --paths 50
Quick check:  python bench/bench_report.py --txs 3000 --paths 10 --no-report
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import peak_rss_mb, write_section
from chaintrace.chains.btc import ingest_block_files
from chaintrace.report import cases
from chaintrace.report.context import case_context
from chaintrace.report.document import render_document, write_document
from chaintrace.report.html import render_html
from chaintrace.report.pdf import html_to_pdf
from chaintrace.sim.btc import simulate_btc
from chaintrace.store.workspace import Workspace
from chaintrace.trace import read_seed_file, trace


def pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in out.splitlines() if line.startswith("Pages:")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txs", type=int, default=10000)
    ap.add_argument("--paths", type=int, default=50, help="evidence paths in the report (top sink transfers)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--no-report", action="store_true", help="do not write docs/benchmarks.md")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        simulate_btc(root / "sim", txs=a.txs, seed=a.seed, scenario="dprk")
        ws = Workspace(root / "data")
        ingest_block_files(ws, [root / "sim"], pow_rules="target-only")
        r = trace(ws, read_seed_file(root / "sim" / "stolen.txt"), policy="haircut", tags=[root / "sim" / "tags.yaml"],
                  top_paths=a.paths)
        r.write_json(root / "trace.json")
        case = cases.new(ws, "DPRK scenario (benchmark)", analyst="bench")
        cases.attach_trace(ws, case["id"], root / "trace.json", analyst="bench")
        for i in range(5):
            cases.note(ws, case["id"], f"benchmark note {i}", analyst="bench")
        case = cases.get(ws, case["id"])
        rows = []
        t = time.perf_counter()
        ctx = case_context(ws, r, case)
        t_ctx = time.perf_counter() - t
        runs = len([p for p in ctx["spread"]["policies"] if p["source"] == "re-run"])
        t = time.perf_counter()
        html_to_pdf(render_html([r]), root / "summary.pdf")
        base = time.perf_counter() - t
        rows.append(("baseline: HTML trace summary -> PDF", "en", pages(root / "summary.pdf"), base, None))
        for lang in ("en", "ar"):
            t = time.perf_counter()
            html = render_document(r, lang, case=case, context=ctx)
            t_html = time.perf_counter() - t
            t = time.perf_counter()
            write_document(r, root / f"report-{lang}.pdf", lang, "pdf", case=case, context=ctx)
            total = time.perf_counter() - t
            rows.append((f"report document ({len(html) // 1024:,} KiB HTML in {t_html:.2f} s) -> PDF", lang,
                         pages(root / f"report-{lang}.pdf"), total, total / max(base, 1e-9)))
    body = [f"Trace of the simulator's `dprk` scenario ({a.txs:,} transactions, seed {a.seed}, haircut): "
            f"{len(r.sinks):,} sink transfers, {len(r.paths)} evidence paths, {len(r.holdings):,} holdings. "
            f"The document's context (policy spread: {runs} re-runs of the trace under the other policies; "
            f"sanctions and attribution of the cited addresses) took {t_ctx:.2f} s, before rendering.", "",
            "| document | lang | pages | time to PDF (s) | vs baseline |", "|---|---|---:|---:|---:|"]
    for name, lang, n, sec, rel in rows:
        body.append(f"| {name} | {lang} | {n} | {sec:.2f} | {'' if rel is None else f'{rel:.1f}x'} |")
    body += ["", f"Peak RSS of the benchmark process: {peak_rss_mb():.0f} MB (Chromium runs as a child process)."]
    text = "\n".join(body)
    print(text)
    if not a.no_report:
        write_section("report", "Report documents (PDF, English and Arabic)",
                      f"python bench/bench_report.py --txs {a.txs} --paths {a.paths}", text)


if __name__ == "__main__":
    main()
