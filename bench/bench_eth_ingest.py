"""Benchmark: ethereum-etl CSV ingest (``chaintrace ingest eth-etl``) in transfers per second.

Writes a synthetic ethereum-etl export (blocks, transactions with receipts, token_transfers, traces; see
chaintrace.chains.eth.synth) of --transfers value movements, then times the real ingest path into a fresh
workspace. Baseline in the same run: reading the same CSV files with Python's csv module into per-row dicts
and converting the amounts to ints (what a straightforward Python loader does before any validation or
storage). Full scale for docs/benchmarks.md:

    python bench/bench_eth_ingest.py --transfers 5000000
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mb, write_section  # noqa: E402


def baseline_csv(d: Path) -> int:
    n = 0
    for name in ("blocks.csv", "transactions.csv", "token_transfers.csv", "traces.csv"):
        with open(d / name, newline="") as fh:
            for row in csv.DictReader(fh):
                if "value" in row and row["value"]:
                    int(row["value"])
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfers", type=int, default=300_000, help="approximate transfers in the export")
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    from chaintrace.chains.eth import ingest_etl
    from chaintrace.chains.eth.synth import write_export
    from chaintrace.store.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-eth-ingest-"))
    try:
        t = time.perf_counter()
        info = write_export(tmp / "export", n_transfers=args.transfers, n_accounts=args.accounts)
        gen_s = time.perf_counter() - t
        size = sum(p.stat().st_size for p in (tmp / "export").iterdir())
        t = time.perf_counter()
        rep = ingest_etl(Workspace(tmp / "data"), tmp / "export", batch_blocks=5000)
        ingest_s = time.perf_counter() - t
        t = time.perf_counter()
        rows = baseline_csv(tmp / "export")
        base_s = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tps = rep.transfers / ingest_s
    body = f"""
| | value |
|---|---|
| export | {info['blocks']:,} blocks, {rep.transactions:,} transactions, {rep.transfers:,} transfers ({size / 1e6:,.0f} MB of CSV, written in {gen_s:.1f} s) |
| `ingest eth-etl` (validate, ids, fees, traces, Parquet commit) | {ingest_s:.2f} s = **{tps:,.0f} transfers/s** ({rep.transactions / ingest_s:,.0f} tx/s) |
| baseline: Python `csv.DictReader` over the same files, amounts to int (no validation, no store) | {base_s:.2f} s for {rows:,} rows |
| ratio (baseline time / ingest time) | {base_s / ingest_s:.2f}x |
| peak RSS | {peak_rss_mb():,.0f} MB |
"""
    print(body)
    if not args.no_write:
        write_section("eth-ingest", "Ethereum: ethereum-etl CSV ingest",
                      f"python bench/bench_eth_ingest.py --transfers {args.transfers}", body)


if __name__ == "__main__":
    main()
