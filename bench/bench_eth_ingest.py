"""Benchmark: ethereum-etl CSV ingest (``chaintrace ingest eth-etl``) in transfers per second.

Writes a synthetic ethereum-etl export (blocks, transactions with receipts, token_transfers, traces; see
chaintrace.chains.eth.synth) of --transfers value movements, then, in the same run:

* **chaintrace**: the real ingest path (validation, ids, fees, call traces, Parquet commits) into a fresh
  workspace;
* **baseline**: a straightforward row-by-row Python ingester in the style of ethereum-etl's loaders —
  ``csv.DictReader``, a dict for address ids, Python ints for fees and amounts, the same transfer rows and
  order — writing the same five Parquet tables (same schemas, zstd) per batch of blocks, without validation.
  Its tables must equal the store's (checked), so both do the same transformation;
* **I/O floor**: only reading the same CSV files with Arrow's reader and only writing the store's tables
  again, to show how much of the ingest time is the unavoidable parse and write.

The one-time numba start (loading compiled kernels from the cache) is timed separately on a small export.
Full scale for docs/benchmarks.md:

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

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import peak_rss_mb, write_section  # noqa: E402

TABLES = ("blocks", "transactions", "transfers", "addresses", "assets")


class _Rows:
    """Rows of one CSV file in block order, handed out by block range."""

    def __init__(self, path: Path, bcol: str):
        self.fh = open(path, newline="")
        self.it = csv.DictReader(self.fh)
        self.bcol = bcol
        self.next = next(self.it, None)

    def until(self, hi: int) -> list[dict]:
        out = []
        while self.next is not None and int(self.next[self.bcol]) <= hi:
            out.append(self.next)
            self.next = next(self.it, None)
        return out


def _opt(x):
    return int(x) if x not in (None, "") else None


def _amount(v: int):
    return (v, None) if v < 10**38 else (None, str(v))


def baseline_rowwise(export: Path, out: Path, batch_blocks: int) -> int:
    """Row-by-row Python ingestion of the export into Parquet tables (the store's schemas). Returns the
    number of transfers."""
    from chaintrace.chains.eth.ingest import NATIVE
    from chaintrace.store.schema.eth import SCHEMAS

    out.mkdir(parents=True)
    blocks_r = _Rows(export / "blocks.csv", "number")
    txs_r = _Rows(export / "transactions.csv", "block_number")
    tr_r = _Rows(export / "traces.csv", "block_number")
    tt_r = _Rows(export / "token_transfers.csv", "block_number")
    addr_id: dict[str, int] = {}
    asset_id: dict[str, int] = {}
    n_tx = n_tr = part = 0
    first_assets = True
    while blocks_r.next is not None:
        lo = int(blocks_r.next["number"])
        hi = lo + batch_blocks - 1
        blocks, txs, traces, tts = blocks_r.until(hi), txs_r.until(hi), tr_r.until(hi), tt_r.until(hi)
        cols = {t: {c: [] for c in SCHEMAS[t].names} for t in TABLES}
        if first_assets:
            for c in SCHEMAS["assets"].names:
                cols["assets"][c].append(NATIVE[c])
            first_assets = False
        traces_of: dict[str, list[dict]] = {}
        for t in traces:
            traces_of.setdefault(t["transaction_hash"], []).append(t)
        tokens_of: dict[str, list[dict]] = {}
        for t in tts:
            tokens_of.setdefault(t["transaction_hash"], []).append(t)
        txs_of: dict[int, list[dict]] = {}
        for t in txs:
            txs_of.setdefault(int(t["block_number"]), []).append(t)

        def aid(a, height, cols=cols):
            if not a:
                return None
            a = a.lower()
            i = addr_id.get(a)
            if i is None:
                i = addr_id[a] = len(addr_id)
                cols["addresses"]["address_id"].append(i)
                cols["addresses"]["address"].append(a)
                cols["addresses"]["height"].append(height)
            return i

        for b in blocks:
            h = int(b["number"])
            base = int(b["base_fee_per_gas"])
            miner = aid(b["miner"], h)
            btx = txs_of.get(h, [])
            ids = [(aid(t["from_address"], h), aid(t["to_address"], h), aid(t["receipt_contract_address"], h))
                   for t in btx]
            first_tr = n_tr
            trs = []  # (tx position, kind, from, to, value, log index, trace address, token)
            for j, t in enumerate(btx):
                frm = t["from_address"]
                status = int(t["receipt_status"])
                gu = int(t["receipt_gas_used"])
                fee = gu * int(t["receipt_effective_gas_price"])
                burned = gu * base
                mine = []
                if burned:
                    mine.append(("fee_burn", frm, None, burned, None, None, None))
                if fee - burned:
                    mine.append(("fee_tip", frm, b["miner"], fee - burned, None, None, None))
                value = int(t["value"])
                if status == 1:
                    if value:
                        mine.append(("call", frm, t["to_address"], value, None, None, None))
                    failed = []
                    frames = sorted(traces_of.get(t["hash"], []),
                                    key=lambda f: [int(x) for x in f["trace_address"].split(",")] if f["trace_address"] else [])
                    for f in frames:
                        ta = f["trace_address"]
                        bad = f["error"] or f["status"] == "0"
                        if bad:
                            failed.append(ta)
                        if not ta or bad or int(f["value"]) == 0 or f["call_type"] not in ("call", ""):
                            continue
                        if any(x == "" or ta == x or ta.startswith(x + ",") for x in failed):
                            continue
                        mine.append(("internal", f["from_address"], f["to_address"], int(f["value"]), None, ta, None))
                    for x in sorted(tokens_of.get(t["hash"], []), key=lambda x: int(x["log_index"])):
                        mine.append(("token", x["from_address"], x["to_address"], int(x["value"]), int(x["log_index"]),
                                     None, x["token_address"].lower()))
                c = cols["transactions"]
                c["tx_id"].append(n_tx)
                c["hash"].append(t["hash"].lower())
                c["height"].append(h)
                c["tx_index"].append(int(t["transaction_index"]))
                c["time"].append(int(b["timestamp"]))
                c["nonce"].append(int(t["nonce"]))
                c["from_id"].append(ids[j][0])
                c["to_id"].append(ids[j][1])
                c["contract_id"].append(ids[j][2])
                v, vb = _amount(value)
                c["value"].append(v)
                c["value_big"].append(vb)
                c["gas"].append(int(t["gas"]))
                c["gas_price"].append(int(t["gas_price"] or 0))
                c["max_fee_per_gas"].append(_opt(t["max_fee_per_gas"]))
                c["max_priority_fee_per_gas"].append(_opt(t["max_priority_fee_per_gas"]))
                c["tx_type"].append(_opt(t["transaction_type"]))
                c["input"].append(bytes.fromhex(t["input"][2:]))
                c["status"].append(status)
                c["gas_used"].append(gu)
                c["cumulative_gas_used"].append(int(t["receipt_cumulative_gas_used"]))
                c["effective_gas_price"].append(int(t["receipt_effective_gas_price"]))
                c["fee"].append(fee)
                c["burned"].append(burned)
                c["tip"].append(fee - burned)
                c["first_transfer_id"].append(n_tr + len(trs))
                c["n_transfers"].append(len(mine))
                trs += [(j, *m) for m in mine]
                n_tx += 1
            for j, kind, frm, to, value, li, ta, token in trs:
                c = cols["transfers"]
                c["transfer_id"].append(n_tr)
                c["height"].append(h)
                c["tx_id"].append(n_tx - len(btx) + j)
                c["tx_index"].append(int(btx[j]["transaction_index"]))
                c["kind"].append(kind)
                if token is None:
                    c["asset_id"].append(0)
                else:
                    if token not in asset_id:
                        asset_id[token] = len(asset_id) + 1
                        for k, val in (("asset_id", asset_id[token]), ("address", token), ("symbol", None),
                                       ("name", None), ("decimals", None), ("standard", "erc20"), ("height", h)):
                            cols["assets"][k].append(val)
                    c["asset_id"].append(asset_id[token])
                c["from_id"].append(aid(frm, h))
                c["to_id"].append(aid(to, h))
                v, vb = _amount(value)
                c["value"].append(v)
                c["value_big"].append(vb)
                c["log_index"].append(li)
                c["trace_address"].append(ta)
                n_tr += 1
            # position inside the transaction
            seqs, prev, s = [], None, 0
            for j, *_ in trs:
                s = s + 1 if j == prev else 0
                seqs.append(s)
                prev = j
            cols["transfers"]["seq"] += seqs
            c = cols["blocks"]
            for k, val in (("height", h), ("hash", b["hash"].lower()), ("parent_hash", b["parent_hash"].lower()),
                           ("time", int(b["timestamp"])), ("miner_id", miner), ("gas_limit", int(b["gas_limit"])),
                           ("gas_used", int(b["gas_used"])), ("base_fee_per_gas", base), ("n_tx", len(btx)),
                           ("size", _opt(b["size"])), ("difficulty", int(b["difficulty"])),
                           ("total_difficulty", int(b["total_difficulty"])), ("nonce", b["nonce"]),
                           ("sha3_uncles", b["sha3_uncles"]), ("transactions_root", b["transactions_root"]),
                           ("state_root", b["state_root"]), ("receipts_root", b["receipts_root"]),
                           ("extra_data", b["extra_data"]), ("withdrawals_root", None), ("n_withdrawals", 0),
                           ("blob_gas_used", None), ("excess_blob_gas", None), ("first_tx_id", n_tx - len(btx)),
                           ("first_transfer_id", first_tr), ("n_transfers", n_tr - first_tr)):
                c[k].append(val)
        for t in TABLES:
            pq.write_table(pa.Table.from_pydict(cols[t], schema=SCHEMAS[t]), out / f"{t}.{part:04d}.parquet",
                           compression="zstd", row_group_size=1 << 20)
        part += 1
    for r in (blocks_r, txs_r, tr_r, tt_r):
        r.fh.close()
    return n_tr


def same_tables(ws, base_dir: Path) -> bool:
    store = ws.chain("eth")
    for t in TABLES:
        mine = store.read(t)
        theirs = pa.concat_tables([pq.read_table(p) for p in sorted(base_dir.glob(f"{t}.*.parquet"))])
        if not mine.equals(theirs.cast(mine.schema)):
            print(f"baseline differs from the store in table {t}", file=sys.stderr)
            return False
    return True


def io_floor(export: Path, ws) -> tuple[float, float]:
    """(seconds to read the export's CSV files with Arrow, seconds to write the store's tables again)."""
    from chaintrace.chains.eth.records import KINDS

    t = time.perf_counter()
    for f in sorted(export.glob("*.csv")):
        header = f.open().readline().strip().replace('"', "").split(",")
        kind = f.stem
        types = {c: (KINDS[kind].get(c) or pa.string()) for c in header}
        for _ in pacsv.open_csv(f, convert_options=pacsv.ConvertOptions(column_types=types)):
            pass
    read_s = time.perf_counter() - t
    store = ws.chain("eth")
    tables = {tb: store.read(tb) for tb in TABLES}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for tb, table in tables.items():
            pq.write_table(table, Path(tmp) / f"{tb}.parquet", compression="zstd", row_group_size=1 << 20)
        write_s = time.perf_counter() - t
    return read_s, write_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfers", type=int, default=300_000, help="approximate transfers in the export")
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--batch-blocks", type=int, default=5000)
    ap.add_argument("--no-baseline", action="store_true", help="skip the row-by-row Python baseline")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()

    from chaintrace.chains.eth import ingest_etl
    from chaintrace.chains.eth.synth import write_export
    from chaintrace.store.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-eth-ingest-"))
    try:
        write_export(tmp / "small", n_transfers=3000, n_accounts=1000)
        t = time.perf_counter()
        ingest_etl(Workspace(tmp / "small-data"), tmp / "small")  # numba kernels loaded from the cache once
        warm_s = time.perf_counter() - t
        t = time.perf_counter()
        info = write_export(tmp / "export", n_transfers=args.transfers, n_accounts=args.accounts)
        gen_s = time.perf_counter() - t
        size = sum(p.stat().st_size for p in (tmp / "export").iterdir())
        ws = Workspace(tmp / "data")
        t, c = time.perf_counter(), time.process_time()
        rep = ingest_etl(ws, tmp / "export", batch_blocks=args.batch_blocks)
        ingest_s, ingest_cpu = time.perf_counter() - t, time.process_time() - c
        read_s, write_s = io_floor(tmp / "export", ws)
        base_s, same = None, None
        if not args.no_baseline:
            t = time.perf_counter()
            n = baseline_rowwise(tmp / "export", tmp / "baseline", args.batch_blocks)
            base_s = time.perf_counter() - t
            same = n == rep.transfers and same_tables(ws, tmp / "baseline")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tps = rep.transfers / ingest_s
    rows = [
        f"| export | {info['blocks']:,} blocks, {rep.transactions:,} transactions, {rep.transfers:,} transfers "
        f"({size / 1e6:,.0f} MB of CSV, written in {gen_s:.1f} s) |",
        f"| **chaintrace** `ingest eth-etl` (validate, ids, fees, call traces, Parquet commits; "
        f"{args.batch_blocks} blocks per commit) | {ingest_s:.2f} s = **{tps:,.0f} transfers/s** "
        f"({rep.transactions / ingest_s:,.0f} tx/s; {ingest_cpu:.2f} s CPU over both threads) |",
    ]
    if base_s is not None:
        rows += [
            f"| baseline: row-by-row Python ingester (csv.DictReader, dict address ids, Python-int fees; same five "
            f"Parquet tables, no validation) | {base_s:.2f} s = {rep.transfers / base_s:,.0f} transfers/s |",
            f"| ratio (baseline time / chaintrace time) | **{base_s / ingest_s:.1f}x** |",
            f"| baseline tables equal the store's | {same} |",
        ]
    rows += [
        f"| I/O floor: Arrow CSV read of the same files / zstd Parquet write of the same tables | {read_s:.2f} s / "
        f"{write_s:.2f} s ({read_s + write_s:.2f} s, {(read_s + write_s) / ingest_s:.0%} of the ingest) |",
        f"| one-time start (numba kernels from the cache), not in the figures above | {warm_s:.2f} s |",
        f"| peak RSS | {peak_rss_mb():,.0f} MB |",
    ]
    body = "| | value |\n|---|---|\n" + "\n".join(rows)
    print(body)
    if same is False:
        sys.exit("the baseline's tables differ from the store's")
    if not args.no_write:
        write_section("eth-ingest", "Ethereum: ethereum-etl CSV ingest",
                      f"python bench/bench_eth_ingest.py --transfers {args.transfers}", body)


if __name__ == "__main__":
    main()
