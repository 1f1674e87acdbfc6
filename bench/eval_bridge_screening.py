"""Screening through bridges (chaintrace.screen.bridges) on held-out seeds of ``chaintrace simulate bridge``:
are the thief's recipients on the other chain flagged with the hack's exposure carried across the bridge, and
are ordinary bridge users left alone? Writes the ``bridges-screening`` section of docs/benchmarks.md.

Per seed: simulate, ingest both chains into one workspace, import ``tags.yaml`` (the bridge, the exchanges) and
``hack-tags.yaml`` (the thief's address on each chain: abuse service_hack, actor lazarusgroup), ``screen index``,
then screen every release recipient of the bridge on the other chain. Flagged = the answer's risk comes from a
bridge exposure row that counts (``via: bridge``, ``counts: true``). Truth: the simulator's deposit -> release
map (the thief's recipients) and its cash-outs: every exchange deposit address a recipient paid is screened
itself (the exposure the layer propagated on from the release); the thief's are the positives, ordinary users'
the negatives. Baseline in the same run: every probabilistic candidate counts
(``min_confidence`` 0), and no bridge layer at all (what screening answered before: nothing is flagged).

    PYTHONPATH=src python bench/eval_bridge_screening.py [--seeds 2001-2005] [--min-confidence 0.5]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numpy as np
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._report import write_section  # noqa: E402


def screened_world(tmp: Path, seed: int):
    """(workspace, truth, sim dir) of one simulated bridge world, ingested, tagged and indexed."""
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.chains.eth import ingest_etl
    from chaintrace.intel import registry as reg
    from chaintrace.intel.importer import import_paths
    from chaintrace.screen import build_index, load_config
    from chaintrace.screen.bridges import build_current_layer
    from chaintrace.screen.eth_index import build_eth_index
    from chaintrace.sim.bridge_world import simulate_bridge
    from chaintrace.store.workspace import Workspace

    sim = tmp / f"sim{seed}"
    simulate_bridge(sim, seed=seed)
    ws = Workspace(tmp / f"ws{seed}")
    reg.bind(ws, tmp / f"registry{seed}")
    ingest_block_files(ws, [sim / "btc"])
    ingest_etl(ws, sim / "eth")
    import_paths(ws, "tagpack", [sim / "tags.yaml", sim / "hack-tags.yaml"])
    config = load_config()
    build_index(ws, config)
    build_eth_index(ws, config)
    t0 = time.perf_counter()
    lay = build_current_layer(ws, config)
    lay["build_seconds"] = time.perf_counter() - t0
    lay["bytes"] = (Path(lay["path"]) / "layer.json").stat().st_size
    truth = json.loads((sim / "truth.json").read_text())
    truth["_layer"] = lay
    return ws, truth, sim


def recipients(truth: dict) -> list[tuple[str, str, bool]]:
    """(direction, recipient, is the thief's) of every release recipient of the bridge world (the simulator
    names them by index; the thief's are those of the truth's deposits)."""
    from chaintrace.sim.bridge_world import _btc_addr, _eth_addr

    seed = truth["seed"]
    p = truth["params"]
    out = []
    thief = {d: {x["release"]["recipient"] for x in truth[d]["deposits"]} for d in ("btc_to_eth", "eth_to_btc")}
    for i in range(p["hacks"] + p["users"]):
        r = _eth_addr(f"{seed}-recipient-e{i}")
        out.append(("btc_to_eth", r, r in thief["btc_to_eth"]))
        r = _btc_addr(f"{seed}-recipient-b{i}")
        out.append(("eth_to_btc", r, r in thief["eth_to_btc"]))
    return out


def flagged(ans: dict) -> bool:
    return any(e.get("via") == "bridge" and e.get("counts") for e in ans["exposures"])


def deposit_address(direction: str, seed: int, i: int) -> str:
    """The exchange deposit address recipient `i` cashes out to (the simulator's naming)."""
    from chaintrace.sim.bridge_world import _btc_addr, _eth_addr

    return (_eth_addr(f"{seed}-exchange-e-dep{i}") if direction == "btc_to_eth"
            else _btc_addr(f"{seed}-exchange-b-dep{i}"))


def transfer_refs(ws, address: str) -> list[str]:
    """The refs of every transfer paid to `address` (its cash-out deposits), as `screen transfer` takes them."""
    if address.startswith("0x"):
        from chaintrace.graph.eth import load_eth_graph

        g = load_eth_graph(ws)
        ids = g.address_ids([address])
        return g.refs(np.flatnonzero(g.tr_to == ids[address.lower()]))[1] if ids else []
    from chaintrace.graph.btc import address_ids, load_btc_graph, txids

    ids = address_ids(ws, [address])
    if not ids:
        return []
    b = load_btc_graph(ws)
    outs = np.flatnonzero(b.out_addr == ids[address]).tolist()
    tx = txids(ws, [int(b.out_tx[o]) for o in outs])
    return [f"{tx[int(b.out_tx[o])]}:{o - int(b.tx_out[int(b.out_tx[o])])}" for o in outs]


def cashed_out(ws, direction: str, seed: int, i: int) -> bool:
    """Whether recipient `i` paid its exchange deposit address (the simulator's cash-out)."""
    from chaintrace.graph.btc import address_ids
    from chaintrace.graph.eth import load_eth_graph
    from chaintrace.sim.bridge_world import _btc_addr, _eth_addr

    if direction == "btc_to_eth":
        g = load_eth_graph(ws)
        ids = g.address_ids([_eth_addr(f"{seed}-exchange-e-dep{i}")])
        return bool(ids) and bool((g.tr_to == next(iter(ids.values()))).any())
    return bool(address_ids(ws, [_btc_addr(f"{seed}-exchange-b-dep{i}")]))


def score_seed(ws, truth: dict, min_confidences: list[float]) -> dict:
    from chaintrace.screen import load_config
    from chaintrace.screen.config import Config
    from chaintrace.screen.service import make_snapshot, screen_one_address, screen_one_transfer

    base = load_config()
    rows = recipients(truth)
    p = truth["params"]
    n = p["hacks"] + p["users"]
    cash = {k: cashed_out(ws, d, truth["seed"], k // 2) for k, (d, _r, _t) in enumerate(rows)}
    n_true = sum(len(truth[d]["cashouts"]) for d in ("btc_to_eth", "eth_to_btc"))
    assert sum(cash[k] for k, row in enumerate(rows) if row[2]) == n_true, "cash-outs disagree with the truth"
    dep = {k: deposit_address(d, truth["seed"], k // 2) for k, (d, _r, _t) in enumerate(rows)}
    refs = {k: transfer_refs(ws, dep[k]) for k in cash if cash[k]}
    true_refs = {c["ref"] for d in ("btc_to_eth", "eth_to_btc") for c in truth[d]["cashouts"]}
    assert {r for k, row in enumerate(rows) if row[2] and cash[k] for r in refs[k]} == true_refs, "cash-out refs"
    true_amt = {c["address"]: c["amount"] for d in ("btc_to_eth", "eth_to_btc") for c in truth[d]["cashouts"]}
    assert {dep[k] for k, row in enumerate(rows) if row[2] and cash[k]} == set(true_amt), "cash-out addresses"
    out = {}
    for mc in min_confidences:
        import dataclasses

        cfg: Config = dataclasses.replace(base, bridges={**base.bridges, "min_confidence": mc})
        snap = make_snapshot(ws, cfg)
        res = [flagged(screen_one_address(snap, r)) for _d, r, _t in rows]
        dans = {k: screen_one_address(snap, dep[k]) for k in cash if cash[k]}  # the exchange deposit's own answer
        dres = {k: flagged(a) for k, a in dans.items()}
        # the KYT check of each cash-out deposit transfer itself (screen transfer REF)
        tres = {k: [flagged(screen_one_transfer(snap, ref)) for ref in refs[k]] for k in refs}
        damt = {k: sum(int(e["amount"]) for e in a["exposures"] if e.get("via") == "bridge" and e.get("counts"))
                for k, a in dans.items()}
        for d in ("btc_to_eth", "eth_to_btc", "both"):
            sel = [k for k, row in enumerate(rows) if d in ("both", row[0])]
            tp = sum(res[k] and rows[k][2] for k in sel)
            fp = sum(res[k] and not rows[k][2] for k in sel)
            pos = sum(rows[k][2] for k in sel)
            ctp = sum(res[k] and rows[k][2] and bool(cash[k]) for k in sel)
            cfp = sum(res[k] and not rows[k][2] and bool(cash[k]) for k in sel)
            cpos = sum(rows[k][2] and bool(cash[k]) for k in sel)
            dtp = sum(dres[k] and rows[k][2] for k in sel if cash[k])
            dfp = sum(dres[k] and not rows[k][2] for k in sel if cash[k])
            amt = sum(min(damt[k], true_amt[dep[k]]) for k in sel if cash[k] and rows[k][2] and dres[k])
            over = sum(max(damt[k] - true_amt[dep[k]], 0) for k in sel if cash[k] and rows[k][2])
            ttp = sum(sum(tres[k]) for k in sel if cash[k] and rows[k][2])
            tfp = sum(sum(tres[k]) for k in sel if cash[k] and not rows[k][2])
            tpos = sum(len(tres[k]) for k in sel if cash[k] and rows[k][2])
            out[(mc, d)] = {"tp": tp, "fp": fp, "pos": pos, "neg": len(sel) - pos, "ctp": ctp, "cfp": cfp,
                            "ttp": ttp, "tfp": tfp, "tpos": tpos,
                            "cpos": cpos, "dtp": dtp, "dfp": dfp, "dneg": sum(bool(cash[k]) and not rows[k][2]
                                                                            for k in sel),
                            "amt": amt, "over": over, "true_amt": sum(true_amt[dep[k]] for k in sel
                                                                      if cash[k] and rows[k][2])}
    assert len(rows) == 2 * n
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="2001-2005")
    ap.add_argument("--min-confidence", type=float, default=None,
                    help="the configuration's value (default: chaintrace.screen.bridges.DEFAULT_MIN_CONFIDENCE)")
    ap.add_argument("--tune", default=None, help="e.g. 0,0.2,0.34,0.5,1: print a table per value, write nothing")
    a = ap.parse_args()
    from chaintrace.screen.bridges import DEFAULT_MIN_CONFIDENCE

    mc = DEFAULT_MIN_CONFIDENCE if a.min_confidence is None else a.min_confidence
    lo, hi = (int(x) for x in a.seeds.split("-"))
    confs = [float(x) for x in a.tune.split(",")] if a.tune else [mc, 0.0]
    tot: dict = {}
    layers = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(lo, hi + 1):
            ws, truth, _sim = screened_world(Path(tmp), seed)
            layers.append(truth["_layer"])
            for k, v in score_seed(ws, truth, confs).items():
                t = tot.setdefault(k, {x: 0 for x in v})
                for x in v:
                    t[x] += v[x]

    def f(x: int, y: int) -> str:
        return f"{x / y:.3f}" if y else "-"

    body = ("| screening | direction | recipients flagged: recall | precision | ordinary users flagged | cash-out "
            "deposits flagged: recall | precision | ordinary users' deposits flagged | cash-out amount found | "
            "over-stated | cash-out transfers flagged: recall | precision |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    names = {c: f"min_confidence {c}" for c in confs}
    names.update({mc: f"chaintrace (bridge layer, min_confidence {mc})",
                  0.0: "baseline: every amount+time candidate counts (min_confidence 0)"})
    for c in confs:
        for d in ("btc_to_eth", "eth_to_btc", "both"):
            t = tot[(c, d)]
            body += (f"| {names[c]} | {d.replace('_to_', ' -> ')} | {f(t['tp'], t['pos'])} | "
                     f"{f(t['tp'], t['tp'] + t['fp'])} | {t['fp']} of {t['neg']} | {f(t['dtp'], t['cpos'])} | "
                     f"{f(t['dtp'], t['dtp'] + t['dfp'])} | {t['dfp']} of {t['dneg']} | "
                     f"{f(t['amt'], t['true_amt'])} | {t['over']} | {f(t['ttp'], t['tpos'])} | "
                     f"{f(t['ttp'], t['ttp'] + t['tfp'])} |\n")
    body += ("| baseline: no bridge layer (screening before) | both | 0.000 | - | 0 | 0.000 | - | 0 | 0.000 | 0 | "
             "0.000 | - |\n"
             f"\n{hi - lo + 1} held-out seeds ({lo}-{hi}; min_confidence was chosen on seeds 7-9) of `chaintrace "
             "simulate bridge` (8 thief deposits and 60 ordinary users bridging in each direction; half of the "
             "thief's BTC deposits carry an OP_RETURN memo naming the recipient, the other direction has none; fee "
             "0.1-0.5%, delay 10 min-2 h; matching with the defaults of detect bridges: fee 0-1%, delay 0-24 h). "
             "Flagged: a `via: bridge` exposure row that counts under the severity rules. Recipients: every "
             "release recipient on the other chain (truth: the simulator's deposit -> release map). Cash-out "
             "deposits: the exchange deposit address each recipient paid, screened itself (the KYT view: its own "
             "answer, the exposure propagated on from the release, hop 3 of max_hops 4); the thief's are the "
             "positives, ordinary users' the negatives. Cash-out amount found: the counted bridge exposure of the "
             "flagged thief deposits (capped at each cash-out's true amount) over the true cash-out total; "
             "over-stated: base units above a cash-out's true amount, summed. Cash-out transfers: every transfer "
             "into those deposit addresses screened by reference (`screen transfer`, the KYT check of the deposit: "
             "its source of funds across the bridge).\n")
    n = len(layers)
    body += (f"\nBridge layer (measured under load, 2 shared cores; per seed, mean of {n}): built in "
             f"{sum(x['build_seconds'] for x in layers) / n:.2f} s, of which the onward propagation "
             f"{sum(x['onward']['seconds'] for x in layers) / n:.2f} s ({sum(x['onward']['releases'] for x in layers) / n:.0f} "
             f"releases carrying exposure, {sum(x['onward']['addresses_reached'] for x in layers) / n:.0f} addresses "
             f"reached onward); layer.json {sum(x['bytes'] for x in layers) / n / 1024:.0f} KiB.\n")
    print(body)
    if a.tune:
        return
    write_section("bridges-screening", "Screening through bridges (bridge facts and carried exposure)",
                  f"PYTHONPATH=src python bench/eval_bridge_screening.py --seeds {a.seeds}", body)


if __name__ == "__main__":
    main()
