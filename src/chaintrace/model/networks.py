"""Bitcoin network parameters: message-start bytes (blk file magic) and address prefixes.

The network decides how a script is written as an address: base58 version bytes for P2PKH/P2SH and the
bech32 human-readable part for segwit outputs.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BtcNetwork:
    name: str
    magic: bytes  # 4-byte message start, as it appears in blk*.dat files
    p2pkh: int  # base58 version byte of pay-to-pubkey-hash addresses
    p2sh: int  # base58 version byte of pay-to-script-hash addresses
    hrp: str  # bech32 human-readable part of segwit addresses
    genesis: str  # hash of the genesis block (display byte order)


NETWORKS: dict[str, BtcNetwork] = {
    n.name: n
    for n in (
        BtcNetwork("main", bytes.fromhex("f9beb4d9"), 0x00, 0x05, "bc",
                   "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"),
        BtcNetwork("test", bytes.fromhex("0b110907"), 0x6F, 0xC4, "tb",
                   "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"),
        BtcNetwork("testnet4", bytes.fromhex("1c163f28"), 0x6F, 0xC4, "tb",
                   "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043"),
        BtcNetwork("signet", bytes.fromhex("0a03cf40"), 0x6F, 0xC4, "tb",
                   "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6"),
        BtcNetwork("regtest", bytes.fromhex("fabfb5da"), 0x6F, 0xC4, "bcrt",
                   "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"),
    )
}

ALIASES = {"mainnet": "main", "bitcoin": "main", "testnet": "test", "testnet3": "test"}

BY_MAGIC: dict[bytes, BtcNetwork] = {n.magic: n for n in NETWORKS.values()}


def network(name: str) -> BtcNetwork:
    """Return the parameters of a network by name (main, test, testnet4, signet, regtest or an alias)."""
    key = ALIASES.get(name.lower(), name.lower())
    try:
        return NETWORKS[key]
    except KeyError:
        raise ValueError(f"unknown Bitcoin network {name!r}; expected one of {', '.join(NETWORKS)}") from None
