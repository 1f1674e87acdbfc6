"""chaintrace: follow stolen cryptocurrency, screen deposits for exposure, share intelligence.

Library first: every command of the `chaintrace` CLI is a function here.

>>> import chaintrace
>>> ws = chaintrace.Workspace("chaintrace-data")                    # doctest: +SKIP
>>> chaintrace.ingest_block_files(ws, ["blocks/"])                  # doctest: +SKIP
>>> chaintrace.stats(ws)["chains"]["btc"]["tip_height"]             # doctest: +SKIP
"""
from __future__ import annotations

__version__ = "0.1.0"

from chaintrace.errors import ChaintraceError, UserError  # noqa: E402
from chaintrace.store.workspace import Workspace  # noqa: E402


def __getattr__(name: str):
    # Lazy re-exports keep `import chaintrace` fast (numba kernels load on first use).
    lazy = {
        "ingest_block_files": ("chaintrace.chains.btc", "ingest_block_files"),
        "ingest_rpc": ("chaintrace.chains.btc", "ingest_rpc"),
        "stats": ("chaintrace.store.query", "stats"),
        "btc_tx": ("chaintrace.store.query", "btc_tx"),
        "btc_address": ("chaintrace.store.query", "btc_address"),
        "sql": ("chaintrace.store.query", "sql"),
    }
    if name in lazy:
        import importlib

        mod, attr = lazy[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'chaintrace' has no attribute {name!r}")


__all__ = ["Workspace", "ChaintraceError", "UserError", "ingest_block_files", "ingest_rpc", "stats", "btc_tx",
           "btc_address", "sql", "__version__"]
