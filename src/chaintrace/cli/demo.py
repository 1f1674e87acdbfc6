"""`chaintrace demo`: simulate a DPRK-style exchange hack and trace it (library: chaintrace.app.demo)."""
from __future__ import annotations

import click
from rich.text import Text

from chaintrace.cli import main
from chaintrace.cli._common import RichProgress, console, data_option, format_option, print_json, table


@main.command("demo")
@click.option("--txs", type=int, default=20_000, show_default=True, help="Transactions in the simulated chain.")
@click.option("--seed", type=int, default=7, show_default=True, help="Simulation seed (same seed, same chain).")
@click.option("--scenario", default="dprk", show_default=True,
              help="Laundering scenario of the simulator (dprk, peel-chain, fan-out, mixer, coinjoin).")
@click.option("--no-clusters", is_flag=True, help="Skip address clustering (only tagged addresses are sinks).")
@format_option("text", "json")
@data_option
def demo_cmd(ws, txs, seed, scenario, no_clusters, fmt):
    """Simulate a DPRK-style exchange hack, ingest it through the real block-file parser, trace the stolen
    coins under haircut and FIFO, show where the money went and how the two models differ, and write the
    JSON reports and a one-page HTML summary into the workspace (DATA/demo/). About a minute.

    \b
    Example:
      chaintrace --data demo-workspace demo
    """
    from chaintrace.app.demo import POLICIES, run_demo
    from chaintrace.report.text import amount, when

    res = run_demo(ws, txs=txs, seed=seed, scenario=scenario, clusters=not no_clusters, progress=RichProgress())
    if fmt == "json":
        return print_json(res.as_dict())
    r0 = res.reports[POLICIES[0]]

    def btc(v: int) -> str:
        return amount(r0, v)

    console.print(Text(f"Simulated DPRK-style hack of {res.victim} at height {res.height}: {btc(res.stolen)} BTC "
                       f"stolen ({len(res.seeds)} outputs) on a chain of {res.transactions:,} transactions",
                       style="bold"))
    steps = [(k[:-2].replace("_", " "), f"{v:.1f} s") for k, v in res.timings.items()]
    for n in res.notes:
        console.print(Text(n, style="dim"))
    console.print(table("steps", ["step", "time"], steps, {"time": "right"}))

    rows = []
    for row in res.comparison()[:15]:
        cells = [row["entity"]]
        for i, _p in enumerate(POLICIES):
            v = row["amounts"][i]
            hops = row["hops"][i]
            cells += [btc(v), f"{100 * v / res.stolen:.1f}%" if v else "",
                      (f"{hops[0]}" if hops[0] == hops[1] else f"{hops[0]}-{hops[1]}") if hops else "",
                      when(row["first_time"][i])]
        cells.append(btc(row["spread"]))
        rows.append(cells)
    cols = ["entity"]
    for p in POLICIES:
        cols += [f"{p} BTC", "share", "hops", "first seen"]
    cols.append("difference")
    console.print(table("where the stolen bitcoin went (per receiving service)", cols, rows,
                        {c: "right" for c in cols if c not in ("entity", "first seen")}))

    out = []
    for label, key in (("reached exchanges and other services", "sinks"), ("still held by the thief", "holdings"),
                       ("no longer followed", "stopped"), ("paid as fees", "fees")):
        out.append([label] + [btc(res.reports[p].totals("BTC")[key]) for p in POLICIES])
    out.append(["total stolen (exact)"] + [btc(res.reports[p].totals("BTC")["seeded"]) for p in POLICIES])
    console.print(table("outcome per model (BTC)", ["", *POLICIES], out, {p: "right" for p in POLICIES}))

    sc = res.scores
    acc = [["recall of true cash-outs (value-weighted)", *[f"{sc[p]['recall']:.3f}" for p in POLICIES]],
           ["recall incl. cash-outs of mixer payouts", *[f"{sc[p]['recall_all']:.3f}" for p in POLICIES]],
           ["precision (traced value on true cash-out addresses)", *[f"{sc[p]['precision']:.3f}" for p in POLICIES]],
           ["recall per receiving exchange", *[f"{sc[p]['recall_exchange']:.3f}" for p in POLICIES]],
           ["precision per receiving exchange", *[f"{sc[p]['precision_exchange']:.3f}" for p in POLICIES]],
           ["innocent deposit addresses flagged", *[str(sc[p]["collateral_addresses"]) for p in POLICIES]],
           ["value flagged at innocent deposits (BTC)", *[btc(sc[p]["collateral_value"]) for p in POLICIES]],
           ["transactions followed", *[f"{sc[p]['txs_processed']:,}" for p in POLICIES]]]
    console.print(table("against the simulator's ground truth", ["", *POLICIES], acc, {p: "right" for p in POLICIES}))

    h, f = sc["haircut"], sc["fifo"]
    diff = res.comparison()
    biggest = max(diff, key=lambda r: r["spread"]) if diff else None
    lines = [
        f"Haircut spreads every mixed transaction's taint uniformly, so it follows {h['txs_processed']:,} "
        f"transactions and flags {h['collateral_addresses']} innocent deposit addresses; FIFO keeps stolen coins "
        f"together in spending order and follows {f['txs_processed']:,} transactions, flagging "
        f"{f['collateral_addresses']}.",
        f"Both send about the same value to exchanges ({btc(h['traced_to_exchanges'])} vs "
        f"{btc(f['traced_to_exchanges'])} BTC); recall {h['recall']:.2f} vs {f['recall']:.2f}, precision "
        f"{h['precision']:.2f} vs {f['precision']:.2f}.",
    ]
    if biggest and biggest["spread"]:
        lines.append(f"The models disagree most on {biggest['entity']}: "
                     + ", ".join(f"{p} {btc(v)} BTC" for p, v in zip(POLICIES, biggest["amounts"])) + ".")
    console.print(Text("how the two models differ", style="bold"))
    for line in lines:
        console.print(f"  {line}")
    console.print(Text("written", style="bold"))
    for v in res.files.values():
        console.print(f"  {v}")
    seed0 = " ".join(f"--from {x}" for x in res.seeds[:4])
    console.print(Text("next", style="bold"))
    console.print(f"  chaintrace --data {ws.path} trace {seed0} --policy tiho")
    top = r0.paths[0].to if r0.paths else None
    if top:
        console.print(f"  chaintrace --data {ws.path} trace {seed0} --policy fifo --explain {top}")
