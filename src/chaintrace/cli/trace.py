"""`chaintrace trace`: follow stolen funds forward under a taint policy (library: chaintrace.trace.trace)."""
from __future__ import annotations

from pathlib import Path

import click

from chaintrace.cli import main
from chaintrace.cli._common import RichProgress, console, data_option, format_option
from chaintrace.errors import UserError

POLICY_HELP = ("Taint policy: poison, haircut, fifo, lifo, tiho (taint-in highest-out); on eth poison, haircut, "
               "fifo, lifo, seniority (tainted-first-out) [default: haircut]. "
               "See docs/tracing.md.")


def write_report_file(report, path: str, fmt: str | None = None) -> Path:
    """Write `report` to `path` as JSON, CSV, HTML or text (from the suffix; JSON otherwise)."""
    from chaintrace.report.html import write_html
    from chaintrace.report.text import to_csv, to_text

    p = Path(path)
    kind = fmt or {".csv": "csv", ".html": "html", ".htm": "html", ".txt": "text"}.get(p.suffix.lower(), "json")
    if not p.parent.exists():
        raise UserError(f"--out {path}: directory {p.parent} does not exist")
    if kind == "html":
        return write_html([report], p)
    if kind == "json":
        return report.write_json(p)
    text = to_csv(report) if kind == "csv" else to_text(report)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(p)
    return p


@main.command("trace")
@click.option("--from", "seeds", multiple=True, metavar="SEED",
              help="Where the stolen value is: an address (all it received within --since/--until), a txid "
                   "(its outputs) or TXID:VOUT; on eth an address (every credit it received) or a transaction "
                   "hash (its value transfers). Repeat for several seeds.")
@click.option("--from-file", "seed_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="FILE", help="Seeds listed in a file, one per line (# comments; the first column of a CSV). "
                                   "Repeatable; adds to --from.")
@click.option("--chain", default="btc", show_default=True,
              help="Chain to trace on: btc or eth (aliases bitcoin, ethereum).")
@click.option("--policy", default="haircut", metavar="POLICY", help=POLICY_HELP)
@click.option("--fee-mode", type=click.Choice(["tail", "prorata"]), default="tail", show_default=True,
              help="Where ordered policies (fifo/lifo/tiho) take the fee from: after all outputs (tail) or pro "
                   "rata from every input.")
@click.option("--tags", "tag_files", multiple=True, type=click.Path(exists=True), metavar="FILE",
              help="GraphSense TagPack YAML file (or directory) whose service addresses stop the trace as sinks; "
                   "used together with the intelligence registry. Repeatable.")
@click.option("--actors", "actor_files", multiple=True, type=click.Path(exists=True), metavar="FILE",
              help="GraphSense ActorPack YAML file (or directory) naming the actors of the sinks' tags (e.g. the "
                   "actors.yaml next to a simulated chain's tags.yaml); used together with the registry's actors. "
                   "Repeatable.")
@click.option("--no-registry", is_flag=True, help="Ignore tags and actors imported into the workspace registry.")
@click.option("--no-clusters", is_flag=True, help="Only tagged addresses are sinks, not their whole clusters.")
@click.option("--max-hops", type=int, default=None, help="Stop following value after this many transactions.")
@click.option("--min-value", type=int, default=None,
              help="Stop following outputs carrying less traced value, in base units "
                   "[default: btc 10000 sat; eth 10**12 wei, ETH only].")
@click.option("--min-share", type=float, default=0.0, show_default=True,
              help="Stop following outputs carrying less than this fraction of the seeded value.")
@click.option("--since", default=None, metavar="WHEN",
              help="Address seeds: count only what arrived from this height / time (YYYY-MM-DD, Unix time).")
@click.option("--until", default=None, metavar="WHEN",
              help="Do not follow spends after this height / time; value still there is reported as stopped.")
@click.option("--max-txs", type=int, default=None,
              help="Stop after processing this many transactions (the report says it is partial).")
@click.option("--coinjoins", type=click.Choice(["follow", "stop", "link"]), default="follow", show_default=True,
              help="Follow value through detected CoinJoins under the policy, or stop there (reason coinjoin); "
                   "link: stop there, then follow the rounds' outputs that later spending links to the traced side "
                   "(same deposit address, co-spent with traced coins), reported apart (coinjoin_links; Bitcoin).")
@click.option("--no-activation-heights", is_flag=True,
              help="--coinjoins stop/link: detect CoinJoins at any height (a simulated mainnet chain starts at genesis, "
                   "below the mainnet heights of the first Wasabi/Whirlpool rounds), as `cluster build`.")
@click.option("--follow-services", is_flag=True,
              help="Follow value through addresses that behave like a service no tag names (exchange deposit "
                   "addresses, OTC desks, payment processors); by default the trace stops there as an unidentified "
                   "service (sink rows with reason service_like, docs/detection.md).")
@click.option("--through-mixers", is_flag=True, default=False,
              help="Also follow custodial-mixer payouts linked to traced deposits by amount minus a fee and delay "
                   "(reported apart, probabilistic, with confidences; docs/tracing.md).")
@click.option("--mixer-min-confidence", type=float, default=None,
              help="--through-mixers: links below this confidence carry nothing [0.02].")
@click.option("--no-mixer-postmix", is_flag=True, default=False,
              help="--through-mixers: link by amount and delay only, without the post-mix evidence (payouts "
                   "whose later deposits show them the traced side's; docs/tracing.md).")
@click.option("--through-bridges", is_flag=True, default=False,
              help="Continue on the other chain (btc <-> eth) from the bridge releases matched with traced deposits, "
                   "carrying the matched share: event matches as taint, amount+time ones probabilistic, reported "
                   "apart (docs/tracing.md, 'Through bridges').")
@click.option("--bridge", "bridge_addrs", multiple=True, metavar="ADDRESS",
              help="The reached bridge's address on the other chain (BTC custodian or ETH contract) [its bridge "
                   "tags with the same actor]. Repeatable.")
@click.option("--bridge-min-confidence", type=float, default=None,
              help="--through-bridges: amount+time matches below this confidence carry nothing [0].")
@click.option("--bridge-fee-max", "b_fee_max", type=float, default=None,
              help="Bridge matching: highest fee rate [0.01] (docs/detection.md, 'Bridges').")
@click.option("--bridge-delay-max", "b_delay_max", type=int, default=None,
              help="Bridge matching: longest delay between deposit and release, seconds [86400].")
@click.option("--explain", multiple=True, metavar="ADDRESS",
              help="Show the paths from the seeds to ADDRESS with the amount carried at each hop. Repeatable.")
@click.option("--detections/--no-detections", default=True, show_default=True,
              help="Bitcoin: list the peel chains, fan-outs/ins, structuring, rapid pass-through and dormancy "
                   "touching the traced paths, with their evidence (also per --explain address).")
@click.option("--top-paths", type=int, default=5, show_default=True, help="Paths shown for the largest sink transfers.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the report to FILE (.json, .csv, .html or .txt by suffix; JSON otherwise).")
@format_option("text", "json", "csv")
@data_option
def trace_cmd(ws, seeds, seed_files, chain, policy, fee_mode, tag_files, actor_files, no_registry, no_clusters, max_hops,
              min_value, min_share, since, until, max_txs, coinjoins, no_activation_heights, follow_services,
              through_mixers, mixer_min_confidence, no_mixer_postmix, through_bridges, bridge_addrs,
              bridge_min_confidence, b_fee_max, b_delay_max, explain, detections, top_paths, out_file, fmt):
    """Follow stolen funds forward and report where they went: exchanges and other services reached
    (sinks), value still held, value no longer followed, fees. Exact amounts that always add up to what was
    seeded.

    \b
    Example:
      chaintrace trace --from f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16 --policy fifo
      chaintrace trace --from 12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S --until 200 --format json --out report.json
      chaintrace trace --from-file sim-btc/stolen.txt --tags sim-btc/tags.yaml --policy tiho
      chaintrace trace --from-file sim-btc/stolen.txt --follow-services
      chaintrace trace --from-file sim-btc/stolen.txt --coinjoins stop --no-activation-heights
      chaintrace trace --from-file sim-btc/stolen.txt --coinjoins link --no-activation-heights
      chaintrace trace --from-file sim-btc/stolen.txt --tags sim-btc/tags.yaml --through-mixers
      chaintrace trace --from-file sim-btc/stolen.txt --tags sim-btc/tags.yaml --through-mixers --no-mixer-postmix
      chaintrace trace --from-file sim-bridge/stolen.txt --tags sim-bridge/tags.yaml --through-bridges
    """
    from chaintrace.trace import read_seed_file, trace
    from chaintrace.report.text import print_text, to_csv

    seeds = list(seeds) + [x for f in seed_files for x in read_seed_file(f)]
    report = trace(ws, seeds, chain=chain, policy=policy, fee_mode=fee_mode, max_hops=max_hops,
                   min_value=min_value, min_share=min_share, since=since, until=until, max_txs=max_txs,
                   tags=tag_files, actors=actor_files, registry=not no_registry, clusters=not no_clusters,
                   explain=explain, top_paths=top_paths, coinjoins=coinjoins, follow_services=follow_services,
                   activation_heights=not no_activation_heights, through_mixers=through_mixers, detections=detections,
                   mixer_params={k: v for k, v in (("min_confidence", mixer_min_confidence),
                                                   ("postmix", False if no_mixer_postmix else None)) if v is not None}
                   or None,
                   through_bridges=through_bridges,
                   bridge_params={"bridges": list(bridge_addrs) or None, "min_confidence": bridge_min_confidence,
                                  "fee_max": b_fee_max, "delay_max": b_delay_max},
                   progress=RichProgress())
    if out_file:
        write_report_file(report, out_file)
    if fmt == "json":
        click.echo(report.to_json())
    elif fmt == "csv":
        click.echo(to_csv(report), nl=False)
    else:
        print_text(report, console)
        if out_file:
            console.print(f"report written to {out_file}")
