"""Clusters for tracing: every member of a cluster tagged as a service is a sink of that service
(:func:`cluster_expander`, which :data:`chaintrace.trace.sinks.CLUSTER_EXPANDERS` imports)."""
from __future__ import annotations

import numpy as np

from chaintrace.graph.cluster.reader import Clusters
from chaintrace.graph.cluster.services import service_entity
from chaintrace.store.clusters.storage import ClusterStore
from chaintrace.store.workspace import Workspace


def cluster_expander(ws: Workspace, graph=None):
    """For ``chaintrace.trace.sinks``: a function mapping tagged address ids to all members of their clusters.

    ``expand(address_ids, keys=None) -> (member_ids, origin)``: for each given address id, every member of
    its cluster, with ``origin[j]`` the position of the given id that member j belongs with. When `keys` (one
    entity key per given id) name two different entities inside one cluster, that cluster is *not*
    expanded (a conflict is never silently resolved): its ids are listed in ``expand.conflicts``.
    ``expand.entity_key`` (:func:`service_entity`) tells callers how to key a tag so that one service's
    differently labelled tags count as one entity.
    Returns None when no clusters were built.
    """
    if not ClusterStore(ws).exists:
        return None
    c = Clusters(ws)

    def expand(address_ids, keys=None):
        ids = np.asarray(address_ids, np.int64)
        cids = c.of(ids)
        ok = np.ones(len(ids), np.bool_)
        expand.conflicts = []
        if keys is not None:
            keys = np.asarray(keys)
            first_key: dict[int, object] = {}
            bad: set[int] = set()
            for cid, k in zip(cids.tolist(), keys.tolist()):
                if cid in first_key and first_key[cid] != k:
                    bad.add(cid)
                first_key.setdefault(cid, k)
            if bad:
                ok = ~np.isin(cids, np.fromiter(bad, np.int64))
                expand.conflicts = sorted(bad)
        # one origin per cluster (the first given id in it)
        uniq, first_pos = np.unique(cids[ok], return_index=True)
        pos = np.flatnonzero(ok)[first_pos]
        members = c.members_of(uniq[uniq < c.n])
        origin = pos[np.searchsorted(uniq, np.asarray(c.cluster_of)[members])] if len(members) \
            else np.zeros(0, np.int64)
        return members, origin

    expand.conflicts = []
    # tags naming one service with different labels ("X deposit address", "X hot wallet") are one entity
    expand.entity_key = service_entity
    return expand

