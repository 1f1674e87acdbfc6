"""Bitcoin simulator scenarios, determinism, options and errors."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import BlockFileError, ingest_block_files
from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.sim import load_truth
from chaintrace.sim.btc import SCENARIOS, simulate_btc
from chaintrace.store.workspace import Workspace

SMALL = 4000


def _digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def _check_balance(inc: dict) -> None:
    b = inc["balance"]
    assert sum(v for k, v in b.items() if k != "stolen_total") == b["stolen_total"] == inc["stolen"]["total"] > 0


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    a = simulate_btc(tmp_path / "a", txs=SMALL, seed=5)
    b = simulate_btc(tmp_path / "b", txs=SMALL, seed=5)
    c = simulate_btc(tmp_path / "c", txs=SMALL, seed=6)
    da, db, dc = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert da == db
    assert set(da) == {"blk00000.dat", "tags.yaml", "actors.yaml", "truth.json", "stolen.txt", "addresses.parquet",
                       "users.parquet"}
    for name in ("blk00000.dat", "truth.json", "tags.yaml", "stolen.txt", "addresses.parquet"):
        assert da[name] != dc[name]
    assert a.tip_hash == b.tip_hash != c.tip_hash


@pytest.mark.parametrize("scenario", ["peel-chain", "fan-out"])
def test_scenarios_without_mixing_services(tmp_path, scenario):
    simulate_btc(tmp_path / "o", txs=6000, seed=3, scenario=scenario)
    t = load_truth(tmp_path / "o")
    inc, = t["incidents"]
    _check_balance(inc)
    assert inc["scenario"] == scenario
    assert inc["mixer_deposits"] == [] and inc["coordinator_payments"] == []
    assert inc["fees"]["by_kind"].keys() <= {"miner"}
    assert not any(c["via_mixer"] or c["via_coinjoin"] for c in inc["cashouts"])
    assert all(c["launderer_inputs"] == 0 for c in t["coinjoins"])  # innocent rounds only
    assert inc["clean_deposits"] == []  # no clean coins mixed in
    # most of the theft is cashed out at exchanges (what the tracer has to find)
    assert inc["balance"]["cashed_out"] > 0.6 * inc["balance"]["stolen_total"]
    kinds = {x["kind"] for x in inc["transactions"]}
    if scenario == "peel-chain":
        assert "peel" in kinds and len(inc["peel_chains"]) >= 2
        assert max(len(c) for c in inc["peel_chains"]) >= 5
    else:
        assert kinds <= {"theft", "fan_out", "deposit", "hop"}
        fan = [x for x in inc["transactions"] if x["kind"] == "fan_out"]
        assert len(fan) > 5 and {x["hops"] for x in fan} == {1, 2}
        assert len(inc["cashouts"]) >= 20


def test_mixer_scenario_cashes_out_through_the_mixer(tmp_path):
    simulate_btc(tmp_path / "o", txs=8000, seed=4, scenario="mixer")
    inc, = load_truth(tmp_path / "o")["incidents"]
    _check_balance(inc)
    assert inc["balance"]["mixer_deposited"] > 0.5 * inc["balance"]["stolen_total"]
    via = inc["cashouts_via_mixer"]
    assert via and all(c["mixed"] > 0 and c["stolen"] == 0 for c in via)
    m = inc["mixed_balance"]
    assert sum(v for k, v in m.items() if k != "received") == m["received"] > 0
    # the mixer's payouts come from other coins: no payout spends the launderer's deposit outputs directly
    deposits = {(d["txid"], d["vout"]) for d in inc["mixer_deposits"]}
    assert deposits and all(p["hops"] >= 3 for p in inc["mixer_payouts"])


def test_coinjoin_scenario_puts_launderer_coins_in_rounds(tmp_path):
    simulate_btc(tmp_path / "o", txs=10000, seed=8, scenario="coinjoin")
    t = load_truth(tmp_path / "o")
    inc, = t["incidents"]
    _check_balance(inc)
    used = {c["protocol"] for c in t["coinjoins"] if c["launderer_inputs"]}
    assert used & {"whirlpool", "wasabi1", "wasabi2"}
    assert int(inc["fees"]["by_kind"].get("coinjoin", 0)) > 0
    assert any(c["via_coinjoin"] for c in inc["cashouts"])
    # innocent users are in the same rounds (the launderer never mixes alone)
    for c in t["coinjoins"]:
        if c["launderer_inputs"] and c["protocol"] != "whirlpool_tx0":
            assert c["participants"] > 1


def test_none_scenario_has_no_incident_but_the_whole_economy(tmp_path):
    r = simulate_btc(tmp_path / "o", txs=SMALL, seed=2, scenario="none")
    t = load_truth(tmp_path / "o")
    assert t["incidents"] == [] and r.stolen_total == 0
    assert t["coinjoins"] and t["mixer"]["txids"]["deposits"]
    assert "perpetrator" not in t["tags"]["by_category"]


@pytest.mark.parametrize("cov", [0.0, 1.0])
def test_tag_coverage_extremes(tmp_path, cov):
    simulate_btc(tmp_path / "o", txs=SMALL, seed=2, scenario="none", tag_coverage=cov)
    t = load_truth(tmp_path / "o")
    addrs = pq.read_table(tmp_path / "o" / "addresses.parquet").to_pylist()
    deposits = {a["address"] for a in addrs if a["role"] == "deposit"}
    text = (tmp_path / "o" / "tags.yaml").read_text()
    tagged = {line.split('"')[1] for line in text.splitlines() if line.startswith("- address:")}
    if cov == 0:
        assert not deposits & tagged
    else:
        assert deposits <= tagged
    hot = {a["address"] for a in addrs if a["role"] == "hot_wallet"}
    assert hot <= tagged
    assert t["tags"]["deposit_coverage"] == cov


def test_mainnet_option_writes_mainnet_magic_and_addresses(tmp_path):
    simulate_btc(tmp_path / "o", txs=SMALL, seed=2, scenario="peel-chain", network="main")
    raw = (tmp_path / "o" / "blk00000.dat").read_bytes()
    assert raw[:4] == bytes.fromhex("f9beb4d9")
    ws = Workspace(tmp_path / "data")
    # mined at regtest difficulty: mainnet's proof-of-work limit refuses it, each block's own target holds
    with pytest.raises(BlockFileError, match="above the network's proof-of-work limit.*--pow-rules target-only"):
        ingest_block_files(ws, [tmp_path / "o"])
    assert not ws.chains()
    rep = ingest_block_files(ws, [tmp_path / "o"], pow_rules="target-only")
    assert rep.network == "main" and rep.unresolved_inputs == 0 and rep.transactions == SMALL
    assert ws.chain("btc").meta["pow_rules"] == "target-only"
    t = load_truth(tmp_path / "o")
    assert all(a[0] in "13" or a.startswith("bc1") for a in t["incidents"][0]["launderer_addresses"])
    # mainnet tags parse with chaintrace's own TagPack reader without a single reject
    from chaintrace.intel.tagpack import parse_tagpack

    parsed = parse_tagpack(tmp_path / "o" / "tags.yaml")
    assert parsed.rejects == [] and len(parsed.tags) == t["tags"]["count"]


def test_bad_arguments_are_user_errors_and_leave_nothing_behind(tmp_path):
    with pytest.raises(UserError, match="unknown scenario"):
        simulate_btc(tmp_path / "x", scenario="nope")
    with pytest.raises(UserError, match="at least 1000"):
        simulate_btc(tmp_path / "x", txs=10)
    with pytest.raises(UserError, match="tag-coverage"):
        simulate_btc(tmp_path / "x", tag_coverage=1.5)
    with pytest.raises(UserError, match="unknown Bitcoin network"):
        simulate_btc(tmp_path / "x", network="dogecoin")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        simulate_btc(tmp_path / "full", txs=SMALL)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_interrupted_run_leaves_no_partial_output(tmp_path, monkeypatch):
    from chaintrace.sim.btc import run as R

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(R, "incident_truth", boom)
    with pytest.raises(KeyboardInterrupt):
        simulate_btc(tmp_path / "o", txs=SMALL, seed=1)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_an_existing_output(tmp_path):
    simulate_btc(tmp_path / "o", txs=SMALL, seed=1)
    with pytest.raises(UserError):
        simulate_btc(tmp_path / "o", txs=SMALL, seed=2)
    simulate_btc(tmp_path / "o", txs=SMALL, seed=2, overwrite=True)
    assert load_truth(tmp_path / "o")["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_cli_simulate_and_ingest(tmp_path):
    runner = CliRunner()
    out = tmp_path / "sim"
    r = runner.invoke(main, ["--data", str(tmp_path / "data"), "simulate", "btc", "--out", str(out), "--txs", "3000",
                             "--seed", "9", "--scenario", "fan-out", "--format", "json", "--ingest"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[:r.output.rindex("}") + 1])
    assert d["transactions"] == 3000 and d["scenario"] == "fan-out"
    assert int(d["incidents"][0]["stolen"]) > 0
    r = runner.invoke(main, ["--data", str(tmp_path / "data"), "stats", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["chains"]["btc"]["rows"]["transactions"] == 3000
    r = runner.invoke(main, ["simulate", "btc", "--out", str(out), "--scenario", "nope"])
    assert r.exit_code == 2
    r = runner.invoke(main, ["simulate", "btc", "--out", str(out)])
    assert r.exit_code == 2 and "not empty" in r.output
    r = runner.invoke(main, ["simulate", "scenarios", "--format", "json"])
    assert {x["scenario"] for x in json.loads(r.output) if x["chain"] == "btc"} == set(SCENARIOS)


def test_demo_size_run(tmp_path):
    # its speed is measured in bench/ (docs/benchmarks.md, simulator section), not asserted here
    r = simulate_btc(tmp_path / "o", txs=20_000, seed=1)
    assert r.transactions == 20_000
    assert os.path.getsize(tmp_path / "o" / "blk00000.dat") > 5_000_000
