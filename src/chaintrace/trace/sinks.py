"""Sink resolution: which addresses stop a trace, and as which entity.

One small step, built once per trace: :func:`resolve_sinks` turns attribution tags into a dense array
``addr_sink[address_id] -> sink index`` (-1: not a sink) and the list of entities the indices point to.
Only tags of a service category (:data:`chaintrace.model.tags.SERVICE_CATEGORIES`: exchanges, OTC desks,
custodial wallets, payment processors, gambling, mixers, bridges, ...) make sinks; other tags (a hacker's
address, a victim) only label report rows (:attr:`SinkIndex.labels`).

Clustering plugs in through :data:`CLUSTER_EXPANDERS`: ``CLUSTER_EXPANDERS[chain](ws, graph)`` (Bitcoin:
:func:`chaintrace.graph.cluster.expander.cluster_expander`, imported here: the tracer sits above the graph)
returns a function ``expand(address_ids) -> (member_ids, origin)`` giving, for every tagged address id, the ids of all
members of its cluster (``origin[j]`` = position in `address_ids` of the tagged address that
``member_ids[j]`` belongs with); it is called with ``keys=`` (the entity index of every tagged address) so
that it can refuse to expand a cluster holding two different entities (listed in ``expand.conflicts``).
:func:`resolve_sinks` then makes every member a sink of the same entity (an address tagged itself keeps its
own tag). ``clusters=False`` (``--no-clusters``) skips the step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from chaintrace.model.tags import Tag


def _btc_expander(ws, graph):
    from chaintrace.graph.cluster.expander import cluster_expander  # lazy: clustering loads only when used

    return cluster_expander(ws, graph)


CLUSTER_EXPANDERS: dict[str, Callable] = {"btc": _btc_expander}


@dataclass
class SinkIndex:
    addr_sink: np.ndarray  # int32[n_addresses]; -1 = not a sink; empty when there are no sinks
    entities: list[Tag]  # sink index -> the tag that makes it a sink
    via_cluster: np.ndarray  # bool[len(addr_sink)] (or empty): the address is a sink through its cluster
    labels: dict[int, Tag] = field(default_factory=dict)  # address id -> best tag (any category)
    tagged: int = 0  # tagged addresses found in the store
    tags_loaded: int = 0
    clusters_used: bool = False
    cluster_conflicts: int = 0  # clusters not expanded because they hold two different entities' tags
    detected: dict = field(default_factory=dict)  # address id -> service detection (chaintrace.trace.services)
    detected_mixers: dict = field(default_factory=dict)  # sink label -> custodial mixer recognised by behaviour

    @property
    def n_sink_addresses(self) -> int:
        return int((self.addr_sink >= 0).sum()) if len(self.addr_sink) else 0


def _rank(t: Tag) -> tuple:
    return (0 if t.is_service else 1, -(t.confidence or 0), t.label or "", t.source or "")


def best_tags(tags: list[Tag]) -> dict[str, Tag]:
    """The tag that names each address: service tags first, then higher confidence, then label order."""
    best: dict[str, Tag] = {}
    for t in tags:
        cur = best.get(t.address)
        if cur is None or _rank(t) < _rank(cur):
            best[t.address] = t
    return best


def _expander(ws, chain: str, graph):
    make = CLUSTER_EXPANDERS.get(chain)
    return make(ws, graph) if make else None


def resolve_sinks(ws, graph, tags: list[Tag], address_ids: Callable[[list[str]], dict[str, int]],
                  n_addresses: int, *, chain: str = "btc", clusters: bool = True) -> SinkIndex:
    """Build the sink index of one trace from `tags` (addresses resolved with `address_ids`)."""
    best = best_tags([t for t in tags if t.chain == chain])
    ids = address_ids(list(best)) if best else {}
    labels = {ids[a]: t for a, t in best.items() if a in ids}
    entities: list[Tag] = []
    key_of: dict[tuple, int] = {}
    sink_ids: list[int] = []
    sink_idx: list[int] = []
    for aid, t in sorted(labels.items()):
        if not t.is_service:
            continue
        key = (t.label, t.category, t.actor)
        if key not in key_of:
            key_of[key] = len(entities)
            entities.append(t)
        sink_ids.append(aid)
        sink_idx.append(key_of[key])
    if not sink_ids:
        return SinkIndex(np.zeros(0, np.int32), [], np.zeros(0, bool), labels, len(labels), len(tags))
    addr_sink = np.full(n_addresses, -1, np.int32)
    via = np.zeros(n_addresses, bool)
    used = False
    conflicts: list = []
    if clusters:
        expand = _expander(ws, chain, graph)
        if expand is not None:
            used = True
            keys = np.asarray(sink_idx, np.int64)
            entity_key = getattr(expand, "entity_key", None)  # the clusterer's notion of "the same service"
            if entity_key is not None:
                names = [entity_key(e) for e in entities]
                keys = np.asarray([names[i] for i in sink_idx], dtype=object)
            try:
                members, origin = expand(np.asarray(sink_ids, np.int64), keys=keys)
            except TypeError:
                members, origin = expand(np.asarray(sink_ids, np.int64))
            conflicts = list(getattr(expand, "conflicts", []))
            members = np.asarray(members, np.int64)
            idx = np.asarray(sink_idx, np.int32)[np.asarray(origin, np.int64)]
            addr_sink[members] = idx
            via[members] = True
    addr_sink[np.asarray(sink_ids, np.int64)] = np.asarray(sink_idx, np.int32)
    via[np.asarray(sink_ids, np.int64)] = False
    return SinkIndex(addr_sink, entities, via, labels, len(labels), len(tags), used, len(conflicts))
