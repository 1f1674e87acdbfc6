"""Compatibility: the library functions of the registry now live in :mod:`chaintrace.intel.importer`,
:mod:`chaintrace.intel.tags`, :mod:`chaintrace.intel.lookup` and :mod:`chaintrace.intel.export`."""
from __future__ import annotations

from chaintrace.intel.export import CSV_COLUMNS, export_csv, export_tagpack, export_tags
from chaintrace.intel.importer import KINDS, import_paths, imports, remove_import
from chaintrace.intel.lookup import lookup, lookup_hits, read_address_file, stats
from chaintrace.intel.tags import (_TAG_SQL, _periods, _tag_from_row, actor_names, incident_seed_rows, load_tags,
                                   sanction_tag, seed_tag)

__all__ = ["KINDS", "import_paths", "imports", "remove_import", "load_tags", "actor_names", "lookup", "lookup_hits",
           "read_address_file", "stats", "export_tags", "export_tagpack", "export_csv", "CSV_COLUMNS",
           "incident_seed_rows", "sanction_tag", "seed_tag", "_TAG_SQL", "_periods", "_tag_from_row"]
