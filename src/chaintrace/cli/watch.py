"""`chaintrace watch add|list|remove|run|outbox`: watchlists and the live watcher (chaintrace.monitor)."""
from __future__ import annotations

import json
import os

import click

from chaintrace.cli import main
from chaintrace.cli._common import (
    console,
    data_option,
    format_option,
    print_json,
    table,
)
from chaintrace.errors import UserError


@main.group()
def watch():
    """Watch stolen or sanctioned funds live and alert when they move (docs/monitoring.md)."""


@watch.command("add")
@click.option("--chain", required=True, help="Chain the watchlist follows: btc or eth (aliases bitcoin, ethereum).")
@click.option("--name", required=True, help="Name of the new watchlist.")
@click.option("--address", "addresses", multiple=True, help="Watch this address in full (repeatable).")
@click.option("--from-trace", type=click.Path(dir_okay=False, exists=True),
              help="Watch the holdings of a trace report (JSON from `chaintrace trace --out`).")
@click.option("--incident", help="Watch the attacker addresses of this incident (registry / built-in catalogue).")
@click.option("--tags", type=click.Path(dir_okay=False, exists=True), help="Watch every address of a TagPack.")
@click.option("--sanctioned", is_flag=True, help="Watch every address the registry lists as sanctioned today.")
@click.option("--policy", default=None, help="Taint policy for spends [default: the trace's, else haircut].")
@click.option("--fee-mode", default=None, help="Fee mode of ordered policies [default: the trace's, else tail].")
@click.option("--min-value", type=int, default=None, help="Stop following traced amounts below this (base units).")
@click.option("--dormant-days", type=float, default=180.0, show_default=True,
              help="Alert 'woke' when funds still for this many days move (0: never).")
@click.option("--case-id", default=None, help="Case id put in freeze requests [default: the name].")
@format_option("text", "json")
@data_option
def watch_add(ws, chain, name, addresses, from_trace, incident, tags, sanctioned, policy, fee_mode, min_value,
              dormant_days, case_id, fmt):
    """Create a watchlist from addresses, a trace's holdings, an incident, a TagPack or the sanctions lists.

    \b
    Example:
      chaintrace --data hal watch add --chain btc --name hal --from-trace report.json
    """
    from chaintrace.model.chains import resolve_chain
    from chaintrace.monitor import add_watchlist

    w = add_watchlist(ws, name, resolve_chain(chain), addresses=addresses, from_trace=from_trace, incident=incident, tags=tags,
                      sanctioned=sanctioned, policy=policy, fee_mode=fee_mode, min_value=min_value,
                      dormant_days=dormant_days, case_id=case_id)
    if fmt == "json":
        print_json(w)
        return
    console.print(f"watchlist {w['name']} ({w['chain']}, from {w['source']}): {w['addresses']} addresses, "
                  f"{w['outputs']} outputs, traced amount {w['amount']}; watching blocks above {w['since_height']}")


@watch.command("list")
@format_option("text", "json")
@data_option
def watch_list(ws, fmt):
    """List watchlists: what they watch, how much, alerts raised.

    \b
    Example:
      chaintrace --data hal watch list --format json
    """
    from chaintrace.monitor import list_watchlists

    rows = list_watchlists(ws)
    if fmt == "json":
        print_json(rows)
        return
    cols = ["name", "chain", "source", "policy", "active", "addresses", "outputs", "amount", "alerts", "retracted",
            "since_height"]
    console.print(table("watchlists", cols, [[r[c] for c in cols] for r in rows]))


@watch.command("remove")
@click.argument("name")
@format_option("text", "json")
@data_option
def watch_remove(ws, name, fmt):
    """Delete a watchlist and its watched items.

    \b
    Example:
      chaintrace --data hal watch remove hal
    """
    from chaintrace.monitor import remove_watchlist

    r = remove_watchlist(ws, name)
    if fmt == "json":
        print_json(r)
    else:
        console.print(f"removed watchlist {r['name']} ({r['removed_items']} items)")


@watch.command("run")
@click.option("--btc-rpc", help="Bitcoin Core JSON-RPC URL (http://user:pass@127.0.0.1:8332).")
@click.option("--btc-cookie", type=click.Path(dir_okay=False), help="Bitcoin Core .cookie file for credentials.")
@click.option("--eth-rpc", help="Ethereum node JSON-RPC URL.")
@click.option("--webhook", "webhooks", multiple=True, help="POST each alert here, signed (repeatable).")
@click.option("--secret", envvar="CHAINTRACE_WEBHOOK_SECRET", help="Webhook HMAC secret [env CHAINTRACE_WEBHOOK_SECRET].")
@click.option("--smtp", help="Send alerts by email through this SMTP server (HOST:PORT).")
@click.option("--mail-from", default="chaintrace@localhost", show_default=True, help="Sender of alert mails.")
@click.option("--mail-to", multiple=True, help="Recipient of alert mails (repeatable).")
@click.option("--smtp-starttls", is_flag=True, help="Use STARTTLS.")
@click.option("--smtp-user", help="SMTP login (password from env CHAINTRACE_SMTP_PASSWORD).")
@click.option("--jsonl", type=click.Path(dir_okay=False), help="Append each alert as a JSON line to this file.")
@click.option("--syslog", help="Send each alert to syslog: UDP HOST:PORT or a socket path (/dev/log).")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between polls of the nodes.")
@click.option("--once", is_flag=True, help="One round (ingest, detect, deliver what is due), then exit.")
@click.option("--rounds", type=int, default=None, help="Stop after this many rounds.")
@click.option("--registry-interval", type=float, default=30.0, show_default=True,
              help="Seconds between checks of the intelligence registry (new tags, sanctions list changes).")
@click.option("--from-height", type=int, default=None,
              help="Height an empty store starts at (default 0: on a mainnet node, start near the tip).")
@format_option("text", "json")
@data_option
def watch_run(ws, btc_rpc, btc_cookie, eth_rpc, webhooks, secret, smtp, mail_from, mail_to, smtp_starttls,
              smtp_user, jsonl, syslog, interval, once, rounds, registry_interval, from_height, fmt):
    """Follow the nodes, raise alerts on watched funds and deliver them (at least once, from a persistent
    outbox). Alerts are printed as they are raised (JSON lines with --format json).

    \b
    Example:
      chaintrace --data hal watch run --btc-rpc http://user:pass@127.0.0.1:8332 \\
          --webhook http://127.0.0.1:9000/hook --secret s3cret --jsonl alerts.jsonl --once
    """
    from chaintrace.monitor import JsonLines, Smtp, Syslog, Webhook, run_watch
    from chaintrace.monitor.deliver import parse_smtp, summary

    channels: list = []
    if webhooks and not secret:
        raise UserError("--webhook needs --secret (or env CHAINTRACE_WEBHOOK_SECRET) to sign the alerts")
    channels += [Webhook(u, secret) for u in webhooks]
    if smtp:
        if not mail_to:
            raise UserError("--smtp needs at least one --mail-to")
        host, port = parse_smtp(smtp)
        channels.append(Smtp(host, port, mail_from, list(mail_to), smtp_starttls, smtp_user,
                             os.environ.get("CHAINTRACE_SMTP_PASSWORD")))
    if jsonl:
        channels.append(JsonLines(jsonl))
    if syslog:
        channels.append(Syslog(syslog))
    if not (btc_rpc or eth_rpc):
        raise UserError("give --btc-rpc and/or --eth-rpc (the nodes to follow)")

    def show(a: dict) -> None:
        if fmt == "json":
            click.echo(json.dumps(a), nl=True)
        else:
            console.print(summary(a), highlight=False)

    stats = run_watch(ws, btc_rpc=btc_rpc, eth_rpc=eth_rpc, btc_cookie=btc_cookie, channels=channels,
                      interval=interval, once=once, rounds=rounds, registry_interval=registry_interval,
                      from_height=from_height, on_alert=show)
    if fmt == "json":
        click.echo(json.dumps({"stats": stats.as_dict()}))
    else:
        console.print(f"{stats.rounds} rounds, {stats.alerts} alerts, {stats.delivered} deliveries, "
                      f"{stats.pending} pending" + (f"; errors: {'; '.join(stats.errors[-3:])}" if stats.errors else ""))


@watch.command("outbox")
@click.option("--pending", is_flag=True, help="Only deliveries still to be made.")
@click.option("--limit", type=int, default=50, show_default=True)
@format_option("text", "json")
@data_option
def watch_outbox(ws, pending, limit, fmt):
    """Alerts and their delivery state per channel (newest first).

    \b
    Example:
      chaintrace --data hal watch outbox --pending
    """
    from chaintrace.monitor import outbox

    rows = outbox(ws, pending_only=pending, limit=limit)
    if fmt == "json":
        print_json(rows)
        return
    cols = ["dedup_key", "kind", "channel", "attempts", "delivered", "last_error", "summary"]
    console.print(table("outbox", cols, [[r[c] for c in cols] for r in rows]))
