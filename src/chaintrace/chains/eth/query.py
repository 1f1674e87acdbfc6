"""Reading the Ethereum store back: one transaction, one address, store statistics (plain dicts, exact ints).

``chaintrace show tx/address`` and ``chaintrace stats`` call these for the ``eth`` chain.
"""
from __future__ import annotations

import re

from chaintrace.errors import UserError
from chaintrace.model.amounts import join_amount
from chaintrace.model.ids import SYNTHETIC_NOTE, is_synthetic_txid
from chaintrace.store.workspace import Workspace

TX_RE = re.compile(r"0x[0-9a-fA-F]{64}")
ADDR_RE = re.compile(r"0x[0-9a-fA-F]{40}")


def _rows(con, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _int(v):
    return None if v is None else int(v)


def eth_tx(ws: Workspace, tx_hash: str) -> dict:
    """One transaction: header, receipt (status, gas, fee = burned + tip) and every value transfer it made
    (gas, top-level, internal, token) in order."""
    ws.require_chain("eth")
    h = tx_hash.strip().lower()
    if not TX_RE.fullmatch(h):
        raise UserError(f"{tx_hash!r} is not a transaction hash (0x + 64 hex digits)")
    con = ws.connect()
    tx = _rows(con, """SELECT t.* EXCLUDE (from_id, to_id, contract_id, input), octet_length(t.input) AS input_bytes,
                              t.input AS _input, b.hash AS block_hash
                       FROM eth.transactions t JOIN eth.blocks_raw b USING (height) WHERE t.hash = ?""", [h])
    if not tx:
        raise UserError(f"transaction {h} is not in the eth store")
    tx = tx[0]
    tx["value"] = join_amount(tx["value"], tx.pop("value_big"))
    for k in ("gas_price", "max_fee_per_gas", "max_priority_fee_per_gas", "effective_gas_price", "fee", "burned",
              "tip"):
        tx[k] = _int(tx[k])
    tx["synthetic_id"] = is_synthetic_txid(tx["hash"])
    tx["note"] = f"transaction hash {SYNTHETIC_NOTE}" if tx["synthetic_id"] else None
    raw = tx.pop("_input") or b""
    tx["method_id"] = "0x" + bytes(raw[:4]).hex() if len(raw) >= 4 else None
    tx["transfers"] = []
    for r in _rows(con, """SELECT r.transfer_id, r.seq, r.kind, r.symbol, r.token_address, r.from_address,
                                  r.to_address, r.value, r.value_big, r.log_index, r.trace_address, a.decimals
                           FROM eth.transfers r JOIN eth.assets a USING (asset_id)
                           WHERE tx_id = ? ORDER BY transfer_id""", [tx["tx_id"]]):
        r["value"] = join_amount(r["value"], r.pop("value_big"))
        r["asset"] = r["symbol"] or r["token_address"]
        tx["transfers"].append(r)
    return tx


def eth_address(ws: Workspace, address: str, recent: int = 10) -> dict:
    """Per asset: received, sent, balance (net of everything the store holds, fees included); transaction
    count, first and last seen, and the most recent transfers."""
    ws.require_chain("eth")
    a = address.strip().lower()
    if not ADDR_RE.fullmatch(a):
        raise UserError(f"{address!r} is not an Ethereum address (0x + 40 hex digits)")
    con = ws.connect()
    row = _rows(con, "SELECT address_id, address, height FROM eth.addresses WHERE address = ?", [a])
    if not row:
        raise UserError(f"address {a} does not appear in the eth store")
    info = row[0]
    aid = info["address_id"]
    bals = _rows(con, """
        WITH x AS (SELECT asset_id, CAST(coalesce(value, CAST(value_big AS HUGEINT)) AS HUGEINT) AS v, 1 AS dir,
                          height FROM eth.transfers_raw WHERE to_id = ?
                   UNION ALL
                   SELECT asset_id, CAST(coalesce(value, CAST(value_big AS HUGEINT)) AS HUGEINT), -1, height
                   FROM eth.transfers_raw WHERE from_id = ?)
        SELECT x.asset_id, a.symbol, a.address AS token_address, a.decimals,
               CAST(sum(CASE WHEN dir = 1 THEN v ELSE 0 END) AS VARCHAR) AS received,
               CAST(sum(CASE WHEN dir = -1 THEN v ELSE 0 END) AS VARCHAR) AS sent,
               count(*) AS transfers
        FROM x JOIN eth.assets a USING (asset_id) GROUP BY ALL ORDER BY x.asset_id""", [aid, aid])
    for b in bals:
        b["received"], b["sent"] = int(b["received"]), int(b["sent"])
        b["balance"] = b["received"] - b["sent"]
        b["asset"] = b["symbol"] or b["token_address"]
        b["note"] = None
        if b["balance"] < 0:  # impossible on chain: the store lacks what funded the address
            b["note"] = ("negative: the address sent more than the store shows it receiving; the data is partial "
                         "(it begins after the address was funded, or lacks internal/token transfers), so this "
                         "is not the address's real balance")
    info["balances"] = bals
    r = _rows(con, """
        WITH t AS (SELECT tx_id, height FROM eth.transfers_raw WHERE (to_id = ? OR from_id = ?) AND tx_id IS NOT NULL
                   UNION SELECT tx_id, height FROM eth.transactions_raw WHERE from_id = ? OR to_id = ?)
        SELECT count(DISTINCT tx_id) AS tx_count, min(height) AS first_height, max(height) AS last_height FROM t""",
              [aid, aid, aid, aid])[0]
    info.update(r)
    times = dict(con.execute("SELECT height, time FROM eth.blocks_raw WHERE height IN (?, ?)",
                             [r["first_height"], r["last_height"]]).fetchall())
    info["first_seen"], info["last_seen"] = times.get(r["first_height"]), times.get(r["last_height"])
    info["sent_transactions"] = con.execute("SELECT count(*) FROM eth.transactions_raw WHERE from_id = ?",
                                            [aid]).fetchone()[0]
    info["recent"] = []
    for x in _rows(con, """SELECT transfer_id, tx_hash, height, kind, symbol, token_address, from_address,
                                  to_address, value, value_big
                           FROM eth.transfers WHERE to_id = ? OR from_id = ?
                           ORDER BY transfer_id DESC LIMIT ?""", [aid, aid, recent]):
        x["value"] = join_amount(x["value"], x.pop("value_big"))
        x["asset"] = x["symbol"] or x["token_address"]
        x["synthetic_id"] = is_synthetic_txid(x["tx_hash"])
        info["recent"].append(x)
    return info
