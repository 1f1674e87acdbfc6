"""`--chain` names outside the intel commands: canonical names and aliases accepted, anything else exit 2
listing the valid names; a failed command leaves no empty workspace behind."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import ingest_block_files
from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.model.chains import CHAINS, resolve_chain
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "chaintrace", *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("name,want", [("btc", "btc"), ("BTC", "btc"), ("bitcoin", "btc"), (" Bitcoin ", "btc"),
                                       ("eth", "eth"), ("ethereum", "eth"), ("Ethereum", "eth")])
def test_resolve_chain_accepts_names_and_aliases(name, want):
    assert resolve_chain(name) == want


@pytest.mark.parametrize("name", ["etherum", "foo", "", None, "doge", "bitcoin cash"])
def test_resolve_chain_rejects_unknown_names_listing_valid_ones(name):
    with pytest.raises(UserError) as e:
        resolve_chain(name)
    msg = str(e.value)
    assert "unknown chain" in msg and all(c in msg for c in CHAINS) and "ethereum" in msg and "bitcoin" in msg


def test_resolve_chain_choices_narrow():
    assert resolve_chain("bitcoin", choices=("btc",)) == "btc"
    with pytest.raises(UserError, match="valid chains are btc"):
        resolve_chain("eth", choices=("btc",))


@pytest.fixture(scope="module")
def chain_ws(tmp_path_factory):
    """A small regtest chain: address `alice` receives a coinbase and pays `bob`."""
    c = F.Chain()
    _, cb = c.add(miner="alice")
    for _ in range(3):
        c.add()
    pay = F.Tx([(cb.txid, 0)], [(F.p2wpkh("bob"), 30 * 10**8), (F.p2wpkh("carol"), 20 * 10**8 - 1000)])
    c.add([pay])
    d = tmp_path_factory.mktemp("names")
    (d / "blk00000.dat").write_bytes(F.blk_file(c.blocks))
    ws = Workspace(d / "data")
    ingest_block_files(ws, [d / "blk00000.dat"])
    return ws, pay.txid[::-1].hex()


@pytest.mark.parametrize("cmd", [
    ["trace", "--from", "TXID", "--chain", "etherum"],
    ["trace", "--from", "TXID", "--chain", "foo"],
    ["show", "tx", "TXID", "--chain", "etherum"],
    ["show", "address", "ADDR", "--chain", "foo"],
    ["watch", "add", "--chain", "etherum", "--name", "w", "--address", "ADDR"],
])
def test_unknown_chain_is_exit_2_listing_valid_names(chain_ws, cmd):
    ws, txid = chain_ws
    args = [a.replace("TXID", txid).replace("ADDR", F.p2wpkh("bob")) for a in cmd]
    p = cli("--data", ws.path, *args)
    assert p.returncode == 2, p.stderr
    assert "unknown chain" in p.stderr and "btc, eth" in p.stderr and "Traceback" not in p.stderr
    assert p.stdout == ""  # no "none" answer


def test_aliases_work_like_the_canonical_name(chain_ws):
    ws, txid = chain_ws
    canon = run("--data", ws.path, "show", "tx", txid, "--chain", "btc", "--format", "json")
    alias = run("--data", ws.path, "show", "tx", txid, "--chain", "Bitcoin", "--format", "json")
    assert canon.exit_code == alias.exit_code == 0
    assert json.loads(alias.output)["txid"] == txid and alias.output == canon.output
    r = run("--data", ws.path, "show", "address", F.p2wpkh("bob"), "--chain", "bitcoin", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.output)["received"] == str(30 * 10**8)
    t = run("--data", ws.path, "trace", "--from", txid, "--chain", "bitcoin", "--no-registry", "--format", "json")
    assert t.exit_code == 0, t.output
    rep = json.loads(t.output)
    assert rep["chain"] == "btc" and rep["total_seeded"] == {"BTC": str(50 * 10**8 - 1000)}


@pytest.mark.parametrize("cmd", [
    ["trace", "--from", "00" * 32],
    ["trace", "--from", "00" * 32, "--chain", "foo"],
    ["show", "tx", "00" * 32],
    ["cluster", "build"],
    ["ingest", "btc-rpc", "--url", "http://127.0.0.1:9", "--to", "1"],
    ["ingest", "btc-blocks", "BAD"],
])
def test_failed_command_leaves_no_empty_workspace(tmp_path, cmd):
    (tmp_path / "bad.dat").write_bytes(F.REGTEST.magic + (100).to_bytes(4, "little") + b"\0" * 50)
    data = tmp_path / "new-ws"
    p = cli("--data", data, *[a.replace("BAD", str(tmp_path / "bad.dat")) for a in cmd])
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr
    assert not data.exists(), sorted(str(x) for x in data.rglob("*"))


def test_failed_command_keeps_an_existing_workspace_and_its_files(tmp_path):
    data = tmp_path / "ws"
    (data / "notes").mkdir(parents=True)
    (data / "keep.txt").write_text("mine")
    p = cli("--data", data, "ingest", "btc-rpc", "--url", "http://127.0.0.1:9", "--to", "1")
    assert p.returncode != 0
    assert sorted(x.name for x in data.iterdir()) == ["keep.txt", "notes"]  # the empty btc/ store is gone
