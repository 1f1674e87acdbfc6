"""Bitcoin deserialization and address decoding against real mainnet blocks and an independent parser.

Cross-checks use python-bitcoinlib (an independent deserializer) on the same bytes: transaction ids,
witness ids, output values and addresses must agree for every transaction of every sample block.
"""
from __future__ import annotations

import bz2
import hashlib

import bitcoin
import bitcoin.core
import bitcoin.wallet
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from chaintrace.chains.btc import parse, script
from chaintrace.chains.btc.blockfile import BlockFiles
from chaintrace.model import encoding
from chaintrace.model.networks import network
from tests.conftest import dataset

MAIN = network("main")
BIG = "block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk"
BIG2 = "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk"
BITCOINJ = ["block169482.dat", "block227835.dat", "block227836.dat", "block363703.dat", "block370661.dat",
            "block383616.dat", "block481815.dat", "block481829.dat"]


def _parse(raw: bytes):
    p = parse.parse_blocks(np.frombuffer(raw, np.uint8), [0], [len(raw)])
    parse.hash_transactions(p)
    return p


def _single_blocks():
    out = [("btcd", BIG), ("btcd", BIG2)] + [("bitcoinj", n) for n in BITCOINJ]
    return out


def _path(src, name):
    if src == "btcd":
        return dataset("btc-raw-blocks", "btcd", "wire", "testdata", name)
    return dataset("btc-raw-blocks", "bitcoinj", name)


@pytest.mark.parametrize("src,name", _single_blocks())
def test_real_block_matches_independent_parser(src, name):
    raw = _path(src, name).read_bytes()
    p = _parse(raw)
    # the block hash is the double SHA-256 of the header; btcd names its files after it
    if name.startswith("block-"):
        assert p.block_hash(0)[::-1].hex() == name[6:70]
    assert parse.merkle_root(p.txid) == raw[36:68]
    ref = bitcoin.core.CBlock.deserialize(raw)
    assert ref.GetHash() == p.block_hash(0)
    assert len(ref.vtx) == p.n_tx
    bitcoin.SelectParams("mainnet")
    for t, tx in enumerate(ref.vtx):
        assert tx.GetTxid() == p.txid[t]
        assert tx.GetHash() == p.wtxid[t]
        assert int(p.tx_nin[t]) == len(tx.vin) and int(p.tx_nout[t]) == len(tx.vout)
        assert int(p.tx_version[t]) == tx.nVersion and int(p.tx_locktime[t]) == tx.nLockTime
        o0 = int(p.tx_out0[t])
        for k, out in enumerate(tx.vout):
            assert int(p.out_value[o0 + k]) == out.nValue
        i0 = int(p.tx_in0[t])
        for k, vin in enumerate(tx.vin):
            assert raw[int(p.in_prev[i0 + k]):int(p.in_prev[i0 + k]) + 32] == vin.prevout.hash
            assert int(p.in_vout[i0 + k]) == vin.prevout.n
            assert int(p.in_seq[i0 + k]) == vin.nSequence


@pytest.mark.parametrize("src,name", _single_blocks())
def test_real_block_addresses_match_independent_decoder(src, name):
    """Every output address of the block equals python-bitcoinlib's decoding of the same script."""
    raw = _path(src, name).read_bytes()
    p = _parse(raw)
    buf = np.frombuffer(raw, np.uint8)
    typ, poff, plen, wver = script.classify(buf, p.out_soff, p.out_slen)
    bitcoin.SelectParams("mainnet")
    keys, idx = [], []
    for i in range(len(typ)):
        if typ[i] in (script.NONSTANDARD, script.NULLDATA):
            continue
        payload = raw[poff[i]:poff[i] + plen[i]]
        keys.append(bytes([script.P2PKH]) + encoding.hash160(payload) if typ[i] == script.P2PK
                    else script.address_key(int(typ[i]), payload, int(wver[i])))
        idx.append(i)
    addrs, _ = script.encode_keys(keys, MAIN)
    checked = 0
    for i, a in zip(idx, addrs):
        s = raw[p.out_soff[i]:p.out_soff[i] + p.out_slen[i]]
        t = int(typ[i])
        if t == script.P2PK:
            expect = str(bitcoin.wallet.P2PKHBitcoinAddress.from_pubkey(s[1:-1]))
        elif t == script.MULTISIG:
            assert a.startswith(f"multisig:{s[0] - 0x50}-of-{s[-2] - 0x50}:")
            continue
        else:
            expect = str(bitcoin.wallet.CBitcoinAddress.from_scriptPubKey(bitcoin.core.CScript(s)))
        assert a == expect, (i, t)
        checked += 1
    assert checked > 0


def test_known_mainnet_facts():
    """Genesis pays 50 BTC to 1A1zP1...; block 170 carries Satoshi's 10 BTC to Hal Finney."""
    path = dataset("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")
    with BlockFiles([path]) as files:
        refs, net = files.scan()
        assert net.name == "main" and len(refs) == 439
        genesis = files.read(refs[0])
        assert refs[0].hash_hex == MAIN.genesis
        p = _parse(genesis)
        s = genesis[p.out_soff[0]:p.out_soff[0] + p.out_slen[0]]
        assert script.reference_address(s, MAIN) == ("p2pk", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
        assert int(p.out_value[0]) == 50 * 10**8
        b170 = files.read(refs[170])
        p = _parse(b170)
        assert p.txid[1][::-1].hex() == "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
        vals = p.out_value[p.tx_out0[1]:p.tx_out0[1] + p.tx_nout[1]].tolist()
        assert vals == [10 * 10**8, 40 * 10**8]
        o = int(p.tx_out0[1])
        hal = b170[p.out_soff[o]:p.out_soff[o] + p.out_slen[o]]
        assert script.reference_address(hal, MAIN)[1] == "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"


def test_blk_files_in_compressed_form_and_headers():
    """btcd's bzip2 block files (heights 1-255, and 0-4) parse; headers chain by previous hash."""
    path = dataset("btc-raw-blocks", "btcd", "database", "testdata", "blocks1-256.bz2")
    with BlockFiles([path]) as files:
        refs, net = files.scan()
    assert net.name == "main" and len(refs) == 255
    assert refs[0].prev[::-1].hex() == MAIN.genesis
    for a, b in zip(refs, refs[1:]):
        assert b.prev == a.hash
    headers = dataset("btc-raw-blocks", "btcd", "netsync", "testdata", "blockheaders-mainnet-1-11.txt")
    lines = [ln.strip() for ln in headers.read_text().split() if len(ln.strip()) == 160]
    for k, ln in enumerate(lines[:10]):
        assert hashlib.sha256(hashlib.sha256(bytes.fromhex(ln)).digest()).digest() == refs[k].hash


BIP350_VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "bc", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "tb",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "bc",
     "5128751e76e8199196d454941c45d1b3a323f1433bd6751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("BC1SW50QGDZ25J", "bc", "6002751e"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "bc",
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
]


@pytest.mark.parametrize("address,hrp,spk", BIP350_VALID)
def test_bip350_vectors(address, hrp, spk):
    net = MAIN if hrp == "bc" else network("test")
    spk = bytes.fromhex(spk)
    assert script.script_for_address(address.lower(), net) == spk
    typ, addr = script.reference_address(spk, net)
    assert addr == address.lower()
    expected_type = {0x00: {20: "p2wpkh", 32: "p2wsh"}}.get(spk[0], {}).get(len(spk) - 2)
    if spk[0] == 0x51 and len(spk) == 34:
        expected_type = "p2tr"
    assert typ == (expected_type or "witness_unknown")
    # the vectorised encoder agrees
    buf = np.frombuffer(spk, np.uint8)
    t, po, pl, wv = script.classify(buf, np.array([0]), np.array([len(spk)]))
    key = script.address_key(int(t[0]), spk[po[0]:po[0] + pl[0]], int(wv[0]))
    assert script.encode_keys([key], net)[0][0] == address.lower()


@pytest.mark.parametrize("bad", ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # checksum
                                 "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",  # bech32 for v1
                                 "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7Kv8f3t4"])  # mixed case
def test_invalid_segwit_addresses_rejected(bad):
    with pytest.raises(ValueError):
        encoding.segwit_decode("bc", bad)


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=20, max_size=20), version=st.sampled_from([0x00, 0x05, 0x6F, 0xC4]))
def test_vectorised_base58check_equals_reference(payload, version):
    got = script.base58check_many([bytes([version]) + payload])[0]
    assert got == encoding.b58check_encode(bytes([version]) + payload)
    assert encoding.b58check_decode(got) == bytes([version]) + payload


@settings(max_examples=200, deadline=None)
@given(prog=st.binary(min_size=2, max_size=40), version=st.integers(0, 16), hrp=st.sampled_from(["bc", "tb", "bcrt"]))
def test_vectorised_bech32_equals_reference(prog, version, hrp):
    if version == 0 and len(prog) not in (20, 32):
        return
    got = script.segwit_many(hrp, [version], [prog])[0]
    assert got == encoding.segwit_encode(hrp, version, prog)
    assert encoding.segwit_decode(hrp, got) == (version, prog)


def test_network_decides_prefixes():
    h = bytes(range(20))
    spk_pkh = b"\x76\xa9\x14" + h + b"\x88\xac"
    spk_wpkh = b"\x00\x14" + h
    assert script.reference_address(spk_pkh, network("main"))[1].startswith("1")
    assert script.reference_address(spk_pkh, network("regtest"))[1][0] in "mn"
    assert script.reference_address(spk_wpkh, network("main"))[1].startswith("bc1q")
    assert script.reference_address(spk_wpkh, network("test"))[1].startswith("tb1q")
    assert script.reference_address(spk_wpkh, network("regtest"))[1].startswith("bcrt1q")
    assert script.reference_address(spk_wpkh, network("signet"))[1].startswith("tb1q")


def test_script_flags():
    net = MAIN
    assert script.reference_address(b"\x6a\x04abcd", net) == ("nulldata", None)
    assert script.reference_address(b"\x51", net) == ("nonstandard", None)
    assert script.reference_address(b"", net) == ("nonstandard", None)
    # v0 witness program of a length other than 20/32 is not a valid address
    assert script.reference_address(b"\x00\x15" + bytes(21), net) == ("nonstandard", None)
    k1, k2 = b"\x02" + bytes(32), b"\x03" + bytes([1] * 32)
    ms = b"\x51\x21" + k1 + b"\x21" + k2 + b"\x52\xae"
    t, a = script.reference_address(ms, net)
    assert t == "multisig" and a.startswith("multisig:1-of-2:1")


def test_truncated_block_raises_with_offset():
    raw = _path("bitcoinj", "block169482.dat").read_bytes()
    cut = raw[:5000]
    with pytest.raises(parse.ParseError) as e:
        parse.parse_blocks(np.frombuffer(cut, np.uint8), [0], [len(cut)])
    assert 80 < e.value.offset <= 5000


def test_bz2_fixture_277647_parses():
    raw_file = bz2.decompress(dataset("btc-raw-blocks", "btcd", "blockchain", "testdata", "277647.dat.bz2").read_bytes())
    assert raw_file[:4] == MAIN.magic
    n = int.from_bytes(raw_file[4:8], "little")
    block = raw_file[8:8 + n]
    p = _parse(block)
    assert p.block_hash(0)[::-1].hex().startswith("0000000000000000054a714e")
    assert parse.merkle_root(p.txid) == block[36:68]
    assert parse.coinbase_height(block[p.in_soff[0]:p.in_soff[0] + p.in_slen[0]]) == 277647


@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.integers(0, 31), max_size=70))
def test_bech32_program_bytes_equal_bit_conversion(data):
    """The one-integer 5-to-8-bit conversion of segwit_decode equals the reference bit conversion, padding
    errors included."""
    try:
        want = bytes(encoding.convertbits(data, 5, 8, pad=False))
    except ValueError:
        with pytest.raises(ValueError):
            encoding._from5(data)
        return
    assert encoding._from5(data) == want
