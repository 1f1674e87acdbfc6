"""Storage of the Bitcoin address clusters: the files under ``DATA/btc/clusters/`` and the catalog views over them.

``storage``  :class:`ClusterStore`: ``state.json``, file names, atomic commits, leftovers of a dead build
``tables``   Arrow schemas of the stored tables (edges, unions, refusals, address_clusters, coinjoins) and
             their construction from arrays
``views``    :func:`catalog_views` (DuckDB views ``btc.address_clusters``, ``btc.cluster_unions`` ...)

The clustering itself (heuristics, union-find, look-ups) is :mod:`chaintrace.graph.cluster`, which writes
through this package; the store never imports the graph.
"""
