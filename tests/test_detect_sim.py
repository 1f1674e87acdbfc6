"""The flow detectors scored against simulator truth (issue 15, point 3): peel chains on the `peel-chain`
scenario (through the documented commands of docs/detection.md), dormancy on the `dprk` scenario."""
from __future__ import annotations

import json

import pytest

import chaintrace
from chaintrace.graph.detections import detect
from chaintrace.sim import load_truth, simulate_btc
from chaintrace.store.workspace import Workspace
from tests.conftest import REPO, doc_commands, run_commands

DOC = REPO / "docs" / "detection.md"


def _doc_commands() -> list[list[str]]:
    return doc_commands("detection.md", r"## Example")


def _score(found: set, truth: set) -> tuple[float, float]:
    hit = len(found & truth)
    return hit / max(1, len(found)), hit / len(truth)


def test_peel_chains_on_the_peel_chain_scenario_via_the_documented_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmds = _doc_commands()
    assert [c[2] for c in cmds] == ["simulate", "detect", "detect"]
    outs = run_commands(cmds)
    truth = load_truth(tmp_path / "sim-btc")
    chains = [c["txids"] for c in truth["peel_chains"]]
    assert outs[1].startswith(f"{len(chains)} peel-chain detection(s)")  # the doc's "finds the 7 chains"
    assert len(chains) == 7
    ws = Workspace(tmp_path / "sim-ws")
    T = {t for c in chains for t in c}
    d = detect(ws, "peel-chain", min_length=8)
    assert sorted(c["start"] for c in d["detections"]) == sorted(c[0] for c in chains)  # every chain's start
    p, r = _score({t for c in d["detections"] for t in c["txids"]}, T)
    assert p == 1.0 and r >= 0.97, (p, r)
    d3 = detect(ws, "peel-chain")  # the default minimum length: same recall, innocent chains too
    p3, r3 = _score({t for c in d3["detections"] for t in c["txids"]}, T)
    assert r3 >= r and p3 < p
    # each chain's peels go where the truth says: the launderer's cash-outs made by the detected hops are
    # their peels (a cash-out in a missed final hop is not)
    peel_outputs = {p["output"] for c in d["detections"] for p in c["peels"]}
    hops = {t for c in d["detections"] for t in c["txids"]}
    on_chains = [c for c in truth["incidents"][0]["cashouts"] if c["txid"] in hops]
    assert len(on_chains) >= 100
    missing = [c for c in on_chains if f"{c['txid']}:{c['vout']}" not in peel_outputs]
    assert missing == []
    s = json.loads(outs[2])
    assert s["kind"] == "structuring" and s["count"] == len(s["detections"])


def test_dormancy_recall_on_the_dprk_scenario(tmp_path):
    sim = tmp_path / "sim"
    simulate_btc(sim, txs=3000, seed=7, scenario="dprk")
    ws = Workspace(tmp_path / "data")
    chaintrace.ingest_block_files(ws, [sim])
    inc = load_truth(sim)["incidents"][0]
    events = inc["dormancy_events"]
    if not events:
        pytest.fail("the dprk scenario at seed 7 should hold dormancy events")
    m = min(e["blocks_dormant"] for e in events)
    d = detect(ws, "dormancy", min_dormant_blocks=m)
    found = {x["output"]: x for x in d["detections"]}
    for e in events:
        x = found[f"{e['txid']}:{e['vout']}"]  # recall 1.0, with the truth's own evidence
        assert x["moved_txid"] == e["moved_txid"] and x["blocks_dormant"] == e["blocks_dormant"]
        assert x["seconds_dormant"] == e["seconds_dormant"] and x["value"] == e["value"]
    mine = [x for x in d["detections"] if x["address"] in set(inc["launderer_addresses"])]
    assert len(mine) >= len(events)
    # one block more than the shortest event's dormancy drops it
    later = detect(ws, "dormancy", min_dormant_blocks=m + 1)["detections"]
    shortest = {f"{e['txid']}:{e['vout']}" for e in events if e["blocks_dormant"] == m}
    assert not shortest & {x["output"] for x in later}
