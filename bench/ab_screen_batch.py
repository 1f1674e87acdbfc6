"""A/B of the screening batch: the same 100,000 addresses screened by two checkouts of chaintrace on the same
workspace, alternating fresh processes (a shared machine's load drifts: each round runs both).

Each side answers from its own exposure index of the workspace (built first when missing, in the child,
not timed: index formats differ between versions), warms up on 1,000 addresses, then screens the batch
--runs times as bench/bench_screen.py does (library `Screener.addresses`, the previous batch's answers held
while the next is built), and serializes the answer as the HTTP route does (orjson, the body's sha256).

    PYTHONPATH=src python bench/ab_screen_batch.py --txs 1000000 --old /tmp/old-checkout/src --rounds 3

The batch: a fifth exposed addresses of the index, the rest random chain addresses (bench_screen's mix),
drawn once (seed --seed) and given to both sides. Prints per side the medians (wall time, and the calling
thread's CPU time, which a shared machine's load disturbs less); no docs are written.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import gc, hashlib, json, sys, time
import orjson
from chaintrace import Workspace
from chaintrace.intel.registry import bind
from chaintrace.screen import Screener, build_index, load_config
data, registry, batch_file, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ws = Workspace(data)
bind(ws, registry)
t = time.perf_counter()
b = build_index(ws, load_config())
built = time.perf_counter() - t
batch = json.loads(open(batch_file).read())
sc = Screener(ws)
sc.addresses(batch[:1000])
sc.close()
lib, cpu, ser = [], [], []
res = None
for _ in range(runs):
    t, c = time.perf_counter(), time.thread_time()
    res = sc.addresses(batch)
    lib.append(time.perf_counter() - t)
    cpu.append(time.thread_time() - c)
    sc.close()
    t = time.perf_counter()
    body = orjson.dumps(res)
    hashlib.sha256(body).hexdigest()
    ser.append(time.perf_counter() - t)
n_full = sum(bool(r["exposures"] or r["detections"] or r["sanctions"]) for r in res["results"])
print(json.dumps({"lib": lib, "cpu": cpu, "ser": ser, "n_full": n_full, "bytes_body": len(body),
                  "index_bytes": b["bytes"], "reused": b.get("reused"), "build_s": built,
                  "digest": hashlib.sha256(orjson.dumps([dict(r, subject=None) for r in res["results"]],
                                                        option=orjson.OPT_SORT_KEYS)).hexdigest()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--txs", type=int, default=1_000_000)
    ap.add_argument("--data", default=str(REPO / "bench-data" / "screen"))
    ap.add_argument("--old", required=True, help="src/ directory of the baseline checkout")
    ap.add_argument("--new", default=str(REPO / "src"), help="src/ directory of the candidate (this checkout)")
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    data = Path(a.data) / f"ws-{a.txs}"
    registry = Path(a.data) / f"registry-ws-{a.txs}"
    sys.path.insert(0, a.new)
    from chaintrace import Workspace
    from chaintrace.intel.registry import bind
    from chaintrace.screen import build_index, load_config, load_index

    ws = Workspace(data)
    bind(ws, registry)
    build_index(ws, load_config())
    idx = load_index(ws, load_config())
    con = ws.connect()
    allv = [r[0] for r in con.execute("SELECT address FROM btc.addresses ORDER BY address_id").fetchall()]
    rng = random.Random(a.seed)
    exposed = list(idx.meta["addresses"])
    k = min(len(exposed), a.batch // 5)
    batch = rng.sample(exposed, k) + [rng.choice(allv) for _ in range(a.batch - k)]
    rng.shuffle(batch)
    del idx, allv, con
    tmp = Path(tempfile.mkdtemp(prefix="ab-batch-"))
    bf = tmp / "batch.json"
    bf.write_text(json.dumps(batch))
    got: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(a.rounds):
        for side, src in (("old", a.old), ("new", a.new)) if r % 2 == 0 else (("new", a.new), ("old", a.old)):
            p = subprocess.run([sys.executable, "-c", CHILD, str(data), str(registry), str(bf), str(a.runs)],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src})
            if p.returncode != 0:
                raise SystemExit(p.stderr[-3000:])
            out = json.loads(p.stdout.strip().splitlines()[-1])
            got[side].append(out)
            print(side, json.dumps({k: (v if not isinstance(v, list) else [round(x, 3) for x in v])
                                    for k, v in out.items()}), flush=True)
    for side, outs in got.items():
        lib = [x for o in outs for x in o["lib"]]
        cpu = [x for o in outs for x in o["cpu"]]
        ser = [x for o in outs for x in o["ser"]]
        print(f"{side}: batch of {a.batch:,} (library) median {statistics.median(lib):.3f} s "
              f"(min {min(lib):.3f}, max {max(lib):.3f}, {len(lib)} runs; CPU of the calling thread median "
              f"{statistics.median(cpu):.3f} s); serialize + sha256 median "
              f"{statistics.median(ser):.3f} s; {outs[0]['n_full']:,} answers with facts; index "
              f"{outs[0]['index_bytes'] / 1e6:.0f} MB")
    same = {o["digest"] for outs in got.values() for o in outs}
    print("answers equal (old vs new, every field but subject):", len(same) == 1)


if __name__ == "__main__":
    main()
