"""Screening: exposure of addresses and deposits to illicit funds, with risk levels and path evidence.

Library for ``chaintrace screen ...`` and the screening endpoints of ``chaintrace serve``:

>>> from chaintrace.screen import screen_addresses, build_index, load_config     # doctest: +SKIP
>>> build_index(ws, load_config())                                                # doctest: +SKIP
>>> screen_addresses(ws, ["bcrt1q..."])["results"][0]["risk"]                      # doctest: +SKIP
'high'

Method: tracing-methods.md §4 (see docs/screening.md).
"""
from __future__ import annotations

from chaintrace.screen.config import Config, load_config
from chaintrace.screen.index import build_index, load_index
from chaintrace.screen.service import (MAX_BATCH, Screener, Snapshot, make_snapshot, screen_addresses,
                                       screen_transfers)

__all__ = ["Config", "load_config", "build_index", "load_index", "Screener", "Snapshot", "make_snapshot",
           "screen_addresses", "screen_transfers", "MAX_BATCH"]
