"""`chaintrace ingest btc-rpc` against a real JSON-RPC HTTP server on 127.0.0.1 serving bitcoind's recorded
answers (bitcoin-etl fixtures), checked against bitcoin-etl's expected output for the same blocks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chaintrace.chains.btc import RpcError, ingest_block_files, ingest_rpc
from chaintrace.chains.btc.rpc import RpcClient
from chaintrace.store import query
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F
from tests.btc_rpc_server import RpcNode, serve, verbose_from_raw
from tests.conftest import dataset

ETL = ("btc-raw-blocks", "bitcoin-etl", "bitcoin")


def _fixture_blocks() -> dict[int, dict]:
    """Every getblock verbosity-2 answer recorded in the bitcoin-etl fixtures, by height."""
    root = dataset(*ETL)
    blocks = {}
    for f in root.glob("*/rpc_response_getblock_*_2.json"):
        b = json.loads(f.read_text())
        b = b.get("result", b)
        blocks[b["height"]] = b
    assert {0, 1, 50000, 50001, 50002} <= set(blocks)
    return blocks


def _expected(kind: str, *dirs: str) -> list[dict]:
    out = []
    for d in dirs:
        out += [json.loads(x) for x in dataset(*ETL, d, f"expected_{kind}.json").read_text().splitlines() if x]
    return out


@pytest.fixture
def node():
    n = RpcNode(_fixture_blocks())
    srv, url = serve(n)
    n.url = url.replace("http://", f"http://{n.user}:{n.password}@")
    yield n
    srv.shutdown()


def test_rpc_ingest_matches_bitcoin_etl_expected_output(ws, node):
    r = ingest_rpc(ws, node.url, from_height=50000, to_height=50002)
    assert r.blocks == 3 and r.tip_height == 50002 and r.network == "main"
    blocks = {b["hash"]: b for b in _expected("blocks", "stream_50001_50002", "block_without_transactions")}
    con_blocks = query.sql(ws, "SELECT hash, height, size, stripped_size, weight, version, merkle_root, time, "
                               "nonce, bits, n_tx FROM btc.blocks")[1]
    assert len(con_blocks) == 3
    for h, height, size, ssize, weight, version, mr, t, nonce, bits, ntx in con_blocks:
        e = blocks[h]
        assert (height, size, ssize, weight, version, mr, t, ntx) == (
            e["number"], e["size"], e["stripped_size"], e["weight"], e["version"], e["merkle_root"],
            e["timestamp"], e["transaction_count"])
        assert (format(nonce, "x"), format(bits, "08x")) == (e["nonce"], e["bits"])
    exp_txs = _expected("transactions", "stream_50001_50002")
    assert exp_txs
    for e in exp_txs:
        tx = query.btc_tx(ws, e["hash"])
        assert (tx["height"], tx["tx_index"], tx["is_coinbase"], tx["size"], tx["vsize"], tx["version"],
                tx["locktime"], tx["output_value"]) == (
            e["block_number"], e["index"], e["is_coinbase"], e["size"], e["virtual_size"], e["version"],
            e["lock_time"], e["output_value"])
        assert [(o["value"], o["address"]) for o in tx["outputs"]] == [
            (o["value"], o["addresses"][0] if o["addresses"] else None) for o in e["outputs"]]
        assert [(i["prev_txid"], i["prev_vout"]) for i in tx["inputs"] if i["prev_txid"]] == [
            (i["spent_transaction_hash"], i["spent_output_index"]) for i in e["inputs"]]
        # inputs spending blocks outside the store have no value; bitcoin-etl looked them up separately
        for mine, theirs in zip([i for i in tx["inputs"] if i["prev_txid"]], e["inputs"]):
            if mine["spent_output_id"] is not None:
                assert mine["value"] == theirs["value"]


def test_rpc_genesis_and_block_1(ws, node):
    r = ingest_rpc(ws, node.url, from_height=0, to_height=1)
    assert r.blocks == 2
    e = _expected("transactions", "block_1")[0]
    tx = query.btc_tx(ws, e["hash"])
    assert tx["outputs"][0]["address"] == e["outputs"][0]["addresses"][0] == "12c6DSiU4Rq3P4ZxziKxzrL5LmMBrzjrJX"


def test_rpc_and_block_file_paths_give_identical_stores(tmp_path, node):
    """Blocks 0 and 1 through RPC equal the same blocks from the mainnet block file."""
    from tests.test_btc_ingest import _records, _snapshot

    a = Workspace(tmp_path / "rpc")
    ingest_rpc(a, node.url, from_height=0, to_height=1)
    recs = _records(dataset("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat").read_bytes())
    (tmp_path / "b.dat").write_bytes(b"".join(recs[:2]))
    b = Workspace(tmp_path / "blk")
    ingest_block_files(b, [tmp_path / "b.dat"])
    assert _snapshot(a) == _snapshot(b)


def test_retries_transient_failures_and_batches(ws, node):
    node.fail_http = 2  # two HTTP 503s
    node.warmup = 1  # then one "warming up" RPC error
    r = ingest_rpc(ws, node.url, from_height=50000, to_height=50002)
    assert r.blocks == 3
    assert node.requests <= 12  # batched: a handful of HTTP requests, not one per call


def test_cookie_file_and_bad_credentials(ws, node, tmp_path):
    cookie = tmp_path / ".cookie"
    cookie.write_text(f"{node.user}:{node.password}")
    plain = node.url.replace(f"{node.user}:{node.password}@", "")
    r = ingest_rpc(ws, plain, from_height=0, to_height=0, cookie_file=cookie)
    assert r.blocks == 1
    with pytest.raises(RpcError, match="authentication failed"):
        RpcClient(plain.replace("http://", "http://rpcuser:wrong@")).call("getblockcount")


def test_unreachable_node_gives_clear_error(ws):
    client = RpcClient("http://u:p@127.0.0.1:9/", retries=1, backoff=0.01)
    with pytest.raises(RpcError, match="127.0.0.1:9"):
        ingest_rpc(ws, "http://u:p@127.0.0.1:9/", client=client)
    assert not ws.chain("btc").exists


def test_incremental_and_reorg_over_rpc(tmp_path):
    from tests.test_btc_ingest import _check_integrity, _fork_chains, _snapshot

    main, branch, pay, alt = _fork_chains()
    chain_a = {h + 1: verbose_from_raw(b, h + 1) for h, b in enumerate(main)}
    node = RpcNode(chain_a, chain="regtest")
    srv, url = serve(node)
    url = url.replace("http://", "http://rpcuser:rpcpass@")
    try:
        ws = Workspace(tmp_path / "w")
        r = ingest_rpc(ws, url, from_height=1, to_height=4)
        assert r.tip_height == 4 and r.network == "regtest"
        r = ingest_rpc(ws, url)  # resumes after the tip, up to the node's tip
        assert r.blocks == 2 and r.tip_height == 6
        # the node switches to the heavier branch that forks after height 3
        chain_b = {**{h: chain_a[h] for h in (1, 2, 3)},
                   **{4 + k: verbose_from_raw(b, 4 + k) for k, b in enumerate(branch)}}
        node.set_chain(chain_b)
        r = ingest_rpc(ws, url)
        assert r.rolled_back_to == 3 and r.tip_height == 7
        _check_integrity(ws)
        assert query.btc_tx(ws, alt.txid[::-1].hex())["height"] == 4
        # same store as a block-file ingest of the winning chain
        (tmp_path / "win.dat").write_bytes(F.blk_file(main[:3] + branch))
        ref = Workspace(tmp_path / "ref")
        ingest_block_files(ref, [tmp_path / "win.dat"])
        assert _snapshot(ws) == _snapshot(ref)
    finally:
        srv.shutdown()


def test_cli_btc_rpc_json(tmp_path, node):
    p = subprocess.run([sys.executable, "-m", "chaintrace", "--data", str(tmp_path / "d"), "ingest", "btc-rpc",
                        "--url", node.url, "--from", "50000", "--to", "50001", "--format", "json"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["blocks"] == 2 and out["tip_height"] == 50001
