"""`chaintrace detect bridges`: bridge deposits matched with the other chain's release (chaintrace.graph.bridges)."""
from __future__ import annotations

import csv
import sys

import click

from chaintrace.cli._common import console, print_json, table
from chaintrace.errors import UserError

BRIDGE_PARAMS = ("bridge", "token", "fee_min", "fee_max", "fee_fixed", "delay_min", "delay_max")
BRIDGE_OPTIONS = ("bridge", "token", "b_fee_min", "b_fee_max", "b_fee_fixed", "b_delay_min", "b_delay_max")
CSV_COLUMNS = ["from_chain", "deposit_tx", "deposit_amount", "to_chain", "release_tx", "recipient",
               "release_amount", "fee_sat", "delay_s", "rule", "confidence"]


def bridge_options(f):
    opts = [
        click.option("--bridge", multiple=True, help="bridges: a bridge address (BTC custodian or ETH contract); "
                     "repeatable."),
        click.option("--token", default=None, help="bridges: the wrapped token (contract or symbol) [any token]."),
        click.option("--bridge-fee-min", "b_fee_min", type=float, default=None, help="bridges: lowest fee rate [0]."),
        click.option("--bridge-fee-max", "b_fee_max", type=float, default=None, help="bridges: highest fee rate [0.01]."),
        click.option("--bridge-fee-fixed", "b_fee_fixed", type=int, default=None, help="bridges: fixed fee on top, satoshi [0]."),
        click.option("--bridge-delay-min", "b_delay_min", type=int, default=None, help="bridges: shortest delay, seconds [0]."),
        click.option("--bridge-delay-max", "b_delay_max", type=int, default=None, help="bridges: longest delay, seconds [86400]."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def bridges_cmd(ws, address, limit, fmt, params, br) -> None:
    from chaintrace.graph.bridges import bridge_matches

    given = {k: v for k, v in params.items() if v is not None}
    if given or address:
        raise UserError("detect bridges takes --bridge, --token and --bridge-fee-min/-max/-fixed, --bridge-delay-min/-max"
                        ", not " + ", ".join("--" + k.replace("_", "-")
                                                        for k in sorted(given) + (["address"] if address else [])))
    res = bridge_matches(ws, list(br["bridge"]), token=br["token"],
                         **{k: br["b_" + k] for k in BRIDGE_PARAMS[2:]})
    if fmt == "json":
        return print_json(res)
    rows = [[m["from_chain"], m["deposit"]["tx"], m["deposit"]["amount"], m["to_chain"], m["release"]["tx"],
             m["release"]["recipient"], m["release"]["amount"], m["fee_sat"], m["delay_s"], m["rule"],
             f"{m['confidence']:.2f}"] for m in res["matches"]]
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(CSV_COLUMNS)
        w.writerows(rows)
        return None
    p, d = res["params"], res["data"]
    console.print(f"bridge {', '.join(res['bridges'])}: {d['btc_deposits']} BTC deposits, {d['eth_releases']} ETH "
                  f"releases/mints, {d['eth_deposits']} ETH deposits/burns, {d['btc_releases']} BTC releases "
                  f"(btc commit {d['btc_commit']}, eth commit {d['eth_commit']})", markup=False)
    console.print(f"fee {p['fee_min']:.2%}-{p['fee_max']:.2%} + {p['fee_fixed']} sat, delay {p['delay_min']}-"
                  f"{p['delay_max']} s: {res['deterministic']} deterministic (event) match(es), "
                  f"{res['probabilistic']} probabilistic (amount+time) candidate(s)", markup=False)
    if rows:
        console.print(table("bridge matches", ["from", "deposit tx", "amount", "to", "release tx", "recipient",
                                               "amount", "fee (sat)", "delay (s)", "rule", "confidence"],
                            rows[:limit]))
    if len(rows) > limit:
        console.print(f"... {len(rows) - limit} more (--limit, or --format json for all)")
    return None
