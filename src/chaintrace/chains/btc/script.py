"""Output script classification and address encoding, vectorised.

Script types (``SCRIPT_TYPES``, codes in :mod:`chaintrace.model.scripts`): P2PKH, P2SH, P2WPKH, P2WSH, P2TR (BIP-341), other witness versions
(``witness_unknown``, bech32m), P2PK (written as the P2PKH address of its public key, as block explorers and
bitcoin-etl do), bare multisig (``multisig:<m>-of-<n>:<P2PKH of each key>``), OP_RETURN (``nulldata``, no
address) and ``nonstandard`` (no address).

:func:`classify` runs a numba kernel over script offsets in a byte buffer; :func:`encode_addresses` turns
(type, payload) rows into address strings with numba base58/bech32 encoders. The reference encoders in
``chaintrace.model.encoding`` are used for the rare types (P2PK, multisig) and by the tests as an oracle.
"""
from __future__ import annotations

import hashlib

import numba as nb
import numpy as np

from chaintrace.model.encoding import b58check_encode, hash160, segwit_encode
from chaintrace.model.networks import BtcNetwork
from chaintrace.model.scripts import (MULTISIG, NONSTANDARD, NULLDATA, P2PK, P2PKH, P2SH, P2TR,  # noqa: F401
                                      P2WPKH, P2WSH, SCRIPT_TYPES, WITNESS_UNKNOWN)



@nb.njit(cache=True, nogil=True)
def _classify_one(buf, o, n):
    """Return (type, payload offset, payload length, witness version)."""
    if n == 25 and buf[o] == 0x76 and buf[o + 1] == 0xA9 and buf[o + 2] == 0x14 and buf[o + 23] == 0x88 \
            and buf[o + 24] == 0xAC:
        return P2PKH, o + 3, 20, -1
    if n == 23 and buf[o] == 0xA9 and buf[o + 1] == 0x14 and buf[o + 22] == 0x87:
        return P2SH, o + 2, 20, -1
    if n >= 4 and n <= 42 and (buf[o] == 0 or (buf[o] >= 0x51 and buf[o] <= 0x60)) and buf[o + 1] == n - 2 \
            and buf[o + 1] >= 2 and buf[o + 1] <= 40:
        ver = 0 if buf[o] == 0 else buf[o] - 0x50
        plen = n - 2
        if ver == 0:
            if plen == 20:
                return P2WPKH, o + 2, 20, 0
            if plen == 32:
                return P2WSH, o + 2, 32, 0
            return NONSTANDARD, o, n, -1
        if ver == 1 and plen == 32:
            return P2TR, o + 2, 32, 1
        return WITNESS_UNKNOWN, o + 2, plen, ver
    if n == 35 and buf[o] == 0x21 and buf[o + 34] == 0xAC and (buf[o + 1] == 2 or buf[o + 1] == 3):
        return P2PK, o + 1, 33, -1
    if n == 67 and buf[o] == 0x41 and buf[o + 66] == 0xAC and buf[o + 1] == 4:
        return P2PK, o + 1, 65, -1
    if n >= 1 and buf[o] == 0x6A:
        return NULLDATA, o, n, -1
    # bare multisig: OP_m <keys> OP_n OP_CHECKMULTISIG
    if n >= 37 and buf[o] >= 0x51 and buf[o] <= 0x60 and buf[o + n - 1] == 0xAE \
            and buf[o + n - 2] >= 0x51 and buf[o + n - 2] <= 0x60:
        m = buf[o] - 0x50
        k_expected = buf[o + n - 2] - 0x50
        p = o + 1
        k = 0
        while p < o + n - 2:
            ln = buf[p]
            if ln != 33 and ln != 65:
                return NONSTANDARD, o, n, -1
            p += 1 + ln
            k += 1
        if p == o + n - 2 and k == k_expected and m <= k:
            return MULTISIG, o, n, -1
    return NONSTANDARD, o, n, -1


@nb.njit(cache=True, nogil=True)
def _classify_kernel(buf, soff, slen, typ, poff, plen, wver):
    for i in range(soff.shape[0]):
        t, a, b, v = _classify_one(buf, soff[i], slen[i])
        typ[i] = t
        poff[i] = a
        plen[i] = b
        wver[i] = v


def classify(buf: np.ndarray, soff: np.ndarray, slen: np.ndarray):
    """Classify scripts at buf[soff:soff+slen]: arrays (type code, payload offset, payload length, witness ver)."""
    n = len(soff)
    typ = np.empty(n, np.int8)
    poff = np.empty(n, np.int64)
    plen = np.empty(n, np.int64)
    wver = np.empty(n, np.int64)
    _classify_kernel(buf, soff, slen, typ, poff, plen, wver)
    return typ, poff, plen, wver


# ------------------------------------------------------------------ vectorised encoders

_B58 = np.frombuffer(b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", dtype=np.uint8)
_B32 = np.frombuffer(b"qpzry9x8gf2tvdw0s3jn54khce6mua7l", dtype=np.uint8)
_GEN = np.array([0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3], dtype=np.int64)


@nb.njit(cache=True, nogil=True)
def _b58_rows(rows, out, outlen, alphabet):
    """Base58-encode each 25-byte row (payload + checksum) into out[i], length outlen[i]."""
    digits = np.empty(64, np.int64)
    for r in range(rows.shape[0]):
        nd = 0
        zeros = 0
        while zeros < rows.shape[1] and rows[r, zeros] == 0:
            zeros += 1
        for j in range(rows.shape[1]):
            carry = np.int64(rows[r, j])
            for k in range(nd):
                carry += digits[k] << 8
                digits[k] = carry % 58
                carry //= 58
            while carry:
                digits[nd] = carry % 58
                nd += 1
                carry //= 58
        p = 0
        for _ in range(zeros):
            out[r, p] = alphabet[0]
            p += 1
        for k in range(nd - 1, -1, -1):
            out[r, p] = alphabet[digits[k]]
            p += 1
        outlen[r] = p


@nb.njit(cache=True, nogil=True)
def _bech32_rows(hrp, versions, progs, proglen, out, outlen, charset, gen):
    data = np.empty(80, np.int64)
    for r in range(progs.shape[0]):
        nd = 0
        data[nd] = versions[r]
        nd += 1
        acc = 0
        bits = 0
        for j in range(proglen[r]):
            acc = ((acc << 8) | progs[r, j]) & 0xFFFFF
            bits += 8
            while bits >= 5:
                bits -= 5
                data[nd] = (acc >> bits) & 31
                nd += 1
        if bits:
            data[nd] = (acc << (5 - bits)) & 31
            nd += 1
        chk = np.int64(1)
        # hrp expansion
        for c in hrp:
            top = chk >> 25
            chk = ((chk & 0x1FFFFFF) << 5) ^ (c >> 5)
            for i in range(5):
                if (top >> i) & 1:
                    chk ^= gen[i]
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
        for c in hrp:
            top = chk >> 25
            chk = ((chk & 0x1FFFFFF) << 5) ^ (c & 31)
            for i in range(5):
                if (top >> i) & 1:
                    chk ^= gen[i]
        for k in range(nd + 6):
            v = data[k] if k < nd else 0
            top = chk >> 25
            chk = ((chk & 0x1FFFFFF) << 5) ^ v
            for i in range(5):
                if (top >> i) & 1:
                    chk ^= gen[i]
        const = 1 if versions[r] == 0 else 0x2BC830A3
        chk ^= const
        p = 0
        for c in hrp:
            out[r, p] = c
            p += 1
        out[r, p] = 49  # '1'
        p += 1
        for k in range(nd):
            out[r, p] = charset[data[k]]
            p += 1
        for k in range(6):
            out[r, p] = charset[(chk >> (5 * (5 - k))) & 31]
            p += 1
        outlen[r] = p


def base58check_many(payloads: list[bytes]) -> list[str]:
    """Base58check-encode 21-byte payloads (version byte + hash160)."""
    if not payloads:
        return []
    sha = hashlib.sha256
    rows = np.frombuffer(b"".join(p + sha(sha(p).digest()).digest()[:4] for p in payloads),
                         dtype=np.uint8).reshape(len(payloads), 25)
    out = np.empty((len(payloads), 40), np.uint8)
    outlen = np.empty(len(payloads), np.int64)
    _b58_rows(rows, out, outlen, _B58)
    return [out[i, :outlen[i]].tobytes().decode() for i in range(len(payloads))]


def segwit_many(hrp: str, versions: list[int], programs: list[bytes]) -> list[str]:
    if not programs:
        return []
    n = len(programs)
    progs = np.zeros((n, 40), np.uint8)
    plen = np.empty(n, np.int64)
    for i, p in enumerate(programs):
        progs[i, :len(p)] = np.frombuffer(p, np.uint8)
        plen[i] = len(p)
    out = np.empty((n, 100), np.uint8)
    outlen = np.empty(n, np.int64)
    _bech32_rows(np.frombuffer(hrp.encode(), np.uint8), np.asarray(versions, np.int64), progs, plen, out,
                 outlen, _B32, _GEN)
    return [out[i, :outlen[i]].tobytes().decode() for i in range(n)]


def address_key(typ: int, payload: bytes, wver: int) -> bytes:
    """Dictionary key of an address: outputs with equal keys pay the same address.

    P2PK keys by the hash160 of the public key, so it shares its address with P2PKH of that key.
    """
    if typ == P2PK:
        return bytes([P2PKH]) + hash160(payload)
    if typ == WITNESS_UNKNOWN:
        return bytes([WITNESS_UNKNOWN, wver]) + payload
    return bytes([typ]) + payload


def multisig_address(script: bytes, net: BtcNetwork) -> str:
    m, n = script[0] - 0x50, script[-2] - 0x50
    keys, p = [], 1
    while p < len(script) - 2:
        ln = script[p]
        keys.append(script[p + 1:p + 1 + ln])
        p += 1 + ln
    addrs = ",".join(b58check_encode(bytes([net.p2pkh]) + hash160(k)) for k in keys)
    return f"multisig:{m}-of-{n}:{addrs}"


def encode_keys(keys: list[bytes], net: BtcNetwork) -> tuple[list[str], list[str]]:
    """Address strings and address script types for address keys (see :func:`address_key`)."""
    addrs: list[str | None] = [None] * len(keys)
    types: list[str] = [""] * len(keys)
    b58_idx, b58_payload = [], []
    sw_idx, sw_ver, sw_prog = [], [], []
    for i, k in enumerate(keys):
        t = k[0]
        types[i] = SCRIPT_TYPES[t]
        if t == P2PKH:
            b58_idx.append(i)
            b58_payload.append(bytes([net.p2pkh]) + k[1:])
        elif t == P2SH:
            b58_idx.append(i)
            b58_payload.append(bytes([net.p2sh]) + k[1:])
        elif t in (P2WPKH, P2WSH):
            sw_idx.append(i)
            sw_ver.append(0)
            sw_prog.append(k[1:])
        elif t == P2TR:
            sw_idx.append(i)
            sw_ver.append(1)
            sw_prog.append(k[1:])
        elif t == WITNESS_UNKNOWN:
            sw_idx.append(i)
            sw_ver.append(k[1])
            sw_prog.append(k[2:])
        elif t == MULTISIG:
            addrs[i] = multisig_address(k[1:], net)
        else:
            raise ValueError(f"no address for script type {SCRIPT_TYPES[t]}")
    for i, a in zip(b58_idx, base58check_many(b58_payload)):
        addrs[i] = a
    for i, a in zip(sw_idx, segwit_many(net.hrp, sw_ver, sw_prog)):
        addrs[i] = a
    return addrs, types  # type: ignore[return-value]


def reference_address(script: bytes, net: BtcNetwork) -> tuple[str, str | None]:
    """(script type, address) of one script with the slow reference encoders (tests, single lookups)."""
    buf = np.frombuffer(script, np.uint8) if script else np.zeros(1, np.uint8)
    t, off, ln, ver = _classify_one(buf, 0, len(script))
    payload = script[off:off + ln]
    name = SCRIPT_TYPES[t]
    if t in (NONSTANDARD, NULLDATA):
        return name, None
    if t == P2PKH:
        return name, b58check_encode(bytes([net.p2pkh]) + payload)
    if t == P2SH:
        return name, b58check_encode(bytes([net.p2sh]) + payload)
    if t == P2PK:
        return name, b58check_encode(bytes([net.p2pkh]) + hash160(payload))
    if t == MULTISIG:
        return name, multisig_address(script, net)
    return name, segwit_encode(net.hrp, int(ver), payload)


def script_for_address(address: str, net: BtcNetwork) -> bytes:
    """The output script paying `address` (P2PKH, P2SH or any segwit version) on network `net`."""
    from chaintrace.model.encoding import b58check_decode, segwit_decode

    if address.lower().startswith(net.hrp + "1"):
        ver, prog = segwit_decode(net.hrp, address)
        return bytes([0 if ver == 0 else 0x50 + ver, len(prog)]) + prog
    raw = b58check_decode(address)
    if len(raw) != 21:
        raise ValueError(f"{address}: not a 21-byte base58check address")
    if raw[0] == net.p2pkh:
        return b"\x76\xa9\x14" + raw[1:] + b"\x88\xac"
    if raw[0] == net.p2sh:
        return b"\xa9\x14" + raw[1:] + b"\x87"
    raise ValueError(f"{address}: version byte {raw[0]} is not used on {net.name}")
