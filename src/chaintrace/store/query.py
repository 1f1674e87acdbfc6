"""Reading the store back: store statistics, one transaction, one address, and free SQL.

Every function returns plain dicts/lists (amounts as Python ints) that the CLI prints as tables or JSON.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Mapping

from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace


def _rows(con, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _dir_bytes(path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def stats(ws: Workspace) -> dict:
    """Per chain: network, height range, tip, row counts, value totals, UTXO set, files and bytes on disk."""
    out: dict = {"workspace": str(ws.path), "chains": {}}
    chains = ws.chains()
    if not chains:
        return out
    con = ws.connect()
    for chain in chains:
        store = ws.chain(chain)
        m = store.manifest
        info: dict = {
            "network": m["meta"].get("network"),
            "commit": m["commit"],
            "tip_height": m["tip"]["height"] if m["tip"] else None,
            "tip_hash": m["tip"]["hash"] if m["tip"] else None,
            "rows": {t: store.row_count(t) for t in store.schemas},
            "segments": {t: len(store.segments(t)) for t in store.schemas},
            "disk_bytes": _dir_bytes(store.root),
        }
        if chain == "btc":
            r = _rows(con, """
                SELECT (SELECT min(height) FROM btc.blocks) AS first_height,
                       (SELECT min(time) FROM btc.blocks) AS first_time,
                       (SELECT max(time) FROM btc.blocks) AS last_time,
                       (SELECT coalesce(sum(value), 0) FROM btc.outputs_raw) AS total_output_value,
                       (SELECT count(*) FROM btc.inputs_raw WHERE prev_txid IS NOT NULL
                                                           AND spent_output_id IS NULL) AS unresolved_inputs,
                       (SELECT count(*) FROM btc.outputs_raw o WHERE NOT EXISTS
                           (SELECT 1 FROM btc.inputs_raw i WHERE i.spent_output_id = o.output_id)) AS utxo_count,
                       (SELECT coalesce(sum(value), 0) FROM btc.outputs_raw o WHERE NOT EXISTS
                           (SELECT 1 FROM btc.inputs_raw i WHERE i.spent_output_id = o.output_id)) AS utxo_value
            """)[0]
            info.update({k: (int(v) if v is not None else None) for k, v in r.items()})
            # which proof-of-work rules the stored blocks passed (docs/schema.md, "Proof of work")
            info["proof_of_work"] = m["meta"].get("pow_rules") or "not recorded (ingested before the checks)"
        elif hasattr(_chain_stats, chain):
            info.update(getattr(_chain_stats, chain)(con))
        out["chains"][chain] = info
    return out


class _chain_stats:
    """Extra statistics of other chains (``eth(con) -> dict``)."""

    @staticmethod
    def eth(con) -> dict:
        return eth_stats(con)


def eth_stats(con) -> dict:
    """Extra store statistics of the eth chain (SQL over the ``eth`` views; used by :func:`stats`)."""
    r = _rows(con, """
        SELECT (SELECT min(height) FROM eth.blocks_raw) AS first_height,
               (SELECT min(time) FROM eth.blocks_raw) AS first_time,
               (SELECT max(time) FROM eth.blocks_raw) AS last_time,
               (SELECT count(*) FROM eth.transactions_raw WHERE status = 0) AS failed_transactions,
               (SELECT count(*) FROM eth.assets) AS assets,
               (SELECT CAST(coalesce(sum(fee), 0) AS VARCHAR) FROM eth.transactions_raw) AS total_fees_wei,
               (SELECT CAST(coalesce(sum(burned), 0) AS VARCHAR) FROM eth.transactions_raw) AS burned_wei""")[0]
    r["total_fees_wei"] = int(r["total_fees_wei"])
    r["burned_wei"] = int(r["burned_wei"])
    r["transfers_by_kind"] = dict(con.execute(
        "SELECT kind, count(*) FROM eth.transfers_raw GROUP BY 1 ORDER BY 2 DESC").fetchall())
    return r


def btc_tx(ws: Workspace, txid: str) -> dict:
    """One Bitcoin transaction with its inputs (spent outputs) and outputs (and who spent them)."""
    ws.require_chain("btc")
    txid = txid.strip().lower()
    con = ws.connect()
    tx = _rows(con, """SELECT t.*, b.hash AS block_hash FROM btc.transactions t
                       JOIN btc.blocks b USING (height) WHERE t.txid = ?""", [txid])
    if not tx:
        raise UserError(f"transaction {txid} is not in the store")
    tx = tx[0]
    tx["inputs"] = _rows(con, """SELECT n, prev_txid, prev_vout, value, address, sequence, spent_output_id
                                 FROM btc.inputs WHERE tx_id = ? ORDER BY n""", [tx["tx_id"]])
    tx["outputs"] = _rows(con, """SELECT n, value, script_type, address, spending_txid, spending_input,
                                         spending_height FROM btc.outputs WHERE tx_id = ? ORDER BY n""",
                          [tx["tx_id"]])
    for o in tx["outputs"]:
        o["spent"] = o["spending_txid"] is not None
    return tx


def btc_address(ws: Workspace, address: str, recent: int = 10) -> dict:
    """Balance, received, sent, transaction count, first and last seen of a Bitcoin address."""
    ws.require_chain("btc")
    con = ws.connect()
    a = _rows(con, "SELECT address_id, address, script_type FROM btc.addresses WHERE address = ?", [address])
    if not a:
        raise UserError(f"address {address} does not appear in the store")
    a = a[0]
    aid = a["address_id"]
    r = _rows(con, """
        WITH recv AS (SELECT o.output_id, o.value, o.tx_id, o.height FROM btc.outputs_raw o WHERE o.address_id = ?),
             sent AS (SELECT i.value, i.tx_id, i.height FROM btc.inputs_raw i WHERE i.address_id = ?),
             txs AS (SELECT tx_id, height FROM recv UNION SELECT tx_id, height FROM sent)
        SELECT (SELECT coalesce(sum(value), 0) FROM recv) AS received,
               (SELECT coalesce(sum(value), 0) FROM sent) AS sent,
               (SELECT count(*) FROM recv) AS outputs_received,
               (SELECT count(*) FROM sent) AS outputs_spent,
               (SELECT count(*) FROM txs) AS tx_count,
               (SELECT min(height) FROM txs) AS first_height,
               (SELECT max(height) FROM txs) AS last_height
    """, [aid, aid])[0]
    a.update({k: int(v) if v is not None else None for k, v in r.items()})
    a["balance"] = a["received"] - a["sent"]
    a["unspent_outputs"] = a["outputs_received"] - a["outputs_spent"]
    times = _rows(con, "SELECT height, time FROM btc.blocks WHERE height IN (?, ?)",
                  [a["first_height"], a["last_height"]])
    t = {x["height"]: x["time"] for x in times}
    a["first_seen"] = t.get(a["first_height"])
    a["last_seen"] = t.get(a["last_height"])
    a["recent"] = _rows(con, """
        WITH io AS (SELECT tx_id, value AS received, 0 AS sent FROM btc.outputs_raw WHERE address_id = ?
                    UNION ALL SELECT tx_id, 0, value FROM btc.inputs_raw WHERE address_id = ?)
        SELECT t.txid, t.height, t.time, sum(io.received) AS received, sum(io.sent) AS sent
        FROM io JOIN btc.transactions t USING (tx_id)
        GROUP BY t.txid, t.height, t.time, t.tx_id ORDER BY t.tx_id DESC LIMIT ?""", [aid, aid, recent])
    for x in a["recent"]:
        x["received"], x["sent"] = int(x["received"]), int(x["sent"])
    return a


def sql(ws: Workspace, query: str, params=(), limit: int | None = None,
        attach: Mapping[str, Path] | None = None) -> tuple[list[str], list[tuple]]:
    """Run one read-only SQL statement over the catalog views (btc.*, eth.*, intel.*, ...).

    Returns (column names, rows), at most `limit` rows when given. Same rules as :func:`sql_stream`.
    """
    cols, rows = sql_stream(ws, query, params, limit=limit, attach=attach)
    return cols, list(rows)


def sql_stream(ws: Workspace, query: str, params=(), *, limit: int | None = None, batch_rows: int = 2048,
               attach: Mapping[str, Path] | None = None) -> tuple[list[str], Iterator[tuple]]:
    """Run one read-only SQL statement; returns (column names, an iterator over the rows).

    The statement must be exactly one that only reads (:func:`chaintrace.store.readonly.read_only_statement`:
    COPY, ATTACH, INSTALL/LOAD, CREATE, INSERT, SET, a PRAGMA that sets... are refused with a
    :class:`UserError`), and it runs on a sandboxed connection that cannot read files outside the workspace's
    chain stores nor change its settings. `limit` is pushed into the query as a subquery ``LIMIT``; rows
    are fetched `batch_rows` at a time (never the whole result at once). The iterator closes the connection
    when exhausted or closed. `attach`: more DuckDB files shown read-only (see :meth:`Workspace.connect`).
    """
    import duckdb

    from chaintrace.store.readonly import limited, read_only_statement

    if limit is not None and limit < 0:
        raise UserError(f"--limit must be 0 or more rows, not {limit}")
    statement, is_query = read_only_statement(query)
    if limit is not None and is_query:
        statement = limited(statement, limit)
    con = ws.connect(sandbox=True, attach=attach)
    try:
        cur = con.execute(statement, params)
    except duckdb.Error as e:
        con.close()
        raise UserError(f"SQL error: {e}") from None
    if cur.description is None:
        con.close()
        return [], iter(())
    cols = [d[0] for d in cur.description]
    return cols, _stream(con, cur, None if is_query else limit, batch_rows)


def _stream(con, cur, limit: int | None, batch_rows: int) -> Iterator[tuple]:
    import duckdb

    left = limit
    try:
        while left is None or left > 0:
            try:
                batch = cur.fetchmany(batch_rows if left is None else min(batch_rows, left))
            except duckdb.Error as e:
                raise UserError(f"SQL error: {e}") from None
            if not batch:
                return
            if left is not None:
                left -= len(batch)
            yield from batch
    finally:
        con.close()
