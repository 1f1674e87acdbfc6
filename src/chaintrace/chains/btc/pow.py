"""Bitcoin proof of work: the target a header's ``bits`` encode, and the ``bits`` the chain requires.

Written from Bitcoin Core's ``pow.cpp`` (``CheckProofOfWorkImpl``, ``GetNextWorkRequired``,
``CalculateNextWorkRequired``) and ``arith_uint256::SetCompact/GetCompact``. Pure functions over Python
integers; the ingestor calls them with the header hash it has already computed.

What is checked per network (docs/schema.md, "Proof of work"):

- every network: ``bits`` encode a positive, non-overflowing target and the header hash (as a 256-bit
  little-endian integer) is at most that target;
- ``rules="network"`` (the default) adds: the target is at most the network's ``powLimit``, and the ``bits``
  equal what ``GetNextWorkRequired`` gives for that height: unchanged within a 2016-block period, retargeted
  at each period start from the period's timespan (clamped to 1/4..4x of two weeks, capped at powLimit).
  testnet3/testnet4 allow a minimum-difficulty block when it is more than 20 minutes after its parent
  (otherwise the last non-minimum ``bits`` of the period apply); testnet4 retargets from the period's first
  ``bits`` (BIP-94); regtest never retargets (``fPowNoRetargeting``) and allows minimum-difficulty blocks;
  signet retargets like mainnet (its block-signature challenge is not checked). The transition is checked
  only where the store holds the blocks it depends on (a store started mid-chain cannot check the first
  period it does not hold).
- ``rules="target-only"``: only the first point, for chains simulated at regtest difficulty under another
  network's magic and address prefixes (``chaintrace simulate btc --network main``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

INTERVAL = 2016  # blocks per difficulty period
SPACING = 600  # nPowTargetSpacing, seconds
TIMESPAN = 14 * 24 * 60 * 60  # nPowTargetTimespan
RULES = ("network", "target-only")
_U256 = (1 << 256) - 1


@dataclass(frozen=True)
class PowParams:
    pow_limit: int
    genesis_bits: int  # the genesis block's bits and time (a store starting at height 1 does not hold it)
    genesis_time: int
    allow_min_difficulty: bool = False  # fPowAllowMinDifficultyBlocks
    no_retargeting: bool = False  # fPowNoRetargeting
    bip94: bool = False  # testnet4: retarget from the period's first block's bits


_MAIN_LIMIT = 0x00000000FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF
PARAMS: dict[str, PowParams] = {
    "main": PowParams(_MAIN_LIMIT, 0x1D00FFFF, 1231006505),
    "test": PowParams(_MAIN_LIMIT, 0x1D00FFFF, 1296688602, allow_min_difficulty=True),
    "testnet4": PowParams(_MAIN_LIMIT, 0x1D00FFFF, 1714777860, allow_min_difficulty=True, bip94=True),
    "signet": PowParams(0x00000377AE000000000000000000000000000000000000000000000000000000, 0x1E0377AE, 1598918400),
    "regtest": PowParams(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF, 0x207FFFFF, 1296688602,
                         allow_min_difficulty=True, no_retargeting=True),
}


def decode_bits(bits: int) -> tuple[int, bool, bool]:
    """(target, negative, overflow) of compact `bits`, as ``arith_uint256::SetCompact``."""
    size = bits >> 24
    word = bits & 0x007FFFFF
    target = word >> (8 * (3 - size)) if size <= 3 else (word << (8 * (size - 3))) & _U256
    negative = word != 0 and bool(bits & 0x00800000)
    overflow = word != 0 and (size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32))
    return target, negative, overflow


def encode_bits(target: int) -> int:
    """Compact form of a non-negative `target`, as ``arith_uint256::GetCompact``."""
    size = (target.bit_length() + 7) // 8
    compact = (target << (8 * (3 - size))) if size <= 3 else (target >> (8 * (size - 3)))
    compact &= 0xFFFFFFFF
    if compact & 0x00800000:
        compact >>= 8
        size += 1
    return compact | (size << 24)


def check_target(block_hash: bytes, bits: int, pow_limit: int | None = None) -> str | None:
    """Why the header with hash `block_hash` (internal byte order) fails its own `bits`, or None if it
    passes (``CheckProofOfWorkImpl``; `pow_limit` None skips the network's limit)."""
    target, negative, overflow = decode_bits(bits)
    if negative or overflow or target == 0:
        return f"bits {bits:08x} do not encode a valid target ({'negative' if negative else 'overflow' if overflow else 'zero'})"
    if pow_limit is not None and target > pow_limit:
        return (f"bits {bits:08x} encode a target above the network's proof-of-work limit "
                f"({encode_bits(pow_limit):08x})")
    if int.from_bytes(block_hash, "little") > target:
        return f"header hash does not meet the target its bits {bits:08x} encode (proof of work fails)"
    return None


def required_bits(height: int, time: int, params: PowParams, bits_at: Callable[[int], int | None],
                  time_at: Callable[[int], int | None], memo: dict[int, int] | None = None) -> int | None:
    """The bits ``GetNextWorkRequired`` demands of a block at `height` with timestamp `time`.

    `bits_at(h)` / `time_at(h)` give the bits and time of the chain's block at height h, or None when the store
    does not hold it; the result is None when the answer depends on a block that is not held. `memo` caches the
    minimum-difficulty walk per height (valid as long as the chain below those heights does not change).
    """
    last = height - 1
    last_bits, last_time = bits_at(last), time_at(last)
    if last_bits is None or last_time is None:
        return None
    if height % INTERVAL != 0:
        if not params.allow_min_difficulty:
            return last_bits
        limit_bits = encode_bits(params.pow_limit)
        if time > last_time + 2 * SPACING:
            return limit_bits
        return last_regular_bits(last, limit_bits, bits_at, memo)
    if params.no_retargeting:
        return last_bits
    first = height - INTERVAL
    first_time = time_at(first)
    if first_time is None:
        return None
    span = min(max(last_time - first_time, TIMESPAN // 4), TIMESPAN * 4)
    base_bits = bits_at(first) if params.bip94 else last_bits
    if base_bits is None:
        return None
    new = ((decode_bits(base_bits)[0] * span) & _U256) // TIMESPAN
    return encode_bits(min(new, params.pow_limit))


def last_regular_bits(h: int, limit_bits: int, bits_at: Callable[[int], int | None],
                      memo: dict[int, int] | None = None) -> int | None:
    """Bits of the last block at or below `h` in its period that is the period's first or not a
    minimum-difficulty block (Core's walk back over ``pprev``); None when a block on the way is not held."""
    path: list[int] = []
    b = bits_at(h)
    while b is not None and h > 0 and h % INTERVAL != 0 and b == limit_bits:
        if memo is not None and h in memo:
            b = memo[h]
            break
        path.append(h)
        h -= 1
        b = bits_at(h)
    if b is None:
        return None
    if memo is not None:
        for x in path:
            memo[x] = b
    return b
