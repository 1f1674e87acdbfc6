"""Store look-ups the cluster code needs at its edges: address strings <-> dense ids, txids <-> dense
transaction ids, block hashes. One DuckDB join per call (the ids are registered as an Arrow table)."""
from __future__ import annotations

import pyarrow as pa

from chaintrace.store.workspace import Workspace


def address_ids(ws: Workspace, addresses: list[str]) -> dict[str, int]:
    """Dense ids of the given addresses (those in the store)."""
    if not addresses:
        return {}
    con = ws.connect()
    con.register("q_addr", pa.table({"address": pa.array(addresses, pa.string())}))
    rows = con.execute("SELECT a.address, a.address_id FROM btc.addresses a JOIN q_addr q USING (address)").fetchall()
    return dict(rows)


def address_strings(ws: Workspace, ids) -> dict[int, str]:
    """Address strings of dense address ids (negative ids ignored)."""
    ids = sorted({int(i) for i in ids if int(i) >= 0})
    if not ids:
        return {}
    con = ws.connect()
    con.register("q_aid", pa.table({"address_id": pa.array(ids, pa.int64())}))
    return dict(con.execute("SELECT a.address_id, a.address FROM btc.addresses a JOIN q_aid USING (address_id)")
                .fetchall())


def resolve_txids(ws: Workspace, txids: list[str]) -> dict[str, int]:
    """Dense transaction ids of txids (hex, any case; those in the store), keyed by the lower-case txid."""
    if not txids:
        return {}
    con = ws.connect()
    con.register("q_tx", pa.table({"txid": pa.array([t.lower() for t in txids], pa.string())}))
    return dict(con.execute("SELECT t.txid, t.tx_id FROM btc.transactions t JOIN q_tx USING (txid)").fetchall())


def txids_of(ws: Workspace, tx_ids) -> dict[int, str]:
    """txid strings of dense transaction ids."""
    ids = sorted({int(t) for t in tx_ids if t is not None and int(t) >= 0})
    if not ids:
        return {}
    con = ws.connect()
    con.register("q_ids", pa.table({"tx_id": pa.array(ids, pa.int64())}))
    return dict(con.execute("SELECT t.tx_id, t.txid FROM btc.transactions t JOIN q_ids USING (tx_id)").fetchall())


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
