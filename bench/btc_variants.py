"""Distinct copies of a real block, for ingest benchmarks: same shape and bytes per transaction, new txids.

Copy k changes every transaction's locktime to k+1 (so every txid changes), rewrites spends of earlier
transactions of the same block to their new txids, recomputes the merkle root and links the header to the
previous copy. The result is a valid-shaped chain of N blocks that the ingest accepts (spends of outputs
outside the chain stay unresolved, exactly as for the original block). A changed header cannot keep mainnet
proof of work, so each copy is mined at regtest difficulty (bits 207fffff, about two tries) and is ingested
with ``pow_rules="target-only"``.
"""
from __future__ import annotations

import hashlib

import numpy as np

from chaintrace.chains.btc.parse import merkle_root, parse_blocks

MAINNET_MAGIC = bytes.fromhex("f9beb4d9")
REGTEST_BITS = 0x207FFFFF
REGTEST_TARGET = 0x7FFFFF << (8 * (0x20 - 3))


def _sha256d(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def variants(raw: bytes, n: int):
    """Yield n raw blocks derived from `raw` (see module doc)."""
    p = parse_blocks(np.frombuffer(raw, np.uint8), [0], [len(raw)])
    txs = []
    for t in range(p.n_tx):
        s, e = int(p.tx_start[t]), int(p.tx_end[t])
        i0, ni = int(p.tx_in0[t]), int(p.tx_nin[t])
        prevs = [int(p.in_prev[i]) - s for i in range(i0, i0 + ni)]
        txs.append((raw[s:e], prevs, bool(p.tx_segwit[t]), int(p.tx_body0[t]) - s, int(p.tx_body1[t]) - s))
    count = raw[80:int(p.tx_start[0])]
    prev_hash = raw[4:36]
    for k in range(n):
        remap: dict[bytes, bytes] = {}
        out, ids = [], []
        for tx, prevs, segwit, b0, b1 in txs:
            buf = bytearray(tx)
            for off in prevs:
                old = bytes(buf[off:off + 32])
                if old in remap:
                    buf[off:off + 32] = remap[old]
            buf[-4:] = (k + 1).to_bytes(4, "little")
            b = bytes(buf)
            old_id = _sha256d(tx[:4] + tx[b0:b1] + tx[-4:]) if segwit else _sha256d(tx)
            new_id = _sha256d(b[:4] + b[b0:b1] + b[-4:]) if segwit else _sha256d(b)
            remap[old_id] = new_id
            out.append(b)
            ids.append(new_id)
        head = raw[:4] + prev_hash + merkle_root(ids) + raw[68:72] + REGTEST_BITS.to_bytes(4, "little")
        nonce = 0
        while int.from_bytes(_sha256d(head + nonce.to_bytes(4, "little")), "little") > REGTEST_TARGET:
            nonce += 1
        header = head + nonce.to_bytes(4, "little")
        prev_hash = _sha256d(header)
        yield header + count + b"".join(out)


def write_blk(path, raw: bytes, n: int) -> int:
    """Write n variants as a blk*.dat file; returns the number of raw block bytes."""
    total = 0
    with open(path, "wb") as fh:
        for b in variants(raw, n):
            fh.write(MAINNET_MAGIC + len(b).to_bytes(4, "little") + b)
            total += len(b)
    return total
