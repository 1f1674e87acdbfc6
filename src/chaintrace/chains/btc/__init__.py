"""Bitcoin: block files and node RPC -> store.

Library entry points (the ``chaintrace ingest btc-*`` commands call these):

>>> from chaintrace import Workspace
>>> from chaintrace.chains.btc import ingest_block_files
>>> report = ingest_block_files(Workspace("chaintrace-data"), ["~/.bitcoin/blocks"])  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from chaintrace.chains.btc.blockfile import BlockFileError, BlockFiles, BlockRef, plan_chain
from chaintrace.chains.btc.ingest import BATCH_BYTES, BtcIngestor, IngestReport
from chaintrace.chains.btc.parse import coinbase_height, parse_blocks
from chaintrace.chains.btc.rpc import RpcClient, RpcError, raw_block_from_verbose
from chaintrace.model.networks import network as get_network
from chaintrace.progress import NULL, Progress
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace

__all__ = ["ingest_block_files", "ingest_rpc", "IngestReport", "BlockFileError", "RpcError"]


def _bip34_height(raw: bytes) -> int | None:
    import numpy as np

    if int.from_bytes(raw[0:4], "little", signed=True) < 2:
        return None
    try:
        p = parse_blocks(np.frombuffer(raw, np.uint8), [0], [len(raw)])
    except ValueError:
        return None
    s = int(p.in_soff[0])
    return coinbase_height(raw[s:s + int(p.in_slen[0])])


def ingest_block_files(workspace: Workspace, paths, *, network: str | None = None,
                       start_height: int | None = None, batch_bytes: int = BATCH_BYTES,
                       progress: Progress = NULL, pow_rules: str = "network") -> IngestReport:
    """Ingest Bitcoin Core ``blk*.dat`` files, raw block files or directories of them.

    Blocks are linked by previous hash and the best chain (most work, including the stored chain) is
    ingested in height order; a better branch forking below the stored tip rolls the store back first.
    The height of the first block of an empty store comes from the genesis hash, BIP-34 (height in the
    coinbase) or `start_height`. Blocks not on the best chain are reported as orphans.

    Proof of work (:mod:`chaintrace.chains.btc.pow`): every block must meet the target its bits encode, and
    with ``pow_rules="network"`` the network's limit and difficulty transitions; the planned chain is checked
    before anything is committed, and a failing block raises :class:`BlockFileError` naming file, offset and
    block hash. ``pow_rules="target-only"`` is for chains simulated at regtest difficulty under another
    network's magic (recorded in the store's metadata).
    """
    with BlockFiles(paths) as files:
        refs, file_net = files.scan()
        with BtcIngestor(workspace, network, batch_bytes, progress, pow_rules) as ing:
            ing.set_network(file_net)
            net = ing.net

            def root_height(ref: BlockRef) -> int | None:
                if ref.prev == b"\0" * 32:
                    return 0
                if ref.prev == bytes.fromhex(net.genesis)[::-1]:
                    return 1
                if start_height is not None:
                    return start_height
                return _bip34_height(files.read(ref))

            plan = plan_chain(refs, ing.height_of, ing.cumwork, ing.start_height or 0, root_height)
            if refs and not plan.blocks and ing.tip_height is None:
                raise BlockFileError(refs[0].path, refs[0].offset, "cannot tell the height of the first block "
                                     "(its parent is not the genesis block and its coinbase has no BIP-34 "
                                     "height); pass --start-height")
            ing.check_headers([(height, r.hash, r.bits, r.time, str(r.path), r.offset) for height, r in plan.blocks],
                              plan.fork_height)
            progress.start("ingest btc blocks", sum(r.length for _, r in plan.blocks), "bytes")
            if plan.fork_height is not None:
                ing.rollback(plan.fork_height)
            for height, ref in plan.blocks:
                ing.add_block(height, files.read(ref), str(ref.path), ref.offset)
            ing.report.orphans = [r.hash_hex for r in plan.orphans]
            ing.report.already_stored = plan.already_stored
        progress.finish()
        return ing.report


def ingest_rpc(workspace: Workspace, url: str, *, from_height: int | None = None, to_height: int | None = None,
               cookie_file: str | Path | None = None, network: str | None = None, fetch_batch: int = 16,
               batch_bytes: int = BATCH_BYTES, progress: Progress = NULL, client: RpcClient | None = None,
               pow_rules: str = "network") -> IngestReport:
    """Ingest blocks from a Bitcoin Core node over JSON-RPC (``getblockhash``, ``getblock <hash> 2``).

    Incremental: an existing store continues after its tip (``from_height`` then only applies to an empty
    store). If the node's block at the stored tip differs, the store is rolled back to the fork point
    first. Stops at `to_height` or the node's current height. Every block's proof of work is checked as in
    :func:`ingest_block_files`; a failing block is an error and its batch is not committed.
    """
    rpc = client or RpcClient(url, cookie_file)
    node_net = None
    if network is None:
        try:
            node_net = get_network(rpc.call("getblockchaininfo")["chain"])
        except RpcError:
            node_net = None  # nodes or proxies without getblockchaininfo: use --network or the store's
    with BtcIngestor(workspace, network, batch_bytes, progress, pow_rules) as ing:
        ing.set_network(node_net)
        if ing.tip_height is not None:
            fork = _find_fork(rpc, ing)
            if fork < ing.tip_height:
                ing.rollback(fork)
            start = ing.tip_height + 1 if ing.tip_height is not None else (from_height or 0)
            if from_height is not None and from_height > start:
                raise StoreError(f"--from {from_height} would leave a gap after the stored tip {start - 1}")
        else:
            start = from_height or 0
        end = to_height if to_height is not None else rpc.call("getblockcount")
        progress.start("ingest btc rpc", max(0, end - start + 1), "blocks")
        h = start
        while h <= end:
            hi = min(end, h + fetch_batch - 1)
            hashes = rpc.batch([("getblockhash", [x]) for x in range(h, hi + 1)])
            blocks = rpc.batch([("getblock", [bh, 2]) for bh in hashes])
            for x, bh, blk in zip(range(h, hi + 1), hashes, blocks):
                raw = raw_block_from_verbose(blk)
                got = hashlib.sha256(hashlib.sha256(raw[:80]).digest()).digest()[::-1].hex()
                if got != bh:
                    raise RpcError(f"block {x}: header fields hash to {got}, node reported {bh}")
                if ing.tip_hash is not None and raw[4:36] != ing.tip_hash:
                    # the node reorganised while we were reading: find the fork again and resume there
                    ing.rollback(_find_fork(rpc, ing))
                    h = ing.tip_height + 1
                    break
                ing.add_block(x, raw, f"{rpc.url} getblock {bh}", 0)
                progress.advance(1)
            else:
                h = hi + 1
        progress.finish()
    return ing.report


def _find_fork(rpc: RpcClient, ing: BtcIngestor, window: int = 64) -> int:
    """Highest stored height whose block hash the node agrees with (start height - 1 if none)."""
    hi = ing.tip_height
    while hi is not None and hi >= ing.start_height:
        lo = max(ing.start_height, hi - window + 1)
        try:
            node = rpc.batch([("getblockhash", [x]) for x in range(lo, hi + 1)])
        except RpcError:
            node = []
            for x in range(lo, hi + 1):  # heights above the node's tip are errors: treat as disagreement
                try:
                    node.append(rpc.call("getblockhash", x))
                except RpcError:
                    node.append(None)
        for x in range(hi, lo - 1, -1):
            nh = node[x - lo]
            if nh is not None and bytes.fromhex(nh)[::-1] == ing.hash_at(x):
                return x
        hi = lo - 1
    return ing.start_height - 1
