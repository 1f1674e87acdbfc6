"""Benchmark: account-model trace (``chaintrace trace --chain eth``) over a synthetic chain, numba kernel vs the
straightforward pure-Python implementation of the same policy (chaintrace.trace.eth_reference), same run.

The chain is a synthetic ethereum-etl export (chaintrace.chains.eth.synth) ingested through the real path;
the trace starts at the thief's account (50,000 ETH stolen in the first transaction) and runs over the whole
rest of the chain. Times are per trace after load (graph arrays memory-mapped from the cache), on one core,
split into load, set-up (seeds, sinks, thresholds), the propagation kernel and building the report. Both
engines must produce identical reports (checked). Full scale for docs/benchmarks.md:

    python bench/bench_eth_trace.py --transfers 5000000
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mb, write_section  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfers", type=int, default=300_000)
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--policies", default="haircut,fifo,seniority")
    ap.add_argument("--no-python", action="store_true", help="skip the pure-Python baseline")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    import numba

    numba.set_num_threads(1)
    from chaintrace.chains.eth import ingest_etl
    from chaintrace.chains.eth.synth import address, write_export
    from chaintrace.graph.eth import load_eth_graph
    from chaintrace.progress import NULL
    from chaintrace.store.workspace import Workspace
    from chaintrace.trace import TraceRequest, get_tracer
    from chaintrace.trace.eth import trace_eth

    get_tracer("eth")
    tmp = Path(tempfile.mkdtemp(prefix="bench-eth-trace-"))
    rows = []
    try:
        info = write_export(tmp / "export", n_transfers=args.transfers, n_accounts=args.accounts)
        ws = Workspace(tmp / "data")
        rep = ingest_etl(ws, tmp / "export", batch_blocks=5000)
        shutil.rmtree(tmp / "export")
        t = time.perf_counter()
        g = load_eth_graph(ws)
        build_s = time.perf_counter() - t
        seeds = [info["thief"], str(address(25)), str(address(26))]
        for pol in args.policies.split(","):
            req = TraceRequest(seeds=seeds, policy=pol, min_value=10**12, registry=False)
            trace_eth(ws, req, NULL, engine="numba")  # warm: numba cache load
            fast = trace_eth(ws, req, NULL, engine="numba")
            st = fast.stats
            split = {k: st[k] for k in ("load_graph_s", "propagate_s", "report_s", "seconds")}
            split["setup_s"] = st["seconds"] - st["load_graph_s"] - st["propagate_s"] - st["report_s"]
            ps, pw, same = None, None, None
            if not args.no_python:
                slow = trace_eth(ws, req, NULL, engine="python")
                ps, pw = slow.stats["propagate_s"], slow.stats["seconds"]
                a, b = json.loads(fast.to_json()), json.loads(slow.to_json())
                for d in (a, b):
                    for k in ("engine", "load_graph_s", "sinks_s", "propagate_s", "report_s", "seconds"):
                        d["stats"].pop(k, None)
                same = a == b
            rows.append((pol, split, ps, pw, same, st["transfers_tainted"], len(fast.holdings), st["n_conversions"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = ["| policy | load (s) | seeds, sinks, thresholds (s) | kernel (s) | report (s) | **whole trace (s)** | "
             "pure Python: propagate / whole (s) | ratio (propagate / whole) | same report | tainted transfers | "
             "holdings in the report | conversions |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for pol, sp, ps, pw, same, nt, nh, nc in rows:
        py = f"{ps:.2f} / {pw:.2f}" if ps is not None else "-"
        ratio = f"{ps / sp['propagate_s']:,.0f}x / {pw / sp['seconds']:,.0f}x" if ps else "-"
        lines.append(f"| {pol} | {sp['load_graph_s']:.3f} | {sp['setup_s']:.3f} | {sp['propagate_s']:.3f} | "
                     f"{sp['report_s']:.3f} | **{sp['seconds']:.2f}** | {py} | {ratio} | {same} | {nt:,} | {nh:,} | {nc:,} |")
    worst = max(sp["seconds"] for _, sp, *_ in rows)
    body = (f"Chain: {rep.blocks:,} blocks, {rep.transactions:,} transactions, {g.n_transfers:,} transfers, "
            f"{g.n_holdings:,} (account, asset) holdings; graph arrays built once per store commit in {build_s:.2f} s "
            f"(then memory-mapped: the load column). Seeds: the thief plus two busy accounts (so taint reaches "
            f"swaps). One core (numba threads 1). Target: under 5 s per trace after load, report included: "
            f"slowest {worst:.2f} s ({'met' if worst < 5 else 'NOT met'}). The pure-Python engine "
            f"(chaintrace.trace.eth_reference, Python ints) runs the same policy and must give the identical report.\n\n"
            + "\n".join(lines) + f"\n\nPeak RSS {peak_rss_mb():,.0f} MB.")
    print(body)
    if not args.no_write:
        write_section("eth-trace", "Ethereum: account-model trace, numba vs pure Python",
                      f"python bench/bench_eth_trace.py --transfers {args.transfers}", body)


if __name__ == "__main__":
    main()
