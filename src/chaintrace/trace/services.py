"""Stopping a trace at services recognised by behaviour (issue 15, points 1 and 5).

A trace stops where a tag names a service (:mod:`chaintrace.trace.sinks`). OTC desks, fresh exchange deposit
addresses and payment processors often carry no tag; :mod:`chaintrace.detect.services` recognises them by
behaviour. :func:`add_detected_services` makes every detected address that is not already a sink a sink
*as an unidentified service*: its sink rows carry ``reason="service_like"`` and the detection (kind,
confidence, features, thresholds, the hub address it belongs with). A detected exchange deposit address
whose exchange (hub) is a tagged sink joins that tagged entity (like a cluster member); otherwise each hub
is its own entity, category ``unidentified_service``, label ``unidentified <kind> <hub>``.
``trace(..., follow_services=True)`` (``--follow-services``) skips this step: the old behaviour.
"""
from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from chaintrace.detect.services import EXCHANGE, KINDS, ServiceDetections, btc_swept_deposits, concat_detections
from chaintrace.graph.services import btc_detections, cached_detections, eth_detections
from chaintrace.model.tags import Tag
from chaintrace.trace.sinks import SinkIndex

CATEGORY = "unidentified_service"
REASON = "service_like"
SOURCE = "detected by behaviour (chaintrace.detect.services)"
_SWEPT: dict[tuple, ServiceDetections] = {}


def detect_btc(g, ws=None) -> ServiceDetections:
    """Service detections over a Bitcoin graph (cached on disk per store commit when `ws` is given)."""
    return cached_detections(ws, "btc", g) if ws is not None else btc_detections(g)


def detect_eth(g, ws=None) -> ServiceDetections:
    """Service detections over an Ethereum graph (fees left out, contracts never reported)."""
    return cached_detections(ws, "eth", g) if ws is not None else eth_detections(g)


def exchange_hubs(sinks: SinkIndex, det: ServiceDetections) -> np.ndarray:
    """Address ids of the exchange wallets a trace knows: sinks of category ``exchange`` (tags, their
    clusters) and the detected exchanges."""
    tagged = np.zeros(0, np.int64)
    if len(sinks.addr_sink) and sinks.entities:
        ex = np.asarray([t.category == "exchange" for t in sinks.entities] + [False])
        s = np.asarray(sinks.addr_sink, np.int64)
        tagged = np.flatnonzero(ex[np.where(s >= 0, s, len(sinks.entities))])
    return np.union1d(tagged, det.address[det.kind == EXCHANGE])


def with_swept_deposits(g, sinks: SinkIndex, det: ServiceDetections) -> ServiceDetections:
    """`det` plus the deposit addresses swept into the exchange wallets the trace knows
    (:func:`chaintrace.detect.services.btc_swept_deposits`): a fresh deposit address no tag names, swept
    alone into a tagged hot wallet, is where the thief cashed out, not the hot wallet behind it."""
    hubs = exchange_hubs(sinks, det)
    key = (id(g.out_value), int(g.commit), int(g.n_tx), hashlib.sha1(hubs.tobytes()).hexdigest())
    if key not in _SWEPT:  # one pass over the outputs (about 0.25 s per million transactions): once per tags
        _SWEPT.clear()
        _SWEPT[key] = btc_swept_deposits(hubs, g.tx_in, g.tx_out, g.out_value, g.out_addr, g.out_spender_tx,
                                         g.in_output, g.n_addresses)
    extra = _SWEPT[key]
    return concat_detections(det, extra) if len(extra) else det


class DetectionRows(dict):
    """address id -> the detection row of a service recognised by behaviour, built on first use (a large
    chain has many detected deposit addresses; a report names few of them)."""

    def __init__(self, det: ServiceDetections, rows: np.ndarray, address_strings: Callable):
        super().__init__()
        self._det = det
        self._pos = dict(zip(det.address[rows].tolist(), rows.tolist()))
        self._names = address_strings

    def __contains__(self, a) -> bool:
        return int(a) in self._pos

    def prefetch(self, ids) -> None:
        """Resolve the rows of every detected address among `ids` with one address-name lookup (a report
        names thousands of sinks: one query each would scan the address table thousands of times)."""
        todo = sorted({int(a) for a in ids if int(a) in self._pos and not dict.__contains__(self, int(a))})
        if not todo:
            return
        hubs = [int(self._det.hub[self._pos[a]]) for a in todo]
        names = self._names(sorted(set(todo) | set(hubs)))
        for a, h in zip(todo, hubs):
            row = self._det.row(self._pos[a])
            row["address"], row["hub"] = names.get(a), names.get(h)
            row["thresholds"] = dict(self._det.thresholds)
            self[a] = row

    def get(self, a, default=None):
        a = int(a)
        if a not in self._pos:
            return default
        if not dict.__contains__(self, a):
            self.prefetch([a])
        return dict.__getitem__(self, a)

    def __len__(self) -> int:
        return len(self._pos)


def add_detected_services(sinks: SinkIndex, det: ServiceDetections, n_addresses: int, chain: str,
                          address_strings: Callable[[list[int]], dict[int, str]]) -> SinkIndex:
    """Make the detected addresses that are not sinks yet sinks of an unidentified service (see module doc).
    Records per address id the detection in ``sinks.detected`` and returns the (updated) index."""
    if not len(det):
        return sinks
    addr_sink = sinks.addr_sink if len(sinks.addr_sink) else np.full(n_addresses, -1, np.int32)
    via = sinks.via_cluster if len(sinks.via_cluster) else np.zeros(n_addresses, bool)
    new = np.flatnonzero(addr_sink[det.address] < 0)
    if not len(new):
        return sinks
    hubs = np.unique(det.hub[new])
    entity_of = np.full(len(hubs), -1, np.int64)
    tagged = addr_sink[hubs] >= 0  # the deposit addresses of a tagged exchange join its entity
    entity_of[tagged] = addr_sink[hubs[tagged]]
    own = hubs[~tagged]
    names = address_strings(own.tolist()) if len(own) else {}
    where = dict(zip(det.address.tolist(), range(len(det))))
    by_hub = dict(zip(det.hub[new][::-1].tolist(), new[::-1].tolist()))  # a hub that is not detected itself
    ids = []
    for h in own.tolist():
        i = where.get(h, by_hub.get(h))
        kind = KINDS[int(det.kind[i])] if i is not None else "service"
        conf = float(det.confidence[i]) if i is not None else 0.5
        name = names.get(h) or str(h)
        sinks.entities.append(Tag(chain=chain, address=name, label=f"unidentified {kind} {name}", category=CATEGORY,
                                  source=SOURCE, confidence=int(round(100 * conf))))
        ids.append(len(sinks.entities) - 1)
    entity_of[~tagged] = ids
    addr_sink[det.address[new]] = entity_of[np.searchsorted(hubs, det.hub[new])]
    sinks.addr_sink = addr_sink
    sinks.via_cluster = via
    sinks.detected = DetectionRows(det, new, address_strings)
    return sinks


def prefetch_detections(sinks: SinkIndex, address_ids) -> None:
    """Resolve, in one lookup, the detections of the sink rows a report is about to write."""
    det = getattr(sinks, "detected", None)
    if isinstance(det, DetectionRows):
        det.prefetch(address_ids)


def sink_fields(sinks: SinkIndex, address_id: int) -> dict:
    """The ``reason`` and ``detection`` of a sink row at `address_id` (empty when the sink is tagged)."""
    d = (getattr(sinks, "detected", None) or {}).get(int(address_id))
    return {"reason": REASON, "detection": d} if d is not None else {}
