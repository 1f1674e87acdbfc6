"""Cold start of `chaintrace demo`: the demo on a fresh machine (no numba cache: every kernel is compiled first)
against the baseline, the same demo with the numba cache warm (what every later run costs).

Each run is a separate Python process with its own workspace. The cold runs get an empty numba cache
directory (``NUMBA_CACHE_DIR``: numba then neither reads nor writes the ``__pycache__/*.nbi|nbc`` files next
to the sources, which is what deleting them does, without disturbing other processes using the tree):

* **cold** — the demo as shipped: while it simulates, a second process compiles the tracing and CoinJoin
  kernels (``chaintrace.trace.warmup``);
* **cold, one process** — the same with ``run_demo(warm_up=False)``: every kernel compiled in the demo's own
  process, one after the other (the compile time a single core pays);
* **warm** (baseline) — reusing the cache the cold run filled; best of ``--warm-runs``.

For each: wall time of the process, CPU time of the process and its children, and the demo's own step
timings. The one-process cold run also lists the compile time of every numba dispatcher (``numba:compile``
events; a dispatcher's time includes the callees compiled inside it, so they do not add up) and how many
type signatures each was compiled for.

    python bench/bench_coldstart.py                 # 20,000-transaction demo (the `chaintrace demo` default)
    python bench/bench_coldstart.py --no-write      # print only
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import write_section  # noqa: E402

STEPS = ("simulate_s", "ingest_s", "import_tags_s", "compile_wait_s", "cluster_s", "trace_haircut_s",
         "trace_fifo_s", "total_s")


def child(work: str, txs: int, seed: int, warm_up: bool) -> None:
    """One demo run in this process; prints a JSON line with times, step timings and compile events."""
    t0 = time.perf_counter()
    from numba.core import event

    compiles: dict[str, list[float]] = {}
    signatures: dict[str, list[str]] = {}
    starts: dict[tuple, float] = {}

    class Rec(event.Listener):
        def on_start(self, ev):
            starts[id(ev.data["dispatcher"]), ev.data["args"]] = time.perf_counter()

        def on_end(self, ev):
            d = ev.data["dispatcher"]
            t = time.perf_counter() - starts.pop((id(d), ev.data["args"]), time.perf_counter())
            name = f"{d.py_func.__module__}.{d.py_func.__qualname__}"
            compiles.setdefault(name, []).append(t)
            signatures.setdefault(name, []).append(str(ev.data["args"]))

    event.register("numba:compile", Rec())
    from chaintrace.store.workspace import Workspace
    from chaintrace.app.demo import run_demo

    t_import = time.perf_counter() - t0
    r = run_demo(Workspace(work), txs=txs, seed=seed, warm_up=warm_up)
    cpu = os.times()
    print(json.dumps({"wall_s": time.perf_counter() - t0, "import_s": t_import, "timings": r.timings,
                      "cpu_s": cpu.user + cpu.system + cpu.children_user + cpu.children_system,
                      "compiles": compiles, "signatures": signatures,
                      "entities": [row["entity"] for row in r.comparison()]}))


def run(work: Path, cache: Path, txs: int, seed: int, warm_up: bool = True) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    t = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--child", str(work), str(txs), str(seed), str(int(warm_up))],
                       capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(p.stderr)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["process_s"] = time.perf_counter() - t
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--warm-runs", type=int, default=2, help="warm runs (the fastest is reported)")
    ap.add_argument("--top", type=int, default=20, help="dispatchers listed")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/benchmarks.md")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child[0], int(a.child[1]), int(a.child[2]), a.child[3] == "1")
    with tempfile.TemporaryDirectory(prefix="ct-coldstart-") as tmp:
        tmp = Path(tmp)
        (tmp / "cache-1").mkdir()
        (tmp / "cache-2").mkdir()
        cold = run(tmp / "ws-cold", tmp / "cache-1", a.txs, a.seed)
        single = run(tmp / "ws-single", tmp / "cache-2", a.txs, a.seed, warm_up=False)
        warms = [run(tmp / f"ws-warm{i}", tmp / "cache-1", a.txs, a.seed) for i in range(max(1, a.warm_runs))]
    warm = min(warms, key=lambda r: r["process_s"])
    if a.json:
        Path(a.json).write_text(json.dumps({"cold": cold, "cold_single": single, "warm": warms}, indent=1))

    runs = (cold, single, warm)
    lines = ["| | cold | cold, one process | warm (baseline) |", "|---|--:|--:|--:|",
             "| **process wall time (s)** | " + " | ".join(f"**{r['process_s']:.1f}**" for r in runs) + " |",
             "| CPU time, all processes (s) | " + " | ".join(f"{r['cpu_s']:.1f}" for r in runs) + " |",
             "| imports (s) | " + " | ".join(f"{r['import_s']:.1f}" for r in runs) + " |"]
    for k in STEPS:
        if any(k in r["timings"] for r in runs):
            cells = [f"{r['timings'][k]:.1f}" if k in r["timings"] else "" for r in runs]
            lines.append(f"| {k[:-2].replace('_', ' ')} (s) | " + " | ".join(cells) + " |")
    comp = single["compiles"]
    top = sorted(comp.items(), key=lambda kv: -sum(kv[1]))[: a.top]
    rows = ["| dispatcher | signatures | compile (s, incl. callees) |", "|---|--:|--:|"]
    rows += [f"| `{n}` | {len(v)} | {sum(v):.1f} |" for n, v in top]
    body = (f"A {a.txs:,}-transaction `chaintrace demo` (seed {a.seed}), each run a fresh process: **cold** with an "
            f"empty numba cache (every kernel compiled; the tracing and CoinJoin kernels in a second process while "
            f"the demo simulates), **cold, one process** (`run_demo(warm_up=False)`: everything compiled in turn "
            f"in the demo's process), and the baseline **warm** (the cache the cold run filled; best of "
            f"{len(warms)}).\n\n"
            f"Cold {cold['process_s']:.1f} s ({single['process_s']:.1f} s in one process), warm "
            f"{warm['process_s']:.1f} s: a fresh machine pays {cold['process_s'] - warm['process_s']:.1f} s of "
            f"compilation ({len(comp)} dispatchers, {sum(len(v) for v in comp.values())} signatures). Step times "
            f"are wall times, and the machine's other load shows in them (compare the CPU row).\n\n"
            + "\n".join(lines) + "\n\nSlowest compiles of the one-process cold run:\n\n" + "\n".join(rows) + "\n")
    print(body)
    cmd = "python bench/bench_coldstart.py" + (f" --txs {a.txs}" if a.txs != 20_000 else "")
    if not a.no_write:
        write_section("coldstart", "Demo cold start: numba compilation vs a warm cache", cmd, body)


if __name__ == "__main__":
    main()
