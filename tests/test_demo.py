"""`chaintrace demo` end to end on a small simulated chain: real block files through the real parser,
tags through the registry, both reports conserve value exactly, the HTML summary is written, the scores
are computed against the simulator's truth, a re-run reuses the chain, a foreign workspace is refused."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import ingest_block_files
from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.sim import load_truth
from chaintrace.store.workspace import Workspace
from chaintrace.app.demo import run_demo
from chaintrace.app.evaluate import score, sink_entities, true_cashouts
from chaintrace.trace.report import TraceReport, check_invariant
from tests.conftest import dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("demo") / "data")
    return ws, run_demo(ws, txs=4000, seed=3)


def test_demo_traces_the_simulated_hack(demo):
    ws, res = demo
    truth = load_truth(res.sim_dir)
    inc = truth["incidents"][0]
    assert res.stolen == int(inc["stolen"]["total"]) > 0
    for policy, r in res.reports.items():
        check_invariant(r)
        assert r.totals("BTC")["seeded"] == res.stolen
        assert r.sinks, policy
        # the scores recomputed from the written JSON report match
        back = TraceReport.read_json(res.files[f"{policy}_json"])
        assert score(back, inc, sink_entities(res.sim_dir, back)) == res.scores[policy]
        s = res.scores[policy]
        assert 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1
        # most stolen value that really reached an exchange is found, and most of what is found is right
        assert s["recall"] >= 0.8 and s["precision"] >= 0.8, s
        assert s["recall_exchange"] >= s["recall"] - 1e-9 and 0 <= s["precision_exchange"] <= 1
    # haircut diffuses: it follows more transactions and flags at least as many innocent deposits
    assert res.scores["haircut"]["txs_processed"] >= res.scores["fifo"]["txs_processed"]
    assert res.scores["haircut"]["collateral_addresses"] >= res.scores["fifo"]["collateral_addresses"]
    assert true_cashouts(inc)


def test_demo_reports_one_row_per_service(demo):
    """The comparison has one row per receiving service (its deposit addresses, hot and cold wallets
    together), named by the service's label from the simulator's ActorPack, with the amounts of its sink
    transfers."""
    ws, res = demo
    truth = load_truth(res.sim_dir)
    names = {e["actor"]: e["name"] for e in truth["entities"] if e.get("actor") and e["kind"] != "launderer"}
    rows = res.comparison()
    assert rows and len({r["actor"] for r in rows}) == len(rows)
    for r in rows:
        assert r["actor"] in names and r["entity"] == names[r["actor"]], r
        for i, p in enumerate(("haircut", "fifo")):
            assert r["amounts"][i] == sum(s.amount for s in res.reports[p].sinks if s.actor == r["actor"])
    exchanges = {e["name"] for e in truth["entities"] if e["kind"] == "exchange"}
    shown = {r["entity"] for r in rows}
    assert len(shown & exchanges) >= 2
    assert not [e for e in shown if "deposit address" in e or "hot wallet" in e or "cold wallet" in e]
    d = res.as_dict()
    assert [e["entity"] for e in d["entities"]] == [r["entity"] for r in rows]
    html = open(res.files["html"]).read()
    assert all(r["entity"] in html for r in rows[:5])


def test_demo_writes_html_and_json(demo):
    ws, res = demo
    html = open(res.files["html"]).read()
    assert html.startswith("<!doctype html>") and "haircut" in html and "fifo" in html
    ents = {row["entity"] for row in res.comparison()}
    assert any(e in html for e in ents)
    d = res.as_dict()
    json.dumps(d)
    assert d["stolen"] == str(res.stolen) and set(d["outcome"]) == {"haircut", "fifo"}


def test_demo_rerun_reuses_and_refuses_other_data(demo, tmp_path):
    ws, res = demo
    again = run_demo(ws, txs=4000, seed=3)
    assert again.reused and "simulate_s" not in again.timings
    assert again.scores == res.scores
    with pytest.raises(UserError, match="different demo parameters"):
        run_demo(ws, txs=5000, seed=3)
    other = Workspace(tmp_path / "other")
    ingest_block_files(other, [dataset("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")])
    with pytest.raises(UserError, match="did not create"):
        run_demo(other, txs=4000, seed=3)


def test_demo_cli(demo):
    ws, res = demo
    r = CliRunner().invoke(main, ["--data", str(ws.path), "demo", "--txs", "4000", "--seed", "3"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for text in ("where the stolen bitcoin went", "outcome per model", "against the simulator's ground truth",
                 "how the two models differ", "summary.html", res.victim):
        assert text in r.output
    r = CliRunner().invoke(main, ["--data", str(ws.path), "demo", "--txs", "4000", "--seed", "3", "--format", "json"])
    assert json.loads(r.output)["scores"]["fifo"]["recall"] == res.scores["fifo"]["recall"]
