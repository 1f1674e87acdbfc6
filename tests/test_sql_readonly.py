"""`chaintrace sql` is read-only for real: one statement that only reads, on a connection that can neither
read files outside the workspace's stores nor change its settings; the store is byte-identical after every
refused statement; the limit is pushed into the query; any workspace path works."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaintrace import intel
from chaintrace.chains.btc import ingest_block_files
from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.intel.registry import ENV_REGISTRY, bind
from chaintrace.store import query
from chaintrace.store.readonly import read_only_statement, strip_tail
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F

REGISTRY: dict[str, str] = {}

TAGPACK = """title: sql test pack
creator: chaintrace tests
source: https://example.org/sql-test
currency: BTC
confidence: ownership
tags:
- address: 12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S
  label: Test Exchange
  category: exchange
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A 30-block regtest chain plus one imported TagPack, in a workspace whose path has a quote, spaces and
    non-ASCII letters."""
    c = F.Chain()
    _, cb = c.add(miner="alice")
    for _ in range(28):
        c.add()
    c.add([F.Tx([(cb.txid, 0)], [(F.p2wpkh("bob"), 49 * 10**8)])])
    base = tmp_path_factory.mktemp("sql") / "it's a wörk space — ünïcode"
    base.mkdir()
    (base / "blk00000.dat").write_bytes(F.blk_file(c.blocks))
    (base / "pack.yaml").write_text(TAGPACK)
    ws = Workspace(base / "da'ta dir")
    ingest_block_files(ws, [base / "blk00000.dat"])
    REGISTRY["path"] = str(base / "regi'stry ü")  # the intelligence registry in an odd path too
    bind(ws, REGISTRY["path"])
    intel.import_paths(ws, "tagpack", [base / "pack.yaml"])
    return ws


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under the workspace (names included): byte-identical means equal dicts."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def cli(ws, *args):
    return subprocess.run([sys.executable, "-m", "chaintrace", "--data", str(ws.path), "sql", *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, ENV_REGISTRY: REGISTRY["path"]})


def run(ws, *args):
    return CliRunner().invoke(main, ["--data", str(ws.path), "sql", *map(str, args)], catch_exceptions=False,
                              env={ENV_REGISTRY: REGISTRY["path"]})


def _segment(ws) -> Path:
    return sorted((ws.path / "btc" / "blocks").glob("*.parquet"))[0]


def _lit(p) -> str:
    return "'" + str(p).replace("'", "''") + "'"


REFUSED = [
    # the examples
    ("COPY (SELECT 1 AS height) TO SEGMENT (FORMAT parquet)", "COPY"),
    ("SELECT * FROM read_csv('/etc/hostname')", "/etc/hostname"),
    ("ATTACH OUTSIDE AS o; CREATE TABLE o.t AS SELECT 1", "one statement per call"),
    ("ATTACH OUTSIDE AS o", "ATTACH"),
    ("CREATE TABLE t AS SELECT * FROM btc.blocks", "CREATE"),
    ("SELECT 1; SELECT 2", "one statement per call: got 2"),
    ("", "empty query"),
    ("  ;  -- nothing", "empty query"),
    # more that write, load or change settings
    ("INSERT INTO intel.tags SELECT * FROM intel.tags", "INSERT"),
    ("DELETE FROM intel.tags", "DELETE"),
    ("UPDATE intel.tags SET label = 'x'", "UPDATE"),
    ("DROP VIEW btc.blocks", "DROP"),
    ("ALTER VIEW btc.blocks RENAME TO b2", "ALTER"),
    ("CREATE OR REPLACE VIEW btc.blocks AS SELECT 1", "CREATE"),
    ("INSTALL httpfs", "INSTALL/LOAD"),
    ("LOAD httpfs", "INSTALL/LOAD"),
    ("SET enable_external_access = true", "SET"),
    ("RESET enable_external_access", "SET"),
    ("PRAGMA enable_profiling", "not a listing PRAGMA"),
    ("PRAGMA threads = 1", "SET"),
    ("EXPORT DATABASE OUTDIR", "EXPORT"),
    ("IMPORT DATABASE OUTDIR", "not a listing PRAGMA"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO SEGMENT", "EXPLAIN of COPY"),
    ("CALL checkpoint()", "CALL checkpoint"),
    ("DETACH catalog", "DETACH"),
    ("COPY intel.tags FROM '/etc/hostname'", "COPY"),
    ("SELECT * FROM read_parquet(SEGMENT_OUTSIDE)", "Permission"),
    ("SELECT * FROM glob('/etc/*')", "Permission"),
    ("SELECT * FROM read_text(NEXT_TO_WORKSPACE)", "Permission"),
]


@pytest.mark.parametrize("stmt,why", REFUSED, ids=[s[:40] for s, _ in REFUSED])
def test_refused_statement_is_exit_2_and_store_is_byte_identical(store, tmp_path, stmt, why):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    copy = outside / "copy.parquet"
    copy.write_bytes(_segment(store).read_bytes())
    text = (stmt.replace("SEGMENT_OUTSIDE", _lit(copy)).replace("SEGMENT", _lit(_segment(store)))
            .replace("OUTSIDE", _lit(outside / "x.duckdb")).replace("OUTDIR", _lit(outside / "exp"))
            .replace("NEXT_TO_WORKSPACE", _lit(store.path.parent / "pack.yaml")))
    before = tree_digest(store.path)
    r = run(store, text)
    assert r.exit_code == 2, r.output
    assert why in r.stderr and r.stdout == ""
    assert tree_digest(store.path) == before
    assert sorted(x.name for x in outside.iterdir()) == ["copy.parquet"]  # nothing written outside either


def test_store_still_answers_after_refused_copy(store):
    seg = _segment(store)
    before = tree_digest(store.path)
    p = cli(store, f"COPY (SELECT 1 AS height) TO {_lit(seg)} (FORMAT parquet)")
    assert p.returncode == 2 and "refused: COPY" in p.stderr and "Traceback" not in p.stderr
    p = cli(store, "")
    assert p.returncode == 2 and "empty query" in p.stderr and "Traceback" not in p.stderr
    assert tree_digest(store.path) == before
    r = run(store, "SELECT count(*) AS n FROM btc.blocks", "--format", "json")
    assert json.loads(r.output) == [{"n": 30}]


def test_queries_read_every_view_in_an_odd_path(store):
    assert "'" in str(store.path) and " " in str(store.path) and "ü" in str(store.path)
    d = json.loads(run(store, "SELECT label, category FROM intel.tags", "--format", "json").output)
    assert {"label": "Test Exchange", "category": "exchange"} in d
    d = json.loads(run(store, "SELECT height, n_tx FROM btc.blocks WHERE height IN (1, 30) ORDER BY height",
                       "--format", "json").output)
    assert d == [{"height": 1, "n_tx": 1}, {"height": 30, "n_tx": 2}]
    r = run(store, f"SELECT address, value FROM btc.outputs WHERE height = 30 AND address = '{F.p2wpkh('bob')}'",
            "--format", "csv")
    assert list(csv.reader(io.StringIO(r.output))) == [["address", "value"], [F.p2wpkh("bob"), str(49 * 10**8)]]
    # reading the store's own files is allowed (they are the store)
    seg = _segment(store)
    r = run(store, f"SELECT count(*) AS n FROM read_parquet({_lit(seg)})", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.output)[0]["n"] >= 1


@pytest.mark.parametrize("stmt", [
    "WITH b AS (SELECT height FROM btc.blocks) SELECT max(height) AS m FROM b",
    "FROM btc.blocks SELECT max(height) AS m",
    "SELECT max(height) AS m FROM btc.blocks; -- trailing comment",
    "SELECT max(height) AS m FROM btc.blocks;;",
])
def test_read_only_forms_run(store, stmt):
    r = run(store, stmt, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == [{"m": 30}]


@pytest.mark.parametrize("stmt,col", [("DESCRIBE btc.blocks", "column_name"), ("SHOW ALL TABLES", "name"),
                                      ("PRAGMA table_info('btc.blocks')", "name"), ("EXPLAIN SELECT 1", "explain_key"),
                                      ("SUMMARIZE SELECT height FROM btc.blocks", "column_name"),
                                      ("CALL duckdb_views()", "view_name")])
def test_listing_statements_run(store, stmt, col):
    r = run(store, stmt, "--format", "json")
    assert r.exit_code == 0, r.output
    assert col in json.loads(r.output)[0]


def test_limit_is_pushed_into_the_query_and_rows_stream(store, monkeypatch):
    cols, rows = query.sql_stream(store, "SELECT height FROM btc.blocks ORDER BY height DESC", limit=3)
    assert cols == ["height"] and next(rows) == (30,) and list(rows) == [(29,), (28,)]
    seen = []

    import duckdb

    real_execute = duckdb.DuckDBPyConnection.execute

    class Spy:
        def __init__(self, con):
            self.con = con

        def execute(self, sql, params=()):
            seen.append(sql)
            return real_execute(self.con, sql, params)

        def close(self):
            self.con.close()

    real_connect = Workspace.connect
    monkeypatch.setattr(Workspace, "connect", lambda self, **kw: Spy(real_connect(self, **kw)))
    cols, rows = query.sql_stream(store, "SELECT * FROM btc.outputs ORDER BY output_id; -- c", limit=2)
    assert len(list(rows)) == 2
    assert seen and seen[-1].rstrip().endswith("LIMIT 2") and "-- c" not in seen[-1]


def test_text_output_says_when_rows_are_cut(store):
    r = run(store, "SELECT height FROM btc.blocks ORDER BY height", "--limit", "5")
    assert r.exit_code == 0 and "more than 5 rows" in r.output
    r = run(store, "SELECT height FROM btc.blocks ORDER BY height", "--limit", "5", "--format", "csv")
    assert r.output.split() == ["height", "1", "2", "3", "4", "5"]
    r = run(store, "SELECT height FROM btc.blocks ORDER BY height", "--format", "csv")
    assert len(r.output.split()) == 31  # json/csv: every row unless --limit


def test_library_refuses_like_the_cli(store):
    with pytest.raises(UserError, match="COPY"):
        query.sql(store, f"COPY (SELECT 1) TO {_lit(_segment(store))}")
    with pytest.raises(UserError, match="empty query"):
        query.sql(store, "")
    assert query.sql(store, "SELECT 1 AS one") == (["one"], [(1,)])


def test_sandboxed_connection_cannot_be_unlocked(store):
    import duckdb

    con = store.connect(sandbox=True)
    try:
        with pytest.raises(duckdb.Error):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error):
            con.execute("SELECT * FROM read_csv('/etc/hostname')")
        assert con.execute("SELECT count(*) FROM btc.blocks").fetchone()[0] == 30
    finally:
        con.close()


@pytest.mark.parametrize("text,want", [("SELECT 1; -- c", "SELECT 1"), ("SELECT ';' ;; /* x */", "SELECT ';'"),
                                       ("SELECT 1 -- c\n", "SELECT 1")])
def test_strip_tail(text, want):
    assert strip_tail(text) == want
    assert read_only_statement(text)[0] == want


def test_registry_tables_are_read_only_views(store):
    before = tree_digest(Path(REGISTRY["path"]))
    for stmt in ("DELETE FROM intel.tags", "INSERT INTO intel.tags SELECT * FROM intel.tags",
                 "DROP VIEW intel.tags", "DETACH intel_registry"):
        r = run(store, stmt)
        assert r.exit_code == 2 and "refused" in r.stderr, (stmt, r.output)
    assert tree_digest(Path(REGISTRY["path"])) == before
    assert json.loads(run(store, "SELECT count(*) AS n FROM intel.tags", "--format", "json").output) == [{"n": 1}]
