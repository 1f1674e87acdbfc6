"""The intelligence registry: sanctions lists, attribution tags, actors and incidents.

Importers read the formats analysts already use (OFAC SDN advanced XML and plain address lists,
GraphSense TagPacks and ActorPacks, Etherscan-style label JSON, MISP threat-actor galaxies, incident CSVs)
into one registry directory shared by every workspace (``--registry DIR``, env ``CHAINTRACE_REGISTRY``,
default ``~/.local/share/chaintrace/registry``; see :class:`chaintrace.intel.registry.Registry`), one
transaction and one published registry generation per import.
The package ships a DPRK incident catalogue (2014-2025) with sources per row.

>>> import chaintrace
>>> from chaintrace import intel
>>> ws = intel.Registry("/tmp/registry")   # or a Workspace: the registry workspaces share   # doctest: +SKIP
>>> intel.import_paths(ws, "ofac-sdn", ["sdn_advanced.xml.bz2"])["totals"]["sanctions"]  # doctest: +SKIP
761
>>> intel.lookup(ws, ["0x098B716B8Aaf21512996dC57EB0615e2383E2f96"])[0]["sanctions"][0]["entity"]  # doctest: +SKIP
'Lazarus Group'
>>> tags = intel.load_tags(ws, "btc")                      # every btc tag, for tracing   # doctest: +SKIP
"""
from __future__ import annotations

from chaintrace.intel.export import export_csv, export_tagpack, export_tags
from chaintrace.intel.importer import KINDS, import_paths, imports, remove_import
from chaintrace.intel.lookup import lookup, lookup_hits, read_address_file, stats
from chaintrace.intel.registry import Registry, default_registry_dir
from chaintrace.intel.tags import load_tags


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


__all__ = ["Registry", "default_registry_dir", "KINDS", "import_paths", "imports", "remove_import", "load_tags", "lookup", "lookup_hits",
           "read_address_file", "stats", "export_tags", "export_tagpack", "export_csv", "timeline", "find_actors",
           "get_index"]
