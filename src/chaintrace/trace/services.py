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

from typing import Callable

import numpy as np

from chaintrace.detect.services import KINDS, ServiceDetections
from chaintrace.graph.services import btc_detections, cached_detections, eth_detections
from chaintrace.model.tags import Tag
from chaintrace.trace.sinks import SinkIndex

CATEGORY = "unidentified_service"
REASON = "service_like"
SOURCE = "detected by behaviour (chaintrace.detect.services)"


def detect_btc(g, ws=None) -> ServiceDetections:
    """Service detections over a Bitcoin graph (cached on disk per store commit when `ws` is given)."""
    return cached_detections(ws, "btc", g) if ws is not None else btc_detections(g)


def detect_eth(g, ws=None) -> ServiceDetections:
    """Service detections over an Ethereum graph (fees left out, contracts never reported)."""
    return cached_detections(ws, "eth", g) if ws is not None else eth_detections(g)


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
    names = address_strings(sorted({int(x) for x in det.address[new]} | {int(x) for x in det.hub[new]}))
    hub_entity: dict[int, int] = {}
    where = dict(zip(det.address.tolist(), range(len(det))))
    detected = dict(getattr(sinks, "detected", {}) or {})
    for i in new.tolist():
        a, h = int(det.address[i]), int(det.hub[i])
        row = det.row(i)
        row["hub"] = names.get(h)
        row["thresholds"] = det.thresholds
        if h not in hub_entity:
            if h != a and addr_sink[h] >= 0:
                hub_entity[h] = int(addr_sink[h])  # the deposit address of a tagged exchange
            else:
                kind = KINDS[int(det.kind[where[h]])] if h in where else row["kind"]
                sinks.entities.append(Tag(chain=chain, address=names.get(h) or str(h),
                                          label=f"unidentified {kind} {names.get(h) or h}", category=CATEGORY,
                                          source=SOURCE, confidence=int(round(100 * row["confidence"]))))
                hub_entity[h] = len(sinks.entities) - 1
        addr_sink[a] = hub_entity[h]
        detected[a] = row
    sinks.addr_sink = addr_sink
    sinks.via_cluster = via
    sinks.detected = detected
    return sinks


def sink_fields(sinks: SinkIndex, address_id: int) -> dict:
    """The ``reason`` and ``detection`` of a sink row at `address_id` (empty when the sink is tagged)."""
    d = (getattr(sinks, "detected", None) or {}).get(int(address_id))
    return {"reason": REASON, "detection": d} if d is not None else {}
