"""`chaintrace detect mixer-links`: custodial-mixer deposits linked to payouts (chaintrace.graph.mixers)."""
from __future__ import annotations

import click

from chaintrace.cli._common import btc, console, print_json, table
from chaintrace.errors import UserError

MIXER_PARAMS = ("mixer", "fee_min", "fee_max", "delay_min", "delay_max", "max_parts", "no_clusters")


def mixer_options(f):
    opts = [
        click.option("--mixer", multiple=True, help="mixer-links: the mixer, an ADDRESS (with its cluster when "
                     "clusters are built) or a CLUSTER id; repeat for its deposit addresses and reserve. "
                     "Without it: the mixer recognised by behaviour (needs clusters)."),
        click.option("--fee-min", type=float, default=None, help="mixer-links: lowest fee rate [0.005]."),
        click.option("--fee-max", type=float, default=None, help="mixer-links: highest fee rate [0.05]."),
        click.option("--delay-min", type=int, default=None, help="mixer-links: shortest delay, blocks [1]."),
        click.option("--delay-max", type=int, default=None, help="mixer-links: longest delay, blocks [144]."),
        click.option("--max-parts", type=int, default=None, help="mixer-links: most payouts per deposit [5]."),
        click.option("--no-clusters", is_flag=True, default=False,
                     help="mixer-links: the --mixer address alone, not its cluster."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def mixer_links_cmd(ws, address, all_, limit, fmt, params, mix) -> None:
    from chaintrace.graph.mixers import mixer_links

    given = {k: v for k, v in params.items() if v is not None}
    if given or address:
        raise UserError("detect mixer-links takes --mixer and the linking options (--fee-min, --fee-max, "
                        "--delay-min, --delay-max, --max-parts, --no-clusters), not "
                        + ", ".join("--" + k.replace("_", "-") for k in sorted(given) + (["address"] if address
                                                                                           else [])))
    res = mixer_links(ws, list(mix["mixer"]) or None, clusters=not mix["no_clusters"],
                      **{k: mix[k] for k in ("fee_min", "fee_max", "delay_min", "delay_max", "max_parts")})
    if fmt == "json":
        return print_json(res)
    p = res["params"]
    m = res["mixer"]
    if m.get("detected"):
        d = m["detected"]
        console.print(f"no --mixer given: the custodial mixer recognised by behaviour (confidence "
                      f"{d['confidence']:.3f}; {d['features']['depositors']} depositors, "
                      f"{d['features']['recipients']} recipients, {d['features']['distinct']:.0%} of deposits "
                      f"from distinct payers, {d['features']['unbatched']:.0%} of its payments unbatched)")
    console.print(f"mixer {', '.join(m['mixer'])} ({m['addresses']} address(es){', with clusters' if m['via_cluster'] else ''}): "
                  f"{res['deposits']} deposits, {res['payouts']} payouts over {res['data']['transactions']} "
                  f"transactions (store commit {res['data']['commit']})")
    cal = res.get("calibration") or {}
    how = " (measured from the mixer: calibrated)" if cal.get("calibrated") else \
        (f" (defaults: {cal['reason']})" if cal.get("reason") else "")
    console.print(f"fee {p['fee_min']:.2%}-{p['fee_max']:.2%}, delay {p['delay_min']}-{p['delay_max']} blocks{how}, "
                  f"up to {p['max_parts']} payouts per deposit: {res['deposits_linked']} deposits linked, "
                  f"{res['deposits_ambiguous']} ambiguous, {res['deposits_unlinked']} unlinked; "
                  f"{len(res['links'])} candidate link(s) (probabilistic)")
    rows = [[x["deposit"], btc(x["deposit_value"]), x["payout"], btc(x["payout_value"]), x["delay_blocks"],
             f"{x['confidence']:.2f}", x["rule"].split(":")[-1],
             "-" if x["implied_fee"] is None else f"{x['implied_fee']:.2%}"]
            for x in res["links"][:limit]]
    if rows:
        console.print(table("candidate links", ["deposit", "value", "payout", "value", "delay", "confidence",
                                                "rule", "fee"], rows))
    if len(res["links"]) > limit:
        console.print(f"... {len(res['links']) - limit} more (--limit, or --format json for all)")
