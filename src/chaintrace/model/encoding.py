"""Reference implementations of the address encodings used by Bitcoin, Ethereum and TRON.

These are plain, readable Python (the ingest hot path uses vectorised equivalents in
``chaintrace.chains.btc.script``, and the tests check the two agree). Specifications: base58check
(Bitcoin wiki), BIP-173 (bech32), BIP-350 (bech32m), EIP-55 (mixed-case checksums).
"""
from __future__ import annotations

import hashlib

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(B58_ALPHABET)}
BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(BECH32_CHARSET)}
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def keccak256(data: bytes) -> bytes:
    from Crypto.Hash import keccak

    return keccak.new(digest_bits=256, data=data).digest()


# ---------------------------------------------------------------- base58


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(B58_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        try:
            n = n * 58 + _B58_INDEX[c]
        except KeyError:
            raise ValueError(f"invalid base58 character {c!r}") from None
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + body


def b58check_encode(payload: bytes) -> str:
    return b58encode(payload + sha256d(payload)[:4])


def b58check_decode(text: str) -> bytes:
    raw = b58decode(text)
    if len(raw) < 5:
        raise ValueError("base58check string too short")
    payload, check = raw[:-4], raw[-4:]
    if sha256d(payload)[:4] != check:
        raise ValueError("base58check checksum mismatch")
    return payload


# ---------------------------------------------------------------- bech32 / bech32m


_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
# the XOR of the generator terms selected by each 5-bit value of the top bits (BIP-173 polymod, one lookup a step)
_GEN_TABLE = tuple(
    (_GEN[0] if t & 1 else 0) ^ (_GEN[1] if t & 2 else 0) ^ (_GEN[2] if t & 4 else 0) ^ (_GEN[3] if t & 8 else 0)
    ^ (_GEN[4] if t & 16 else 0) for t in range(32))


def _polymod(values) -> int:
    table = _GEN_TABLE
    chk = 1
    for v in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ v) ^ table[chk >> 25]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def convertbits(data, frombits: int, tobits: int, pad: bool = True) -> list[int]:
    acc = bits = 0
    ret = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise ValueError("invalid value for bit conversion")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if pad:
        if bits:
            ret.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise ValueError("invalid padding in bit conversion")
    return ret


def _from5(data: list[int]) -> bytes:
    """5-bit groups (valid bech32 symbols) to bytes, without padding: ``convertbits(data, 5, 8, pad=False)``
    through one Python integer."""
    acc = 0
    for v in data:
        acc = acc << 5 | v
    spare = len(data) * 5 % 8
    if spare >= 5 or acc & ((1 << spare) - 1):
        raise ValueError("invalid padding in bit conversion")
    return (acc >> spare).to_bytes(len(data) * 5 // 8, "big")


def bech32_encode(hrp: str, data: list[int], const: int) -> str:
    values = _hrp_expand(hrp) + data
    polymod = _polymod(values + [0] * 6) ^ const
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(BECH32_CHARSET[d] for d in data + checksum)


def bech32_decode(text: str) -> tuple[str, list[int], int]:
    """Return (hrp, data, const) where const tells bech32 from bech32m."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("bech32 string mixes upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text) or len(text) > 90:
        raise ValueError("malformed bech32 string")
    hrp = text[:pos]
    try:
        data = [_BECH32_INDEX[c] for c in text[pos + 1:]]
    except KeyError as e:
        raise ValueError(f"invalid bech32 character {e.args[0]!r}") from None
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (BECH32_CONST, BECH32M_CONST):
        raise ValueError("bech32 checksum mismatch")
    return hrp, data[:-6], const


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    const = BECH32_CONST if version == 0 else BECH32M_CONST
    return bech32_encode(hrp, [version] + convertbits(program, 8, 5), const)


def segwit_decode(hrp: str, address: str) -> tuple[int, bytes]:
    got_hrp, data, const = bech32_decode(address)
    if got_hrp != hrp:
        raise ValueError(f"wrong human-readable part {got_hrp!r}, expected {hrp!r}")
    if not data:
        raise ValueError("empty segwit data")
    version = data[0]
    program = _from5(data[1:])
    if version > 16 or not 2 <= len(program) <= 40:
        raise ValueError("invalid witness version or program length")
    if version == 0 and len(program) not in (20, 32):
        raise ValueError("invalid v0 witness program length")
    if (version == 0) != (const == BECH32_CONST):
        raise ValueError("wrong checksum variant for witness version (BIP-350)")
    return version, program


# ---------------------------------------------------------------- EVM


def eip55(address: str) -> str:
    """Return the EIP-55 mixed-case checksum form of a 20-byte hex address."""
    hexpart = address.lower().removeprefix("0x")
    if len(hexpart) != 40 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"not a 20-byte hex address: {address!r}")
    digest = keccak256(hexpart.encode()).hex()
    return "0x" + "".join(c.upper() if int(d, 16) >= 8 else c for c, d in zip(hexpart, digest))


def is_valid_evm(address: str) -> bool:
    """Valid 0x-prefixed 20-byte hex; a mixed-case address must carry a correct EIP-55 checksum."""
    try:
        checksummed = eip55(address)
    except ValueError:
        return False
    body = address[2:]
    if body == body.lower() or body == body.upper():
        return address[:2] == "0x"
    return address == checksummed
