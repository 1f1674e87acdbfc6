"""Following a chain's new blocks: the parts every chain shares (the cursor, reorganisations, watched items).

The watcher processes the blocks the store holds above the last processed height (the ingestors put them
there). Each processed block's hash is kept; when the store's block at a processed height differs (the
ingestor rolled back and followed the node's new branch), everything the monitor did on the abandoned
blocks is undone (items created there are deleted; items changed there get their journaled values back)
and every alert raised on them is retracted, before the new blocks are processed.
"""
from __future__ import annotations

from chaintrace.monitor import alerts as A
from chaintrace.monitor import db

REORG_WINDOW = 500


def watchlists(con, chain: str) -> dict[int, dict]:
    return {r["list_id"]: dict(r) for r in con.execute("SELECT * FROM watchlists WHERE chain = ?", (chain,))}


def store_con(ws, chain: str, lo: int, window_lo: int, lazy=()):
    """A DuckDB connection with one view per table of the chain's store (``blocks``, ``transactions``, ...)
    over only the segments reaching height `lo` (``blocks``: `window_lo`, for the reorg check; ``addresses``
    and ``assets``: every segment). Tables in `lazy` get their view on first use (:func:`ensure_view`).
    Much cheaper than the full catalog (:meth:`Workspace.connect`) when following the tip."""
    import duckdb

    from chaintrace.store.schema import schemas

    con = duckdb.connect(":memory:")
    for t in schemas(chain):
        if t not in lazy:
            _view(con, ws, chain, t, window_lo if t == "blocks" else None if t in ("addresses", "assets") else lo)
    return con


def _view(con, ws, chain: str, table: str, lo: int | None) -> None:
    from chaintrace.store.schema import empty_select, schemas

    files = [str(f) for f in ws.chain(chain).files(table, lo)]
    sql = f"SELECT * FROM read_parquet({files!r})" if files else empty_select(schemas(chain)[table])
    con.execute(f"CREATE VIEW {table} AS {sql}")


def ensure_view(con, ws, chain: str, table: str) -> None:
    """Create the view of a lazy table (every segment) if this connection has none yet."""
    if not con.execute("SELECT 1 FROM duckdb_views() WHERE view_name = ?", [table]).fetchone():
        _view(con, ws, chain, table, None)


def view_low(con, chain: str, lists: dict[int, dict]) -> tuple[int, int]:
    """Heights the follower reads from this round: the next height, and the bottom of the reorg window."""
    h = next_height(con, chain, lists)
    return h, max(0, h - REORG_WINDOW)


def store_hashes(duck, chain: str, lo: int) -> dict[int, str]:
    return dict(duck.execute("SELECT height, hash FROM blocks WHERE height >= ?", [lo]).fetchall())


def undo_reorg(ws, con, duck, chain: str, channels: list[str]) -> list[dict]:
    """Compare the processed blocks with the store; undo and retract above the fork. Returns the retractions."""
    done = con.execute("SELECT height, hash FROM blocks WHERE chain = ? ORDER BY height DESC LIMIT ?",
                       (chain, REORG_WINDOW)).fetchall()
    if not done:
        return []
    now = store_hashes(duck, chain, done[-1]["height"])
    fork = None
    for r in done:  # highest first
        if now.get(r["height"]) == r["hash"]:
            break
        fork = r["height"]
    if fork is None:
        return []
    with db.tx(con):
        out = A.retract_above(ws, con, chain, fork, now, channels)
        for j in con.execute("SELECT * FROM journal WHERE chain = ? AND height >= ? ORDER BY id DESC",
                             (chain, fork)).fetchall():
            con.execute("UPDATE watched SET amount = ?, last_time = ?, spent_height = ?, spent_txid = ? "
                        "WHERE item_id = ?", (j["amount"], j["last_time"], j["spent_height"], j["spent_txid"],
                                              j["item_id"]))
        con.execute("DELETE FROM journal WHERE chain = ? AND height >= ?", (chain, fork))
        con.execute("DELETE FROM watched WHERE chain = ? AND height >= ?", (chain, fork))
        con.execute("DELETE FROM blocks WHERE chain = ? AND height >= ?", (chain, fork))
    return out


def next_height(con, chain: str, lists: dict[int, dict]) -> int:
    r = con.execute("SELECT max(height) FROM blocks WHERE chain = ?", (chain,)).fetchone()[0]
    if r is not None:
        return r + 1
    return min(w["since_height"] for w in lists.values()) + 1


def mark_processed(con, chain: str, blocks) -> None:
    """Record processed (height, hash) pairs; forget journal entries and block hashes below the reorg window
    (inside the caller's transaction)."""
    blocks = list(blocks)
    con.executemany("INSERT OR REPLACE INTO blocks VALUES (?,?,?)", [(chain, h, bh) for h, bh in blocks])
    if blocks:
        low = max(h for h, _ in blocks) - REORG_WINDOW
        con.execute("DELETE FROM journal WHERE chain = ? AND height < ?", (chain, low))
        con.execute("DELETE FROM blocks WHERE chain = ? AND height < ?", (chain, low))


def journal(con, chain: str, height: int, item: dict) -> None:
    con.execute("INSERT INTO journal (chain, height, item_id, amount, last_time, spent_height, spent_txid) "
                "VALUES (?,?,?,?,?,?,?)", (chain, height, item["item_id"], item["amount"], item["last_time"],
                                           item["spent_height"], item["spent_txid"]))


def update_item(con, chain: str, height: int, item: dict, **changes) -> None:
    """Change a watched item (journaled for a reorg) and keep the in-memory row in step."""
    journal(con, chain, height, item)
    item.update(changes)
    sets = ", ".join(f"{k} = ?" for k in changes)
    con.execute(f"UPDATE watched SET {sets} WHERE item_id = ?", (*changes.values(), item["item_id"]))


def add_item(con, chain: str, list_id: int, kind: str, key: str, address: str | None, asset: str, amount: int,
             value: int | None, hops: int, parent: dict | None, txid: str, height: int, time: int) -> dict:
    cur = con.execute(
        "INSERT INTO watched (list_id, chain, kind, key, address, asset, amount, value, hops, origin, parent_item,"
        " parent_txid, height, last_time) VALUES (?,?,?,?,?,?,?,?,?,'moved',?,?,?,?)",
        (list_id, chain, kind, key, address, asset, str(amount), None if value is None else str(value), hops,
         parent["item_id"] if parent else None, txid, height, time))
    return dict(con.execute("SELECT * FROM watched WHERE item_id = ?", (cur.lastrowid,)).fetchone())


def provenance(con, item: dict, limit: int = 64) -> list[dict]:
    """The chain of watched items from the list's original item to `item` (the evidence path)."""
    steps: list[dict] = []
    cur: dict | None = item
    while cur is not None and len(steps) < limit:
        steps.append({"item": cur["key"], "address": cur["address"], "asset": cur["asset"],
                      "amount": cur["amount"], "hops": cur["hops"], "origin": cur["origin"],
                      "created_by_txid": cur["parent_txid"], "height": cur["height"]})
        p = cur["parent_item"]
        row = con.execute("SELECT * FROM watched WHERE item_id = ?", (p,)).fetchone() if p else None
        cur = dict(row) if row else None
    return steps[::-1]


def woke(item: dict, wl: dict, time: int) -> float | None:
    """Days the item lay still, when that reaches the list's dormancy threshold (else None)."""
    if item["last_time"] is None or not wl["dormant_days"] or wl["dormant_days"] <= 0:
        return None
    days = (time - int(item["last_time"])) / 86400
    return days if days >= wl["dormant_days"] else None


def sink_alerts(ws, con, wl: dict, chain: str, dest: dict, tag, entity: str | None, *, txid: str, height: int, block_hash: str,
                time: int, asset: str, sources: list[dict], channels: list[str], extra_key=()) -> dict | None:
    """A `service` or `mixer_bridge` alert for tainted value reaching a tagged address."""
    kind = "mixer_bridge" if tag.category in A.MIXER_BRIDGE else "service"
    fields = {"txid": txid, "asset": asset, "amount": str(dest["amount"]), "address": dest["address"],
              "ref": dest.get("ref"), "service": {"label": tag.label, "category": tag.category, "actor": tag.actor,
                                                  "source": tag.source, "name": entity or tag.label}}
    if kind == "service":
        fields["freeze_request"] = {
            "exchange": entity or tag.label, "exchange_actor": tag.actor, "deposit_address": dest["address"],
            "txid": txid, "output": dest.get("ref"), "amount": str(dest["amount"]), "asset": asset,
            "case_id": wl["case_id"], "evidence": None}
    a = A.make(kind, (wl["list_id"], chain, txid, dest.get("ref") or dest["address"], block_hash, *extra_key),
               chain=chain, watchlist=wl, height=height, block_hash=block_hash, time=time, **fields)
    evidence = {"watchlist": wl["name"], "policy": wl["policy"], "paths": [provenance(con, s) for s in sources],
                "store_commit": ws.chain(chain).manifest.get("commit")}
    return a if A.record(ws, con, a, channels, wl["list_id"], evidence=evidence) else None
