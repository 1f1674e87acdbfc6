"""What a simulation wrote (:class:`SimResult`, any chain) and writing its output directory atomically: everything goes to a hidden sibling directory that
is renamed into place when complete, so an interrupted run never leaves a half-written result."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from chaintrace.errors import UserError


@dataclass
class SimResult:
    """What a simulation wrote."""

    chain: str
    out_dir: str
    scenario: str
    seed: int
    network: str
    blocks: int
    transactions: int
    tip_height: int
    tip_hash: str
    files: list[str]
    truth: str
    tags: str
    seconds: float
    stolen_total: int = 0
    incidents: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@contextmanager
def atomic_dir(out_dir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces `out_dir` when the block completes without error."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists():
        if not out.is_dir():
            raise UserError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not overwrite:
            raise UserError(f"{out}: directory is not empty (pass --overwrite to replace it)")
    if not out.parent.exists():
        raise UserError(f"{out.parent}: parent directory does not exist")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out)
