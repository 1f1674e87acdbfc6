"""`chaintrace ingest eth-rpc` and `chaintrace ingest eth-etl`: Ethereum into the workspace."""
from __future__ import annotations

import click

from chaintrace.cli._common import RichProgress, console, data_option, format_option, print_json, table
from chaintrace.cli.ingest import ingest
from chaintrace.model.ids import mark_txid
from rich.markup import escape


def _print_eth_report(report, fmt: str) -> None:
    d = report.as_dict()
    if fmt == "json":
        print_json(d)
        return
    rows = []
    for k, v in d.items():
        if k in ("transfers_by_kind", "warnings"):
            continue
        rows.append((k.replace("_", " "), v))
    for k, v in sorted(d["transfers_by_kind"].items()):
        rows.append((f"  transfers: {k}", f"{v:,}"))
    console.print(table("ingest eth", ["", "value"], rows))
    for w in d["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


@ingest.command("eth-etl")
@click.argument("path", type=click.Path(exists=True))
@click.option("--chain-id", type=int, default=None,
              help="Chain id of the export (1 = mainnet); ethereum-etl files do not record it.")
@click.option("--batch-blocks", type=int, default=2000, show_default=True, help="Blocks per commit.")
@format_option("text", "json")
@data_option
def eth_etl(ws, path, chain_id, batch_blocks, fmt):
    """Ingest an ethereum-etl export: blocks, transactions (+ receipts), token_transfers, traces.

    PATH is a directory (searched recursively; CSV or JSON lines, e.g. expected_blocks.json) or one blocks
    file. Re-running skips blocks already stored; a differing block rolls back to the fork.

    \b
    Example:
      chaintrace ingest eth-etl ../shared/datasets/eth-raw-blocks/ethereum-etl/blocks_17173049_17173050
    """
    from chaintrace.chains.eth import ingest_etl

    report = ingest_etl(ws, path, chain_id=chain_id, batch_blocks=batch_blocks, progress=RichProgress())
    _print_eth_report(report, fmt)


@ingest.command("eth-rpc")
@click.option("--url", required=True, help="Node JSON-RPC URL, e.g. http://127.0.0.1:8545")
@click.option("--from", "from_height", type=int, default=None, help="First block (empty store only) [default: 0].")
@click.option("--to", "to_height", type=int, default=None, help="Last block [default: the node's latest].")
@click.option("--traces", type=click.Choice(["auto", "debug", "parity", "none"]), default="auto", show_default=True,
              help="Internal transfers from debug_traceBlockByNumber (callTracer) or trace_block; auto tries both.")
@click.option("--fetch-batch", type=int, default=20, show_default=True, help="Blocks per JSON-RPC batch request.")
@click.option("--commit-blocks", type=int, default=500, show_default=True, help="Blocks per commit.")
@format_option("text", "json")
@data_option
def eth_rpc(ws, url, from_height, to_height, traces, fetch_batch, commit_blocks, fmt):
    """Ingest blocks, receipts, token transfers and internal transfers from an Ethereum node.

    Incremental (continues after the stored tip), reorg-safe (rolls back to the fork when the node's chain
    changed) and crash-safe (every commit is atomic; re-run to resume).

    \b
    Example:
      chaintrace ingest eth-rpc --url http://127.0.0.1:8545 --to 1000
    """
    from chaintrace.chains.eth import ingest_eth_rpc

    report = ingest_eth_rpc(ws, url, from_height=from_height, to_height=to_height, traces=traces,
                            fetch_batch=fetch_batch, commit_blocks=commit_blocks, progress=RichProgress())
    _print_eth_report(report, fmt)


@ingest.command("eth-transfers")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@format_option("text", "json")
@data_option
def eth_transfers(ws, path, fmt):
    """Load a CSV transfer list (Dune/Etherscan export: time, from, to, amount in ETH or wei[, tx hash]).

    The rows become ETH transfers in synthetic blocks (ordered by time), in a workspace of their own, so
    they can be traced and shown like ingested chain data. Amounts are converted to wei exactly.

    \b
    Example:
      chaintrace --data lazarus-ws ingest eth-transfers ../shared/datasets/lazarus-eth-dune-dspytdao/LazarusTabularTxs1322519.csv
    """
    from chaintrace.chains.eth import ingest_transfer_list

    _print_eth_report(ingest_transfer_list(ws, path, progress=RichProgress()), fmt)


# ---------------------------------------------------------------- `chaintrace show tx/address` on eth


def _fmt(value, decimals, symbol) -> str:
    from chaintrace.model.amounts import fmt_units

    if value is None:
        return "?"
    return fmt_units(int(value), decimals if decimals is not None else 0, symbol or "")


def _print_eth_tx(d: dict) -> None:
    from chaintrace.cli._common import when

    status = {1: "success", 0: "FAILED (no value moved, gas paid)", None: "unknown"}[d["status"]]
    head = [("hash", escape(mark_txid(d["hash"])))] + ([("NOTE", d["note"])] if d.get("note") else []) + [
            ("block", f"{d['height']} ({d['block_hash']})"), ("index in block", d["tx_index"]),
            ("time", when(d["time"])), ("status", status), ("value", _fmt(d["value"], 18, "ETH")),
            ("gas used / limit", f"{d['gas_used']} / {d['gas']}"),
            ("effective gas price", _fmt(d["effective_gas_price"], 9, "gwei")),
            ("fee (burned + tip)", f"{_fmt(d['fee'], 18, 'ETH')} ({_fmt(d['burned'], 18, '')} + {_fmt(d['tip'], 18, '')})"),
            ("method id", d["method_id"]), ("input bytes", d["input_bytes"]), ("nonce", d["nonce"])]
    console.print(table("transaction", ["", "value"], head))
    console.print(table("value transfers", ["#", "kind", "from", "to", "amount", "where"],
                        [(t["seq"], t["kind"], t["from_address"] or "(protocol)", t["to_address"] or "(burned)",
                          _fmt(t["value"], t["decimals"], t["asset"] if t["symbol"] else "units of " + (t["token_address"] or "")),
                          f"log {t['log_index']}" if t["log_index"] is not None else
                          (f"call {t['trace_address']}" if t["trace_address"] else ""))
                         for t in d["transfers"]], {"amount": "right"}))


def _print_eth_address(d: dict) -> None:
    from chaintrace.cli._common import when

    rows = [("address", d["address"]), ("transactions", d["tx_count"]), ("sent transactions", d["sent_transactions"]),
            ("first seen", f"{when(d['first_seen'])} (block {d['first_height']})"),
            ("last seen", f"{when(d['last_seen'])} (block {d['last_height']})")]
    console.print(table("address", ["", "value"], rows))
    console.print(table("balances (net of the transfers in the store)", ["asset", "balance", "received", "sent",
                                                                         "transfers"],
                        [(b["asset"], _fmt(b["balance"], b["decimals"], ""), _fmt(b["received"], b["decimals"], ""),
                          _fmt(b["sent"], b["decimals"], ""), b["transfers"]) for b in d["balances"]],
                        {"balance": "right", "received": "right", "sent": "right"}))
    for b in d["balances"]:
        if b.get("note"):
            console.print(f"[bold red]{b['asset']} balance {_fmt(b['balance'], b['decimals'], '')}:[/] {b['note']}")
    console.print(table("recent transfers", ["tx", "block", "kind", "asset", "from", "to", "amount"],
                        [(escape(mark_txid(r["tx_hash"])), r["height"], r["kind"], r["asset"], r["from_address"], r["to_address"],
                          r["value"]) for r in d["recent"]], {"amount": "right"}))


def _register_views() -> None:
    import re

    from chaintrace.chains.eth import query as q
    from chaintrace.cli.show import CHAIN_VIEWS

    def looks_like(ident: str, kind: str) -> bool:
        s = ident.strip()
        return bool(re.fullmatch(r"0x[0-9a-fA-F]{64}" if kind == "tx" else r"0x[0-9a-fA-F]{40}", s))

    CHAIN_VIEWS["eth"] = {"looks_like": looks_like, "tx": q.eth_tx, "address": q.eth_address,
                          "print_tx": _print_eth_tx, "print_address": _print_eth_address}


_register_views()
