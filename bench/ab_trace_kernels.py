"""A/B of the UTXO trace kernel (``chaintrace.trace.kernels.propagate``) between two source trees, on the graph
that bench_trace.py builds (--workdir, --txs): the same seeds (the 1,000 BTC hack) and sinks, each tree timed in
its own process, the trees alternating (ABAB...) so that load drift on a shared host cancels; per policy the
median over pairs of each process's best CPU time (``time.process_time``) and best wall time, and a digest of
the result arrays (every slot's output, kind, amount, parent and segments) that must agree.

    git worktree add /tmp/old-f5877e5 f5877e5          # the baseline tree (read-only use)
    python bench/ab_trace_kernels.py --old /tmp/old-f5877e5/src --new src --pairs 5 --max-txs 1000000

Not a test and not written into docs/benchmarks.md (copy the printed summary there).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GRAPH_ARRAYS = ("tx_out", "tx_in", "out_value", "out_addr", "out_type", "out_tx", "out_spender_tx", "in_output")


def prepare(ws_dir: Path, sim_dir: Path, out: Path) -> None:
    """Seeds and sinks of bench_trace.py's hack, saved once (computed with the current tree)."""
    from bench.bench_trace import BTC, pick_hack
    from chaintrace import Workspace
    from chaintrace.graph.btc import address_ids, load_btc_graph
    from chaintrace.intel import load_tags
    from chaintrace.trace.sinks import resolve_sinks

    ws = Workspace(ws_dir)
    g = load_btc_graph(ws)
    tags = load_tags(None, "btc", [sim_dir / "tags.yaml"])
    sinks = resolve_sinks(ws, g, tags, lambda x: address_ids(ws, x), g.n_addresses, clusters=False)
    np.savez(out, seeds=pick_hack(g, 1000 * BTC, sinks.addr_sink), sink=sinks.addr_sink)


def child(ws_dir: Path, prep: Path, policies: list[str], reps: int, max_txs: int | None) -> None:
    """One process: time `policies` with whatever chaintrace is first on the path; print one line each."""
    from chaintrace import Workspace
    from chaintrace.graph.btc import load_btc_graph
    from chaintrace.trace import kernels as K

    g = load_btc_graph(Workspace(ws_dir))
    for n in GRAPH_ARRAYS:  # in memory: page faults of the memory-mapped cache are not the kernel's time
        a = np.array(getattr(g, n))
        a.flags.writeable = False
        setattr(g, n, a)
    d = np.load(prep)
    seeds, sink = d["seeds"], d["sink"]
    src = np.zeros(len(seeds), np.int64)
    for pol in policies:
        K.propagate_graph(g, seeds[:1], src[:1], 1, policy=pol, sink_of_addr=sink, min_value=10_000)  # compile
        wall, cpu = [], []
        for _ in range(reps):
            t, c = time.perf_counter(), time.process_time()
            r = K.propagate_graph(g, seeds, src, 1, policy=pol, sink_of_addr=sink, min_value=10_000,
                                  unspendable_type=10, max_txs=max_txs)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        h = hashlib.sha256()
        for a in (r.out, r.kind, r.amount, r.parent, r.seg, r.seg_value, r.seg_source, r.seg_hop):
            h.update(np.ascontiguousarray(a).tobytes())
        print(f"RESULT {pol} {min(wall):.4f} {min(cpu):.4f} {r.processed} {len(r)} {h.hexdigest()[:16]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", help="src directory of the baseline tree (required)")
    ap.add_argument("--new", default="src", help="src directory of the tree under test")
    ap.add_argument("--workdir", type=Path, default=Path("bench-data/trace"))
    ap.add_argument("--txs", type=int, default=10_000_000)
    ap.add_argument("--chain-seed", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3, help="runs per process (its best counts)")
    ap.add_argument("--max-txs", type=int, default=0, help="stop each trace after this many transactions (0: all)")
    ap.add_argument("--policies", nargs="+", default=["poison", "haircut", "fifo", "lifo", "tiho"])
    ap.add_argument("--prep", type=Path, help="seeds/sinks file (default: WORKDIR/ab-TXS-SEED.npz, made if missing)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    ws_dir = (a.workdir / f"ws-{a.txs}-{a.chain_seed}").resolve()
    prep = (a.prep or a.workdir / f"ab-{a.txs}-{a.chain_seed}.npz").resolve()
    max_txs = a.max_txs or None
    if a.child:
        child(ws_dir, prep, a.policies, a.reps, max_txs)
        return
    if not a.old:
        ap.error("--old is required")
    if not prep.exists():
        prepare(ws_dir, (a.workdir / f"sim-{a.txs}-{a.chain_seed}").resolve(), prep)
    trees = {"old": str(Path(a.old).resolve()), "new": str(Path(a.new).resolve())}
    res: dict[tuple[str, str], list[tuple[float, float, str]]] = {}
    for i in range(a.pairs):
        for name, src in trees.items():
            env = dict(os.environ, PYTHONPATH=src)
            out = subprocess.run([sys.executable, __file__, "--child", "--workdir", str(a.workdir), "--txs",
                                  str(a.txs), "--chain-seed", str(a.chain_seed), "--reps", str(a.reps),
                                  "--max-txs", str(a.max_txs), "--prep", str(prep), "--policies", *a.policies],
                                 env=env, capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                if line.startswith("RESULT "):
                    _, pol, wall, cpu, processed, slots, digest = line.split()
                    res.setdefault((name, pol), []).append((float(wall), float(cpu), f"{processed}/{slots}/{digest}"))
                    print(f"pair {i + 1} {name} {pol}: wall {wall} s, cpu {cpu} s, {processed} txs, {slots} slots, "
                          f"{digest}", flush=True)
    print(f"\nmedians over {a.pairs} pairs (old = {trees['old']}, new = {trees['new']}):")
    for pol in a.policies:
        o, n = res[("old", pol)], res[("new", pol)]
        same = {x[2] for x in o} == {x[2] for x in n} and len({x[2] for x in o}) == 1
        mo, mn = statistics.median(x[1] for x in o), statistics.median(x[1] for x in n)
        wo, wn = statistics.median(x[0] for x in o), statistics.median(x[0] for x in n)
        print(f"  {pol}: cpu old {mo:.3f} s, new {mn:.3f} s ({(mn / mo - 1) * 100:+.1f}%); wall old {wo:.3f} s, "
              f"new {wn:.3f} s; results {'identical' if same else 'DIFFER'}")


if __name__ == "__main__":
    main()
