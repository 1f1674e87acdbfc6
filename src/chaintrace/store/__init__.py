"""The embedded store: Parquet partitions by height range, committed through a manifest, plus a DuckDB catalog.

See docs/schema.md for the layout, the tables and the commit protocol.
"""
from chaintrace.store.segments import ChainStore, StoreError
from chaintrace.store.workspace import Workspace, resolve_data_dir

__all__ = ["ChainStore", "StoreError", "Workspace", "resolve_data_dir"]
