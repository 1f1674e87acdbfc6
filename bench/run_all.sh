#!/usr/bin/env bash
# Every benchmark at full scale, one after another on an otherwise idle machine (they compete for the CPU
# otherwise). Each writes its own section of docs/benchmarks.md with its command line. About 1.5-2 hours on
# 2 cores; the simulated 10M-transaction chain is kept in bench-data/ between the trace steps.
set -euo pipefail
cd "$(dirname "$0")/.."
run() { echo "== $*"; "$@"; }
run python bench/bench_ingest.py --copies 25 100 400 --sim-txs 1000000
run python bench/bench_simulate.py --txs 10000000
run python bench/bench_trace.py --txs 10000000 --baseline-txs 1000000 --workdir bench-data/trace
run python bench/eval_trace.py --txs 100000 --seeds 1 2 3 4 5
run python bench/bench_cluster.py --inputs 100000000 --repeat 5 --sim-txs 10000000
run python bench/eval_cluster.py --txs 200000
run python bench/bench_eth_ingest.py --transfers 5000000
run python bench/bench_eth_trace.py --transfers 5000000
run python bench/bench_intel_lookup.py --packs all --n 1000000
run python bench/bench_coldstart.py
run python bench/bench_report.py --txs 10000 --paths 50
