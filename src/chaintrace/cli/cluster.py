"""`chaintrace cluster ...`: Bitcoin address clustering (build, show, why, exclude, stats, coinjoins)."""
from __future__ import annotations

import click

from chaintrace.cli import main
from chaintrace.cli._common import RichProgress, btc, console, data_option, format_option, print_csv, print_json, \
    table, when


@main.group()
def cluster():
    """Bitcoin address clustering: multi-input and change heuristics, CoinJoin-aware, explainable, undoable.

    Build once after ingesting (incremental afterwards), then look up any address's entity, why two
    addresses are together, and query `btc.address_clusters` with `chaintrace sql`. The examples run on
    the chain of `chaintrace simulate btc --out sim-btc --txs 20000 --seed 7 --network main --ingest`
    (docs/clustering.md).
    """


def _tags(ws, paths):
    """Registry tags plus TagPack files; says on stderr when a file's tags are rejected (e.g. addresses of
    another network than the chain's), since a silently empty tag set would disable the guards and labels."""
    from pathlib import Path

    from chaintrace.cli._common import err_console
    from chaintrace.graph.cluster import load_tags

    for p in paths:
        if not Path(p).is_file():
            continue
        try:
            from chaintrace.intel.tagpack import parse_tagpack

            parsed = parse_tagpack(p)
        except Exception:  # the loader below reports unreadable files with their location
            continue
        if parsed.rejects:
            r = parsed.rejects[0]
            err_console.print(f"warning: {p}: {len(parsed.rejects):,} of {len(parsed.rejects) + len(parsed.tags):,} "
                              f"tags rejected (line {r.line}: {r.address}: {r.reason})", highlight=False)
    return load_tags(ws, paths)


def _print_build(d: dict) -> None:
    rows = [("heuristics", ", ".join(d["heuristics"])),
            ("coinjoins", f"{d['config']['coinjoin']} ({', '.join(d['config']['detectors'])})"),
            ("max merge size", d["config"]["max_merge_size"] or "no limit"),
            ("tag guard", "on" if d["config"]["tag_guard"] else "off"),
            ("transactions", f"{d['transactions']:,} ({d['new_transactions']:,} new)"),
            ("addresses", f"{d['addresses']:,}"),
            ("clusters", f"{d.get('clusters', 0):,} ({d.get('multi_address_clusters', 0):,} with 2+ addresses)"),
            ("clustered addresses", f"{d.get('clustered_addresses', 0):,}"),
            ("largest cluster", f"{d.get('largest_cluster')} ({d.get('largest_cluster_size', 0):,} addresses, "
                                f"{100 * d.get('largest_cluster_share', 0):.2f}%)"),
            ("build", "up to date" if d.get("up_to_date") else ("incremental" if d["incremental"] else "full")),
            ("seconds", d["seconds"])]
    console.print(table(f"clusters (generation {d['generation']})", ["", "value"], rows))
    if d["edges_by_status"]:
        console.print(table("edges by outcome", ["outcome:heuristic", "edges"],
                            [(k, f"{v:,}") for k, v in d["edges_by_status"].items()], {"edges": "right"}))
    for a in d["alarms"]:
        console.print(f"[bold yellow]growth alarm[/]: block {a['height']}: largest cluster "
                      f"{a['largest_before']:,} -> {a['largest_after']:,} addresses; biggest jump "
                      f"(+{a['growth']:,}) by tx {a['txid']} (undo: chaintrace cluster exclude {a['txid']})",
                      highlight=False)
    for n in d["notes"]:
        console.print(f"note: {n}", highlight=False)


@cluster.command("build")
@click.option("--heuristics", default="mih", show_default=True,
              help="Comma list: mih (multi-input) and/or change[:H+H...] with H among address_type, "
                   "optimal_change, power_of_ten, fresh_address, address_reuse, locktime, peeling_chain, "
                   "fixed_fee (intersection; default address_type+optimal_change+power_of_ten, the most precise combination measured on simulated truth).")
@click.option("--coinjoin", type=click.Choice(["skip", "include"]), default="skip", show_default=True,
              help="skip: never union across a detected CoinJoin; include: naive (for comparison only).")
@click.option("--detectors", default=None,
              help="CoinJoin detectors [default: wasabi2,wasabi1,whirlpool,joinmarket,equal_output].")
@click.option("--no-activation-heights", is_flag=True,
              help="Detect CoinJoins below the protocols' mainnet launch heights too (simulated mainnet chains).")
@click.option("--max-merge-size", type=int, default=100_000, show_default=True,
              help="Refuse a union when both clusters already have this many addresses (0: no limit).")
@click.option("--tags", "tag_files", multiple=True, type=click.Path(exists=True),
              help="GraphSense TagPack YAML (file or directory) for the service-tag guard, besides the registry.")
@click.option("--no-tag-guard", is_flag=True, help="Do not refuse unions of clusters tagged as different services.")
@click.option("--alarm-growth", type=float, default=0.5, show_default=True,
              help="Alarm when the largest cluster grows by more than this fraction within one block ...")
@click.option("--alarm-min-size", type=int, default=1000, show_default=True,
              help="... and reaches at least this many addresses.")
@click.option("--change-digits", type=int, default=6, show_default=True,
              help="power_of_ten: round amounts are multiples of 10^digits sat.")
@click.option("--change-max-outputs", type=int, default=10, show_default=True,
              help="No change link for transactions with more outputs (batch payouts).")
@click.option("--full", is_flag=True, help="Recompute everything instead of continuing incrementally (also "
              "re-evaluates earlier change links whose outputs were spent since: locktime, peeling_chain, fixed_fee).")
@format_option("text", "json")
@data_option
def build(ws, heuristics, coinjoin, detectors, no_activation_heights, max_merge_size, tag_files, no_tag_guard, alarm_growth,
          alarm_min_size, change_digits, change_max_outputs, full, fmt):
    """Cluster the addresses of the Bitcoin store (incremental after new blocks).

    Every union is stored as evidence (addresses, txid, heuristic, confidence); every refused union with
    its reason (coinjoin, size_limit, tag_conflict, excluded). Cluster ids are written back as the catalog
    view btc.address_clusters (address_id, cluster_id, cluster_size).

    \b
    Example:
      chaintrace cluster build --no-activation-heights --tags sim-btc/tags.yaml
    """
    from chaintrace.graph.cluster import ClusterConfig, build_clusters

    cfg = ClusterConfig.parse(heuristics, detectors, not no_activation_heights, coinjoin=coinjoin,
                              max_merge_size=max_merge_size,
                              tag_guard=not no_tag_guard, alarm_growth=alarm_growth, alarm_min_size=alarm_min_size,
                              change_digits=change_digits, change_max_outputs=change_max_outputs)
    tags = _tags(ws, tag_files) if not no_tag_guard else []
    d = build_clusters(ws, cfg, tags=tags, full=full, progress=RichProgress())
    if fmt == "json":
        return print_json(d)
    _print_build(d)


def _print_why(w: dict) -> None:
    if w["a"] == w["b"]:
        console.print("the same address")
        return
    if not w["same_cluster"]:
        console.print(f"{w['a']} (cluster {w['cluster_a']}) and {w['b']} (cluster {w['cluster_b']}) are "
                      "[bold]not[/] in one cluster", highlight=False)
        for r in w["refusals"]:
            console.print(f"  refused: {r['heuristic']} union {r['a']} + {r['b']} in {r['txid']} (height "
                          f"{r['height']}): {r['reason']} ({r['detail']})", highlight=False, soft_wrap=True)
        return
    console.print(f"[bold]why {w['a']} and {w['b']} are one entity[/] (cluster {w['cluster_a']}):",
                  highlight=False, soft_wrap=True)
    for i, s in enumerate(w["path"]):
        console.print(f"  {i + 1}. {s['from']} -> {s['to']}: {s['evidence']} {s['txid']} "
                      f"(height {s['height']}, {s['heuristic']}, confidence {s['confidence']:.2f})",
                      highlight=False, soft_wrap=True)


@cluster.command("show")
@click.argument("ref", metavar="ADDRESS|CLUSTER")
@click.option("--sample", type=int, default=20, show_default=True, help="Addresses of the cluster to list.")
@click.option("--why", "why", default=None, metavar="ADDRESS",
              help="Also explain why ADDRESS is (or is not) in this cluster.")
@click.option("--tags", "tag_files", multiple=True, type=click.Path(exists=True),
              help="GraphSense TagPack YAML (file or directory) to label members, besides the registry.")
@format_option("text", "json")
@data_option
def show(ws, ref, sample, why, tag_files, fmt):
    """The entity of an address (or a cluster id): size, addresses, tags on any member (conflicts
    reported), balance, received/sent, first/last seen, unions by heuristic, refusals.

    \b
    Example:
      chaintrace cluster show bc1qz3y8ppy3m5xdghgfskr4zm2frxgwgdg0sa3ek4 --tags sim-btc/tags.yaml
    """
    from chaintrace.graph.cluster import cluster_info

    d = cluster_info(ws, ref, sample=sample, why=why, tags=_tags(ws, tag_files))
    if fmt == "json":
        return print_json(d)
    rows = [("cluster id", d["cluster_id"]), ("size", f"{d['size']:,} addresses"),
            ("label", d["label"] or "(no service tag on any member)"),
            ("balance", btc(d["balance"])), ("received", btc(d["received"])), ("sent", btc(d["sent"])),
            ("transactions", f"{d['tx_count']:,}"),
            ("first seen", f"{when(d['first_seen'])} (height {d['first_height']})"),
            ("last seen", f"{when(d['last_seen'])} (height {d['last_height']})"),
            ("unions", ", ".join(f"{k}: {v:,}" for k, v in d["unions_by_heuristic"].items()) or "none"),
            ("refusals", ", ".join(f"{k}: {v:,}" for k, v in d["refusals_by_reason"].items()) or "none")]
    if d["stale"]:
        rows.append(("note", "the store has new blocks: run `chaintrace cluster build` to update"))
    console.print(table("cluster", ["", "value"], rows))
    console.print(table(f"addresses (first {len(d['addresses'])} of {d['size']:,})", ["address"],
                        [(a,) for a in d["addresses"]]))
    if d["tags"]:
        console.print(table(f"tags on members ({d['tagged_addresses']:,} tagged addresses)",
                            ["label", "category", "actor", "source", "addresses", "e.g."],
                            [(t["label"], t["category"], t["actor"], t["source"], f"{t['count']:,}", t["addresses"][0])
                             for t in d["tags"][:max(sample, 1)]], {"addresses": "right"}))
    if d["conflicts"]:
        console.print("[bold red]conflict[/]: members are tagged as different services: "
                      + "; ".join(f"{c['service']} ({', '.join(c['addresses'][:3])})" for c in d["conflicts"]),
                      highlight=False)
    if d["refusals"]:
        console.print(table("refused unions (sample)", ["txid", "heuristic", "reason", "detail", "a", "b"],
                            [(r["txid"], r["heuristic"], r["reason"], r["detail"], r["a"], r["b"])
                             for r in d["refusals"]]))
    if "why" in d:
        _print_why(d["why"])


@cluster.command("why")
@click.argument("address_a")
@click.argument("address_b")
@format_option("text", "json")
@data_option
def why_cmd(ws, address_a, address_b, fmt):
    """Why two addresses are one entity: the chain of unions (txid, heuristic, confidence) between them;
    or, when they are not, the unions that were refused between their clusters.

    \b
    Example:
      chaintrace cluster why bc1qz3y8ppy3m5xdghgfskr4zm2frxgwgdg0sa3ek4 bc1qly9cff6c4tnuc7u7jzh53tuaz53772lv902th9
    """
    from chaintrace.graph.cluster import explain

    d = explain(ws, address_a, address_b)
    if fmt == "json":
        return print_json(d)
    _print_why(d)


@cluster.command("exclude")
@click.argument("txids", nargs=-1, required=True)
@click.option("--reason", default=None, help="Why (kept with the exclusion and shown in refusals).")
@click.option("--undo", is_flag=True, help="Allow the unions of these transactions again.")
@format_option("text", "json")
@data_option
def exclude_cmd(ws, txids, reason, undo, fmt):
    """Refuse every union made by these transactions and recompute the clusters from the stored edges:
    undoes a collapse (e.g. the transaction named by a growth alarm) without re-reading the chain.

    \b
    Example:
      chaintrace cluster exclude 05f280d974165716f97a437e7305b736c55496e3fce2d70f50d23b894bc6cd54 --reason "checking the sweep"
    """
    from chaintrace.graph.cluster import exclude

    d = exclude(ws, list(txids), reason, undo=undo, progress=RichProgress())
    if fmt == "json":
        return print_json(d)
    _print_build(d)
    console.print(f"{len(d['exclusions'])} transaction(s) excluded in total")


@cluster.command("stats")
@click.option("--top", type=int, default=10, show_default=True, help="Largest clusters to list.")
@format_option("text", "json")
@data_option
def stats_cmd(ws, top, fmt):
    """Counts, largest clusters with their service label, edges and refusals, CoinJoins, alarms, and the
    earlier change links that new blocks altered since the change layer was generated.

    \b
    Example:
      chaintrace cluster stats --top 5
    """
    from chaintrace.graph.cluster import cluster_stats

    d = cluster_stats(ws, top)
    if fmt == "json":
        return print_json(d)
    rows = [("generation", d["generation"]), ("transactions", f"{d['transactions']:,}"),
            ("heuristics", ", ".join(d["config"]["heuristics"])),
            ("clusters", f"{d.get('clusters', 0):,}"),
            ("multi-address clusters", f"{d.get('multi_address_clusters', 0):,}"),
            ("clustered addresses", f"{d.get('clustered_addresses', 0):,}"),
            ("largest cluster share", f"{100 * d.get('largest_cluster_share', 0):.2f}%"),
            ("coinjoins", ", ".join(f"{k}: {v:,}" for k, v in d["coinjoins_by_protocol"].items()) or "none"),
            ("exclusions", len(d["exclusions"])), ("growth alarms", len(d["alarms"]))]
    drift = d.get("change_drift")
    if drift and (drift["links"] or drift["confidence"]):
        rows.append(("change links altered by later spends",
                     f"{drift['links']:,} links, {drift['confidence']:,} confidences (re-evaluated by --full)"))
    console.print(table("clusters", ["", "value"], rows))
    console.print(table("largest clusters", ["cluster", "size", "first address", "service"],
                        [(c["cluster_id"], f"{c['size']:,}", c["first_address"], c["service"])
                         for c in d["largest"]], {"size": "right"}))
    if d["edges_by_status"]:
        console.print(table("edges by outcome", ["outcome:heuristic", "edges"],
                            [(k, f"{v:,}") for k, v in sorted(d["edges_by_status"].items())], {"edges": "right"}))


@cluster.command("coinjoins")
@click.option("--protocol", default=None,
              help="Only this detector's hits: wasabi2, wasabi1, whirlpool, joinmarket, equal_output.")
@click.option("--limit", type=int, default=100, show_default=True)
@format_option("text", "json", "csv")
@data_option
def coinjoins_cmd(ws, protocol, limit, fmt):
    """CoinJoin transactions found by the detectors during the last build (named by protocol).

    \b
    Example:
      chaintrace cluster coinjoins --protocol whirlpool --limit 5
    """
    from chaintrace.graph.cluster import coinjoin_list

    rows = coinjoin_list(ws, protocol, limit)
    cols = ["txid", "height", "protocol", "detectors", "denomination", "n_equal", "n_inputs", "n_outputs", "partial"]
    if fmt == "json":
        return print_json([{**{k: r[k] for k in cols}, "denomination": str(r["denomination"])} for r in rows])
    if fmt == "csv":
        return print_csv(cols, [[r[k] for k in cols] for r in rows])
    console.print(table("coinjoins", cols, [[btc(r[k]) if k == "denomination" else r[k] for k in cols]
                                            for r in rows], {"denomination": "right"}))
