"""The `chaintrace` command for reading the store: show, stats, sql; --data and --format; clean errors."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import ingest_block_files
from chaintrace.cli import main
from tests.conftest import dataset

HAL_TX = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from chaintrace.store.workspace import Workspace

    d = tmp_path_factory.mktemp("cli") / "data"
    ingest_block_files(Workspace(d), [dataset("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")])
    return d


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def test_show_tx_text_and_json(data_dir):
    r = run("--data", data_dir, "show", "tx", HAL_TX)
    assert r.exit_code == 0
    assert "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3" in r.output and "10.00000000" in r.output
    r = run("show", "tx", HAL_TX, "--data", data_dir, "--format", "json")  # --data after the command
    d = json.loads(r.output)
    assert d["txid"] == HAL_TX and d["height"] == 170
    assert d["outputs"][0]["value"] == "1000000000"  # amounts are decimal strings of satoshi
    assert d["outputs"][0]["spent"] is False  # Hal's 10 BTC stay unspent in these blocks
    assert d["outputs"][1]["spending_txid"] == "a16f3ce4dd5deb92d98ef5cf8afeaf0775ebca408f708b2146c4fb42b41e14be"


def test_show_address_json(data_dir):
    r = run("show", "address", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "--data", data_dir, "--format", "json")
    d = json.loads(r.output)
    assert (d["balance"], d["received"], d["tx_count"]) == ("1800000000", "19500000000", 6)
    assert d["first_seen"] < d["last_seen"]
    r = run("show", "address", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "--data", data_dir)
    assert "18.00000000" in r.output and "recent transactions" in r.output


def test_stats_from_env(data_dir):
    r = run("stats", "--format", "json", env={"CHAINTRACE_DATA": str(data_dir)})
    d = json.loads(r.output)
    btc = d["chains"]["btc"]
    assert btc["tip_height"] == 438 and btc["rows"]["blocks"] == 439 and btc["network"] == "main"
    assert btc["utxo_value"] == str(439 * 50 * 10**8)
    r = run("stats", "--data", data_dir)
    assert "btc store" in r.output and "21,950.00000000 BTC" in r.output


def test_sql_formats(data_dir):
    q = "SELECT height, n_tx FROM btc.blocks WHERE height IN (0, 170) ORDER BY height"
    d = json.loads(run("sql", q, "--data", data_dir, "--format", "json").output)
    assert d == [{"height": 0, "n_tx": 1}, {"height": 170, "n_tx": 2}]
    rows = list(csv.reader(io.StringIO(run("sql", q, "--data", data_dir, "--format", "csv").output)))
    assert rows == [["height", "n_tx"], ["0", "1"], ["170", "2"]]


@pytest.mark.parametrize("args,text", [
    (["show", "tx", "00" * 32], "not in the store"),
    (["show", "address", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"], "does not appear"),
    (["sql", "SELECT * FROM btc.nope"], "SQL error"),
])
def test_bad_requests_exit_2_without_traceback(data_dir, args, text):
    p = subprocess.run([sys.executable, "-m", "chaintrace", "--data", str(data_dir), *args],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert text in p.stderr and "Traceback" not in p.stderr


def test_empty_workspace(tmp_path):
    r = run("stats", "--data", tmp_path / "none")
    assert r.exit_code == 0 and "no chain data" in r.output
    p = subprocess.run([sys.executable, "-m", "chaintrace", "--data", str(tmp_path / "none"), "show", "tx", HAL_TX],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "no btc data" in p.stderr


def test_catalog_file_has_views(data_dir):
    """`duckdb DATA/catalog.duckdb` sees the chain views without chaintrace."""
    import duckdb

    con = duckdb.connect(str(data_dir / "catalog.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM btc.blocks").fetchone()[0] == 439
    assert con.execute("SELECT count(*) FROM btc.outputs WHERE spending_txid IS NOT NULL").fetchone()[0] > 0


def test_help_has_examples():
    for cmd in (["ingest", "btc-blocks"], ["ingest", "btc-rpc"], ["show", "tx"], ["show", "address"], ["stats"],
                ["sql"]):
        r = run(*cmd, "--help")
        assert r.exit_code == 0 and "Example" in r.output, cmd
