"""The intelligence registry: sanctions lists, attribution tags, actors and incidents.

Importers read the formats analysts already use (OFAC SDN advanced XML and plain address lists,
GraphSense TagPacks and ActorPacks, Etherscan-style label JSON, MISP threat-actor galaxies, incident CSVs)
into the workspace catalog (DuckDB schema ``intel``), one transaction and one versioned import per file.
The package ships a DPRK incident catalogue (2014-2025) with sources per row.

>>> import chaintrace
>>> from chaintrace import intel
>>> ws = chaintrace.Workspace("chaintrace-data")                                     # doctest: +SKIP
>>> intel.import_paths(ws, "ofac-sdn", ["sdn_advanced.xml.bz2"])["totals"]["sanctions"]  # doctest: +SKIP
761
>>> intel.lookup(ws, ["0x098B716B8Aaf21512996dC57EB0615e2383E2f96"])[0]["sanctions"][0]["entity"]  # doctest: +SKIP
'Lazarus Group'
>>> tags = intel.load_tags(ws, "btc")                      # every btc tag, for tracing   # doctest: +SKIP
"""
from __future__ import annotations

from chaintrace.intel.api import (KINDS, export_csv, export_tagpack, export_tags, import_paths, imports,
                                  load_tags, lookup, lookup_hits, read_address_file, remove_import, stats)


def get_index(ws):
    """The cached numpy lookup index of a workspace (see :mod:`chaintrace.intel.index`)."""
    from chaintrace.intel.index import get_index as _g

    return _g(ws)


def timeline(ws, actor=None, since=None, until=None, attribution=None) -> dict:
    """The incident timeline (built-in DPRK catalogue + imports); see :func:`chaintrace.intel.incidents.timeline`."""
    from chaintrace.intel.incidents import timeline

    return timeline(ws, actor=actor, since=since, until=until, attribution=attribution)


def find_actors(ws, query=None) -> list[dict]:
    """Actors with aliases (all, or those `query` names: "lazarus", "APT38"...)."""
    from chaintrace.intel.actors import actor_list

    return actor_list(ws, query)


__all__ = ["KINDS", "import_paths", "imports", "remove_import", "load_tags", "lookup", "lookup_hits",
           "read_address_file", "stats", "export_tags", "export_tagpack", "export_csv", "timeline", "find_actors",
           "get_index"]
