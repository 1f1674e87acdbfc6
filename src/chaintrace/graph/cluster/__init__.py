"""Bitcoin address clustering: multi-input and change heuristics, CoinJoin-aware, explainable, undoable.

Specification: ``../shared/docs/tracing-methods.md`` §2 (heuristics, collapse prevention, union-find) and
§3.2 (CoinJoin detectors). User guide: ``docs/clustering.md``.

Pipeline (:func:`build_clusters`)::

    BtcGraph --(per chunk of transactions)--> CoinJoin detectors  -> coinjoins/*.parquet
                                           -> layer 0: multi-input edges (mih)      -> layers/mih/*.parquet
                                           -> layer 1: unique-change edges (change) -> layers/change/*.parquet
    stored edges of the selected layers, in transaction order
        --> guarded union-find (refuse: CoinJoin / excluded tx, both sides >= max size, two services)
        --> unions/*.parquet (every union performed: the evidence), refusals/*.parquet (every refusal + reason)
        --> address_clusters.parquet (address_id, cluster_id, cluster_size) + the catalog view
            ``btc.address_clusters``; members by cluster and outputs by address (for look-ups);
            growth alarms in the state

*Candidate edges* are stored for every heuristic, whatever the guards decide, so clusters can be rebuilt
without a heuristic, with other guards, or without the unions of a transaction (:func:`exclude`, which
undoes a collapse) from the stored edges alone, without re-reading the chain. Cluster ids are the smallest
address id of the cluster (:mod:`chaintrace.graph.unionfind`). Tags are never stored with clusters:
:func:`cluster_info` labels a cluster at query time with the tags of its members and reports conflicts
(two different services) instead of picking one.

Modules, by responsibility:

============== ==========================================================================================
``config``     :class:`ClusterConfig` (heuristics, CoinJoin handling, guards, alarm) and its parsing
``edges``      candidate edges per layer and the CoinJoin rows/table, from the graph arrays (pure)
``unionpass``  the guarded union pass over a window of stored edges: unions, refusals and reasons (pure)
``index``      members by cluster and outputs by address, for look-ups (pure)
``build``      :func:`build_clusters` (incremental orchestration) and :func:`exclude`
``reader``     :class:`Clusters`: read access to the committed arrays and evidence
``info``       :func:`cluster_info` (``cluster show``)
``explain``    :func:`explain` (``cluster why``)
``summary``    :func:`cluster_stats`, :func:`coinjoin_list`
``services``   :func:`service_entity`, :class:`ServiceLabels` (the tag-conflict guard), tag loading
``lookup``     address / txid look-ups in the store (the I/O edge)
``expander``   :func:`cluster_expander`: clusters as trace sinks (imported by ``chaintrace.trace.sinks``)
============== ==========================================================================================

Storage (Arrow schemas, the files under ``DATA/btc/clusters/`` with ``state.json`` and its atomic commits, and
the catalog views ``btc.address_clusters`` ...) is :mod:`chaintrace.store.clusters`; its names are re-exported
here.
"""
from __future__ import annotations

from chaintrace.detect import change as ch  # noqa: F401  (chaintrace.graph.cluster.ch.DEFAULT, as before)
from chaintrace.graph.cluster.build import CHUNK_INPUTS, build_clusters, chunks, exclude
from chaintrace.graph.cluster.config import HEURISTICS, ClusterConfig, config_from_state
from chaintrace.graph.cluster.expander import cluster_expander
from chaintrace.graph.cluster.explain import explain
from chaintrace.graph.cluster.info import cluster_info
from chaintrace.graph.cluster.lookup import address_ids, address_strings, resolve_txids, txids_of
from chaintrace.graph.cluster.reader import Clusters
from chaintrace.graph.cluster.services import ServiceLabels, load_tags, service_entity
from chaintrace.store.clusters.storage import FORMAT, MERGE_ROWS, STATE, ClusterStore
from chaintrace.graph.cluster.summary import cluster_stats, coinjoin_list
from chaintrace.store.clusters.tables import ADDRESS_CLUSTERS, COINJOINS, EDGES, REFUSALS, UNIONS, VIEW_TABLES
from chaintrace.store.clusters.views import catalog_views, view_files

# names of the single-module version, still imported by callers outside this package
_ids_of = address_ids
_addr_strings = address_strings
_resolve_txids = resolve_txids
_load_tags = load_tags

__all__ = [
    "ch", "ADDRESS_CLUSTERS", "CHUNK_INPUTS", "COINJOINS", "EDGES", "FORMAT", "HEURISTICS", "MERGE_ROWS", "REFUSALS",
    "STATE", "UNIONS", "VIEW_TABLES", "ClusterConfig", "ClusterStore", "Clusters", "ServiceLabels",
    "address_ids", "address_strings", "build_clusters", "catalog_views", "chunks", "cluster_expander",
    "cluster_info", "cluster_stats", "coinjoin_list", "config_from_state", "exclude", "explain", "load_tags",
    "resolve_txids", "service_entity", "txids_of", "view_files",
]
