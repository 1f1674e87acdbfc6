"""`chaintrace screen address|transfer|index`: exposure of addresses and deposits to illicit funds."""
from __future__ import annotations

import click

from chaintrace.cli import main
from chaintrace.cli._common import RichProgress, console, data_option, format_option, print_csv, print_json, table
from chaintrace.cli.intel import registry_option
from chaintrace.errors import UserError

CONFIG_HELP = "Screening configuration (YAML/JSON; default: the shipped chaintrace-severity/2)."


def _subjects(args, path, what: str) -> list[str]:
    from chaintrace.intel.api import read_address_file
    from chaintrace.screen import MAX_BATCH

    subjects = list(args)
    if path:
        subjects += read_address_file(path)
    if not subjects:
        raise UserError(f"give at least one {what} (arguments or --file)")
    if len(subjects) > MAX_BATCH:
        raise UserError(f"{len(subjects):,} {what}s: at most {MAX_BATCH:,} per request")
    return subjects


def _print(ans: dict, fmt: str, kind: str) -> None:
    if fmt == "json":
        return print_json(ans)
    rows = []
    for r in ans["results"]:
        top = sorted((e for e in r["exposures"] if e.get("amount") is not None),
                     key=lambda e: -int(e["amount"]))[:1]
        e = top[0] if top else None
        rows.append([r["subject"], r["chain"] or "", r["risk"] or "", r["score"] if r["score"] is not None else "",
                     "; ".join(f"{s['list']} {s['entity'] or ''} {','.join(s['programmes'])}".strip()
                               for s in r["sanctions"]),
                     f"{e['direction']} {e['type']} {e['abuse'] or e['category']} {e['entity'] or ''} "
                     f"hops {e['hops_min']} {e['amount']}{' ' + e['asset'] if e.get('asset') else ''} "
                     f"({100 * e['share']:.2f}%)" + (_via_bridge(e) if e.get("via") == "bridge" else "") if e else "",
                     _detected(r), r["invalid"] or "; ".join(r["warnings"])])
    cols = [kind, "chain", "risk", "score", "sanctions", "largest exposure", "detections", "notes"]
    if fmt == "csv":
        return print_csv(cols, rows)
    console.print(table(f"screening ({ans['data_version'].get('config_version')}, index "
                        f"{ans['data_version'].get('index') or 'none'})", cols, rows))


def _detected(r: dict) -> str:
    """The detections of an answer in a few words: services recognised by behaviour (unidentified_service
    rows) and the laundering shapes the address takes part in (docs/screening.md)."""
    parts = [f"{e['direction']} unidentified {e['detection']['kind']}" for e in r.get("exposures", ())
             if e.get("category") == "unidentified_service" and e.get("detection")]
    parts += [f"{d['kind']} ({d['role']}{', x' + str(d['count']) if d['count'] > 1 else ''})"
              for d in r.get("detections") or ()]
    parts += [_bridge_words(b) for b in r.get("bridges") or ()]
    return "; ".join(dict.fromkeys(parts))


def _via_bridge(e: dict) -> str:
    """`` via bridge wbtc-bridge from eth (probabilistic)``, `` ... onward from <recipient>`` past the release."""
    on = e["bridge"].get("onward")
    return (f" via bridge {e['bridge']['entity']} from {e['bridge']['from_chain']}"
            f"{' (probabilistic)' if e['probabilistic'] else ''}" + (f" onward from {on['recipient']}" if on else ""))


def _bridge_words(b: dict) -> str:
    """A bridge fact in a few words: ``bridge into wbtc-bridge -> eth (event)``."""
    head = f"bridge {b['direction']} {b['bridge']['entity']}"
    if b["counterpart"] is None:
        return f"{head} (unmatched)"
    conf = "" if b["deterministic"] else f" {b['confidence']:.2f}"
    return f"{head} {'->' if b['direction'] == 'into' else '<-'} {b['counterpart']['chain']} ({b['rule']}{conf})"


@main.group("screen")
@registry_option
def screen_group():
    """Screen addresses and deposits for exposure to hacked, sanctioned and other illicit funds.

    Answers come from the exposure index (`chaintrace screen index`): direct hits (sanctions, tags,
    incidents) and indirect exposure within N hops, with risk levels, scores and path evidence.
    """


@screen_group.command("address")
@click.argument("addresses", nargs=-1)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Addresses, one per line (first CSV field).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help=CONFIG_HELP)
@format_option("text", "json", "csv")
@data_option
def screen_address(ws, addresses, path, config_path, fmt):
    """Screen ADDRESSES: risk, exposures (incoming/outgoing, direct/indirect), sanctions, evidence.

    \b
    Example:
      chaintrace screen address 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --format json
      chaintrace screen address --file deposits.txt --format csv
    """
    from chaintrace.screen import load_config, screen_addresses

    ans = screen_addresses(ws, _subjects(addresses, path, "address"), config=load_config(config_path))
    _print(ans, fmt, "address")


@screen_group.command("transfer")
@click.argument("refs", nargs=-1)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False),
              help="Transfer references, one per line.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help=CONFIG_HELP)
@format_option("text", "json", "csv")
@data_option
def screen_transfer(ws, refs, path, config_path, fmt):
    """Screen deposits by reference (txid:vout on Bitcoin; 0xTXHASH, 0xTXHASH:log<i> or
    0xTXHASH:trace<a.b> on Ethereum): the source of their funds over up to N hops (haircut), by category and
    entity, with the paths carrying the largest shares. A single invalid reference exits with status 2.

    \b
    Example:
      chaintrace screen transfer 4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b:0
      chaintrace screen transfer 0x3e5f2c959c8cc0a7bb0033e10f804313bbe2641dee7cbffbd114e667fbff46a0:log0
    """
    from chaintrace.screen import load_config, screen_transfers

    subjects = _subjects(refs, path, "transfer reference")
    ans = screen_transfers(ws, subjects, config=load_config(config_path))
    if len(subjects) == 1 and ans["results"][0]["invalid"]:
        raise UserError(f"{subjects[0]}: {ans['results'][0]['invalid']}")
    _print(ans, fmt, "transfer")


@screen_group.command("index")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help=CONFIG_HELP)
@click.option("--full", is_flag=True, help="Propagate everything again instead of refreshing from the previous "
              "index (the result is the same; for checks).")
@format_option("text", "json")
@data_option
def screen_index(ws, config_path, full, fmt):
    """Build (or refresh) the exposure index of the current chain data and registry.

    Run after `ingest` and after `intel import`; a running `chaintrace serve` picks the new index up.
    After new blocks the Bitcoin and Ethereum indexes are refreshed from the previous ones (only what the
    new transactions change is propagated); the summary says what was refreshed, or why it was rebuilt whole.

    \b
    Example:
      chaintrace screen index
    """
    from chaintrace.screen import build_index, load_config
    from chaintrace.screen.eth_index import build_eth_index

    config = load_config(config_path)
    has_btc, has_eth = ws.chain("btc").exists, ws.chain("eth").exists
    if not has_btc and not has_eth:
        raise UserError(f"no btc or eth data in workspace {ws.path}: nothing to index (run `chaintrace ingest ...`)")
    r = build_index(ws, config, progress=RichProgress(), incremental=not full) if has_btc else {}
    if has_eth:
        r["eth"] = build_eth_index(ws, config, progress=RichProgress(), incremental=not full)
    from chaintrace.screen.bridges import build_current_layer

    lay = build_current_layer(ws, config)  # bridge facts over both indexes (None: the registry names no bridge)
    if lay is not None:
        r["bridges"] = lay
    if fmt == "json":
        return print_json(r)
    if has_btc:
        dv = r["data_version"]
        console.print(f"exposure index {'reused' if r['reused'] else 'built'}: {r['path']}")
        console.print(f"  btc commit {dv['chains']['btc']['commit']}, tip height {dv['chains']['btc']['tip_height']}, "
                      f"registry generation {dv['registry_generation']}, config {dv['config_version']}")
        console.print(f"  {r['n_groups']} source groups ({r['n_sources_in_chain']} in the chain), "
                      f"{r['n_exposed_addresses']:,} exposed addresses, {r['n_tainted_outputs']:,} tainted outputs, "
                      f"{r['bytes'] / 1e6:.1f} MB, {r['build_seconds']} s")
        if "n_fact_addresses" in r:
            det = dv.get("detections") or {}
            console.print(f"  detections: {r['n_fact_addresses']:,} addresses touched ({det.get('n_services', 0):,} "
                          f"services recognised by behaviour, peel chains, structuring, pass-through, dormancy)")
        if r.get("refreshed_from"):
            console.print(f"  refreshed from {r['refreshed_from']}: {r['n_new_tx']:,} new transactions, "
                          f"{r['n_tx_propagated']:,} transactions propagated, {r['n_answers_recomputed']:,} answers "
                          "recomputed")
        elif r.get("refresh_reason") and not r.get("reused"):
            console.print(f"  full build: {r['refresh_reason']}")
        if r.get("n_groups_reused"):
            console.print(f"  incremental: {r['n_groups_reused']} of {r['n_sources_in_chain']} source groups "
                          f"taken from {r['previous_index']}")
    if has_eth:
        e = r["eth"]
        dv = e["data_version"]
        console.print(f"eth exposure index {'reused' if e['reused'] else 'built'}: {e['path']}")
        console.print(f"  eth commit {dv['chains']['eth']['commit']}, tip block {dv['chains']['eth']['tip_height']}, "
                      f"registry generation {dv['registry_generation']}, config {dv['config_version']}")
        console.print(f"  {e['n_groups']} source groups ({e['n_sources_in_chain']} in the chain), "
                      f"{e['n_exposed_addresses']:,} exposed addresses, {e['n_tainted_transfers']:,} tainted "
                      f"transfers, {e['bytes'] / 1e6:.1f} MB, {e['build_seconds']} s")
        if "n_fact_addresses" in e:
            det = dv.get("detections") or {}
            console.print(f"  detections: {e['n_fact_addresses']:,} addresses touched ({det.get('n_services', 0):,} "
                          "services recognised by behaviour, structuring, dormancy)")
        if e.get("refreshed_from"):
            console.print(f"  refreshed from {e['refreshed_from']}: {e['n_new_transfers']:,} new transfers, "
                          f"{e['n_groups_resumed']} source groups continued, {e['n_groups_outgoing_walked']} "
                          "outgoing walks redone")
        elif e.get("refresh_reason") and not e.get("reused"):
            console.print(f"  full build: {e['refresh_reason']}")
    if lay is not None:
        console.print(f"bridge facts: {lay['layer']} ({lay['addresses_with_facts']:,} addresses with bridge facts, "
                      f"{lay['addresses_with_carried_exposure']:,} with exposure carried across)")
        on = lay.get("onward")
        if on:
            console.print(f"  onward from {on['releases']} releases: {on['addresses_reached']:,} addresses reached "
                          f"within max_hops {on['max_hops']} ({on['seconds']:.3f} s)")
        for b in lay["bridges"]:
            console.print(f"  {b['entity']}: {b['deposits']} deposits, {b['releases']} releases, "
                          f"{b['deterministic']} deterministic + {b['probabilistic']} probabilistic matches"
                          + (f"; {b['missing']}" if b.get("missing") else ""))
