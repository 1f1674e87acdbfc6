"""Chains, tickers and address checks for the intelligence registry.

Intelligence sources name chains in many ways (GraphSense ``currency``/``network`` tickers, OFAC's
``Digital Currency Address - XBT``, explorer names such as ``bscscan``); :func:`chain_of` maps them all to
chaintrace's lower-case chain names (``btc``, ``eth``, ``trx``...).

:func:`check` validates an address for its chain with the reference encodings of
:mod:`chaintrace.model.encoding`: base58check version bytes (Bitcoin, Litecoin, Dogecoin, Dash, Zcash
transparent, Bitcoin Gold, TRON, XRP's own alphabet), bech32/bech32m segwit (BIP-173/350), CashAddr
(Bitcoin Cash) and EIP-55 checksums for mixed-case EVM addresses. Chains without a checker are accepted
unchecked. :func:`key` is the lookup key: EVM and bech32/CashAddr addresses compare case-insensitively
(lower-cased), base58 addresses keep their case.
"""
from __future__ import annotations

import re

from chaintrace.model import encoding as enc

# EVM chains: one address space, addresses compared lower-case.
EVM_CHAINS = frozenset({
    "eth", "etc", "bsc", "polygon", "arb", "op", "avax", "ftm", "base", "celo", "gnosis", "kcc", "cro", "linea",
    "zksync", "scroll", "blast", "mantle", "cronos", "moonbeam", "aurora", "harmony", "heco", "okc", "evm",
})

# Ticker / network / explorer name -> chain. Token tickers (USDT, USDC...) have no chain of their own: the
# address form decides (see :func:`chain_of`).
_CHAIN_NAMES = {
    "btc": "btc", "xbt": "btc", "bitcoin": "btc",
    "eth": "eth", "ethereum": "eth", "weth": "eth", "etherscan": "eth",
    "etc": "etc", "bch": "bch", "bitcoincash": "bch", "bsv": "bsv", "ltc": "ltc", "litecoin": "ltc",
    "zec": "zec", "zcash": "zec", "dash": "dash", "btg": "btg", "doge": "doge", "dogecoin": "doge",
    "xmr": "xmr", "monero": "xmr", "xrp": "xrp", "ripple": "xrp", "trx": "trx", "tron": "trx",
    "tronscan": "trx", "xvg": "xvg", "sol": "sol", "solana": "sol",
    "bsc": "bsc", "bnb": "bsc", "bep20": "bsc", "bscscan": "bsc", "binance-smart-chain": "bsc",
    "bep2": "bnb-beacon",
    "matic": "polygon", "polygon": "polygon", "polygonscan": "polygon", "pol": "polygon",
    "arb": "arb", "arbitrum": "arb", "arbiscan": "arb",
    "op": "op", "optimism": "op", "optimistic": "op",
    "avax": "avax", "avalanche": "avax", "snowtrace": "avax",
    "ftm": "ftm", "fantom": "ftm", "ftmscan": "ftm",
    "base": "base", "basescan": "base", "celo": "celo", "celoscan": "celo", "gnosis": "gnosis",
    "gnosisscan": "gnosis", "xdai": "gnosis", "kcc": "kcc", "kcs": "kcc",
    "eos": "eos", "eosio": "eos", "algo": "algo", "ada": "ada", "dot": "dot", "atom": "atom", "xlm": "xlm",
}

TOKEN_TICKERS = frozenset({"usdt", "usdc", "dai", "busd", "tusd", "usdp", "pyusd", "wbtc", "token"})

# base58check version prefixes per chain (mainnet; Bitcoin also its test networks, so tags of a
# testnet/signet/regtest chain - e.g. `chaintrace simulate` output - import too).
_B58_VERSIONS: dict[str, tuple[bytes, ...]] = {
    "btc": (b"\x00", b"\x05", b"\x6f", b"\xc4"),
    "bch": (b"\x00", b"\x05"),
    "bsv": (b"\x00", b"\x05"),
    "ltc": (b"\x30", b"\x32", b"\x05"),
    "doge": (b"\x1e", b"\x16"),
    "dash": (b"\x4c", b"\x10"),
    "btg": (b"\x26", b"\x17"),
    "zec": (b"\x1c\xb8", b"\x1c\xbd"),
    "trx": (b"\x41",),
    "xvg": (b"\x1e", b"\x21"),
}
_SEGWIT_HRP = {"btc": "bc", "ltc": "ltc"}
_XRP_ALPHABET = "rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz"
_XRP_TO_BTC = str.maketrans(_XRP_ALPHABET, enc.B58_ALPHABET)
_XMR_RE = re.compile(r"^[48][1-9A-HJ-NP-Za-km-z]{94}([1-9A-HJ-NP-Za-km-z]{11})?$")
_SOL_RE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_CASHADDR_CHARSET = enc.BECH32_CHARSET


def chain_of(name: str | None, address: str | None = None) -> str | None:
    """chaintrace chain name for a ticker, network or explorer name; token tickers (USDT...) and unknown
    names fall back on the address form (0x... -> eth, T... -> trx). None when nothing fits."""
    n = (name or "").strip().lower()
    if n in _CHAIN_NAMES:
        return _CHAIN_NAMES[n]
    if address:
        a = address.strip()
        if a[:2].lower() == "0x" and len(a) == 42:
            return "eth"
        if a.startswith("T") and len(a) == 34:
            return "trx"
        if (not n or n in TOKEN_TICKERS) and a[:1] in ("1", "3") and 26 <= len(a) <= 35:
            return "btc"  # a token on a Bitcoin address: the Omni layer (USDT's first home)
        if not n and a.lower().startswith(("bc1", "tb1", "bcrt1")):
            return "btc"
    if n and n not in TOKEN_TICKERS:
        return n  # an unknown network keeps its own (lower-case) name
    return None


def is_evm(chain: str) -> bool:
    return chain in EVM_CHAINS


_CASHADDR_SET = frozenset(enc.BECH32_CHARSET)


def _is_cashaddr_body(a: str) -> bool:
    return (len(a) == 42 and a[0] in "qpQP" and (a.islower() or a.isupper() or a.isdigit())
            and set(a.lower()) <= _CASHADDR_SET)


LOWERED_PREFIXES = ("bc1", "tb1", "bcrt1", "ltc1", "bnb1")  # bech32 forms: their key is lower-cased


def key(chain: str | None, address: str) -> str:
    """The lookup key of an address: EVM, bech32 and CashAddr forms lower-cased (CashAddr without its
    ``bitcoincash:`` prefix), base58 kept as written."""
    a = address.strip()
    if a[:2] in ("0x", "0X") or (chain is not None and chain in EVM_CHAINS):
        return a.lower()
    low = a.lower()
    if low.startswith("bitcoincash:"):
        return low[len("bitcoincash:"):]
    if low.startswith(LOWERED_PREFIXES) or _is_cashaddr_body(a):
        return low
    return a


def key_any(address: str) -> str:
    """Lookup key of an address whose chain is not known (what a screening query gets)."""
    c = address[:1]
    if c in "123" and c and address[-1:] not in " \t\r\n":  # base58 Bitcoin forms: as written (fast path)
        return address
    return key(None, address)


def _b58check(address: str, versions: tuple[bytes, ...], length: int) -> str | None:
    try:
        payload = enc.b58check_decode(address)
    except ValueError as e:
        return f"invalid base58check ({e})"
    for v in versions:
        if payload.startswith(v) and len(payload) == len(v) + length:
            return None
    return f"unexpected base58 version/length (payload {payload[:2].hex()}..., {len(payload)} bytes)"


def _segwit(hrp: str, address: str) -> str | None:
    try:
        enc.segwit_decode(hrp, address)
    except ValueError as e:
        return f"invalid bech32 address ({e})"
    return None


def _cashaddr_polymod(values) -> int:
    gens = (0x98F2BC8E61, 0x79B76D99E2, 0xF33E5FB3C4, 0xAE2EABE2A8, 0x1E4F43E470)
    c = 1
    for d in values:
        c0 = c >> 35
        c = ((c & 0x07FFFFFFFF) << 5) ^ d
        for i in range(5):
            if (c0 >> i) & 1:
                c ^= gens[i]
    return c ^ 1


def _cashaddr(address: str) -> str | None:
    a = address.lower()
    prefix, _, body = a.rpartition(":")
    prefix = prefix or "bitcoincash"
    try:
        data = [_CASHADDR_CHARSET.index(c) for c in body]
    except ValueError:
        return "invalid CashAddr character"
    if len(data) < 8:
        return "CashAddr too short"
    if _cashaddr_polymod([ord(c) & 31 for c in prefix] + [0] + data) != 0:
        return "CashAddr checksum mismatch"
    return None


_SPACE = re.compile(r"\s")


def check(chain: str, address: str) -> str | None:
    """Why `address` is not a valid `chain` address, or None when it is valid (or the chain has no checker)."""
    a = address.strip()
    if not a:
        return "empty address"
    if a != address:
        return "address has leading/trailing whitespace"
    if _SPACE.search(a):
        return "address contains whitespace"
    if chain in EVM_CHAINS:
        if not enc.is_valid_evm(a):
            body = a[2:]
            if a[:2] == "0x" and len(body) == 40 and all(c in "0123456789abcdefABCDEF" for c in body):
                return "EIP-55 checksum mismatch (mixed-case address with a wrong checksum)"
            return "not a 0x-prefixed 20-byte hex address"
        return None
    if chain == "bnb-beacon":
        try:
            hrp, _, const = enc.bech32_decode(a)
        except ValueError as e:
            return f"invalid bech32 address ({e})"
        return None if hrp == "bnb" and const == enc.BECH32_CONST else "not a BNB Beacon Chain (bnb1...) address"
    if chain in _SEGWIT_HRP and a.lower().startswith(_SEGWIT_HRP[chain] + "1"):
        return _segwit(_SEGWIT_HRP[chain], a)
    if chain == "btc" and a.lower().startswith(("tb1", "bcrt1")):
        return _segwit(a.lower().split("1", 1)[0], a)
    if chain == "bch" and (":" in a or a[:1].lower() in ("q", "p")):
        return _cashaddr(a)
    if chain == "zec" and a[:1] in ("z", "u"):
        return None  # shielded / unified addresses: no checker here
    if chain in _B58_VERSIONS:
        return _b58check(a, _B58_VERSIONS[chain], 20)
    if chain == "xrp":
        if not a.startswith("r"):
            return "XRP address must start with 'r'"
        try:
            payload = enc.b58check_decode(a.translate(_XRP_TO_BTC))
        except ValueError as e:
            return f"invalid XRP base58check ({e})"
        return None if len(payload) == 21 and payload[0] == 0 else "unexpected XRP payload"
    if chain == "xmr":
        return None if _XMR_RE.match(a) else "not a Monero address (95 or 106 base58 characters starting 4 or 8)"
    if chain == "sol":
        return None if _SOL_RE.match(a) else "not a Solana address (32-44 base58 characters)"
    return None


def detect(address: str) -> str | None:
    """The chain an address's form and checksum say it belongs to (None when ambiguous or invalid)."""
    a = address.strip()
    low = a.lower()
    if low.startswith("0x"):
        return "eth" if check("eth", a) is None else None
    for prefix, chain in (("bc1", "btc"), ("ltc1", "ltc")):
        if low.startswith(prefix):
            return chain if check(chain, a) is None else None
    if low.startswith("bnb1"):
        try:
            hrp, _, const = enc.bech32_decode(a)
            return "bnb-beacon" if hrp == "bnb" and const == enc.BECH32_CONST else None
        except ValueError:
            return None
    for chain in ("btc", "trx", "ltc", "doge", "dash", "zec", "btg", "xrp"):
        if check(chain, a) is None and chain in _B58_VERSIONS | {"xrp": ()}:
            return chain
    return None


def checked(chain: str) -> bool:
    """Whether :func:`check` really validates addresses of `chain`."""
    return chain in EVM_CHAINS or chain in _B58_VERSIONS or chain in ("xrp", "xmr", "sol")


def _sol_ok(a: str) -> bool:
    if not _SOL_RE.match(a):
        return False
    try:
        return len(enc.b58decode(a)) == 32
    except ValueError:
        return False


# Chains whose addresses a query may be (with a real checker), tried in this order.
_QUERY_CHAINS = ("eth", "btc", "trx", "ltc", "bch", "doge", "dash", "zec", "btg", "bsv", "xvg", "xrp", "xmr",
                 "bnb-beacon")


def valid_for(address: str) -> str | None:
    """A chain `address` is a valid address of (the first that fits), or None when it fits none."""
    a = address.strip()
    if not a or a != address:
        return None
    for chain in _QUERY_CHAINS:
        if check(chain, a) is None:
            return chain
    return "sol" if _sol_ok(a) else None


def why_invalid(address: str, chain: str | None = None) -> str | None:
    """None when `address` is a valid address of `chain` (or, without one, of some supported chain); else why."""
    if chain is not None and checked(chain):
        if chain == "sol":
            return None if _sol_ok(address) else "not a Solana address (32 bytes in base58)"
        return check(chain, address)
    if chain is not None:
        return None if address.strip() and address.strip() == address else "empty or padded address"
    if valid_for(address) is not None:
        return None
    a = address.strip()
    if not a:
        return "empty address"
    if a != address:
        return "address has leading/trailing whitespace"
    g = chain_of(None, a)
    err = check(g, a) if g and checked(g) else None
    return "not a valid address of any supported chain" + (f" ({g}: {err})" if err else "")


def known_chain_names() -> list[str]:
    """Chain names and aliases `--chain` accepts (sorted)."""
    return sorted(set(_CHAIN_NAMES) | set(EVM_CHAINS) | set(_CHAIN_NAMES.values()))


def known_chain(name: str) -> bool:
    """Whether `name` is a chain, network or token ticker chaintrace knows (TagPack currency/network)."""
    n = name.strip().lower()
    return n in _CHAIN_NAMES or n in EVM_CHAINS or n in TOKEN_TICKERS


def resolve_chain(name: str | None) -> str | None:
    """The registry chain for a user-given `--chain` (aliases: ethereum, bitcoin, tron...); None stays None;
    an unknown name is a UserError (exit 2) listing the valid names."""
    from chaintrace.errors import UserError

    if name is None:
        return None
    n = name.strip().lower()
    if n in _CHAIN_NAMES:
        return _CHAIN_NAMES[n]
    if n in EVM_CHAINS:
        return n
    raise UserError(f"--chain: unknown chain {name!r}; valid names: {', '.join(known_chain_names())}")
