"""Compiling the tracing and CoinJoin kernels ahead of use, in a second process.

On a machine that has never run chaintrace, numba compiles every kernel the first time it is called (then
caches it on disk). The propagation kernel and the CoinJoin detectors take about 25 s of that; the demo
needs them only after simulating and ingesting a chain. :func:`start` launches ``python -m
chaintrace.trace.warmup`` (which calls :func:`compile_kernels` on a tiny graph, filling numba's cache) so that
this happens on another core while the main process simulates (unless numba's cache already holds them);
:func:`wait` joins it before the kernels are first used, which then only load from the cache. The kernels take their arrays read-only and int64 scalars
whatever the caller holds (:func:`chaintrace.trace.kernels.readonly`), so the tiny graph compiles the same
signature as a real trace.

Nothing depends on the child: if it fails, or numba cannot cache, the main process compiles as before.
"""
from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np


def tiny_graph() -> SimpleNamespace:
    """Two transactions: a coinbase paying 1000 to address 0, spent into 600 (address 1) and 300 (address 2)."""
    i64 = np.int64
    return SimpleNamespace(
        n_tx=2, network="main", tx_out=np.array([0, 1, 3], i64), tx_in=np.array([0, 1, 2], i64),
        tx_coinbase=np.array([True, False]), tx_height=np.array([1, 2], i64),
        in_output=np.array([-1, 0], i64), out_value=np.array([1000, 600, 300], i64),
        out_addr=np.array([0, 1, 2], i64), out_type=np.array([3, 3, 3], np.int8),
        out_tx=np.array([0, 1, 1], i64), out_spender_tx=np.array([1, -1, -1], i64))


def compile_kernels() -> None:
    """Call the propagation kernel and the CoinJoin detectors once on :func:`tiny_graph` (compiling them, or
    loading them from numba's cache)."""
    from chaintrace.detect.coinjoin import detect_coinjoins
    from chaintrace.trace.kernels import propagate_graph

    g = tiny_graph()
    res = propagate_graph(g, np.array([0], np.int64), np.zeros(1, np.int64), 1, policy="haircut",
                          sink_of_addr=np.array([-1, 0, -1], np.int32), stop_tx=np.zeros(2, np.bool_))
    assert int(res.seeded.sum()) == 1000
    detect_coinjoins(g)


def needed() -> bool:
    """Whether the kernels still have to be compiled: False when numba's on-disk cache already holds a fresh
    entry for each (read from numba's cache index; any doubt answers True)."""
    try:
        from chaintrace.detect.coinjoin import _detect_range
        from chaintrace.trace.kernels import propagate

        return not all(d._cache._cache_file._load_index() for d in (propagate, _detect_range))
    except Exception:  # numba internals differ, caching disabled, unreadable index: compile to be safe
        return True


def start() -> subprocess.Popen | None:
    """Start compiling the kernels in a child process; None when they are cached already (:func:`needed`),
    on a single-core machine (nothing would run in parallel) or when the child cannot be started."""
    if (os.cpu_count() or 1) < 2 or not needed():
        return None
    try:
        return subprocess.Popen([sys.executable, "-m", "chaintrace.trace.warmup"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return None


def wait(proc: subprocess.Popen | None, timeout: float = 600) -> bool:
    """Wait for the child started by :func:`start` (killed after `timeout` seconds); True if it succeeded."""
    if proc is None:
        return False
    try:
        return proc.wait(timeout) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


if __name__ == "__main__":
    compile_kernels()
