"""Benchmark: TLP on the screening batch's way out (POST /v1/screen/addresses for a key of another
organisation): `chaintrace.api.tlp.scrubbed_body` against the baseline, the full walk (`scrub`) then
`orjson.dumps`, on the same 100,000-address answer in the same run; the own organisation's plain `orjson.dumps`
beside them.

    PYTHONPATH=src python bench/bench_tlp_scrub.py --data bench-data/screen/ws-1000000 [--report]

The workspace is one of bench/bench_screen.py's (its registry beside it); the batch is bench_screen's mix
(seed 1). Restricted strings: 20 labels the answer does not hold (no hit), then those plus the 3 rarest
entity names of the answer (hits in a few dozen results). Medians of 3 runs of the calling thread's CPU time
(a shared machine's load disturbs it less than wall time); the bodies are checked byte for byte.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def cpu(f, runs: int = 3) -> float:
    xs = []
    for _ in range(runs):
        c = time.thread_time()
        f()
        xs.append(time.thread_time() - c)
    return statistics.median(xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a bench_screen workspace (ws-<txs>)")
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--report", action="store_true", help="write the section of docs/benchmarks.md")
    a = ap.parse_args()
    import orjson

    from _report import write_section
    from bench_screen import registry_of, sample_addresses
    from chaintrace import Workspace
    from chaintrace.api.tlp import scrub, scrubbed_body
    from chaintrace.intel.registry import bind
    from chaintrace.screen import Screener

    picks, _ = sample_addresses(a.data, a.batch, 1)
    ws = Workspace(a.data)
    bind(ws, registry_of(a.data))
    sc = Screener(ws)
    ans = sc.addresses(picks[:a.batch])
    sc.close()
    gc.disable()  # as the route: no collection passes over the answer
    ents = Counter(e["entity"] for r in ans["results"] for e in r["exposures"] if e.get("entity"))
    absent = frozenset(f"restricted label {i:03d}" for i in range(20))
    cases = [("no hit (20 strings)", absent),
             ("hits (23 strings)", absent | {e for e, _ in sorted(ents.items(), key=lambda x: x[1])[:3]})]
    rows = [f"| own organisation (no restricted strings): `orjson.dumps` | {cpu(lambda: orjson.dumps(ans)):.3f} s | - |"]
    for name, strings in cases:
        want = orjson.dumps(scrub(ans, strings))
        assert scrubbed_body(ans, strings)[1] == want, name
        n_hit = sum(r != s for r, s in zip(ans["results"], scrub(ans, strings)["results"]))
        new = cpu(lambda s=strings: scrubbed_body(ans, s))
        old = cpu(lambda s=strings: orjson.dumps(scrub(ans, s)))
        rows.append(f"| partner key, {name}, {n_hit} results rewritten | {new:.3f} s | {old:.3f} s |")
    body = "\n".join([
        f"Answer: {len(ans['results']):,} addresses of `{a.data.name}` (bench_screen's mix, seed 1), "
        f"{len(orjson.dumps(ans)) / 1e6:.0f} MB of JSON. CPU time of the calling thread, median of 3; bodies "
        "identical byte for byte.", "",
        "| answer body | chaintrace (`scrubbed_body`) | baseline: full `scrub` walk + `orjson.dumps` |",
        "|---|---|---|", *rows])
    print(body)
    if a.report:
        write_section("tlp-scrub", "Screening: TLP scrub of a 100,000-address batch answer",
                      "python bench/bench_tlp_scrub.py " + " ".join(sys.argv[1:]), body)


if __name__ == "__main__":
    main()
