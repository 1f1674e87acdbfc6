"""Precomputed answers: every exposed address's screening result, serialized once at index build.

:func:`bake` runs the one definition of an address answer (:func:`chaintrace.screen.service.screen_one_address`)
for every exposed address of an index, against the registry facts the index was built from and without the
snapshot-wide warnings (those depend on the time of the question, e.g. "data is N days old"), and stores
the JSON bytes of each result as two arrays beside the index:

``ans_off``   int64, one more than the baked addresses (the exposed ones, then ``meta["baked_direct"]``, the
              chain's other addresses with a registry fact): result ``i`` is ``ans_blob[ans_off[i]:ans_off[i+1]]``
``ans_blob``  uint8, the concatenated JSON results (``subject`` left empty: the subject is as the caller wrote it)

A screen is then a hash lookup (address -> row) plus :func:`assemble`: parse the bytes, put in the subject
and append the snapshot's warnings. A snapshot uses them only when its registry facts are those the index
was built from (same registry generation); otherwise answers are computed per request as before.
Addresses of the chain data without any exposure or registry hit share one canned answer
(:func:`chaintrace.screen.service.canned`); those whose only facts are detections (``meta["baked_facts"]``,
:mod:`chaintrace.screen.detections`) are assembled from the index's compact facts
(:func:`chaintrace.screen.service.facts_answer`): baking them held most of the index's bytes and build time.
"""
from __future__ import annotations

import numpy as np
import orjson


def bake(index, sources, config, reuse=None) -> tuple[np.ndarray, np.ndarray]:
    """(ans_off, ans_blob) of every exposed address of `index` (an :class:`~chaintrace.screen.index.ExposureIndex`
    over in-memory or mapped arrays), then of every other address of the chain data with a registry fact
    (``meta["baked_direct"]``: tagged services, listed addresses without exposure), with the btc `sources`
    and `config` it was built from. `reuse` (previous index, row per baked address or -1): the answer bytes
    of a row >= 0 are copied from the previous index (an ingest refresh, for addresses nothing new touched)."""
    from chaintrace.screen.service import Snapshot, screen_one_address

    snap = Snapshot(config=config, sources={"btc": sources}, index=index, data_version=index.data_version,
                    warnings=[], baked=False)
    buf = bytearray()  # one buffer: orjson's result objects keep spare capacity (GBs over 10**5 small ones)
    ends = [0]
    index.known = set(index.meta.get("baked_direct", [])) | set(index.meta.get("baked_facts", []))  # in the chain
    old, old_rows = reuse if reuse is not None else (None, None)
    for i, s in enumerate(list(index.meta["addresses"]) + list(index.meta.get("baked_direct", []))):
        if old is not None and old_rows is not None and i < len(old_rows) and old_rows[i] >= 0:
            o = old.arrays["ans_off"]
            buf += old.blob[int(o[old_rows[i]]):int(o[old_rows[i] + 1])]
            ends.append(len(buf))
            continue
        r = screen_one_address(snap, s)
        r["subject"] = ""
        buf += orjson.dumps(r)
        ends.append(len(buf))
    return np.asarray(ends, np.int64), np.frombuffer(bytes(buf), np.uint8)


def assemble(index, row: int, subject: str, warnings: list[str]) -> dict:
    """The result of exposed address `row` for `subject` (as given), with the snapshot's `warnings` appended."""
    off = index.ans_off if index.ans_off is not None else index.arrays["ans_off"]
    r = orjson.loads(index.blob[int(off[row]):int(off[row + 1])])
    r["subject"] = subject
    if warnings:
        r["warnings"] = r["warnings"] + warnings
    return r
