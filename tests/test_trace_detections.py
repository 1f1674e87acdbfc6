"""Laundering shapes touching the traced paths in trace reports and --explain (issue 15, point 5)."""
from __future__ import annotations

import json

import pytest

from chaintrace.trace import read_seed_file, trace
from chaintrace.trace.report import TraceReport


@pytest.fixture(scope="module")
def peel(tmp_path_factory):
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.sim import simulate_btc
    from chaintrace.store.workspace import Workspace

    root = tmp_path_factory.mktemp("trace-detections")
    out = root / "sim"
    simulate_btc(out, txs=1500, seed=7, scenario="peel-chain")
    ws = Workspace(root / "data")
    ingest_block_files(ws, [out], pow_rules="target-only")
    seeds = read_seed_file(out / "stolen.txt")
    base = trace(ws, seeds, policy="haircut", min_value=0, tags=[out / "tags.yaml"], registry=False)
    # an address peeled to by a chain on the traced paths (a sink or holding of the trace)
    from chaintrace.graph.detections import detect

    chains = detect(ws, "peel-chain")["detections"]
    reached = {s.address for s in base.sinks} | {h.address for h in base.holdings}
    target = next(p["address"] for c in chains for p in c["peels"] if p["address"] in reached)
    rep = trace(ws, seeds, policy="haircut", min_value=0, tags=[out / "tags.yaml"], registry=False,
                explain=[target], detections=True)
    return {"ws": ws, "out": out, "seeds": seeds, "base": base, "report": rep, "target": target, "chains": chains}


def _path_txids(r: TraceReport) -> set[str]:
    txs = {s.txid for s in r.sinks} | {h.ref.split(":")[0] for h in r.holdings}
    for p in r.paths + [p for e in r.explain for p in e["paths"]]:
        txs |= {s.txid for s in p.steps}
    return txs


def test_detections_touching_the_paths_are_listed_as_detect_prints_them(peel):
    r, ws = peel["report"], peel["ws"]
    assert peel["base"].detections is None  # library default: not computed
    d = r.detections
    assert d is not None and d["data"]["commit"] == r.stats["store_commit"]
    assert d["thresholds"]["peel-chain"] == {"min_length": 3} and d["counts"]["peel-chain"] >= 1
    from chaintrace.graph.detections import detect

    traced = _path_txids(r)
    for kind in ("peel-chain", "fan-out", "fan-in", "structuring"):
        every = detect(ws, kind)["detections"]
        listed = d["detections"][kind]
        assert len(listed) == min(d["counts"][kind], 50)
        for row in listed:  # the same evidence as `chaintrace detect KIND`
            assert {k: v for k, v in row.items() if k != "kind"} in every and row["kind"] == kind
        # every detection sharing a transaction with a path of the report is listed
        must = [x for x in every if set(x["txids"]) & traced]
        assert all({"kind": kind, **x} in listed for x in must) or d["counts"][kind] > 50, kind
    chains = d["detections"]["peel-chain"]
    assert any(set(c["txids"]) & traced for c in chains)
    truth = json.loads((peel["out"] / "truth.json").read_text())["peel_chains"]
    truth_txs = {t for c in truth for t in c["txids"]}
    assert any(set(c["txids"]) & truth_txs for c in chains)  # the laundering's own chains are among them
    for c in chains:  # value conserved along each chain (detect's own invariant, carried into the report)
        assert c["input_value"] >= c["peeled_total"] + c["remainder"]["value"]
    assert d["counts"]["service_like_sinks"] == len({s.address for s in r.sinks if s.reason == "service_like"})


def test_explain_lists_the_detections_touching_the_address(peel):
    r, target = peel["report"], peel["target"]
    (e,) = r.explain
    assert e["address"] == target and e["detections"]
    peels = [x for x in e["detections"] if x["kind"] == "peel-chain"]
    assert peels and all(any(p["address"] == target for p in c["peels"]) or c["remainder"]["address"] == target
                         for c in peels)
    assert "detections touching it: peel-chain" in e["note"]


def test_reports_carry_the_section(peel, tmp_path):
    from chaintrace.report.html import render_html
    from chaintrace.report.text import to_text

    r = peel["report"]
    back = TraceReport.from_dict(json.loads(r.to_json()))
    assert back.detections == r.detections and back.explain[0]["detections"] == r.explain[0]["detections"]
    start = r.detections["detections"]["peel-chain"][0]["start"]
    text = to_text(r, width=400)
    assert "detections touching the traced paths" in text and start in text
    assert f"{peel['target']}: detections touching it" in text
    html = render_html([r])
    assert "Detections touching the traced paths" in html and start in html
    assert "detections" not in peel["base"].to_dict()


def test_cli_detections_flag(peel, tmp_path):
    from chaintrace.cli import main
    from click.testing import CliRunner

    ws, out = peel["ws"], peel["out"]
    args = ["--data", str(ws.path), "trace", "--from", peel["seeds"][0], "--tags", str(out / "tags.yaml"),
            "--no-registry", "--format", "json"]
    on = CliRunner().invoke(main, args)
    off = CliRunner().invoke(main, args + ["--no-detections"])
    assert on.exit_code == 0 and off.exit_code == 0, (on.output[-2000:], off.output[-2000:])
    assert "peel-chain" in json.loads(on.output)["detections"]["counts"]
    assert "detections" not in json.loads(off.output)


def test_docs_example_runs_with_key_output(tmp_path, monkeypatch):
    """docs/tracing.md, "Detections touching the traced paths": the example runs as written and shows its
    key output (the inline `# -> ...` expectation)."""
    import re
    import shlex

    from chaintrace.cli import main
    from click.testing import CliRunner
    from tests.conftest import REPO

    doc = (REPO / "docs" / "tracing.md").read_text()
    block = re.search(r"### Detections touching the traced paths.*?```\n(.*?)```", doc, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    lines = [x for x in block.splitlines() if x.startswith("chaintrace ")]
    assert len(lines) == 2
    for line in lines:
        cmd, _, expect = line.partition("  # -> ")
        r = CliRunner().invoke(main, shlex.split(cmd)[1:])
        assert r.exit_code == 0, (line, r.output[-2000:])
        if expect:
            assert expect in r.output, (expect, r.output[-3000:])
