"""`chaintrace detect KIND`: laundering-shape detectors over the Bitcoin store (chaintrace.graph.detections)."""
from __future__ import annotations

import click

from chaintrace.cli import main
from chaintrace.cli._common import btc, console, data_option, format_option, print_json, table
from chaintrace.cli.detect_bridges import BRIDGE_OPTIONS, bridge_options, bridges_cmd
from chaintrace.errors import UserError
from chaintrace.detect.services import FEATURES, KINDS as SERVICE_KINDS
from chaintrace.graph.detections import KINDS, detect as run_detect
from chaintrace.cli.detect_mixers import MIXER_PARAMS, mixer_links_cmd, mixer_options


@main.command("detect")
@click.argument("kind", type=click.Choice([*KINDS, "mixer-links", "bridges", "services"]))
@click.option("--chain", default="btc", show_default=True, help="services: btc or eth (the other kinds: btc).")
@click.option("--kind", "service_kinds", multiple=True, type=click.Choice(list(SERVICE_KINDS)),
              help="services: only this kind (repeatable).")
@click.option("--min-counterparties", type=int, default=None,
              help="services: distinct senders / recipients a service has at least [10].")
@click.option("--min-sweeps", type=int, default=None,
              help="services: sweeps of deposit addresses into an exchange at least [btc 3, eth 5].")
@click.option("--address", default=None, help="Only detections touching this address.")
@click.option("--all", "all_", is_flag=True, help="Every detection in the store (the default without --address).")
@click.option("--min-length", type=int, default=None, help="peel-chain: fewest hops [3].")
@click.option("--min-outputs", type=int, default=None, help="fan-out [10] / structuring [5]: fewest outputs.")
@click.option("--min-inputs", type=int, default=None, help="fan-in: fewest inputs [10].")
@click.option("--tolerance", type=float, default=None, help="structuring: relative distance to the median [0.05].")
@click.option("--min-share", type=float, default=None,
              help="structuring: share of near-equal outputs [0.8]; pass-through: share of value passed fast [1.0].")
@click.option("--max-hold-blocks", type=int, default=None, help="pass-through: longest hold in blocks [1].")
@click.option("--min-receipts", type=int, default=None, help="pass-through: fewest outputs received [1].")
@click.option("--min-dormant-blocks", type=int, default=None, help="dormancy: fewest blocks unmoved [1000].")
@click.option("--limit", type=int, default=50, show_default=True, help="text: rows shown (json: all).")
@mixer_options
@bridge_options
@format_option("text", "json", "csv")
@data_option
def detect_cmd(ws, kind, address, all_, limit, fmt, chain, service_kinds, min_counterparties, min_sweeps, **params):
    """Find peel chains, fan-out / fan-in, structuring, rapid pass-through, dormancy then movement, or
    services recognised by behaviour (exchanges and their deposit addresses, OTC desks, payment processors).

    Each detection carries its evidence: txids, features and the thresholds used (see docs/detection.md).

    \b
    Example:
      chaintrace detect peel-chain --all --format json
      chaintrace detect dormancy --min-dormant-blocks 100 --address bcrt1q...
      chaintrace detect services --chain eth --kind otc_desk --format csv
      chaintrace detect mixer-links --mixer bc1q...   (custodial-mixer linking, docs/detection.md)
      chaintrace detect mixer-links                   (the mixer recognised by behaviour)
      chaintrace detect bridges --bridge bc1q...custodian --token WBTC --format csv
    """
    mix = {k: params.pop(k) for k in MIXER_PARAMS}
    br = {k: params.pop(k) for k in BRIDGE_OPTIONS}
    if kind == "bridges":
        if any(v not in (None, False, ()) for v in mix.values()):
            raise UserError("--mixer and the linking options apply to detect mixer-links, not detect bridges")
        return bridges_cmd(ws, address, limit, fmt, params, br)
    if any(v not in (None, ()) for v in br.values()) or (fmt == "csv" and kind != "services"):
        raise UserError(f"--bridge, --token, --bridge-* and --format csv apply to detect bridges (csv: and "
                        f"services), not detect {kind}")
    if kind == "mixer-links":
        if service_kinds or min_counterparties is not None or min_sweeps is not None or chain not in ("btc", "bitcoin"):
            raise UserError("--chain, --kind, --min-counterparties and --min-sweeps apply to detect services only")
        return mixer_links_cmd(ws, address, all_, limit, fmt, params, mix)
    if any(v not in (None, False, ()) for v in mix.values()):
        raise UserError("--mixer and the linking options apply to detect mixer-links only")
    if address and all_:
        raise UserError("give --address A or --all, not both")
    if kind == "services":
        given = sorted(k for k, v in params.items() if v is not None)
        if given:
            raise UserError(", ".join("--" + k.replace("_", "-") for k in given) + " does not apply to detect "
                            "services (it takes --chain, --kind, --min-counterparties, --min-sweeps)")
        return _services(ws, chain, address, service_kinds, min_counterparties, min_sweeps, limit, fmt)
    extra = [o for o, v in (("--kind", service_kinds), ("--min-counterparties", min_counterparties),
                            ("--min-sweeps", min_sweeps)) if v]
    if extra or chain not in ("btc", "bitcoin"):
        raise UserError(f"{', '.join(extra) or '--chain ' + chain} applies to detect services only "
                        f"(detect {kind} runs over the btc store)")
    given = {k: v for k, v in params.items() if v is not None}
    bad = set(given) - set(KINDS[kind])
    if bad:
        opts = ", ".join("--" + b.replace("_", "-") for b in sorted(bad))
        raise UserError(f"{opts} does not apply to detect {kind} (it takes "
                        + ", ".join("--" + k.replace("_", "-") for k in KINDS[kind]) + ")")
    res = run_detect(ws, kind, address=address, limit=None if fmt == "json" else limit, **given)
    if fmt == "json":
        return print_json(res)
    th = ", ".join(f"{k}={v}" for k, v in res["thresholds"].items())
    console.print(f"{res['count']} {kind} detection(s) over {res['data']['transactions']} transactions "
                  f"(store commit {res['data']['commit']}; {th})")
    rows = []
    for d in res["detections"][:limit]:
        rows.append(_row(kind, d))
    if rows:
        console.print(table(kind, _COLUMNS[kind], rows))
    if res["count"] > limit:
        console.print(f"... {res['count'] - limit} more (--limit, or --format json for all)")


_COLUMNS = {
    "peel-chain": ["start", "length", "peeled", "remainder", "first peel to"],
    "fan-out": ["txid", "inputs", "outputs", "value"],
    "fan-in": ["txid", "inputs", "outputs", "value"],
    "structuring": ["txid", "outputs", "near-equal", "median", "total"],
    "pass-through": ["address", "receipts", "received", "passed fast", "max hold (blocks)"],
    "dormancy": ["output", "value", "blocks dormant", "moved in"],
}


def _row(kind: str, d: dict) -> list:
    if kind == "peel-chain":
        return [d["start"], d["length"], btc(d["peeled_total"]), btc(d["remainder"]["value"]),
                d["peels"][0]["address"] or "-"]
    if kind in ("fan-out", "fan-in"):
        return [d["txid"], d["n_inputs"], d["n_outputs"], btc(d["value"])]
    if kind == "structuring":
        return [d["txid"], d["n_outputs"], d["near_equal"], btc(d["median"]), btc(d["total"])]
    if kind == "pass-through":
        return [d["address"], d["receipts"], btc(d["received"]), btc(d["passed"]), d["max_hold_seen"]]
    return [d["output"], btc(d["value"]), d["blocks_dormant"], d["moved_txid"]]


def _services(ws, chain, address, kinds, min_counterparties, min_sweeps, limit, fmt):
    from chaintrace.graph.services import detect_services

    res = detect_services(ws, chain, address=address, kinds=list(kinds) or None,
                          limit=None if fmt in ("json", "csv") else limit,
                          min_counterparties=min_counterparties, min_sweeps=min_sweeps)
    if fmt == "json":
        return print_json(res)
    feats = [f for f in FEATURES if any(f in d["features"] for d in res["detections"][:1])] or list(FEATURES)
    if fmt == "csv":
        import csv
        import sys

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["address", "kind", "confidence", "hub", *feats, "txids"])
        for d in res["detections"]:
            w.writerow([d["address"], d["kind"], d["confidence"], d["hub"],
                        *[d["features"].get(f) for f in feats], " ".join(d["txids"])])
        return
    bk = ", ".join(f"{k} {v}" for k, v in res["by_kind"].items() if v) or "none"
    th = ", ".join(f"{k}={v}" for k, v in res["thresholds"].items())
    n = res["data"]["transactions"]
    console.print(f"{res['count']} service-like address(es) on {chain} ({bk}) over {n} transactions "
                  f"(store commit {res['data']['commit']}; {th})")
    rows = [[d["address"], d["kind"], f"{d['confidence']:.3f}", d["features"]["senders"], d["features"]["recipients"],
             d["features"].get("sweeps_in", "-"),
             f"{d['features']['turnover']:.2f}" if "turnover" in d["features"] else "-",
             d["hub"] if d["hub"] != d["address"] else ""] for d in res["detections"][:limit]]
    if rows:
        console.print(table("services", ["address", "kind", "confidence", "senders", "recipients", "sweeps in",
                                         "turnover", "belongs with"], rows))
    if res["count"] > limit:
        console.print(f"... {res['count'] - limit} more (--limit, or --format json / csv for all)")
