"""Identifiers chaintrace makes up (never on-chain ids) and how to recognise them.

A transfer list without transaction hashes (Dune, spreadsheet exports) gets a synthesised hash per row so the
store can hold it. Such a hash starts with :data:`SYNTHETIC_TX_PREFIX` (``0x`` and 16 zero hex digits): a real
Ethereum transaction hash with 64 leading zero bits does not occur in practice (chance 2**-64 per hash), so the
marker is self-describing wherever the id travels (store, trace report paths, ``show tx``, HTML, PDF).
"""
from __future__ import annotations

SYNTHETIC_TX_PREFIX = "0x" + "0" * 16
SYNTHETIC_NOTE = "synthesised by chaintrace (the source had no transaction hash): not an on-chain id"


def synthetic_tx_hash(digest_hex: str) -> str:
    """A synthesised 32-byte transaction hash: the marker prefix and the first 48 hex digits of `digest_hex`."""
    return SYNTHETIC_TX_PREFIX + digest_hex[:48]


def is_synthetic_txid(txid: str | None) -> bool:
    """True for ids (or refs ``txid:n``) that chaintrace synthesised."""
    return bool(txid) and str(txid).lower().startswith(SYNTHETIC_TX_PREFIX)


def mark_txid(txid: str | None) -> str:
    """The id as shown to people: synthesised ids carry a visible ``[synthesised]`` marker."""
    if not txid:
        return ""
    return f"{txid} [synthesised]" if is_synthetic_txid(txid) else str(txid)
