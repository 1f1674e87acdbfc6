"""`chaintrace show`, `stats` and `sql`: read the store back."""
from __future__ import annotations

import json

import click

from chaintrace.cli import main
from chaintrace.cli._common import (btc, console, data_option, format_option, jsonable, print_csv, print_json,
                                    table, when)
from chaintrace.model.chains import resolve_chain
from chaintrace.store import query


@main.group()
def show():
    """Show one transaction or address from the store."""


# Other chains register resolvers here: name -> (looks_like(text) -> bool, tx(ws, id), address(ws, addr),
# print_tx(d), print_address(d)).
CHAIN_VIEWS: dict[str, dict] = {}


def _chain_for(ident: str, chain: str | None, kind: str) -> str:
    if chain:
        return resolve_chain(chain)
    for name, v in CHAIN_VIEWS.items():
        if v["looks_like"](ident, kind):
            return name
    return "btc"


@show.command("tx")
@click.argument("txid")
@click.option("--chain", default=None, help="Chain: btc or eth (aliases bitcoin, ethereum) [default: from the id].")
@format_option("text", "json")
@data_option
def show_tx(ws, txid, chain, fmt):
    """One transaction: inputs, outputs, fee, and who spent each output.

    \b
    Example:
      chaintrace show tx 0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098
    """
    chain = _chain_for(txid, chain, "tx")
    if chain != "btc":
        v = CHAIN_VIEWS[chain]
        d = v["tx"](ws, txid)
        return print_json(d) if fmt == "json" else v["print_tx"](d)
    d = query.btc_tx(ws, txid)
    if fmt == "json":
        return print_json(d)
    head = [("txid", d["txid"]), ("wtxid", d["wtxid"]), ("block", f"{d['height']} ({d['block_hash']})"),
            ("index in block", d["tx_index"]), ("time", when(d["time"])), ("coinbase", d["is_coinbase"]),
            ("size / vsize / weight", f"{d['size']} / {d['vsize']} / {d['weight']}"),
            ("version / locktime", f"{d['version']} / {d['locktime']}"),
            ("input value", btc(d["input_value"])), ("output value", btc(d["output_value"])),
            ("fee", btc(d["fee"]))]
    console.print(table("transaction", ["", "value"], head))
    console.print(table("inputs", ["n", "spends", "address", "BTC"],
                        [(i["n"], "coinbase" if i["prev_txid"] is None else f"{i['prev_txid']}:{i['prev_vout']}",
                          i["address"], btc(i["value"]) if i["prev_txid"] else "")
                         for i in d["inputs"]], {"BTC": "right"}))
    console.print(table("outputs", ["n", "BTC", "type", "address", "spent by"],
                        [(o["n"], btc(o["value"]), o["script_type"], o["address"],
                          f"{o['spending_txid']}:{o['spending_input']}" if o["spent"] else "unspent")
                         for o in d["outputs"]], {"BTC": "right"}))


@show.command("address")
@click.argument("address")
@click.option("--chain", default=None,
              help="Chain: btc or eth (aliases bitcoin, ethereum) [default: from the form].")
@format_option("text", "json")
@data_option
def show_address(ws, address, chain, fmt):
    """Balance, received, sent, transaction count, first and last seen of an address.

    \b
    Example:
      chaintrace show address 12c6DSiU4Rq3P4ZxziKxzrL5LmMBrzjrJX
    """
    chain = _chain_for(address, chain, "address")
    if chain != "btc":
        v = CHAIN_VIEWS[chain]
        d = v["address"](ws, address)
        return print_json(d) if fmt == "json" else v["print_address"](d)
    d = query.btc_address(ws, address)
    if fmt == "json":
        return print_json(d)
    rows = [("address", d["address"]), ("type", d["script_type"]), ("balance", btc(d["balance"])),
            ("received", btc(d["received"])), ("sent", btc(d["sent"])), ("transactions", d["tx_count"]),
            ("outputs received / spent", f"{d['outputs_received']} / {d['outputs_spent']}"),
            ("first seen", f"{when(d['first_seen'])} (height {d['first_height']})"),
            ("last seen", f"{when(d['last_seen'])} (height {d['last_height']})")]
    console.print(table("address", ["", "value"], rows))
    console.print(table("recent transactions", ["txid", "height", "time", "received", "sent"],
                        [(r["txid"], r["height"], when(r["time"]), btc(r["received"]), btc(r["sent"]))
                         for r in d["recent"]], {"received": "right", "sent": "right"}))


@main.command("stats")
@format_option("text", "json")
@data_option
def stats(ws, fmt):
    """Store statistics per chain: heights, tip, row counts, values, UTXO set, disk use.

    \b
    Example:
      chaintrace stats --format json
    """
    d = query.stats(ws)
    if fmt == "json":
        return print_json(d)
    if not d["chains"]:
        console.print(f"workspace {d['workspace']} holds no chain data yet (run `chaintrace ingest ...`)")
        return
    for chain, c in d["chains"].items():
        rows = [("network", c.get("network")), ("tip", f"{c['tip_height']} {c['tip_hash']}")]
        if "first_height" in c:
            rows.append(("first height", c["first_height"]))
        if c.get("first_time") is not None:
            rows.append(("time span", f"{when(c['first_time'])} .. {when(c['last_time'])}"))
        rows += [(f"{t} (rows)", f"{n:,}") for t, n in c["rows"].items()]
        for k in ("total_output_value", "utxo_value"):
            if k in c:
                rows.append((k.replace("_", " "), btc(c[k]) + " BTC" if chain == "btc" else c[k]))
        for k in ("utxo_count", "unresolved_inputs"):
            if k in c:
                rows.append((k.replace("_", " "), f"{c[k]:,}"))
        for k, v in c.items():
            if k not in {"network", "tip_height", "tip_hash", "first_height", "first_time", "last_time", "rows",
                         "segments", "total_output_value", "utxo_value", "utxo_count", "unresolved_inputs",
                         "disk_bytes", "commit"}:
                rows.append((k.replace("_", " "), v))
        rows.append(("parquet segments", sum(c["segments"].values())))
        rows.append(("disk", f"{c['disk_bytes'] / 1e6:,.1f} MB"))
        rows.append(("commits", c["commit"]))
        console.print(table(f"{chain} store in {d['workspace']}", ["", "value"], rows))


@main.command("sql")
@click.argument("query_text", metavar="QUERY")
@format_option("text", "json", "csv")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="At most this many rows, pushed into the query [default: 1000 for text, all for json/csv].")
@data_option
def sql_cmd(ws, query_text, fmt, limit):
    """Run one read-only SQL statement (DuckDB dialect) over the catalog views: btc.blocks,
    btc.transactions, btc.outputs, eth.*, intel.*, ... Statements that write or load (COPY, ATTACH, CREATE,
    INSERT, INSTALL/LOAD, SET...) and files outside the workspace's stores are refused (exit 2).

    \b
    Example:
      chaintrace sql "SELECT height, n_tx, hash FROM btc.blocks ORDER BY height DESC LIMIT 5"
    """
    from chaintrace.intel.registry import as_registry

    shown = limit if limit is not None else (1000 if fmt == "text" else None)
    reg = as_registry(ws)  # the intelligence registry's current generation: intel.* views
    gen = reg.generation if reg is not None else 0
    attach = {"intel_registry": reg.file(gen)} if reg is not None and gen else None
    # text: one row more than shown, to say whether there are more
    cols, rows = query.sql_stream(ws, query_text, limit=None if shown is None else shown + (fmt == "text"),
                                  attach=attach)
    if fmt == "json":
        click.echo("[", nl=False)
        for i, r in enumerate(rows):
            click.echo(("," if i else "") + "\n  " + json.dumps(jsonable(dict(zip(cols, r))), ensure_ascii=False),
                       nl=False)
        click.echo("\n]")
        return
    if fmt == "csv":
        return print_csv(cols, rows)
    got = list(rows)
    console.print(table(None, cols, got[:shown]))
    if shown is not None and len(got) > shown:
        console.print(f"... more than {shown} rows (raise --limit, or use --format csv)")
