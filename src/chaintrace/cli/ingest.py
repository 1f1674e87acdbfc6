"""`chaintrace ingest ...`: load chain data into the workspace."""
from __future__ import annotations

import click

from chaintrace.cli._common import RichProgress, console, data_option, format_option, print_json, table
from chaintrace.cli import main


@main.group()
def ingest():
    """Load chain data into the workspace (incremental, reorg-safe, crash-safe)."""


def _print_report(report, fmt: str) -> None:
    d = report.as_dict()
    if fmt == "json":
        print_json(d)
        return
    rows = [(k.replace("_", " "), v) for k, v in d.items() if k not in ("orphans",)]
    rows.append(("orphans set aside", len(d["orphans"])))
    console.print(table(f"ingest {d['chain']}", ["", "value"], rows))
    for h in d["orphans"][:10]:
        console.print(f"  orphan block {h}")


@ingest.command("btc-blocks")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--network", type=click.Choice(["main", "test", "testnet4", "signet", "regtest"]), default=None,
              help="Network of raw block files (blk*.dat files carry it in their magic).")
@click.option("--start-height", type=int, default=None,
              help="Height of the first block when it cannot be inferred (no genesis parent, no BIP-34).")
@click.option("--pow-rules", type=click.Choice(["network", "target-only"]), default="network", show_default=True,
              help="Proof-of-work checks: the network's limit and difficulty transitions, or only each block's "
                   "own target (for chains simulated at regtest difficulty with another network's magic). "
                   "See docs/schema.md.")
@click.option("--batch-mb", type=int, default=32, show_default=True, help="Raw block bytes per commit.")
@format_option("text", "json")
@data_option
def btc_blocks(ws, paths, network, start_height, pow_rules, batch_mb, fmt):
    """Ingest Bitcoin Core blk*.dat files, raw block files, or directories of them.

    \b
    Example:
      chaintrace ingest btc-blocks ../shared/datasets/btc-raw-blocks/bitcoinj/first-100k-blocks.dat
    """
    from chaintrace.chains.btc import ingest_block_files

    report = ingest_block_files(ws, paths, network=network, start_height=start_height,
                                batch_bytes=batch_mb << 20, progress=RichProgress(), pow_rules=pow_rules)
    _print_report(report, fmt)


@ingest.command("btc-rpc")
@click.option("--url", required=True, help="Node URL, e.g. http://user:pass@127.0.0.1:8332")
@click.option("--cookie", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Bitcoin Core .cookie file with the RPC credentials.")
@click.option("--from", "from_height", type=int, default=None, help="First height (empty store only).")
@click.option("--to", "to_height", type=int, default=None, help="Last height [default: the node's tip].")
@click.option("--network", type=click.Choice(["main", "test", "testnet4", "signet", "regtest"]), default=None,
              help="Network, when the node does not answer getblockchaininfo.")
@click.option("--pow-rules", type=click.Choice(["network", "target-only"]), default="network", show_default=True,
              help="Proof-of-work checks: the network's limit and difficulty transitions, or only each block's "
                   "own target (for chains simulated at regtest difficulty with another network's magic). "
                   "See docs/schema.md.")
@click.option("--batch-mb", type=int, default=32, show_default=True, help="Raw block bytes per commit.")
@format_option("text", "json")
@data_option
def btc_rpc(ws, url, cookie, from_height, to_height, network, pow_rules, batch_mb, fmt):
    """Ingest blocks from a Bitcoin Core node over JSON-RPC (getblockhash, getblock verbosity 2).

    \b
    Example:
      chaintrace ingest btc-rpc --url http://user:pass@127.0.0.1:8332 --from 0 --to 1000
    """
    from chaintrace.chains.btc import ingest_rpc

    report = ingest_rpc(ws, url, from_height=from_height, to_height=to_height, cookie_file=cookie,
                        network=network, batch_bytes=batch_mb << 20, progress=RichProgress(), pow_rules=pow_rules)
    _print_report(report, fmt)
