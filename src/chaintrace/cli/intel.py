"""`chaintrace intel ...`: the intelligence registry (sanctions, tags, actors, incidents)."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

from chaintrace import intel
from chaintrace.cli import main
from chaintrace.cli._common import RichProgress, console, err_console, data_option, format_option, print_csv, print_json, table

AT_HELP = "Answer as of this date (YYYY-MM-DD): only what was valid then (sanctions listed, not yet delisted)."


def usd(v) -> str:
    if v is None or v == "":
        return ""
    d = Decimal(str(v))
    return f"${d:,.2f}".replace(".00", "") if d == d.to_integral_value() else f"${d:,.2f}"


def _use_registry(ctx, param, value):
    if value is not None:
        from chaintrace.intel.registry import _OVERRIDE

        token = _OVERRIDE.set(Path(value).expanduser())
        ctx.call_on_close(lambda: _OVERRIDE.reset(token))
    return value


registry_option = click.option(
    "--registry", type=click.Path(file_okay=False), default=None, expose_value=False, is_eager=True,
    callback=_use_registry,
    help="Registry directory, shared by every workspace [env CHAINTRACE_REGISTRY; default "
         "~/.local/share/chaintrace/registry].")


@main.group("intel")
@registry_option
def intel_group():
    """Intelligence registry: sanctions lists, attribution tags, actors and incidents.

    Import what analysts already use (OFAC SDN XML, GraphSense TagPacks/ActorPacks, Etherscan labels, MISP
    galaxies, incident CSVs), then look addresses up, list the DPRK incident timeline, export TagPacks.
    """


@intel_group.command("import")
@registry_option
@click.argument("kind", type=click.Choice(intel.KINDS))
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--chain", default=None, help="Chain of label files / tags that do not say (eth, bsc, btc...).")
@click.option("--as-of", "as_of", default=None, help="Date of a list snapshot that carries none (plain OFAC lists).")
@click.option("--tlp", default=None, help="TLP marking for the imported tags (clear, green, amber, red).")
@click.option("--label", default=None, help="Label slug for flat label lists (default: from the file name).")
@click.option("--show-rejects", type=int, default=20, show_default=True, help="Rejected rows to print.")
@click.option("--address-column", "address_columns", multiple=True,
              help="list: column holding addresses (repeatable: a contract and its creator).")
@click.option("--label-column", default=None, help="list: column holding each address's label.")
@click.option("--chain-column", default=None, help="list: column naming each row's chain (instead of --chain).")
@click.option("--category", default=None, help="list: category of every address (default: --abuse, else black_list).")
@click.option("--abuse", default=None, help="list: abuse of every address (phishing, service_hack, scam...).")
@click.option("--source", default=None, help="list: where the list comes from (URL).")
@click.option("--confidence", default=None, help="list: GraphSense confidence id or level (e.g. service_data, 50).")
@click.option("--licence", "--license", "licence", default=None,
              help="Licence or terms of the data (recorded with the import; exports name it).")
@click.option("--restricted/--redistributable", default=None,
              help="Whether the terms forbid redistribution [default: restricted for scraped explorer labels].")
@format_option("text", "json")
@data_option
def import_cmd(ws, kind, paths, chain, as_of, tlp, label, show_rejects, address_columns, label_column, chain_column,
               category, abuse, source, confidence, licence, restricted, fmt):
    """Import intelligence files of one KIND (a directory imports every matching file).

    KIND: ofac-sdn (SDN advanced XML .xml/.xml.bz2, derived CSV, or a directory of plain address lists
    with --as-of), tagpack, actorpack, labels (Etherscan-style JSON), misp-galaxy, incidents (CSV), list (any
    watch-list: CSV, TSV, JSON, JSON lines or plain text, with --address-column ...).
    Each file imports whole or not at all; importing the same file again does nothing; rows that cannot be
    taken are listed with file, line and reason.

    \b
    Example:
      chaintrace intel import ofac-sdn ../shared/datasets/ofac-sdn/sdn_advanced_2025-11-19.xml.bz2
      chaintrace intel import tagpack ../shared/datasets/graphsense-tagpacks/packs
      chaintrace intel import ofac-sdn ../shared/datasets/ofac-sdn/0xB10C-lists-2024-09 --as-of 2024-09-27
      chaintrace intel import list ../shared/datasets/forta-labelled-datasets/labels/1/etherscan_malicious_labels.csv
        --address-column banned_address --label-column wallet_tag --abuse phishing --chain eth
    """
    r = intel.import_paths(ws, kind, paths, chain=chain, as_of=as_of, tlp=tlp, label=label,
                           progress=RichProgress(), address_columns=tuple(address_columns),
                           label_column=label_column, chain_column=chain_column, category=category, abuse=abuse,
                           source=source, confidence=confidence, licence=licence, restricted=restricted)
    if fmt == "json":
        return print_json(r)
    rows = []
    for f in r["files"]:
        if "skipped_as" in f:
            rows.append((f["path"], "already imported", f"#{f['skipped_as']}", "", "", ""))
            continue
        counts = ", ".join(f"{f[k]:,} {k}" for k in ("tags", "sanctions", "actors", "incidents", "seeds",
                                                      "aggregates") if f.get(k))
        rows.append((f["path"], counts or "0 rows", f"#{f['import_id']}", f"{f['rejected']:,}", f"{f['duplicates']:,}",
                     ", ".join(f"#{x}" for x in f["replaced"])))
    console.print(table(f"intel import {kind}", ["file", "imported", "import", "rejected", "duplicates", "replaces"],
                        rows))
    for f in r["files"]:
        for n in f.get("notes") or []:
            console.print(f"[yellow]note:[/] {n}", highlight=False)
    if r["rejects_total"] and show_rejects:
        shown = r["rejects"][:show_rejects]
        console.print(table(f"rejected rows ({r['rejects_total']:,}; first {len(shown)})",
                            ["file", "line", "chain", "address", "reason"],
                            [(x["file"], x["line"], x["chain"], x["address"], x["reason"]) for x in shown]))
    t = r["totals"]
    console.print(f"{t['imported']} file(s) imported, {t['skipped']} already there; {t['tags']:,} tags, "
                  f"{t['sanctions']:,} sanctioned addresses, {t['actors']:,} actors, {t['incidents']:,} incidents, "
                  f"{t['seeds']:,} seeds, {t['rejected']:,} rejected"
                  + (" (see `chaintrace intel rejects`)" if t["rejected"] else ""))


@intel_group.command("lookup")
@registry_option
@click.argument("addresses", nargs=-1)
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False),
              help="File of addresses (one per line, or the first CSV column).")
@click.option("--chain", default=None, help="Only hits on this chain.")
@click.option("--at", default=None, help=AT_HELP)
@click.option("--only-known", is_flag=True, help="List only addresses the registry knows.")
@format_option("text", "json", "csv")
@data_option
def lookup_cmd(ws, addresses, file_, chain, at, only_known, fmt):
    """Everything known about addresses: tags, sanctions (entity, programs, listing date), actors, incidents.

    EVM and bech32 addresses match in any case; base58 addresses exactly.

    \b
    Example:
      chaintrace intel lookup 0x098B716B8Aaf21512996dC57EB0615e2383E2f96
      chaintrace intel lookup --at 2024-09-27 0x8589427373D6D84E98730D7795D8f6f8731FDA16
    """
    from chaintrace.errors import UserError
    from chaintrace.intel.lookup import answer_basis

    addrs = list(addresses) + (intel.read_address_file(file_) if file_ else [])
    if not addrs:
        raise click.UsageError("give addresses or --file")
    res = intel.lookup(ws, addrs, chain=chain, at=at)
    if len(res) == 1 and not file_ and res[0]["verdict"] == "invalid":
        raise UserError(f"{res[0]['address']!r}: {res[0]['error']}" + (f" (--chain {chain})" if chain else ""))
    basis = answer_basis(ws, at)
    if only_known:
        res = [r for r in res if r["known"]]
    if fmt == "json":  # each row carries its generation, date and sanction_reason (the warning included)
        return print_json(res)
    for w in basis["warnings"]:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)
    if fmt == "csv":
        rows = []
        for r in res:
            base = [r["address"]]
            for s in r["sanctions"]:
                rows.append(base + ["sanction", s["chain"], f"{s['list']}: {s['entity'] or ''}", "sanction",
                                    ";".join(s["programs"]), s["listed_date"], s["valid_from"], s["valid_to"],
                                    s.get("actor") or ""])
            for t in r["tags"]:
                rows.append(base + ["tag", t["chain"], t["label"], t["category"], t["source"], t["lastmod"],
                                    t["valid_from"], t["valid_to"], t["actor"]])
            for i in r["incidents"]:
                rows.append(base + ["incident", i["chain"], i["incident_id"], i["side"], i["role"], i["date"], "",
                                    "", i.get("actor")])
            if not r["known"]:
                rows.append(base + ["none", "", "", "", "", "", "", "", ""])
        return print_csv(["address", "hit", "chain", "label", "category", "detail", "date", "valid_from", "valid_to",
                          "actor"], rows)
    known = sum(r["known"] for r in res)
    sanctioned = sum(r["sanctioned"] is True for r in res)
    invalid = sum(r["verdict"] == "invalid" for r in res)
    unknown = sum(r["sanctioned"] is None and r["verdict"] != "invalid" for r in res)
    for r in res:
        if not r["known"]:
            if len(res) <= 50:
                what = f"invalid: {r['error']}" if r["error"] else "not in the registry"
                console.print(f"[bold]{r['address']}[/]: {what}", highlight=False)
            continue
        flag = {True: " [bold red]SANCTIONED[/]", None: " [yellow]sanctions: unknown[/]"}.get(r["sanctioned"], "")
        if r["sanctions"] or r["sanctioned"] is None:
            flag += f" ({r['sanction_reason']})"
        actors = ", ".join(a["name"] for a in r["actors"])
        console.print(f"[bold]{r['address']}[/]{flag}  {', '.join(r['categories'])}"
                      + (f"  actor: {actors}" if actors else ""), highlight=False)
        if r["sanctions"]:
            console.print(table(None, ["list", "asset", "entity", "uid", "programs", "entry listed", "on snapshots",
                                       "removed by", f"at {r['at']}"],
                                [(s["list"], s["asset"], s["entity"], s["uid"], ", ".join(s["programs"]),
                                  s["listed_date"], f"{s['valid_from']} .. {s['last_seen']}",
                                  s["valid_to"] or "(still listed)",
                                  {True: "listed", False: "not listed", None: "unknown"}[s["state"]])
                                 for s in r["sanctions"]]))
        if r["incidents"]:
            console.print(table(None, ["incident", "date", "victim", "stolen (USD)", "attribution", "role"],
                                [(i["incident_id"], i["date"], i["victim"], usd(i["amount_usd"]), i["attribution"],
                                  i["role"]) for i in r["incidents"]], {"stolen (USD)": "right"}))
        if r["tags"]:
            console.print(table(None, ["chain", "label", "category", "actor", "confidence", "source", "origin"],
                                [(t["chain"], t["label"], t["category"], t["actor"], t["confidence_id"] or t["confidence"],
                                  t["source"], f"{t['origin']} #{t['import_id']}"
                                  + (f" line {t['line']}" if t["line"] else "")) for t in r["tags"]]))
    lists = "; ".join(f"{x['list']} of {x['version']} ({x['age_days']} days old)" if x["version"] else
                      f"{x['list']}: no snapshot on or before that date (first {x['first']})"
                      for x in basis["sanctions_lists"])
    console.print(f"{len(res):,} address(es): {known:,} known, {sanctioned:,} sanctioned, {unknown:,} sanctions "
                  f"status unknown, {invalid:,} invalid; as of {basis['at']} (registry generation "
                  f"{basis['generation']}" + (f"; {lists}" if lists else "; no sanctions list") + ")",
                  highlight=False)


@intel_group.command("incidents")
@registry_option
@click.option("--actor", default=None, help="Actor name or alias (lazarus, APT38, TraderTraitor...).")
@click.option("--since", type=int, default=None, help="First year.")
@click.option("--until", type=int, default=None, help="Last year.")
@click.option("--attribution", type=click.Choice(["confirmed", "suspected"]), default=None)
@format_option("text", "json", "csv")
@data_option
def incidents_cmd(ws, actor, since, until, attribution, fmt):
    """The incident timeline with amounts stolen and attribution (built-in DPRK catalogue + imports),
    and the sourced aggregate figures of the same span.

    \b
    Example:
      chaintrace intel incidents --actor lazarus --since 2022
    """
    t = intel.timeline(ws, actor=actor, since=since, until=until, attribution=attribution)
    if fmt == "json":
        return print_json(t)
    cols = ["id", "date", "victim", "kind", "amount_usd", "asset", "amount_asset", "actor", "actor_detail",
            "attribution", "attributed_by", "seeds", "sources"]
    if fmt == "csv":
        return print_csv(cols, [[("|".join(i[c] or []) if c == "sources" else i.get(c if c != "id" else "incident_id"))
                                 for c in cols] for i in t["incidents"]])
    console.print(table("incidents", ["date", "victim", "stolen (USD)", "asset", "actor", "attribution", "seeds",
                                      "source"],
                        [(i["date"] + (f" .. {i['date_end']}" if i.get("date_end") else ""), i["victim"],
                          usd(i["amount_usd"]),
                          f"{i['amount_asset']} {i['asset']}" if i.get("amount_asset") else (i.get("asset") or ""),
                          i.get("actor_detail") or i.get("actor"), i.get("attribution"), i["seeds"] or "",
                          (i.get("sources") or [""])[0]) for i in t["incidents"]], {"stolen (USD)": "right"}))
    console.print(f"{len(t['incidents'])} incidents; {t['counted']} with an amount, total {usd(t['total_usd'])}"
                  " (values at the time of each theft, as reported)")
    if t["aggregates"]:
        console.print(table("sourced aggregates (not incidents)", ["period", "scope", "USD", "source"],
                            [(f"{g['period_start']} .. {g['period_end']}", g["scope"], usd(g["amount_usd"]),
                              (g.get("sources") or [""])[0]) for g in t["aggregates"]], {"USD": "right"}))


@intel_group.command("actors")
@registry_option
@click.argument("query", required=False)
@format_option("text", "json")
@data_option
def actors_cmd(ws, query, fmt):
    """Actors and their aliases (built-in DPRK actors from the MISP galaxy, plus imported ones).

    \b
    Example:
      chaintrace intel actors bluenoroff
    """
    res = intel.find_actors(ws, query)
    if fmt == "json":
        return print_json(res)
    console.print(table("actors", ["id", "name", "country", "aliases", "related", "sources"],
                        [(a["id"], a["name"], a["country"], ", ".join(a["aliases"][:25])
                          + (" ..." if len(a["aliases"]) > 25 else ""), ", ".join(a["related"]),
                          "; ".join(a["sources"])) for a in res[:200]]))
    if len(res) > 200:
        console.print(f"... {len(res) - 200} more (use a QUERY or --format json)")


@intel_group.command("stats")
@registry_option
@click.option("--at", default=None, help=AT_HELP + " [default: today]")
@format_option("text", "json")
@data_option
def stats_cmd(ws, at, fmt):
    """Registry statistics: imports, tags per chain and category, sanctions snapshots, actors, incidents.

    \b
    Example:
      chaintrace intel stats --at 2024-10-01
    """
    s = intel.stats(ws, at=at)
    if fmt == "json":
        return print_json(s)
    rows = [("imports", ", ".join(f"{k} {v['current']}" for k, v in s["imports"].items()) or "none"),
            ("tags", f"{s['tags']['count']:,}"),
            ("tags by chain", ", ".join(f"{k} {v:,}" for k, v in list(s["tags"]["by_chain"].items())[:12])),
            ("tags by category", ", ".join(f"{k} {v:,}" for k, v in list(s["tags"]["by_category"].items())[:12])),
            ("sanctions snapshots", ", ".join(f"{x['as_of']} ({x['addresses']:,})" for x in s["sanctions"]["snapshots"])),
            (f"sanctioned at {s['at']}", f"{s['sanctions']['addresses_at']:,} addresses, "
                                          f"{s['sanctions']['entities_at']:,} named entities"),
            ("by asset", ", ".join(f"{k} {v}" for k, v in s["sanctions"]["by_asset_at"].items())),
            ("actors", f"{s['actors']:,}"),
            ("incidents", f"{s['incidents']['count']} ({s['incidents']['built_in']} built-in), "
                          f"{s['incidents']['seed_addresses']} seed addresses, {s['incidents']['aggregates']} aggregates"),
            ("rejected rows", f"{s['rejected']:,}")]
    console.print(table(f"intelligence registry {s['registry']} (generation {s['generation']})", ["", "value"], rows))
    if s["tags"]["by_source"]:
        console.print(table("tags per source", ["import", "kind", "file", "title", "tags", "rejected"],
                            [(f"#{x['import_id']}", x["kind"], x["file"], x["title"], f"{x['tags']:,}", x["rejected"])
                             for x in s["tags"]["by_source"][:40]], {"tags": "right"}))


@intel_group.command("imports")
@registry_option
@format_option("text", "json")
@data_option
def imports_cmd(ws, fmt):
    """Every import (versions): file, sha256, when, as-of date, row counts, what replaced it.

    \b
    Example:
      chaintrace intel imports
    """
    rows = intel.imports(ws)
    if fmt == "json":
        return print_json(rows)
    console.print(table("imports", ["#", "kind", "file", "sha256", "imported at", "as of", "rows", "rejected",
                                    "status", "licence"],
                        [(r["import_id"], r["kind"], r["file_name"], r["sha256"][:12], str(r["imported_at"])[:19],
                          r["as_of"], sum(r[k] or 0 for k in ("n_tags", "n_sanctions", "n_actors", "n_incidents",
                                                              "n_seeds", "n_aggregates")), r["n_rejected"],
                          "current" if r["superseded_by"] is None else
                          ("removed" if r["superseded_by"] == 0 else f"replaced by #{r['superseded_by']}"),
                          (r.get("licence") or "") + (" [restricted]" if r.get("restricted") else ""))
                         for r in rows]))


@intel_group.command("rejects")
@registry_option
@click.option("--import-id", type=int, default=None, help="Only this import.")
@click.option("--limit", type=int, default=200, show_default=True)
@format_option("text", "json", "csv")
@data_option
def rejects_cmd(ws, import_id, limit, fmt):
    """Rows the registry did not take, with file, line, address and reason.

    \b
    Example:
      chaintrace intel rejects --limit 20
    """
    from chaintrace.intel.registry import SCHEMA, reader

    cols = ["import_id", "file", "line", "chain", "address", "reason"]
    with reader(ws) as con:
        rows = [] if con is None else con.execute(
            f"SELECT {', '.join(cols)} FROM {SCHEMA}.rejects WHERE ? IS NULL OR import_id = ? ORDER BY import_id, "
            f"file, line LIMIT ?", [import_id, import_id, limit]).fetchall()
    if fmt == "json":
        return print_json([dict(zip(cols, r)) for r in rows])
    if fmt == "csv":
        return print_csv(cols, rows)
    console.print(table("rejected rows", cols, rows))


@intel_group.command("remove")
@registry_option
@click.argument("import_id", type=int)
@data_option
def remove_cmd(ws, import_id):
    """Remove the rows of one import (ids from `chaintrace intel imports`).

    \b
    Example:
      chaintrace intel remove 3
    """
    r = intel.remove_import(ws, import_id)
    console.print(f"removed import #{r['import_id']} ({r['kind']} {r['path']})")


@intel_group.command("export")
@registry_option
@click.argument("what", type=click.Choice(["tagpack", "csv"]))
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--chain", default=None, help="Only this chain.")
@click.option("--at", default=None, help=AT_HELP)
@click.option("--category", default=None, help="Only this category (or abuse).")
@click.option("--import-id", type=int, default=None, help="Only the tags of this import.")
@click.option("--public-only", is_flag=True, help="Leave out tags marked with a TLP other than clear/white.")
@click.option("--include", default=None,
              help="Comma list of tags,sanctions,incidents [default: tags for tagpack, all for csv].")
@click.option("--include-restricted", is_flag=True,
              help="Also export data whose terms forbid redistribution (left out by default, and listed).")
@click.option("--title", default="chaintrace export", show_default=True, help="TagPack title.")
@click.option("--creator", default="chaintrace", show_default=True, help="TagPack creator.")
@data_option
def export_cmd(ws, what, out, chain, at, category, import_id, public_only, include, include_restricted, title,
               creator):
    """Export tags as a GraphSense TagPack (round trip with `intel import tagpack`) or CSV.

    \b
    Example:
      chaintrace intel export tagpack lazarus.yaml --category sanction
      chaintrace intel export csv registry.csv --at 2024-09-27
    """
    sel = {"chain": chain, "at": at, "category": category, "import_id": import_id, "public_only": public_only,
           "include_restricted": include_restricted}
    if include:
        sel["include"] = tuple(x.strip() for x in include.split(",") if x.strip())
    if what == "tagpack":
        r = intel.export_tagpack(ws, out, title=title, creator=creator, **sel)
    else:
        r = intel.export_csv(ws, out, **sel)
    console.print(f"wrote {r['tags']:,} tags to {r['path']} ({r['format']})")
    for x in r["left_out"]:
        console.print(f"[yellow]left out[/] {x['tags']:,} tags of import #{x['import_id']} ({x['file']}): "
                      f"{x['licence'] or 'terms forbid redistribution'} (--include-restricted to export them)",
                      highlight=False)
