"""Ethereum ingest against a real node: anvil on 127.0.0.1, real contracts (ERC-20, internal ETH transfers, a
pool), a scenario with transfers, token transfers, internal transfers, reverted sub-calls, failed
transactions and a self-destruct; ingested over JSON-RPC and checked against the node's own balances."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from chaintrace.chains.eth import ingest_eth_rpc
from chaintrace.store.workspace import Workspace
from tests.eth.anvil import INSTALL, Anvil, calldata, compile_contracts, find_anvil, find_solcjs

pytestmark = pytest.mark.skipif(find_anvil() is None or find_solcjs() is None,
                                reason=f"anvil/solcjs not installed (run `{INSTALL}`)")
E = 10**18


@pytest.fixture(scope="module")
def artifacts():
    return compile_contracts()


def run_scenario(n: Anvil, arts: dict, rounds: int = 1, seed: int = 7) -> dict:
    """Deploy the contracts and send a mixed workload; returns the addresses involved."""
    rng = random.Random(seed)
    a = n.accounts
    tok = n.deploy(a[0], arts["Token"], ["string", "string", "uint256"], ["Test Token", "TST", 10**27])
    tok2 = n.deploy(a[0], arts["Token"], ["string", "string", "uint256"], ["Other", "OTH", 10**27])
    mover = n.deploy(a[0], arts["Mover"])
    child = n.deploy(a[0], arts["Mover"])
    pool = n.deploy(a[0], arts["Pool"])
    n.send(a[0], tok2, 0, calldata("transfer(address,uint256)", pool, 10**26))
    n.send(a[0], tok, 0, calldata("transfer(address,uint256)", pool, 10**26))
    n.send(a[9], pool, 50 * E)
    for r in range(rounds):
        # plain ETH transfers
        n.send(a[0], a[1], 3 * E + r)
        n.send(a[1], a[2], E // 3)
        # token transfers
        n.send(a[0], tok, 0, calldata("transfer(address,uint256)", a[1], 1000 * E + r))
        n.send(a[1], tok, 0, calldata("transfer(address,uint256)", a[2], 250 * E))
        # internal transfers: fan-out, nested call, a reverted sub-call inside a successful transaction
        n.send(a[2], mover, 2 * E, calldata("fanOut(address[],uint256[])", [a[3], a[4], a[5]],
                                                   [E // 2, E // 4, E // 8]), gas=300_000)
        n.send(a[3], mover, E, calldata("viaChild(address,address)", child, a[6]), gas=300_000)
        r1 = n.send(a[4], mover, E, calldata("payOneFailOne(address,address,uint256)", a[7], a[8], E // 10),
                    gas=500_000)
        assert int(r1["status"], 16) == 1
        # failed transactions: token overdraft and a reverting fan-out (gas is still paid)
        f1 = n.send(a[5], tok, 0, calldata("transfer(address,uint256)", a[6], 10**30), gas=100_000)
        f2 = n.send(a[5], mover, E, calldata("fanOut(address[],uint256[])", [a[6]], [10**24]), gas=200_000)
        assert int(f1["status"], 16) == 0 and int(f2["status"], 16) == 0
        # swaps on the pool: token -> token, ETH -> token, token -> ETH
        n.send(a[2], tok, 0, calldata("approve(address,uint256)", pool, 10**30))
        n.send(a[2], pool, 0, calldata("swap(address,address,uint256,uint256,uint256)", tok, tok2, 100 * E, 3, 2),
               gas=300_000)
        n.send(a[6], pool, E, calldata("buy(address,uint256,uint256)", tok, 7, 1), gas=300_000)
        n.send(a[2], pool, 0, calldata("sell(address,uint256,uint256,uint256)", tok, 10 * E, 1, 100), gas=300_000)
        # several transactions in one block
        n.rpc("evm_setAutomine", False)
        hs = [n.rpc("eth_sendTransaction", {"from": a[k], "to": a[(k + 1) % 10], "value": hex(rng.randrange(1, E))})
              for k in range(6, 10)]
        hs.append(n.rpc("eth_sendTransaction", {"from": a[0], "to": tok, "gas": hex(100_000),
                                                "data": calldata("transfer(address,uint256)", a[7], 5 * E)}))
        n.mine()
        n.rpc("evm_setAutomine", True)
        assert all(n.receipt(h) for h in hs)
        n.send(a[1], tok, 0, calldata("burn(uint256)", E))
    # a self-destruct sends the contract's whole balance
    n.send(a[9], child, 2 * E)
    n.send(a[9], child, 0, calldata("destroy(address)", a[9]), gas=100_000)
    return {"token": tok, "token2": tok2, "mover": mover, "child": child, "pool": pool}


def balances_from_store(ws: Workspace) -> dict[tuple[str, int], int]:
    con = ws.connect()
    rows = con.execute("""
        WITH x AS (SELECT to_id AS id, asset_id, coalesce(value, CAST(value_big AS HUGEINT)) AS v
                   FROM eth.transfers_raw WHERE to_id IS NOT NULL
                   UNION ALL
                   SELECT from_id, asset_id, -coalesce(value, CAST(value_big AS HUGEINT))
                   FROM eth.transfers_raw WHERE from_id IS NOT NULL)
        SELECT a.address, x.asset_id, sum(x.v) FROM x JOIN eth.addresses a ON a.address_id = x.id
        GROUP BY 1, 2""").fetchall()
    return {(ad, asset): int(v) for ad, asset, v in rows}


def check_against_node(ws: Workspace, n: Anvil, contracts: dict) -> int:
    """Every account's ETH balance (opening balance + net flows) and token balance equal the node's."""
    con = ws.connect()
    tip = con.execute("SELECT max(height) FROM eth.blocks").fetchone()[0]
    assert tip == n.height()
    bal = balances_from_store(ws)
    assets = dict(con.execute("SELECT address, asset_id FROM eth.assets WHERE address IS NOT NULL").fetchall())
    addresses = [r[0] for r in con.execute("SELECT address FROM eth.addresses").fetchall()]
    checked = 0
    for ad in addresses:
        opening = n.balance(ad, "0x0")
        assert opening + bal.get((ad, 0), 0) == n.balance(ad, hex(tip)), ad
        checked += 1
        for tok in (contracts["token"], contracts["token2"]):
            if ad == "0x" + "0" * 40:
                continue
            want = n.call(tok, calldata("balanceOf(address)", ad), hex(tip))
            assert bal.get((ad, assets[tok]), 0) == want, (ad, tok)
            checked += 1
    return checked


@pytest.fixture(scope="module")
def chain(artifacts):
    with Anvil() as n:
        contracts = run_scenario(n, artifacts, rounds=2)
        yield n, contracts


def test_ingest_rpc_balances_match_node(chain, tmp_path):
    n, contracts = chain
    ws = Workspace(tmp_path / "data")
    rep = ingest_eth_rpc(ws, n.url, commit_blocks=7, fetch_batch=3)
    assert rep.network == "anvil" and rep.tip_height == n.height() and rep.blocks == n.height() + 1
    assert rep.internal_transfers and rep.failed_transactions == 4
    assert rep.transfers_by_kind["internal"] >= 8 and rep.transfers_by_kind["token"] >= 10
    assert rep.transfers_by_kind["selfdestruct"] == 1
    assert check_against_node(ws, n, contracts) > 30
    con = ws.connect()
    # token metadata came from the node (symbol(), name(), decimals())
    meta = con.execute("SELECT symbol, name, decimals FROM eth.assets WHERE address = ?",
                       [contracts["token"]]).fetchone()
    assert meta == ("TST", "Test Token", 18)
    # failed transactions: status 0, gas paid (fee transfers only), no value moved
    failed = con.execute("SELECT tx_id, fee FROM eth.transactions WHERE status = 0").fetchall()
    assert len(failed) == 4
    for tx_id, fee in failed:
        kinds = con.execute("SELECT kind, value FROM eth.transfers WHERE tx_id = ?", [tx_id]).fetchall()
        assert {k for k, _ in kinds} <= {"fee_burn", "fee_tip"}
        assert sum(v for _, v in kinds) == fee > 0
    # fees are exact: fee = gas_used * effective_gas_price = burned + tip, and match the node's receipts
    for h, gu, egp, fee, burned, tip in con.execute(
            "SELECT hash, gas_used, effective_gas_price, fee, burned, tip FROM eth.transactions").fetchall():
        r = n.rpc("eth_getTransactionReceipt", h)
        assert gu == int(r["gasUsed"], 16) and egp == int(r["effectiveGasPrice"], 16)
        assert fee == gu * egp == burned + tip
    # the reverted sub-call's payment to a[8] is not in the store, the sibling payment to a[7] is
    a = n.accounts
    pays = con.execute("""SELECT to_address, value FROM eth.transfers WHERE kind = 'internal'
                          AND from_address = ?""", [contracts["mover"]]).fetchall()
    assert (a[7].lower(), Decimal(E // 10)) in pays
    assert all(to != a[8].lower() for to, _ in pays)
    # chronological order key: transfer ids follow (height, tx_index, seq)
    ids = con.execute("SELECT transfer_id, height, coalesce(tx_index, 1 << 30), seq FROM eth.transfers_raw "
                      "ORDER BY height, coalesce(tx_index, 1 << 30), seq").fetchall()
    assert [r[0] for r in ids] == list(range(len(ids)))


def test_incremental_and_trace_modes_agree(chain, tmp_path):
    n, contracts = chain
    tip = n.height()
    ws1 = Workspace(tmp_path / "a")
    ingest_eth_rpc(ws1, n.url, to_height=tip // 2, traces="debug")
    r2 = ingest_eth_rpc(ws1, n.url, traces="debug")
    assert r2.blocks == tip - tip // 2 and r2.rolled_back_to is None
    ws2 = Workspace(tmp_path / "b")
    ingest_eth_rpc(ws2, n.url, traces="parity", commit_blocks=1000)
    q = ("SELECT transfer_id, height, tx_id, seq, kind, asset_id, from_address, to_address, value, trace_address "
         "FROM eth.transfers ORDER BY transfer_id")
    assert ws1.connect().execute(q).fetchall() == ws2.connect().execute(q).fetchall()
    ws3 = Workspace(tmp_path / "c")
    r3 = ingest_eth_rpc(ws3, n.url, traces="none")
    assert not r3.internal_transfers and "internal" not in r3.transfers_by_kind
    assert ws3.chain("eth").meta["internal_transfers"] == "none"


def test_reorg_rolls_back_to_fork(artifacts, tmp_path):
    with Anvil() as n:
        contracts = run_scenario(n, artifacts, rounds=1)
        a = n.accounts
        snap = n.rpc("evm_snapshot")
        fork_height = n.height()
        for k in range(4):
            n.send(a[1], a[2], E + k)
        ws = Workspace(tmp_path / "data")
        ingest_eth_rpc(ws, n.url)
        old_tip = n.height()
        assert n.rpc("evm_revert", snap)
        for k in range(6):  # a longer, different branch
            n.send(a[3], a[4], 2 * E + k)
        rep = ingest_eth_rpc(ws, n.url)
        assert rep.rolled_back_to == fork_height
        assert rep.tip_height == n.height() == fork_height + 6 > old_tip
        stored = ws.connect().execute("SELECT height, hash FROM eth.blocks ORDER BY height").fetchall()
        assert [h for h, _ in stored] == list(range(n.height() + 1))
        for h, bh in stored[-8:]:
            assert n.rpc("eth_getBlockByNumber", hex(h), False)["hash"] == bh
        check_against_node(ws, n, contracts)


def test_kill_9_resume_stores_every_block_once(artifacts, tmp_path):
    with Anvil() as n:
        contracts = run_scenario(n, artifacts, rounds=3)
        data = tmp_path / "data"
        cmd = [sys.executable, "-c", "from chaintrace.cli import main; main()", "--data", str(data), "ingest", "eth-rpc", "--url", n.url,
               "--commit-blocks", "2", "--fetch-batch", "1", "--format", "json"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        rng = random.Random(5)
        kills = 0
        for _ in range(6):
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            time.sleep(rng.uniform(0.3, 2.0))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        assert kills >= 1
        ws = Workspace(data)
        con = ws.connect()
        heights = [r[0] for r in con.execute("SELECT height FROM eth.blocks ORDER BY height").fetchall()]
        assert heights == list(range(n.height() + 1))
        assert con.execute("SELECT count(*), count(DISTINCT hash) FROM eth.transactions").fetchone() == \
            (con.execute("SELECT sum(n_tx) FROM eth.blocks").fetchone()[0],) * 2
        ids = [r[0] for r in con.execute("SELECT transfer_id FROM eth.transfers_raw ORDER BY transfer_id").fetchall()]
        assert ids == list(range(len(ids)))
        check_against_node(ws, n, contracts)
        fresh = Workspace(tmp_path / "fresh")
        ingest_eth_rpc(fresh, n.url)
        q = "SELECT transfer_id, kind, from_address, to_address, value, symbol FROM eth.transfers ORDER BY 1"
        assert con.execute(q).fetchall() == fresh.connect().execute(q).fetchall()


def test_cli_eth_rpc_json_and_errors(chain, tmp_path):
    from click.testing import CliRunner

    from chaintrace.cli import main

    n, _ = chain
    res = CliRunner().invoke(main, ["--data", str(tmp_path / "d"), "ingest", "eth-rpc", "--url", n.url, "--to", "5",
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["tip_height"] == 5 and d["blocks"] == 6
    bad = CliRunner().invoke(main, ["--data", str(tmp_path / "d"), "ingest", "eth-rpc", "--url",
                                    "http://127.0.0.1:9/", "--to", "5"])
    assert bad.exit_code != 0 and "127.0.0.1:9" in bad.output and "Traceback" not in bad.output
