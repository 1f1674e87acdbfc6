"""Durable writes, atomic replacement and the single-writer lock: the pieces of a crash-safe commit.

A commit protocol built from these (``store/segments.py``'s manifest, ``graph/cluster``'s ``state.json``):
write every new file durably (:func:`write_parquet`, :func:`save_npy`: written, then fsynced), then replace
the small state file that names them (:func:`replace_json`: temporary file, fsync, rename, fsync of the
directory) -- the rename is the commit point -- then delete what the new state no longer names. All of it
under :func:`exclusive_lock`, so there is one writer at a time.
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def fsync_path(path: Path | str) -> None:
    """fsync a file or a directory (a directory: so that a rename or a new name in it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(table: pa.Table, path: Path | str, row_group_size: int = 1 << 20,
                  use_dictionary: bool | list[str] = True) -> None:
    """Write `table` as zstd Parquet and fsync it (`use_dictionary`: all columns, or only those named)."""
    pq.write_table(table, path, compression="zstd", row_group_size=row_group_size, use_dictionary=use_dictionary)
    fsync_path(path)


def save_npy(path: Path | str, array: np.ndarray) -> None:
    """``np.save`` to exactly `path` (no ``.npy`` appended) and fsync it."""
    with open(path, "wb") as fh:
        np.save(fh, array)
        fh.flush()
        os.fsync(fh.fileno())


def replace_json(path: Path | str, obj) -> None:
    """Atomically replace `path` with `obj` as JSON: readers see the old or the new file, never a mix, and
    after a crash the new one only if the rename happened (the commit point)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # <- commit point
    fsync_path(path.parent)


@contextmanager
def exclusive_lock(path: Path | str, busy: Callable[[], Exception]) -> Iterator[None]:
    """Hold an exclusive, non-blocking ``flock`` on `path` (created if missing); raise ``busy()`` when
    another process holds it."""
    fh = open(path, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise busy() from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
