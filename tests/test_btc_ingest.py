"""Bitcoin ingestion into the store: real blocks, resume, out-of-order files, reorgs, corrupt input, kill -9."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from chaintrace.chains.btc import BlockFileError, ingest_block_files
from chaintrace.errors import UserError
from chaintrace.store import query
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F
from tests.conftest import dataset

FIRST439 = ("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")


def _records(blk: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + 8 <= len(blk):
        n = int.from_bytes(blk[pos + 4:pos + 8], "little")
        out.append(blk[pos:pos + 8 + n])
        pos += 8 + n
    return out


def _snapshot(ws: Workspace) -> dict:
    """Everything observable in the store, for equality between two ingest histories."""
    store = ws.chain("btc")
    store.reload()
    snap = {}
    for table in store.schemas:
        t = store.read(table)
        snap[table] = t.to_pylist()
    return snap


def _check_integrity(ws: Workspace) -> None:
    """Every block exactly once, contiguous heights, dense ids, every spend link resolved and unique."""
    store = ws.chain("btc")
    store.reload()
    b = store.read("blocks", ["height", "hash", "prev_hash"])
    heights = b["height"].to_pylist()
    assert heights == list(range(heights[0], heights[0] + len(heights)))
    hashes = b["hash"].to_pylist()
    assert len(set(hashes)) == len(hashes)
    assert b["prev_hash"].to_pylist()[1:] == hashes[:-1]
    for table, key in (("transactions", "tx_id"), ("outputs", "output_id"), ("inputs", "input_id"),
                       ("addresses", "address_id")):
        ids = store.read(table, [key])[key].to_pylist()
        assert ids == list(range(len(ids))), table
    ins = store.read("inputs", ["spent_output_id", "prev_txid"])
    spent = [x for x in ins["spent_output_id"].to_pylist() if x is not None]
    assert len(spent) == len(set(spent)), "an output is spent twice"
    tx = store.read("transactions", ["tx_id", "n_inputs", "first_input_id"])
    assert sum(tx["n_inputs"].to_pylist()) == len(ins)


def test_ingest_first_439_mainnet_blocks(ws):
    report = ingest_block_files(ws, [dataset(*FIRST439)])
    assert report.blocks == 439 and report.network == "main"
    assert report.tip_height == 438
    assert report.tip_hash == "0000000025c6b644f8add734be7e666fa4afa43ca0204d623a0c0b1fd2104c7a"
    assert report.unresolved_inputs == 0
    _check_integrity(ws)
    s = query.stats(ws)["chains"]["btc"]
    assert s["rows"]["blocks"] == 439
    # Satoshi -> Hal Finney, 10 BTC, the first person-to-person payment
    tx = query.btc_tx(ws, "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16")
    assert tx["height"] == 170 and tx["fee"] == 0 and tx["input_value"] == 50 * 10**8
    assert [o["value"] for o in tx["outputs"]] == [10 * 10**8, 40 * 10**8]
    assert tx["outputs"][0]["address"] == "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
    assert tx["inputs"][0]["address"] == "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
    # its input spends block 9's coinbase, whose output now shows the spend link
    cb9 = query.sql(ws, "SELECT spending_txid, spending_input FROM btc.outputs WHERE height = 9")[1]
    assert cb9 == [("f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16", 0)]
    # Satoshi's block-9 key then peels 10, 1, 1, 1 and 10 BTC off at heights 170, 181, 182, 183 and 248,
    # keeping the change on the same key: received 50+40+30+29+28+18, spent all but the last 18 BTC
    a = query.btc_address(ws, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S")
    assert (a["received"], a["sent"], a["balance"], a["tx_count"]) == (195 * 10**8, 177 * 10**8, 18 * 10**8, 6)
    assert (a["first_height"], a["last_height"]) == (9, 248)
    # value conservation over the whole store: no fees were paid in these blocks, so the unspent set holds
    # exactly the 439 block rewards, and every satoshi spent reappears in outputs
    spent = query.sql(ws, "SELECT sum(value) FROM btc.inputs_raw")[1][0][0]
    assert s["total_output_value"] - s["utxo_value"] == spent
    assert s["utxo_value"] == 439 * 50 * 10**8
    assert query.sql(ws, "SELECT sum(fee) FROM btc.transactions")[1][0][0] == 0


def test_rpc_expected_records_agree_with_block_file_ingest(ws):
    """bitcoin-etl's expected output for block 1 (independent tool) agrees with our ingest of block 1."""
    import json

    ingest_block_files(ws, [dataset(*FIRST439)])
    exp = json.loads(dataset("btc-raw-blocks", "bitcoin-etl", "bitcoin", "block_1",
                             "expected_transactions.json").read_text().splitlines()[0])
    tx = query.btc_tx(ws, exp["hash"])
    assert tx["height"] == exp["block_number"] and tx["time"] == exp["block_timestamp"]
    assert tx["size"] == exp["size"] and tx["vsize"] == exp["virtual_size"]
    assert [(o["value"], o["address"]) for o in tx["outputs"]] == [
        (o["value"], o["addresses"][0]) for o in exp["outputs"]]


def test_bz2_blocks_start_at_height_one(ws):
    """btcd's blocks 1-255 (no genesis): the first block's parent is the mainnet genesis -> height 1."""
    report = ingest_block_files(ws, [dataset("btc-raw-blocks", "btcd", "database", "testdata", "blocks1-256.bz2")])
    assert report.blocks == 255
    blocks = ws.chain("btc").read("blocks", ["height"])["height"].to_pylist()
    assert blocks[0] == 1 and blocks[-1] == 255
    _check_integrity(ws)


def test_single_raw_block_height_from_bip34(ws):
    """A raw block file (no magic) whose parent is unknown is placed by the BIP-34 height in its coinbase."""
    path = dataset("btc-raw-blocks", "btcd", "wire", "testdata",
                   "block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk")
    report = ingest_block_files(ws, [path])
    assert report.blocks == 1 and report.transactions == 230
    # inputs spending earlier transactions of the same block resolve; all others spend older blocks
    import bitcoin.core

    blk = bitcoin.core.CBlock.deserialize(path.read_bytes())
    ids = {tx.GetTxid() for tx in blk.vtx}
    in_block = sum(vin.prevout.hash in ids for tx in blk.vtx[1:] for vin in tx.vin)
    assert in_block > 0
    assert report.unresolved_inputs == report.inputs - 1 - in_block
    h = ws.chain("btc").read("blocks", ["height"])["height"][0].as_py()
    first_push = next(iter(blk.vtx[0].vin[0].scriptSig))  # BIP-34: the height is the first push
    assert h == int.from_bytes(first_push, "little") == 540107


def test_single_raw_block_without_height_needs_start_height(ws, tmp_path):
    path = dataset("btc-raw-blocks", "bitcoinj", "block169482.dat")  # version 1 block: no BIP-34 height
    with pytest.raises(BlockFileError, match="--start-height"):
        ingest_block_files(ws, [path])
    assert not ws.chain("btc").exists
    report = ingest_block_files(ws, [path], start_height=169482)
    assert report.tip_height == 169482


def test_resume_and_out_of_order_files_give_identical_stores(tmp_path):
    blk = dataset(*FIRST439).read_bytes()
    recs = _records(blk)
    # reference: one run over the file in order
    ref = Workspace(tmp_path / "ref")
    ingest_block_files(ref, [dataset(*FIRST439)])
    # incremental: first 100 blocks, then everything (the first 100 are recognised as already stored)
    inc = Workspace(tmp_path / "inc")
    (tmp_path / "first100.dat").write_bytes(b"".join(recs[:100]))
    r1 = ingest_block_files(inc, [tmp_path / "first100.dat"])
    assert r1.tip_height == 99
    r2 = ingest_block_files(inc, [dataset(*FIRST439)])
    assert r2.already_stored == 100 and r2.blocks == 339
    # shuffled: records in random order, split over three files
    rnd = random.Random(7)
    shuffled = recs[:]
    rnd.shuffle(shuffled)
    d = tmp_path / "shuffled"
    d.mkdir()
    for k in range(3):
        (d / f"blk{k:05d}.dat").write_bytes(b"".join(shuffled[k::3]))
    shuf = Workspace(tmp_path / "shuf")
    r3 = ingest_block_files(shuf, [d], batch_bytes=20_000)
    assert r3.blocks == 439 and r3.commits > 1
    assert _snapshot(ref) == _snapshot(inc) == _snapshot(shuf)


def test_bitcoin_core_xor_obfuscated_blocks_dir(tmp_path):
    """A Bitcoin Core 28+ blocks/ directory: blk files XORed with blocks/xor.dat, plus rev files to skip."""
    import numpy as np

    plain = dataset(*FIRST439).read_bytes()
    key = bytes.fromhex("a1b2c3d4e5f60718")
    d = tmp_path / "blocks"
    d.mkdir()
    (d / "xor.dat").write_bytes(key)
    k = np.resize(np.frombuffer(key, np.uint8), len(plain))
    (d / "blk00000.dat").write_bytes((np.frombuffer(plain, np.uint8) ^ k).tobytes())
    (d / "rev00000.dat").write_bytes(b"undo data, not blocks")
    a = Workspace(tmp_path / "a")
    r = ingest_block_files(a, [d])
    assert r.blocks == 439
    b = Workspace(tmp_path / "b")
    ingest_block_files(b, [dataset(*FIRST439)])
    assert _snapshot(a) == _snapshot(b)


def _fork_chains():
    """Main chain of 6 blocks with spends, and a heavier branch forking after block 3."""
    c = F.Chain()
    c.add(miner="alice")
    _, cb2 = c.add(miner="bob")
    c.add(miner="carol")
    pay = F.Tx([(cb2.txid, 0)], [(F.p2wpkh("dave"), 30 * 10**8), (F.p2wpkh("bob-change"), 19 * 10**8)])
    c.add([pay], miner="erin")
    spend2 = F.Tx([(pay.txid, 0)], [(F.p2wpkh("frank"), 29 * 10**8)])
    c.add([spend2], miner="erin")
    c.add(miner="erin")
    main = c.blocks[:]
    # branch: after block 3, three new blocks (one more than the main chain's three), no `pay`
    b = F.Chain()
    b.blocks, b.hashes, b.time = main[:3], c.hashes[:4], c.time + 10_000
    alt = F.Tx([(cb2.txid, 0)], [(F.p2wpkh("mallory"), 49 * 10**8)])
    b.add([alt], miner="mallory", tag=b"alt")
    b.add(miner="mallory", tag=b"alt")
    b.add(miner="mallory", tag=b"alt")
    b.add(miner="mallory", tag=b"alt")
    return main, b.blocks[3:], pay, alt


def test_reorg_rolls_back_to_fork_point(ws, tmp_path):
    main, branch, pay, alt = _fork_chains()
    (tmp_path / "main.dat").write_bytes(F.blk_file(main))
    r = ingest_block_files(ws, [tmp_path / "main.dat"])
    assert r.tip_height == 6 and r.network == "regtest"
    assert query.btc_tx(ws, pay.txid[::-1].hex())["height"] == 4
    (tmp_path / "branch.dat").write_bytes(F.blk_file(branch))
    r = ingest_block_files(ws, [tmp_path / "branch.dat"])
    assert r.rolled_back_to == 3 and r.tip_height == 7 and r.blocks == 4
    _check_integrity(ws)
    with pytest.raises(UserError, match="not in the store"):
        query.btc_tx(ws, pay.txid[::-1].hex())  # the orphaned payment is gone
    t = query.btc_tx(ws, alt.txid[::-1].hex())
    assert t["height"] == 4 and t["inputs"][0]["value"] == 50 * 10**8  # spends the same coinbase
    # "dave" and "frank" existed only on the orphaned branch: their addresses are gone too
    with pytest.raises(UserError):
        query.btc_address(ws, F.p2wpkh("dave"))
    # the same files again change nothing; the lighter old branch is now the orphan set
    snap = _snapshot(ws)
    r = ingest_block_files(ws, [tmp_path / "main.dat", tmp_path / "branch.dat"])
    assert r.blocks == 0 and len(r.orphans) == 3
    assert _snapshot(ws) == snap


def test_reorg_result_equals_fresh_ingest_of_winning_chain(tmp_path):
    main, branch, _, _ = _fork_chains()
    (tmp_path / "all.dat").write_bytes(F.blk_file(main + branch))
    a = Workspace(tmp_path / "a")
    ingest_block_files(a, [tmp_path / "all.dat"])  # sees both branches at once: picks the heavier one
    (tmp_path / "main.dat").write_bytes(F.blk_file(main))
    (tmp_path / "branch.dat").write_bytes(F.blk_file(branch))
    b = Workspace(tmp_path / "b")
    ingest_block_files(b, [tmp_path / "main.dat"])
    ingest_block_files(b, [tmp_path / "branch.dat"])
    assert _snapshot(a) == _snapshot(b)


def _corrupt_cases(tmp_path):
    good = dataset(*FIRST439).read_bytes()
    recs = _records(good)
    off171 = sum(len(r) for r in recs[:171])
    cases = {}
    # 1. truncated final record
    cases["truncated"] = (good[:-50], len(good) - len(recs[-1]), "truncated block record")
    # 2. a byte flipped inside block 170's second transaction -> merkle mismatch at that block
    off170 = sum(len(r) for r in recs[:170])
    b = bytearray(good)
    b[off170 + 8 + 80 + 1 + 150] ^= 0xFF
    cases["merkle"] = (bytes(b), off170 + 8 + 36, "merkle root mismatch")
    # 3. garbage magic in the middle
    b = bytearray(good)
    b[off171:off171 + 4] = b"\xde\xad\xbe\xef"
    cases["magic"] = (bytes(b), off171, "expected network magic")
    # 4. a transaction whose output count runs past the block
    b = bytearray(good)
    rec = recs[200]
    o = sum(len(r) for r in recs[:200])
    # coinbase tx of block 200: version(4) + nin(1) + prevout(36) + scriptlen + script + seq(4) + nout
    sl = rec[8 + 81 + 4 + 1 + 36]
    nout_at = o + 8 + 81 + 4 + 1 + 36 + 1 + sl + 4
    b[nout_at] = 0xFC
    cases["structure"] = (bytes(b), None, "")
    return cases


@pytest.mark.parametrize("case", ["truncated", "merkle", "magic", "structure"])
def test_corrupt_input_names_file_and_offset_and_commits_nothing(ws, tmp_path, case):
    data, offset, text = _corrupt_cases(tmp_path)[case]
    path = tmp_path / "blk00000.dat"
    path.write_bytes(data)
    with pytest.raises(BlockFileError) as e:
        ingest_block_files(ws, [path])
    msg = str(e.value)
    assert str(path) in msg and "byte offset" in msg
    if offset is not None:
        assert e.value.offset == offset
    if text:
        assert text in msg
    # nothing committed, nothing left behind
    store = ws.chain("btc")
    assert not store.exists or store.row_count("blocks") == 0
    assert not list((ws.path / "btc").glob("_staging/*")) if (ws.path / "btc").exists() else True


def test_corrupt_block_after_good_batches_keeps_only_whole_blocks(ws, tmp_path):
    """With small batches, blocks committed before the corrupt one stay; the corrupt block's batch does not."""
    data, offset, _ = _corrupt_cases(tmp_path)["merkle"]
    path = tmp_path / "blk00000.dat"
    path.write_bytes(data)
    with pytest.raises(BlockFileError):
        ingest_block_files(ws, [path], batch_bytes=5_000)
    _check_integrity(ws)
    tip = ws.chain("btc").tip["height"]
    assert 0 < tip < 170
    # fixing the file and re-running completes the chain exactly once
    path.write_bytes(dataset(*FIRST439).read_bytes())
    ingest_block_files(ws, [path])
    _check_integrity(ws)
    assert ws.chain("btc").tip["height"] == 438


def test_two_writers_are_refused(ws, tmp_path):
    store = ws.chain("btc")
    with store.writer():
        with pytest.raises(UserError, match="another process"):
            ingest_block_files(ws, [dataset(*FIRST439)])


@pytest.mark.slow
def test_kill_9_at_random_moments_then_rerun(tmp_path):
    """Killed with SIGKILL at random instants, re-runs converge to exactly the reference store."""
    src = dataset(*FIRST439)
    ref = Workspace(tmp_path / "ref")
    ingest_block_files(ref, [src])
    expected = _snapshot(ref)
    ws = Workspace(tmp_path / "victim")
    cmd = [sys.executable, "-m", "chaintrace", "--data", str(ws.path), "ingest", "btc-blocks", str(src),
           "--batch-mb", "0"]  # a commit after every block: many commit points to be killed in
    env = dict(os.environ)
    rnd = random.Random(3)
    kills = 0
    for _attempt in range(12):
        p = subprocess.Popen(cmd + ["--format", "json"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=env)
        time.sleep(rnd.uniform(1.0, 9.0))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        if p.returncode == 0:
            break
    assert kills >= 1
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    _check_integrity(ws)
    assert _snapshot(ws) == expected
    assert not list((ws.path / "btc" / "_staging").glob("*"))


@pytest.mark.parametrize("path", [
    ("btc-raw-blocks", "btcd", "wire", "testdata",
     "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk"),
    ("btc-raw-blocks", "bitcoinj", "block383616.dat"),  # bare multisig and P2PK outputs
])
def test_every_stored_address_equals_the_reference_decoding(ws, path):
    """The vectorised address map and encoders agree with the one-script reference decoder on every output,
    and each address row's canonical script decodes to that address."""
    from chaintrace.chains.btc.script import reference_address
    from chaintrace.model.networks import network

    kw = {"start_height": 383616} if path[-1] == "block383616.dat" else {}
    ingest_block_files(ws, [dataset(*path)], **kw)
    net = network("main")
    cols, rows = query.sql(ws, "SELECT script, script_type, address FROM btc.outputs ORDER BY output_id")
    assert len(rows) > 400
    for script, stype, address in rows:
        assert (stype, address) == reference_address(bytes(script), net)
    _, arows = query.sql(ws, "SELECT address, script_type, script FROM btc.addresses")
    for address, _stype, script in arows:
        assert reference_address(bytes(script), net)[1] == address
    assert len({a for a, _, _ in arows}) == len(arows)  # one row per address
