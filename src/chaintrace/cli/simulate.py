"""`chaintrace simulate ...`: ground-truth chains in real formats (see docs/simulator.md)."""
from __future__ import annotations

import click

from chaintrace.cli import main
from chaintrace.cli._common import RichProgress, btc, console, data_option, format_option, print_json, table


@main.group()
def simulate():
    """Simulate chains with laundering incidents and exact ground truth (truth.json, tags.yaml).

    The output is read back only through the real ingest paths (`chaintrace ingest btc-blocks`,
    `chaintrace ingest eth-etl`).
    """


def _scenario_names(chain: str) -> list[str]:
    if chain == "btc":
        from chaintrace.sim.btc.scenarios import SCENARIOS
    else:
        from chaintrace.sim.eth.scenarios import SCENARIOS
    return list(SCENARIOS)


@simulate.command("scenarios")
@format_option("text", "json")
def scenarios_cmd(fmt):
    """List the scenarios of each chain.

    \b
    Example:
      chaintrace simulate scenarios
    """
    from chaintrace.sim.btc.scenarios import SCENARIOS as B

    rows = [("btc", k, v["description"]) for k, v in B.items()]
    try:
        from chaintrace.sim.eth.scenarios import SCENARIOS as Eth

        rows += [("eth", k, v["description"]) for k, v in Eth.items()]
    except ImportError:
        pass
    if fmt == "json":
        print_json([{"chain": c, "scenario": n, "description": d} for c, n, d in rows])
        return
    console.print(table("scenarios", ["chain", "scenario", "description"], rows))


def _print_result(r, fmt: str, unit) -> None:
    d = r.as_dict()
    if fmt == "json":
        print_json(d)
        return
    rows = [("output", d["out_dir"]), ("scenario", d["scenario"]), ("seed", d["seed"]), ("network", d["network"]),
            ("blocks", d["blocks"]), ("transactions", d["transactions"]), ("tip", f"{d['tip_height']} {d['tip_hash']}"),
            ("files", ", ".join(d["files"])), ("seconds", f"{d['seconds']:.1f}")]
    for inc in d["incidents"]:
        rows.append((f"{inc['id']} stolen", unit(int(inc["stolen"]))))
        rows.append((f"{inc['id']} cash-outs", inc["cashouts"]))
        for k, v in inc["balance"].items():
            if k != "stolen_total":
                rows.append((f"  {k.replace('_', ' ')}", unit(int(v))))
    console.print(table(f"simulate {d['chain']}", ["", "value"], rows))


@simulate.command("btc")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory (created; must be empty unless --overwrite).")
@click.option("--txs", type=click.IntRange(min=1000), default=20_000, show_default=True,
              help="Transactions in the chain, coinbases included.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed: same bytes).")
@click.option("--scenario", type=click.Choice(_scenario_names("btc")), default="dprk", show_default=True,
              help="Incident scenario (`chaintrace simulate scenarios` lists them).")
@click.option("--network", type=click.Choice(["regtest", "main", "test", "testnet4", "signet"]), default="regtest",
              show_default=True, help="Network magic, address prefixes and genesis parent of the blocks.")
@click.option("--tag-coverage", type=click.FloatRange(0, 1), default=0.6, show_default=True,
              help="Fraction of exchange (and mixer) deposit addresses that tags.yaml labels; hot wallets "
                   "are always tagged.")
@click.option("--users", type=int, default=None, help="Number of users [default: txs/10, at least 300].")
@click.option("--exchanges", type=click.IntRange(2, 8), default=6, show_default=True, help="Number of exchanges.")
@click.option("--per-block", type=click.IntRange(min=10), default=None,
              help="Target transactions per block [default: txs/150, between 40 and 2500].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("--ingest", "do_ingest", is_flag=True, help="Also ingest the blocks into the workspace (--data).")
@format_option("text", "json")
@data_option
def simulate_btc_cmd(ws, out_dir, txs, seed, scenario, network, tag_coverage, users, exchanges, per_block, overwrite,
                     do_ingest, fmt):
    """Simulate a Bitcoin chain: blk*.dat files, tags.yaml (services named by actor id), actors.yaml (their
    ActorPack: import it with `chaintrace intel import actorpack`) and truth.json.

    \b
    Example:
      chaintrace simulate btc --out sim-btc --txs 20000 --seed 7 --scenario dprk
      chaintrace ingest btc-blocks sim-btc
    """
    from chaintrace.sim.btc import simulate_btc

    r = simulate_btc(out_dir, txs=txs, seed=seed, scenario=scenario, network=network, tag_coverage=tag_coverage,
                     users=users, exchanges=exchanges, per_block=per_block, overwrite=overwrite,
                     progress=RichProgress())
    _print_result(r, fmt, btc)
    if do_ingest:
        from chaintrace.chains.btc import ingest_block_files

        # simulated blocks are mined at regtest difficulty whatever the network's magic and prefixes
        rep = ingest_block_files(ws, [r.out_dir], progress=RichProgress(),
                                 pow_rules="network" if network == "regtest" else "target-only")
        if fmt != "json":
            console.print(f"ingested {rep.blocks} blocks, {rep.transactions} transactions into {ws.path}")


def _eth(value: int) -> str:
    from chaintrace.model.amounts import fmt_units

    return fmt_units(int(value), 18, "ETH")


@simulate.command("eth")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory (created; must be empty unless --overwrite).")
@click.option("--txs", type=click.IntRange(min=1000), default=20_000, show_default=True, help="Transactions.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed: same bytes).")
@click.option("--scenario", type=click.Choice(_scenario_names("eth")), default="bridge-drain", show_default=True,
              help="Incident scenario (`chaintrace simulate scenarios` lists them).")
@click.option("--tag-coverage", type=click.FloatRange(0, 1), default=0.6, show_default=True,
              help="Fraction of exchange deposit addresses that tags.yaml labels; hot wallets always tagged.")
@click.option("--users", type=int, default=None, help="Number of users [default: txs/20, at least 200].")
@click.option("--per-block", type=click.IntRange(min=10), default=None,
              help="Target transactions per block [default: txs/200, between 40 and 300].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("--ingest", "do_ingest", is_flag=True, help="Also ingest the export into the workspace (--data).")
@format_option("text", "json")
@data_option
def simulate_eth_cmd(ws, out_dir, txs, seed, scenario, tag_coverage, users, per_block, overwrite, do_ingest, fmt):
    """Simulate an Ethereum chain: an ethereum-etl export, tags.yaml and truth.json.

    \b
    Example:
      chaintrace simulate eth --out sim-eth --txs 20000 --seed 7 --scenario bridge-drain
      chaintrace ingest eth-etl sim-eth
    """
    from chaintrace.sim.eth import simulate_eth

    r = simulate_eth(out_dir, txs=txs, seed=seed, scenario=scenario, tag_coverage=tag_coverage, users=users,
                     per_block=per_block, overwrite=overwrite, progress=RichProgress())
    _print_result(r, fmt, _eth)
    if do_ingest:
        from chaintrace.chains.eth import ingest_etl

        rep = ingest_etl(ws, r.out_dir, progress=RichProgress())
        if fmt != "json":
            console.print(f"ingested {rep.blocks} blocks, {rep.transactions} transactions into {ws.path}")


@simulate.command("bridge")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Output directory (created; must be empty unless --overwrite).")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed (same seed: same bytes).")
@click.option("--hacks", type=click.IntRange(1, 40), default=8, show_default=True,
              help="Bridge deposits of stolen funds in each direction (btc -> eth and eth -> btc).")
@click.option("--users", type=click.IntRange(0, 110), default=60, show_default=True,
              help="Ordinary users bridging at the same time in each direction (the ambiguity).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output directory.")
@click.option("--ingest", "do_ingest", is_flag=True,
              help="Also ingest both chains (OUT/btc and OUT/eth) into the workspace (--data).")
@format_option("text", "json")
@data_option
def simulate_bridge_cmd(ws, out_dir, seed, hacks, users, overwrite, do_ingest, fmt):
    """Simulate a custodial bridge (WBTC-style) between a Bitcoin and an Ethereum chain, with stolen funds
    crossing it both ways: OUT/btc (blk00000.dat), OUT/eth (ethereum-etl export), tags.yaml, truth.json,
    stolen-btc.txt, stolen-eth.txt. Ingest both into one workspace to trace across (trace --through-bridges).

    \b
    Example:
      chaintrace simulate bridge --out sim-bridge --seed 7 --ingest
      chaintrace trace --from-file sim-bridge/stolen-btc.txt --tags sim-bridge/tags.yaml --through-bridges
    """
    from chaintrace.sim.bridge_world import simulate_bridge

    r = simulate_bridge(out_dir, seed=seed, params={"hacks": hacks, "users": users}, overwrite=overwrite)
    if do_ingest:
        from chaintrace.chains.btc import ingest_block_files
        from chaintrace.chains.eth import ingest_etl

        ingest_block_files(ws, [r["out_dir"] + "/btc"], progress=RichProgress())
        ingest_etl(ws, r["out_dir"] + "/eth", progress=RichProgress())
        r["ingested_into"] = str(ws.path)
    if fmt == "json":
        print_json(r)
        return
    console.print(table("simulate bridge", ["", "value"], [(k.replace("_", " "), str(v)) for k, v in r.items()]))
