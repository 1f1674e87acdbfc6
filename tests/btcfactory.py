"""Hand-built regtest blocks for tests: exact byte layouts written from the Bitcoin serialization rules."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from chaintrace.chains.btc.parse import merkle_root
from chaintrace.chains.btc.script import script_for_address
from chaintrace.model.encoding import hash160, segwit_encode
from chaintrace.model.networks import network

REGTEST = network("regtest")
GENESIS = bytes.fromhex(REGTEST.genesis)[::-1]


def sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def p2wpkh(tag: str) -> str:
    """A deterministic regtest bech32 address for a name."""
    return segwit_encode(REGTEST.hrp, 0, hash160(tag.encode()))


@dataclass
class Tx:
    inputs: list[tuple[bytes, int]]  # (txid internal order, vout); empty list = coinbase
    outputs: list[tuple[str | bytes, int]]  # (address or raw script, value)
    height: int = 0  # for coinbase (BIP-34)
    segwit: bool = True
    locktime: int = 0
    extra: bytes = b""  # coinbase extra bytes, to make coinbases distinct
    raw: bytes = field(init=False, default=b"")
    txid: bytes = field(init=False, default=b"")

    def __post_init__(self):
        ins = []
        coinbase = not self.inputs
        if coinbase:
            h = self.height.to_bytes((self.height.bit_length() + 8) // 8 or 1, "little")
            sig = bytes([len(h)]) + h + self.extra
            ins.append(b"\0" * 32 + b"\xff\xff\xff\xff" + varint(len(sig)) + sig + b"\xff\xff\xff\xff")
        else:
            for txid, vout in self.inputs:
                ins.append(txid + vout.to_bytes(4, "little") + b"\x00" + b"\xfd\xff\xff\xff")
        outs = []
        for dest, value in self.outputs:
            script = dest if isinstance(dest, bytes) else script_for_address(dest, REGTEST)
            outs.append(value.to_bytes(8, "little") + varint(len(script)) + script)
        body = varint(len(ins)) + b"".join(ins) + varint(len(outs)) + b"".join(outs)
        version = (2).to_bytes(4, "little")
        lock = self.locktime.to_bytes(4, "little")
        self.txid = sha256d(version + body + lock)
        if self.segwit and not coinbase:
            witness = b"".join(b"\x02" + b"\x47" + b"\x30" * 71 + b"\x21" + b"\x02" * 33 for _ in ins)
            self.raw = version + b"\x00\x01" + body + witness + lock
        else:
            self.raw = version + body + lock


def block(prev: bytes, txs: list[Tx], time: int, nonce: int = 0, bits: int = 0x207FFFFF, mine: bool = True) -> bytes:
    """A block whose header meets the target of `bits` (regtest's powLimit by default: about two tries): the
    nonce is ground from `nonce` on. `mine=False` keeps `nonce` as given (for blocks that must fail)."""
    head = ((0x20000000).to_bytes(4, "little") + prev + merkle_root([t.txid for t in txs])
            + time.to_bytes(4, "little") + bits.to_bytes(4, "little"))
    target = (bits & 0x007FFFFF) << (8 * ((bits >> 24) - 3))
    while mine and int.from_bytes(sha256d(head + nonce.to_bytes(4, "little")), "little") > target:
        nonce += 1
    return head + nonce.to_bytes(4, "little") + varint(len(txs)) + b"".join(t.raw for t in txs)


def block_hash(raw: bytes) -> bytes:
    return sha256d(raw[:80])


def blk_file(blocks: list[bytes], magic: bytes = REGTEST.magic) -> bytes:
    return b"".join(magic + len(b).to_bytes(4, "little") + b for b in blocks)


class Chain:
    """Builds a regtest chain: every block has a coinbase paying `miner`, plus the given transactions."""

    def __init__(self, start_time: int = 1_700_000_000):
        self.blocks: list[bytes] = []
        self.hashes: list[bytes] = [GENESIS]
        self.time = start_time

    @property
    def tip(self) -> bytes:
        return self.hashes[-1]

    def add(self, txs: list[Tx] = (), miner: str = "miner", reward: int = 50 * 10**8, parent: int | None = None,
            tag: bytes = b"") -> tuple[bytes, Tx]:
        """Append a block on top of the tip (or on `parent` = index into hashes); returns (raw, coinbase)."""
        prev_index = len(self.hashes) - 1 if parent is None else parent
        height = prev_index + 1
        fees = 0
        cb = Tx([], [(p2wpkh(miner), reward + fees)], height=height, extra=tag)
        self.time += 600
        raw = block(self.hashes[prev_index], [cb, *txs], self.time)
        if parent is None:
            self.blocks.append(raw)
            self.hashes.append(block_hash(raw))
        return raw, cb
