"""The on-disk cache of a chain's graph arrays: ``DATA/<chain>/cache/graph-v<format>-c<commit>/``, one ``.npy``
file per array plus a ``DONE`` file (written last, holding the graph's scalar metadata as text).

A cache directory belongs to one store commit, so any new commit invalidates it; loads memory-map the files
(as plain ndarrays: element access from Python skips ``np.memmap``'s slow ``__getitem__``). A new cache is
written to a temporary directory and renamed into place, so readers never see a half-written one, and
caches of older commits are deleted then.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from chaintrace.store.workspace import Workspace


def cache_root(ws: Workspace, chain: str) -> Path:
    return ws.path / chain / "cache"


def _dir(ws: Workspace, chain: str, version: int, commit: int) -> Path:
    return cache_root(ws, chain) / f"graph-v{version}-c{commit:06d}"


def load_arrays(ws: Workspace, chain: str, version: int, commit: int,
                names: list[str]) -> tuple[dict[str, np.ndarray], str] | None:
    """(arrays by name, the DONE text) of the cache of `commit`, or None when there is none."""
    d = _dir(ws, chain, version, commit)
    done = d / "DONE"
    if not done.exists():
        return None
    arrays = {n: np.load(d / f"{n}.npy", mmap_mode="r").view(np.ndarray) for n in names}
    return arrays, done.read_text()


def save_arrays(ws: Workspace, chain: str, version: int, commit: int, arrays: dict[str, np.ndarray],
                done: str) -> None:
    """Write the cache of `commit` (then delete the caches of other commits)."""
    d = _dir(ws, chain, version, commit)
    tmp = d.with_name(d.name + f".tmp{time.time_ns()}")
    tmp.mkdir(parents=True)
    for name, a in arrays.items():
        np.save(tmp / f"{name}.npy", a)
    (tmp / "DONE").write_text(done)
    for old in cache_root(ws, chain).glob("graph-*"):
        if old != tmp:
            shutil.rmtree(old, ignore_errors=True)
    try:
        tmp.rename(d)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process cached the same commit first
