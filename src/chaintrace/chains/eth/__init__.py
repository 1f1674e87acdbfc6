"""Ethereum: ethereum-etl exports and node JSON-RPC -> store (account model: transfers, assets, fees).

Library entry points (the ``chaintrace ingest eth-*`` commands call these):

>>> from chaintrace import Workspace
>>> from chaintrace.chains.eth import ingest_etl, ingest_eth_rpc
>>> ingest_etl(Workspace("chaintrace-data"), "export/")                         # doctest: +SKIP
>>> ingest_eth_rpc(Workspace("chaintrace-data"), "http://127.0.0.1:8545")        # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

from chaintrace.chains.eth.ingest import EthDataError, EthIngestor, EthIngestReport
from chaintrace.progress import NULL, Progress
from chaintrace.store.workspace import Workspace

__all__ = ["ingest_etl", "ingest_eth_rpc", "ingest_transfer_list", "EthIngestReport", "EthDataError"]


def ingest_transfer_list(workspace: Workspace, path: str | Path, progress: Progress = NULL) -> EthIngestReport:
    """Load a CSV transfer list (time, from, to, amount): see :mod:`chaintrace.chains.eth.lists`."""
    from chaintrace.chains.eth.lists import ingest_transfer_list as run

    return run(workspace, path, progress)


def ingest_etl(workspace: Workspace, path: str | Path, *, chain_id: int | None = None, batch_blocks: int = 2000,
               progress: Progress = NULL, extra_meta: dict | None = None) -> EthIngestReport:
    """Ingest an ethereum-etl export (CSV or JSON lines; a directory or one blocks file).

    Blocks already in the store (same hash) are skipped, so re-running after an interruption, or ingesting
    overlapping exports, stores every block once; a block that differs from the stored one at its height
    rolls the store back to the fork first (the export is taken as the better chain). `chain_id` is recorded
    (ethereum-etl files do not carry it; default: unknown, or the store's).
    """
    from chaintrace.chains.eth.etl import read_export

    files, batches = read_export(path, batch_blocks=batch_blocks)
    with EthIngestor(workspace, progress, source=str(path), chain_id=chain_id, extra_meta=extra_meta) as ing:
        progress.start("ingest eth-etl", None, "blocks")
        for batch in batches:
            ing.add(batch)
        missing = [k for k in ("transactions", "token_transfers", "traces") if k not in files]
        if missing:
            ing.report.warnings.append(f"no {', '.join(missing)} file(s) in the export")
        progress.finish()
    return ing.report


def ingest_eth_rpc(workspace: Workspace, url: str, *, from_height: int | None = None, to_height: int | None = None,
                   traces: str = "auto", fetch_batch: int = 20, commit_blocks: int = 500,
                   progress: Progress = NULL, client=None) -> EthIngestReport:
    """Ingest blocks from an Ethereum node over JSON-RPC; see :func:`chaintrace.chains.eth.rpc.ingest_rpc`."""
    from chaintrace.chains.eth.rpc import ingest_rpc

    return ingest_rpc(workspace, url, from_height=from_height, to_height=to_height, traces=traces,
                      fetch_batch=fetch_batch, commit_blocks=commit_blocks, progress=progress, client=client)
