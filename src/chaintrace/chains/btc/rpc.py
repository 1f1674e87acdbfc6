"""Bitcoin Core JSON-RPC: the client (:class:`chaintrace.chains.jsonrpc.JsonRpcClient` with Bitcoin Core's
settings), and block reconstruction from getblock.

Credentials come from the URL (``http://user:pass@host:8332``) or from a cookie file (Bitcoin Core's
``.cookie``, ``__cookie__:<password>``). Transient failures (connection refused or reset, timeouts, HTTP
5xx, RPC error -28 "warming up") are retried with exponential backoff; other RPC errors are raised.

Blocks are fetched with ``getblock <hash> 2``; the raw block is rebuilt from the header fields and each
transaction's ``hex`` and then goes through the same parser and checks as block files (the rebuilt header
must hash to the block hash the node reported).
"""
from __future__ import annotations

from chaintrace.chains.jsonrpc import JsonRpcClient, RpcError

__all__ = ["RpcClient", "RpcError", "TRANSIENT_CODES", "raw_block_from_verbose"]

TRANSIENT_CODES = frozenset({-28})  # RPC_IN_WARMUP


class RpcClient(JsonRpcClient):
    """Bitcoin Core: JSON-RPC 1.0 requests, always sent as batches (a single request's RPC error comes back
    as HTTP 500, which would be retried), -28 "warming up" retried."""

    version = "1.0"
    transient_codes = TRANSIENT_CODES
    always_batch = True


def raw_block_from_verbose(block: dict) -> bytes:
    """Rebuild raw block bytes from a ``getblock <hash> 2`` answer (header fields + each tx's hex)."""
    try:
        header = (int(block["version"]).to_bytes(4, "little", signed=True)
                  + bytes.fromhex(block.get("previousblockhash", "00" * 32))[::-1]
                  + bytes.fromhex(block["merkleroot"])[::-1]
                  + int(block["time"]).to_bytes(4, "little")
                  + bytes.fromhex(block["bits"])[::-1]
                  + int(block["nonce"]).to_bytes(4, "little"))
        txs = block["tx"]
        if not all(isinstance(t, dict) and "hex" in t for t in txs):
            raise ValueError("transactions lack 'hex' (getblock verbosity 2 required)")
        n = len(txs)
        if n < 0xFD:
            count = bytes([n])
        elif n <= 0xFFFF:
            count = b"\xfd" + n.to_bytes(2, "little")
        else:
            count = b"\xfe" + n.to_bytes(4, "little")
        return header + count + b"".join(bytes.fromhex(t["hex"]) for t in txs)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"block {block.get('hash')}: malformed getblock answer ({e})") from None
