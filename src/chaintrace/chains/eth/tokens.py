"""Token metadata: a few well-known mainnet contracts, and ABI decoding of ``symbol()``/``name()``/
``decimals()`` answers (string or bytes32, as old tokens such as MKR return) for node lookups."""
from __future__ import annotations

# mainnet WETH9 (wrapping ETH emits Deposit/Withdrawal, not Transfer)
WETH_ADDRESSES = {"0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"}

# address -> (symbol, name, decimals): public facts about widely used mainnet tokens
KNOWN_TOKENS: dict[str, tuple[str, str, int]] = {
    "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2": ("WETH", "Wrapped Ether", 18),
    "0xdac17f958d2ee523a2206206994597c13d831ec7": ("USDT", "Tether USD", 6),
    "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": ("USDC", "USD Coin", 6),
    "0x6b175474e89094c44da98b954eedeac495271d0f": ("DAI", "Dai Stablecoin", 18),
    "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599": ("WBTC", "Wrapped BTC", 8),
    "0xae7ab96520de3a18e5e111b5eaab095312d7fe84": ("stETH", "Liquid staked Ether 2.0", 18),
    "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0": ("wstETH", "Wrapped liquid staked Ether 2.0", 18),
    "0x514910771af9ca656af840dff83e8264ecf986ca": ("LINK", "ChainLink Token", 18),
    "0x1f9840a85d5af5bf1d1762f925bdaddc4201f984": ("UNI", "Uniswap", 18),
    "0x95ad61b0a150d79219dcf64e1e6cc01f0b64c4ce": ("SHIB", "SHIBA INU", 18),
    "0x9f8f72aa9304c8b593d555f12ef6589cc3a579a2": ("MKR", "Maker", 18),
}

SELECTORS = {"symbol": "0x95d89b41", "name": "0x06fdde03", "decimals": "0x313ce567"}


def decode_string(result: str | None) -> str | None:
    """An ABI-encoded ``string`` or a ``bytes32`` (NUL-padded) answer, or None when undecodable."""
    if not result or result == "0x":
        return None
    try:
        raw = bytes.fromhex(result[2:] if result.startswith("0x") else result)
    except ValueError:
        return None
    text = None
    if len(raw) >= 64:
        off = int.from_bytes(raw[:32], "big")
        if off + 32 <= len(raw):
            n = int.from_bytes(raw[off:off + 32], "big")
            if off + 32 + n <= len(raw):
                text = raw[off + 32:off + 32 + n]
    if text is None and len(raw) == 32:
        text = raw.rstrip(b"\0")
    if text is None:
        return None
    try:
        s = text.decode("utf-8")
    except UnicodeDecodeError:
        s = text.decode("latin-1")
    s = "".join(c for c in s if c.isprintable())
    return s[:64] or None


def decode_uint(result: str | None, limit: int = 255) -> int | None:
    if not result or result == "0x":
        return None
    try:
        v = int(result, 16)
    except ValueError:
        return None
    return v if 0 <= v <= limit else None
