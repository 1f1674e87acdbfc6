"""Benchmark: intelligence lookup (screening) — batch of N addresses and single-address latency.

Registry: the GraphSense public TagPacks (all packs with --packs all, ~188k tags) and the OFAC SDN advanced XML
from ../shared/datasets, imported into a workspace (kept in --data between runs; imports are idempotent).

Compared in the same run:
* ``chaintrace index`` — chaintrace.intel's lookup index (dict of keys + numpy hit arrays) (``lookup_hits`` / ``LookupIndex.get``);
* ``DuckDB join`` — baseline for batches: the query addresses as an Arrow table joined with ``intel.tags`` and
  ``intel.sanction_periods`` on the address key, in the catalog;
* ``SQL per address`` — baseline for single lookups: one prepared ``SELECT ... WHERE addr_key = ?`` per address
  on an open read-only connection.

Both paths must return the same number of hits (checked).

Full scale (the lead's run):   python bench/bench_intel_lookup.py --packs all --n 1000000
Quick check (reduced scale):   python bench/bench_intel_lookup.py --packs small --n 100000 --singles 2000
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import peak_rss_mb, write_section  # noqa: E402
from chaintrace import intel  # noqa: E402
from chaintrace.intel import addresses as addr  # noqa: E402
from chaintrace.intel import index as index_mod  # noqa: E402
from chaintrace.intel.registry import reader  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATASETS = REPO.parent / "shared" / "datasets"
SMALL = ["lazarus.yaml", "lazarus2.yaml", "ofac.yaml", "tornado_cash.yaml", "hacks.yaml", "ransomware.yaml",
         "walletexplorer.yaml", "usdt_blacklist.yaml"]


def build_registry(ws, packs: str) -> None:
    pack_dir = DATASETS / "graphsense-tagpacks" / "packs"
    paths = [pack_dir] if packs == "all" else [pack_dir / p for p in SMALL]
    t = time.perf_counter()
    intel.import_paths(ws, "tagpack", paths)
    intel.import_paths(ws, "ofac-sdn", [DATASETS / "ofac-sdn" / "sdn_advanced_2025-11-19.xml.bz2"])
    print(f"registry ready in {time.perf_counter() - t:.1f}s", flush=True)


def queries(ws, n: int, known_share: float, seed: int) -> list[str]:
    with reader(ws) as con:
        known = [r[0] for r in con.execute("SELECT address FROM intel.tags UNION ALL "
                                           "SELECT address FROM intel.sanction_periods").fetchall()]
    rng = random.Random(seed)
    k = int(n * known_share)
    out = [rng.choice(known) for _ in range(k)]
    b58 = addr.enc.B58_ALPHABET
    for i in range(n - k):
        if i % 2:
            out.append("0x" + "%040x" % rng.getrandbits(160))
        else:
            out.append(rng.choice("13") + "".join(rng.choice(b58) for _ in range(33)))
    rng.shuffle(out)
    return out


def duckdb_join(ws, qs: list[str]) -> int:
    keys = [addr.key_any(a) for a in qs]
    with reader(ws) as con:
        con.register("q", pa.table({"i": np.arange(len(keys)), "k": keys}))
        n = con.execute("SELECT (SELECT count(*) FROM q JOIN intel.tags t ON t.addr_key = q.k) + "
                        "(SELECT count(*) FROM q JOIN intel.sanction_periods s ON s.addr_key = q.k)").fetchall()[0][0]
        con.unregister("q")
    return int(n)


def relative(t_base: float, t_ours: float) -> str:
    """How the baseline's time compares with ours, in words."""
    r = t_base / t_ours
    if r >= 1.05:
        return f"{r:.1f}x slower than the index"
    if r <= 1 / 1.05:
        return f"{1 / r:.1f}x faster than the index"
    return "about the same as the index"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packs", choices=["small", "all"], default="all")
    ap.add_argument("--n", type=int, default=1_000_000, help="addresses in the batch")
    ap.add_argument("--singles", type=int, default=20_000, help="single lookups timed")
    ap.add_argument("--known", type=float, default=0.01, help="share of batch addresses that are in the registry")
    ap.add_argument("--data", default=str(Path(tempfile.gettempdir()) / "chaintrace-bench-intel"),
                    help="workspace kept between runs")
    ap.add_argument("--no-report", action="store_true", help="do not write docs/benchmarks.md")
    a = ap.parse_args()
    ws = intel.Registry(Path(a.data) / "registry")  # the bench's own registry, never the user's
    build_registry(ws, a.packs)
    qs = queries(ws, a.n, a.known, seed=1)

    t = time.perf_counter()
    index_mod.clear_cache()
    idx = intel.get_index(ws)
    t_build = time.perf_counter() - t
    idx.lookup(qs[:1000])  # warm-up

    t = time.perf_counter()
    _, hits = intel.lookup_hits(ws, qs)
    t_batch = time.perf_counter() - t
    n_index = int(np.count_nonzero(hits.kind != index_mod.KIND_SEED))

    t = time.perf_counter()
    n_join = duckdb_join(ws, qs)
    t_join = time.perf_counter() - t
    assert n_index == n_join, (n_index, n_join)

    singles = qs[:a.singles]
    lat = []
    for q in singles:
        t0 = time.perf_counter_ns()
        idx.get(q)
        lat.append(time.perf_counter_ns() - t0)
    lat_sql = []
    with reader(ws) as con:
        sql = ("SELECT (SELECT count(*) FROM intel.tags WHERE addr_key = $1) + "
               "(SELECT count(*) FROM intel.sanction_periods WHERE addr_key = $1)")
        for q in singles[: max(1, a.singles // 10)]:
            t0 = time.perf_counter_ns()
            con.execute(sql, [addr.key_any(q)]).fetchall()
            lat_sql.append(time.perf_counter_ns() - t0)

    def us(xs):
        return statistics.median(xs) / 1000, float(np.percentile(xs, 99)) / 1000

    med, p99 = us(lat)
    smed, sp99 = us(lat_sql)
    rows = [
        f"| registry | {idx.n_keys:,} distinct address keys, {idx.n_hits:,} hits (tags, sanctions, incident seeds) |",
        f"| index build (once per registry generation) | {t_build:.2f} s |",
        f"| batch of {a.n:,} addresses ({a.known:.0%} known), chaintrace index | **{t_batch:.2f} s** "
        f"({a.n / t_batch / 1e6:.2f} M addresses/s), {n_index:,} hits |",
        f"| same batch, DuckDB join (baseline) | {t_join:.2f} s ({relative(t_join, t_batch)}), {n_join:,} hits |",
        f"| single lookup, chaintrace index (median / p99 over {len(lat):,}) | **{med:.1f} µs** / {p99:.1f} µs |",
        f"| single lookup, prepared SQL per address (baseline; median / p99 over {len(lat_sql):,}) | "
        f"{smed:.0f} µs / {sp99:.0f} µs ({smed / med:.0f}x slower) |",
        f"| peak RSS | {peak_rss_mb():.0f} MB |",
    ]
    body = ("| measure | result |\n|---|---|\n" + "\n".join(rows) +
            f"\n\nRegistry: GraphSense TagPacks ({a.packs}) + OFAC SDN advanced XML 2025-11-19. Batch addresses: "
            "real registry addresses plus random base58/hex addresses of the same shapes; hit counts agree "
            "between the index and the DuckDB join.")
    print(body)
    if not a.no_report:
        cmd = "python bench/bench_intel_lookup.py " + " ".join(sys.argv[1:])
        write_section("intel_lookup", "Intelligence lookup (screening): batch and single address", cmd.strip(), body)


if __name__ == "__main__":
    main()
