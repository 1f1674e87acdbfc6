"""Proof of work: every header meets the target its bits encode; under the network rules the bits follow the
network's limit and difficulty transitions; a failing block is an error naming file, offset and block hash,
nothing of it is committed, and it is never set aside as an orphan."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chaintrace.chains.btc import BlockFileError, ingest_block_files, ingest_rpc
from chaintrace.chains.btc.pow import PARAMS, check_target, decode_bits, encode_bits, required_bits
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F
from tests.btc_rpc_server import RpcNode, serve, verbose_from_raw
from tests.conftest import dataset

FIRST439 = ("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


def records(blk: bytes) -> list[tuple[int, int]]:
    """(offset of the block, length) of each record of a blk*.dat file."""
    out, pos = [], 0
    while pos + 8 <= len(blk):
        n = int.from_bytes(blk[pos + 4:pos + 8], "little")
        out.append((pos + 8, n))
        pos += 8 + n
    return out


def sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


# ---------------------------------------------------------------------------------------------- unit rules

def test_compact_round_trip_and_limits():
    assert encode_bits(PARAMS["main"].pow_limit) == 0x1D00FFFF
    assert encode_bits(PARAMS["regtest"].pow_limit) == 0x207FFFFF
    assert encode_bits(PARAMS["signet"].pow_limit) == 0x1E0377AE
    for bits in (0x1D00FFFF, 0x1B0404CB, 0x1C05A3F4, 0x207FFFFF, 0x1703A30C):
        assert encode_bits(decode_bits(bits)[0]) == bits
    assert decode_bits(0x01803456)[1]  # negative
    assert decode_bits(0xFF123456)[2]  # overflow
    assert check_target(b"\0" * 32, 0x00000000) is not None  # zero target


# Bitcoin Core's src/test/pow_tests.cpp: (last retarget time, last height, last time, last bits) -> next bits
CORE_CASES = [
    (1261130161, 32255, 1262152739, 0x1D00FFFF, 0x1D00D86A),  # get_next_work
    (1231006505, 2015, 1233061996, 0x1D00FFFF, 0x1D00FFFF),  # get_next_work_pow_limit
    (1279008237, 68543, 1279297671, 0x1C05A3F4, 0x1C0168FD),  # get_next_work_lower_limit_actual
    (1263163443, 46367, 1269211443, 0x1C387F6F, 0x1D00E1FD),  # get_next_work_upper_limit_actual
]


@pytest.mark.parametrize("first_time,last,last_time,last_bits,want", CORE_CASES)
def test_mainnet_retarget_matches_bitcoin_core(first_time, last, last_time, last_bits, want):
    times = {last - 2015: first_time, last: last_time}
    got = required_bits(last + 1, last_time + 600, PARAMS["main"], lambda h: last_bits if h == last else None,
                        times.get)
    assert got == want
    # between retargets the bits stay; a block needing a height the store lacks is not judged
    assert required_bits(last + 2, 0, PARAMS["main"], lambda h: want, lambda h: 0) == want
    assert required_bits(last + 1, 0, PARAMS["main"], lambda h: last_bits, lambda h: None) is None


def test_testnet_min_difficulty_rule():
    p, low = PARAMS["test"], 0x1D00FFFF
    real = 0x1C0FFFFF
    bits = {100: real, 101: low, 102: low}
    times = {100: 1000, 101: 3000, 102: 5000}
    # more than 20 minutes after its parent: the minimum difficulty is required
    assert required_bits(103, 5000 + 1201, p, bits.get, times.get) == low
    # within 20 minutes: the last bits that were not the minimum-difficulty exception
    assert required_bits(103, 5000 + 1200, p, bits.get, times.get) == real
    # mainnet has no exception: the parent's bits
    assert required_bits(103, 5000 + 5000, PARAMS["main"], bits.get, times.get) == low


def test_regtest_never_retargets_and_testnet4_uses_the_period_start():
    bits = {0: 0x207FFFFF, 2015: 0x207FFFFF}
    times = {0: 0, 2015: 1}  # a very fast period would raise the difficulty on mainnet
    assert required_bits(2016, 2, PARAMS["regtest"], bits.get, times.get) == 0x207FFFFF
    b4 = {0: 0x1C0FFFFF, 2015: 0x1D00FFFF}  # period ended on a minimum-difficulty block
    t4 = {0: 0, 2015: 14 * 24 * 3600}
    assert required_bits(2016, t4[2015] + 1, PARAMS["testnet4"], b4.get, t4.get) == 0x1C0FFFFF  # BIP-94
    assert required_bits(2016, t4[2015] + 1, PARAMS["test"], b4.get, t4.get) == 0x1D00FFFF


# ---------------------------------------------------------------------------------------------- real blocks

@pytest.fixture(scope="module")
def first439():
    return dataset(*FIRST439).read_bytes()


def _tamper(blk: bytes, index: int, at: int) -> tuple[bytes, int, str]:
    """`blk` with one byte of block `index`'s header flipped at header position `at`; returns the new file,
    the block's offset and its new hash."""
    off, _ = records(blk)[index]
    b = bytearray(blk)
    b[off + at] ^= 0x01
    return bytes(b), off, sha256d(bytes(b[off:off + 80]))[::-1].hex()


def test_real_blocks_pass(tmp_path, first439):
    ws = Workspace(tmp_path / "ws")
    r = ingest_block_files(ws, [dataset(*FIRST439)])
    assert r.blocks == 439 and not r.orphans
    assert ws.chain("btc").meta["pow_rules"] == "network"


@pytest.mark.parametrize("what,at", [("nonce", 76), ("prev-hash", 4), ("time", 68)])
def test_one_changed_header_byte_is_refused_and_nothing_is_stored(tmp_path, first439, what, at):
    bad, off, h = _tamper(first439, 170, at)
    path = tmp_path / "blk00000.dat"
    path.write_bytes(bad)
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(BlockFileError) as e:
        ingest_block_files(ws, [path])
    msg = str(e.value)
    assert str(path) in msg and f"byte offset {off}" in msg and h in msg and "proof of work fails" in msg
    assert not ws.chains() and not (ws.path / "btc" / "manifest.json").exists()


def test_refused_block_leaves_an_existing_store_byte_identical(tmp_path, first439):
    recs = records(first439)
    cut = recs[100][0] - 8
    (tmp_path / "a.dat").write_bytes(first439[:cut])
    ws = Workspace(tmp_path / "ws")
    ingest_block_files(ws, [tmp_path / "a.dat"])
    before = tree_digest(ws.path)
    bad, off, h = _tamper(first439, 300, 76)
    (tmp_path / "b.dat").write_bytes(bad[cut:])
    with pytest.raises(BlockFileError, match=h):
        ingest_block_files(ws, [tmp_path / "b.dat"])
    assert tree_digest(ws.path) == before
    # the untouched file still ingests on top
    (tmp_path / "c.dat").write_bytes(first439[cut:])
    assert ingest_block_files(ws, [tmp_path / "c.dat"]).tip_height == 438


def test_corrupted_prev_hash_is_an_error_not_an_orphan(tmp_path, first439):
    bad, off, h = _tamper(first439, 438, 4)  # the tip's parent link: it would no longer link, so "orphan"
    (tmp_path / "blk00000.dat").write_bytes(bad)
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(BlockFileError, match=f"block {h}: header hash does not meet the target"):
        ingest_block_files(ws, [tmp_path / "blk00000.dat"])
    assert not ws.chains()


def test_cli_refuses_with_exit_2(tmp_path, first439):
    import subprocess
    import sys

    bad, off, h = _tamper(first439, 5, 76)
    (tmp_path / "blk00000.dat").write_bytes(bad)
    p = subprocess.run([sys.executable, "-m", "chaintrace", "--data", str(tmp_path / "ws"), "ingest", "btc-blocks",
                        str(tmp_path / "blk00000.dat")], capture_output=True, text=True)
    assert p.returncode == 2 and h in p.stderr and f"byte offset {off}" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "ws").exists()


# ---------------------------------------------------------------------------------------------- synthetic

def _chain(n: int = 5) -> F.Chain:
    c = F.Chain()
    for _ in range(n):
        c.add()
    return c


def _unmined(prev: bytes, height: int, time: int, bits: int = 0x207FFFFF) -> bytes:
    """A block whose nonce is chosen so that its hash does NOT meet the target."""
    cb = F.Tx([], [(F.p2wpkh("miner"), 50 * 10**8)], height=height, extra=b"bad")
    nonce = 0
    while True:
        raw = F.block(prev, [cb], time, nonce=nonce, bits=bits, mine=False)
        if int.from_bytes(F.block_hash(raw), "little") > decode_bits(bits)[0]:
            return raw
        nonce += 1


def test_factory_and_simulator_blocks_meet_their_target(tmp_path):
    from chaintrace.sim.btc import simulate_btc

    c = _chain(20)
    assert all(check_target(F.block_hash(b), 0x207FFFFF) is None for b in c.blocks)
    simulate_btc(tmp_path / "sim", txs=1500, seed=3)
    ws = Workspace(tmp_path / "ws")
    r = ingest_block_files(ws, [tmp_path / "sim"])  # regtest rules in full
    assert r.blocks > 0 and ws.chain("btc").meta["pow_rules"] == "network"


def test_unmined_synthetic_block_is_refused(tmp_path):
    c = _chain(4)
    bad = _unmined(c.tip, 5, c.time + 600)
    (tmp_path / "blk00000.dat").write_bytes(F.blk_file(c.blocks + [bad]))
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(BlockFileError, match=F.block_hash(bad)[::-1].hex()):
        ingest_block_files(ws, [tmp_path / "blk00000.dat"])
    assert not ws.chains()  # the four valid blocks before it are not committed either


def test_bits_off_the_regtest_rule_are_refused(tmp_path):
    c = _chain(4)
    cb = F.Tx([], [(F.p2wpkh("miner"), 50 * 10**8)], height=5, extra=b"hard")
    harder = F.block(c.tip, [cb], c.time + 600, bits=0x207FFFFE)  # valid PoW, but not the required bits
    (tmp_path / "blk00000.dat").write_bytes(F.blk_file(c.blocks + [harder]))
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(BlockFileError, match="bits 207ffffe differ from the 207fffff the regtest difficulty rules"):
        ingest_block_files(ws, [tmp_path / "blk00000.dat"])
    assert not ws.chains()
    r = ingest_block_files(ws, [tmp_path / "blk00000.dat"], pow_rules="target-only")
    assert r.tip_height == 5 and ws.chain("btc").meta["pow_rules"] == "target-only"


def test_rpc_block_failing_pow_is_refused_and_its_batch_not_committed(tmp_path):
    c = _chain(4)
    bad = _unmined(c.tip, 5, c.time + 600)
    blocks = {h + 1: verbose_from_raw(b, h + 1) for h, b in enumerate(c.blocks + [bad])}
    node = RpcNode(blocks, chain="regtest")
    srv, url = serve(node)
    try:
        ws = Workspace(tmp_path / "ws")
        url = url.replace("http://", "http://rpcuser:rpcpass@")
        with pytest.raises(BlockFileError, match=F.block_hash(bad)[::-1].hex() + ".*proof of work fails"):
            ingest_rpc(ws, url, from_height=1)
        assert not ws.chains()
    finally:
        srv.shutdown()
