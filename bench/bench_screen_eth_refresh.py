"""Ethereum exposure index: refresh after an ingest of new blocks vs a full rebuild (baseline), same run.

A simulated bridge drain (``chaintrace simulate eth``) is ingested without its last 1 % / 10 % of blocks, the
index is built, the remaining blocks are ingested and the index is refreshed from the previous one
(:mod:`chaintrace.screen.eth_refresh`); baseline: ``build_eth_index(..., incremental=False)`` (``chaintrace
screen index --full``) of the same data. Every array of the refreshed index is compared with the full one.

    python bench/bench_screen_eth_refresh.py --txs 60000
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))

from bench._report import write_section  # noqa: E402
from tests.eth.export import cut_export  # noqa: E402



def _arrays(ws, cfg) -> dict:
    from chaintrace.screen.eth_index import ARRAYS, load_eth_index

    idx = load_eth_index(ws, cfg)
    return {n: np.array(idx.arrays[n]) for n in ARRAYS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--txs", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    from chaintrace import intel
    from chaintrace.chains.eth import ingest_etl
    from chaintrace.screen import load_config
    from chaintrace.screen.eth_index import build_eth_index
    from chaintrace.sim.eth import simulate_eth
    from chaintrace.store.workspace import Workspace

    load0 = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-eth-refresh-"))
    cfg = load_config()
    rows = []
    try:
        sim = tmp / "sim"
        simulate_eth(sim, txs=a.txs, seed=a.seed, scenario="bridge-drain")
        last = max(int(r["number"]) for r in csv.DictReader((sim / "blocks.csv").open()))
        for label, frac in (("last 1 %", 99), ("last 10 %", 90)):
            ws = Workspace(tmp / f"ws{frac}")
            intel.registry.bind(ws, tmp / f"registry{frac}")
            cut_export(sim, tmp / "part", last * frac // 100)
            ingest_etl(ws, tmp / "part")
            intel.import_paths(ws, "tagpack", [sim / "tags.yaml"])
            build_eth_index(ws, cfg)
            ingest_etl(ws, sim)
            t0 = time.perf_counter()
            r = build_eth_index(ws, cfg)
            t_ref = time.perf_counter() - t0
            got = _arrays(ws, cfg)
            t0 = time.perf_counter()
            full = build_eth_index(ws, cfg, incremental=False)
            t_full = time.perf_counter() - t0
            want = _arrays(ws, cfg)
            same = all(got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]) for k in want)
            rows.append((label, r, t_ref, full, t_full, same))
            print(label, f"refresh {t_ref:.2f} s, full {t_full:.2f} s, equal {same}", r.get("refresh_reason"),
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    full0 = rows[0][3]
    lines = [
        f"Chain: a simulated bridge drain (`simulate eth --txs {a.txs} --seed {a.seed} --scenario bridge-drain`: "
        f"{full0['n_transfers']:,} transfers, {full0['n_tx']:,} transactions, {last:,} blocks, "
        f"{full0['n_sources_in_chain']} source groups in the chain). The index of the chain without its last 1 % "
        "(10 %) of blocks is built, the remaining blocks are ingested, and the index is refreshed from the "
        "previous one (the haircut pass continued from the kept state; outgoing walks redone for groups with new "
        "receipts); baseline: a full rebuild (`screen index --full`) of the same data, in the same process "
        "(graph cache and numba kernels warm).",
        "",
        "| blocks ingested | refresh | full rebuild (baseline) | speed-up | new transfers | groups continued | "
        "outgoing walks redone | equal to the full rebuild |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r, t_ref, _full, t_full, same in rows:
        lines.append(f"| {label} | {t_ref:.2f} s | {t_full:.2f} s | {t_full / t_ref:.1f}x | "
                     f"{r['n_new_transfers'] or 0:,} | {r['n_groups_resumed'] or 0} | "
                     f"{r['n_groups_outgoing_walked'] or 0} | {'yes, every array' if same else 'NO'} |")
        if not r.get("refreshed_from"):
            lines.append(f"\n(not refreshed: {r.get('refresh_reason')})")
    lines += ["", f"Load average (1 min) when the run started: {load0:.1f} on 2 cores (shared machine)."]
    body = "\n".join(lines)
    print(body)
    if not a.no_report:
        write_section("screen-eth-refresh", "Screening: Ethereum index refresh after an ingest vs full rebuild",
                      ("python bench/bench_screen_eth_refresh.py " + " ".join(sys.argv[1:])).strip(), body)


if __name__ == "__main__":
    main()
