"""Store look-ups the cluster code needs at its edges: address strings <-> dense ids and txids <-> dense
transaction ids (from :mod:`chaintrace.graph.btc`), evidence rows with names, block hashes, the Wasabi 1
coordinator addresses present in the store."""
from __future__ import annotations

import numpy as np

from chaintrace.detect.coinjoin import CoinJoinParams
from chaintrace.graph.btc import address_ids, address_strings  # re-exported
from chaintrace.graph.btc import tx_ids as resolve_txids
from chaintrace.graph.btc import txids as txids_of
from chaintrace.store.workspace import Workspace

__all__ = ["address_ids", "address_strings", "resolve_txids", "txids_of", "name_rows", "block_hash",
           "coordinator_address_ids"]


def name_rows(ws: Workspace, rows: list[dict]) -> list[dict]:
    """Evidence rows (unions, refusals) with ``txid`` added and the address ids ``a``/``b`` replaced by
    address strings (ids without a string are left as they are)."""
    txids = txids_of(ws, [r["tx_id"] for r in rows])
    names = address_strings(ws, [r["a"] for r in rows] + [r["b"] for r in rows])
    for r in rows:
        r["txid"] = txids.get(r["tx_id"])
        r["a"], r["b"] = names.get(r["a"], r["a"]), names.get(r["b"], r["b"])
    return rows


def block_hash(ws: Workspace, height: int) -> str | None:
    """Hash of the stored block at `height` (None when there is none)."""
    t = ws.chain("btc").read("blocks", ["hash"], lo=height, hi=height)
    return t["hash"][0].as_py() if len(t) else None


def coordinator_address_ids(ws: Workspace, params: CoinJoinParams | None = None) -> np.ndarray:
    """Address ids of the known Wasabi 1 coordinator addresses that appear in the store (sorted), for
    :func:`chaintrace.detect.coinjoin.detect_coinjoins`."""
    coordinators = (params or CoinJoinParams()).wasabi_coordinators
    return np.array(sorted(address_ids(ws, list(coordinators)).values()), np.int64)
