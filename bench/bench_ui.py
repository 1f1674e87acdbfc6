"""Time to first render of a trace flow graph in the web UI (headless Debian Chromium through Playwright).

The UI's own bundle (src/chaintrace/api/static, served to the page from disk through Playwright routing, no
server) draws a layered synthetic flow graph (chaintrace.api.ui_graph.synthetic_graph, the shape a trace
answer has) with the layout the UI uses, the server-computed *preset* layout, at 10,000 and 1,000 nodes; the
baseline in the same run is the same 1,000-node graph with Cytoscape's force-directed ``cose`` layout run on
the main thread (what a naive page would do). Measured inside the page: from the call to the first painted
frame (median of --repeat fresh pages), and the longest main-thread task (PerformanceObserver ``longtask``:
how long the page stops answering input).

    python bench/bench_ui.py                 # 10,000 nodes vs 1,000 + cose baseline, 3 repeats
    python bench/bench_ui.py --nodes 2000 --repeat 1 --no-doc
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench._report import write_section  # noqa: E402
from chaintrace.api.ui_graph import synthetic_graph  # noqa: E402

STATIC = ROOT / "src" / "chaintrace" / "api" / "static"
BASE = "http://chaintrace.bench"
MEASURE = """async ([graph, layout]) => {
  const long = [];
  const obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) long.push(e.duration); });
  obs.observe({ type: 'longtask', buffered: false });
  const box = document.createElement('div');
  box.style.cssText = 'width:1200px;height:700px';
  document.body.prepend(box);
  const t0 = performance.now();
  const cy = await window.chaintrace.renderGraph(box, graph, { layout });
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 300));  // let the observer deliver the last long tasks
  obs.disconnect();
  return { ms: t1 - t0, nodes: cy.nodes().length, edges: cy.edges().length, longest: Math.max(0, ...long) };
}"""


def serve_static(route) -> None:
    name = route.request.url.split("/ui/static/")[-1].split("?")[0] if "/ui/static/" in route.request.url else None
    if name is None:
        return route.fulfill(path=str(STATIC / "index.html"), content_type="text/html")
    ctype = {"js": "text/javascript", "css": "text/css"}.get(name.rsplit(".", 1)[-1], "application/octet-stream")
    return route.fulfill(path=str(STATIC / name), content_type=ctype)


def run_case(browser, graph: dict, layout: str, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route(f"{BASE}/**", serve_static)
        page.goto(BASE + "/")
        page.wait_for_function("!!(window.chaintrace && window.chaintrace.renderGraph)")
        runs.append(page.evaluate(MEASURE, [graph, layout]))
        page.close()
    return {"ms": statistics.median(r["ms"] for r in runs), "longest": statistics.median(r["longest"] for r in runs),
            "nodes": runs[0]["nodes"], "edges": runs[0]["edges"], "runs": [round(r["ms"]) for r in runs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--baseline-nodes", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-doc", action="store_true", help="print only, do not write docs/benchmarks.md")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        sys.exit("needs Debian's chromium (apt-get install -y chromium)")
    cases = [(f"{a.nodes:,} nodes, preset layout (the UI)", synthetic_graph(a.nodes), "preset"),
             (f"{a.baseline_nodes:,} nodes, preset layout (the UI)", synthetic_graph(a.baseline_nodes), "preset"),
             (f"{a.baseline_nodes:,} nodes, cose force layout on the main thread (baseline)",
              synthetic_graph(a.baseline_nodes), "cose")]
    rows = []
    t = time.perf_counter()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        for name, graph, layout in cases:
            r = run_case(browser, graph, layout, a.repeat)
            rows.append((name, r))
            print(f"{name}: {r['ms']:.0f} ms to first frame (runs {r['runs']}), longest task {r['longest']:.0f} ms",
                  flush=True)
        version = browser.version
        browser.close()
    body = ["| graph | nodes / edges | first frame, median (ms) | runs (ms) | longest main-thread task (ms) |",
            "|---|---|---:|---|---:|"]
    body += [f"| {n} | {r['nodes']:,} / {r['edges']:,} | {r['ms']:.0f} | {', '.join(map(str, r['runs']))} | "
             f"{r['longest']:.0f} |" for n, r in rows]
    big, small, cose = (r for _, r in rows)
    body.append("")
    load = os.getloadavg()[0]
    body.append(f"Host load average at the end: {load:.1f} on {os.cpu_count()} CPUs (shared machine: absolute times "
                "scale with it; the rows of one run are comparable). "
                f"Headless Chromium {version} (Debian), software rendering, viewport 1280x900, graph box 1200x700; "
                f"{a.repeat} fresh page(s) per row; total {time.perf_counter() - t:.0f} s. Graphs: "
                "`chaintrace.api.ui_graph.synthetic_graph` (layered flow, up to 3 successors per node). "
                f"The {a.nodes:,}-node graph with the UI's preset layout draws in {big['ms'] / cose['ms']:.2f}x "
                f"the time the naive force layout needs for {a.baseline_nodes:,} nodes "
                f"({big['ms'] / small['ms']:.1f}x the preset {a.baseline_nodes:,}-node graph). The longest task "
                "column is the time the page cannot answer input while the graph is first drawn (above ~200 ms "
                "a user notices); after that, pan and zoom redraw from a texture (textureOnViewport) on big graphs.")
    print("\n".join(body))
    if not a.no_doc:
        write_section("ui", "Web UI: first render of a trace flow graph", "python bench/bench_ui.py", "\n".join(body))


if __name__ == "__main__":
    main()
