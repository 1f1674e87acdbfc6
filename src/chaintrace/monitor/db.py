"""The monitor's state: one SQLite database in WAL mode (``DATA/monitor/monitor.sqlite``).

Everything the watcher must not lose lives here and is changed in one transaction per processed block range:
the watchlists and their watched items (addresses and outputs with their taint), the blocks already processed
per chain (hash kept, to notice reorganisations), the alerts raised, and the **outbox** (one row per alert and
delivery channel). A ``kill -9`` at any point leaves either the state before a block range or after it, alerts
and outbox rows included, so an alert detected is delivered after a restart (at least once).
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS watchlists (
    list_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, chain TEXT NOT NULL, source TEXT NOT NULL,
    policy TEXT NOT NULL, fee_mode TEXT NOT NULL, min_value TEXT NOT NULL, dormant_days REAL NOT NULL,
    case_id TEXT, since_height INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS watched (
    item_id INTEGER PRIMARY KEY, list_id INTEGER NOT NULL, chain TEXT NOT NULL,
    kind TEXT NOT NULL,              -- 'address' (every coin/balance of it) or 'output' (txid:vout)
    key TEXT NOT NULL,               -- the address, or txid:vout
    address TEXT, asset TEXT NOT NULL,
    amount TEXT,                     -- traced (tainted) base units; NULL = all of it (a listed address)
    value TEXT,                      -- the output's full value (outputs)
    hops INTEGER NOT NULL DEFAULT 0,
    origin TEXT NOT NULL,            -- what put it here: 'address', 'trace', 'incident', 'tags', 'sanctioned', 'moved'
    parent_item INTEGER, parent_txid TEXT, height INTEGER, -- the block that created a derived item (NULL: added by hand)
    last_time INTEGER,               -- last known activity (Unix s): dormancy is measured from it
    spent_height INTEGER, spent_txid TEXT,
    UNIQUE (list_id, kind, key, asset));
CREATE INDEX IF NOT EXISTS watched_key ON watched (chain, key);
CREATE TABLE IF NOT EXISTS journal (   -- old values of watched items changed while processing a block
    id INTEGER PRIMARY KEY, chain TEXT NOT NULL, height INTEGER NOT NULL, item_id INTEGER NOT NULL,
    amount TEXT, last_time INTEGER, spent_height INTEGER, spent_txid TEXT);
CREATE TABLE IF NOT EXISTS blocks (chain TEXT NOT NULL, height INTEGER NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (chain, height));
CREATE TABLE IF NOT EXISTS alerts (
    dedup_key TEXT PRIMARY KEY, kind TEXT NOT NULL, chain TEXT, list_id INTEGER, height INTEGER,
    block_hash TEXT, created REAL NOT NULL, body TEXT NOT NULL, retracted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS outbox (
    dedup_key TEXT NOT NULL, channel TEXT NOT NULL, seq INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL, delivered REAL, last_error TEXT, PRIMARY KEY (dedup_key, channel));
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (delivered, next_try);
CREATE TABLE IF NOT EXISTS sanctions (chain TEXT NOT NULL, address TEXT NOT NULL, answer TEXT NOT NULL,
    PRIMARY KEY (chain, address));
"""


def db_path(ws) -> Path:
    """Where a workspace keeps its monitor database."""
    return Path(ws.path) / "monitor" / "monitor.sqlite"


def connect(ws) -> sqlite3.Connection:
    """Open (creating if needed) the workspace's monitor database in WAL mode, autocommit off."""
    p = db_path(ws)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=30, isolation_level=None, check_same_thread=False)
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA busy_timeout=30000")
    con.executescript(_DDL)
    con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    return con


class tx:
    """``with tx(con):`` one immediate (write-locked) transaction, committed on success, rolled back on error."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")


def now() -> float:
    return time.time()
