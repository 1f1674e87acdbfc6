"""DuckDB catalog views over the committed cluster files: ``btc.address_clusters``, ``btc.cluster_unions``,
``btc.cluster_refusals``, ``btc.cluster_edges``, ``btc.coinjoins`` (typed and empty before the first build)."""
from __future__ import annotations

import json
from pathlib import Path

from chaintrace.store.clusters.storage import FORMAT, STATE, ClusterStore
from chaintrace.store.clusters.tables import VIEW_TABLES
from chaintrace.store.workspace import Workspace


def catalog_views(store_root: Path, schema: str = "btc") -> list[str]:
    """DuckDB statements for the cluster views ``<schema>.address_clusters``, ``cluster_unions``,
    ``cluster_refusals``, ``cluster_edges`` and ``coinjoins`` of the store at `store_root` (empty, typed
    views before the first build). Called by :func:`chaintrace.store.schema.btc.views`."""
    from chaintrace.store.schema._sql import scan

    root = Path(store_root) / "clusters"
    try:
        s = json.loads((root / STATE).read_text()) if (root / STATE).exists() else None
    except (OSError, json.JSONDecodeError):
        s = None
    files = _view_files(root, s if (s and s.get("format") == FORMAT) else None)
    return [f"CREATE OR REPLACE VIEW {schema}.{name} AS SELECT * FROM {scan(files[name], sch)}"
            for name, sch in VIEW_TABLES.items()]


def _view_files(root: Path, s: dict | None) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {k: [] for k in VIEW_TABLES}
    if not s or not s.get("union"):
        return out
    out["address_clusters"] = [root / s["address_clusters"]] if s.get("address_clusters") else []
    u = s["union"]
    out["cluster_unions"] = [root / f["file"] for f in u.get("unions", [])]
    out["cluster_refusals"] = [root / f["file"] for f in u.get("refusals", [])]
    out["cluster_edges"] = [root / f["file"] for layer in s["layers"].values() for f in layer["files"]]
    out["coinjoins"] = [root / f["file"] for f in s["coinjoins"]["files"]]
    return out


def view_files(ws: Workspace) -> dict[str, list[Path]]:
    """Committed Parquet files behind each catalog view (``btc.address_clusters``, ``btc.cluster_unions``...)."""
    cs = ClusterStore(ws)
    return _view_files(cs.root, cs.state())


def refresh_views(ws: Workspace) -> None:
    """Best effort: the persistent catalog's views (queries through Workspace.connect() never need them)."""
    import duckdb

    try:
        ws.refresh_catalog_views()
    except duckdb.Error:
        pass  # the catalog is open in this process or another one; it is refreshed at the next commit
