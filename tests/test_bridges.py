"""Bridge matching (chaintrace.detect.bridges) on purpose-built data: a deposit whose memo names its
destination (deterministic), an amount+time match, decoys with the wrong fee or delay, an ambiguous pair split."""
from __future__ import annotations

import numpy as np

from chaintrace.detect.bridges import match_bridge

P = {"fee_min": 0.001, "fee_max": 0.01, "fee_fixed": 0, "delay_min": 60, "delay_max": 3600}


def _m(res):
    return sorted(zip(res["dep"].tolist(), res["rel"].tolist(), res["rule"].tolist(),
                      res["confidence"].round(3).tolist()))


def test_event_named_destination_is_deterministic_even_beside_a_closer_amount():
    # deposit 0 names recipient 7; release 0 pays 99 with a closer amount, release 1 pays 7 (fee 0.5%)
    res = match_bridge([100_000_000], [1000], [7], [99_900_000, 99_500_000], [1500, 1600], [99, 7], **P)
    assert _m(res) == [(0, 1, 0, 1.0)]
    assert res["fee"].tolist() == [500_000] and res["delay"].tolist() == [600]
    # exact: what crossed = what arrived + the fee
    assert 99_500_000 + int(res["fee"][0]) == 100_000_000


def test_named_destination_not_paid_is_not_matched_by_amount():
    res = match_bridge([100_000_000], [1000], [7], [99_900_000], [1500], [99], **P)
    assert len(res["dep"]) == 0


def test_amount_time_match_and_decoys_with_wrong_fee_or_delay():
    dep_v, dep_t = [50_000_000], [10_000]
    rel_v = [49_800_000,   # fee 0.4%, delay 300: the match
             49_000_000,   # fee 2%: too high
             50_000_000,   # fee 0: below fee_min
             49_800_000,   # right amount, delay 2 h: outside the window
             49_800_000]   # right amount, before the deposit
    rel_t = [10_300, 10_400, 10_500, 10_000 + 7200, 9_000]
    res = match_bridge(dep_v, dep_t, [-1], rel_v, rel_t, [1, 2, 3, 4, 5], **P)
    assert _m(res) == [(0, 0, 1, 1.0)]
    assert res["fee"].tolist() == [200_000] and res["delay"].tolist() == [300]


def test_ambiguity_is_split_and_never_sums_over_one():
    # two equal deposits a minute apart, two equal releases: amount and time cannot tell which is which
    res = match_bridge([10_000_000, 10_000_000], [0, 60], [-1, -1], [9_950_000, 9_950_000], [600, 700], [1, 2], **P)
    assert _m(res) == [(0, 0, 1, 0.5), (0, 1, 1, 0.5), (1, 0, 1, 0.5), (1, 1, 1, 0.5)]
    for side in ("dep", "rel"):
        tot = np.bincount(res[side], weights=res["confidence"])
        assert (tot <= 1.0 + 1e-12).all()


def test_event_match_takes_its_release_out_of_the_amount_matching():
    # deposit 0 (memo -> 7) and deposit 1 (no memo) both fit release 0; the memo wins it, deposit 1 keeps release 1
    res = match_bridge([10_000_000, 10_000_000], [0, 10], [7, -1], [9_950_000, 9_960_000], [600, 650], [7, 8], **P)
    assert _m(res) == [(0, 0, 0, 1.0), (1, 1, 1, 1.0)]


# ---------------------------------------------------------------- a workspace with both chains

import json  # noqa: E402

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402

import tests.btcfactory as F  # noqa: E402
from chaintrace.chains.btc import ingest_block_files  # noqa: E402
from chaintrace.chains.eth import ingest_etl  # noqa: E402
from chaintrace.chains.eth.records import ZERO_ADDRESS  # noqa: E402
from chaintrace.cli import main  # noqa: E402
from chaintrace.graph.bridges import bridge_matches  # noqa: E402
from chaintrace.store.workspace import Workspace  # noqa: E402
from tests.eth.export import Export, addr  # noqa: E402

BTC = 100_000_000


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """BTC hack proceeds paid to a custodian (one with an OP_RETURN memo naming the ETH recipient, one without),
    WBTC minted on Ethereum; a WBTC burn released back as BTC by the custodian; a decoy mint with a 5% gap."""
    tmp = tmp_path_factory.mktemp("bridges")
    w = F.p2wpkh
    c = F.Chain()  # block times 1_700_000_600 + 600 * i
    cb = {i: c.add(miner=f"c{i}")[1] for i in range(1, 4)}
    memo = b"\x6a\x14" + bytes.fromhex(addr("alice")[2:])
    t1 = F.Tx([(cb[1].txid, 0)], [(w("custodian"), 10 * BTC), (memo, 0), (w("hacker"), 40 * BTC - 10_000)])
    t2 = F.Tx([(cb[2].txid, 0)], [(w("custodian"), 5 * BTC), (w("hacker2"), 45 * BTC - 10_000)])
    c.add([t1, t2])                                   # height 4, time 1_700_002_400
    for _ in range(3):
        c.add()
    # the custodian releases 2 BTC - fee for a burn (height 8)
    t3 = F.Tx([(t2.txid, 0)], [(w("bob"), 2 * BTC - 300_000), (w("custodian"), 3 * BTC - 10_000)])
    c.add([t3])
    (tmp / "blk00000.dat").write_bytes(F.blk_file(c.blocks))
    ws = Workspace(tmp / "data")
    ingest_block_files(ws, [tmp / "blk00000.dat"])
    ex = Export()
    ex.block()
    ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "alice", 10 * BTC - 100_000)])  # event: memo names alice
    ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "carol", 10 * BTC - 100_000)])  # decoy: same amount, not alice
    ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "dave", 5 * BTC - 20_000)])     # amount+time for t2
    ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "eve", 5 * BTC - 25 * 10**6)])  # decoy: 5% fee
    ex.block()
    ex.tx("bob_eth", "wbtc", tokens=[("wbtc", "bob_eth", "zero", 2 * BTC)])          # burn -> t3 release
    for t in ex.tts:
        for k in ("from_address", "to_address"):
            if t[k] == addr("zero"):
                t[k] = ZERO_ADDRESS
    for x in ex.blocks + ex.txs:  # eth blocks at 1_700_003_000 + 12 n: after the BTC deposits (1_700_002_400)
        x["timestamp" if x["type"] == "block" else "block_timestamp"] += 3000
    out = ex.write(tmp / "export")
    (out / "tokens.json").write_text(json.dumps({"type": "token", "address": addr("wbtc"), "symbol": "WBTC",
                                                 "name": "Wrapped BTC", "decimals": 8, "total_supply": 0,
                                                 "block_number": 0}) + "\n")
    ingest_etl(ws, out)
    return {"ws": ws, "blk": tmp / "blk00000.dat", "t1": t1.txid[::-1].hex(), "t2": t2.txid[::-1].hex(), "t3": t3.txid[::-1].hex(),
            "custodian": w("custodian"), "bob": w("bob")}


def test_store_matches_both_directions(both):
    r = bridge_matches(both["ws"], [both["custodian"]], token="WBTC", delay_max=7200, fee_max=0.02)
    got = {(m["deposit"]["tx"], m["release"]["recipient"], m["rule"], m["confidence"]) for m in r["matches"]}
    assert got == {(both["t1"], addr("alice"), "event", 1.0),
                   (both["t2"], addr("dave"), "amount+time", 1.0)} | {
        (m["deposit"]["tx"], both["bob"], "amount+time", 1.0) for m in r["matches"] if m["from_chain"] == "eth"}
    assert r["deterministic"] == 1 and r["probabilistic"] == 2
    back = [m for m in r["matches"] if m["from_chain"] == "eth"]
    assert len(back) == 1 and back[0]["release"]["tx"] == both["t3"]
    for m in r["matches"]:  # exact: deposit = release + fee (satoshi; WBTC has 8 decimals)
        assert m["deposit"]["amount"] == m["release"]["amount"] + m["fee_sat"]
        assert m["delay_s"] > 0


def test_cli_json_csv_text(both):
    base = ["--data", str(both["ws"].path), "detect", "bridges", "--bridge", both["custodian"], "--token", "WBTC",
            "--bridge-delay-max", "7200", "--bridge-fee-max", "0.02"]
    r = CliRunner().invoke(main, base + ["--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["deterministic"] == 1
    r = CliRunner().invoke(main, base + ["--format", "csv"])
    lines = r.output.strip().splitlines()
    assert lines[0].startswith("from_chain,deposit_tx") and len(lines) == 4
    assert any(both["t1"] in x and addr("alice") in x and ",event," in x for x in lines)
    r = CliRunner().invoke(main, base)
    assert "1 deterministic (event) match(es), 2 probabilistic" in r.output
    r = CliRunner().invoke(main, ["--data", str(both["ws"].path), "detect", "bridges"])
    assert r.exit_code == 2 and "--bridge" in r.output


def test_trace_stops_at_the_bridge_with_the_matched_release(both, tmp_path):
    import yaml

    from chaintrace.report.html import render_html
    from chaintrace.report.text import to_text
    from chaintrace.trace import trace
    from chaintrace.trace.report import TraceReport

    tags = tmp_path / "bridge.yaml"
    tags.write_text(yaml.safe_dump({"title": "bridge", "creator": "tests", "currency": "BTC", "category": "bridge",
                                    "confidence": "ownership", "is_public": True,
                                    "tags": [{"address": both["custodian"], "label": "WBTC custodian"}]}))
    r = trace(both["ws"], [both["t1"]], chain="btc", tags=[str(tags)], registry=False, clusters=False,
              explain=[both["custodian"]])
    sinks = [s for s in r.sinks if s.category == "bridge"]
    assert len(sinks) == 1 and sinks[0].amount == 10 * BTC and sinks[0].ref == both["t1"] + ":0"
    assert sinks[0].bridge == [{"chain": "eth", "tx": sinks[0].bridge[0]["tx"], "ref": sinks[0].bridge[0]["ref"],
                                "recipient": addr("alice"), "amount": str(10 * BTC - 100_000), "asset": "WBTC",
                                "fee_sat": "100000", "delay_s": 600, "rule": "event", "confidence": 1.0}]
    # the trace stops there: the bridge deposit is a sink, value still conserved exactly
    t = r.totals("BTC")
    assert t["sinks"] + t["holdings"] + t["stopped"] + t["fees"] == t["seeded"]
    d = json.loads(r.to_json())
    assert d["sinks"][0]["bridge"][0]["recipient"] == addr("alice")
    assert TraceReport.from_dict(d).sinks[0].bridge == sinks[0].bridge
    txt = to_text(r, width=250)
    assert "bridges: 1 deposit(s) into a bridge" in txt and addr("alice") in txt and "event" in txt
    assert "bridge: released on eth" in txt  # --explain names the release
    assert addr("alice") in render_html([r]) and "Bridges: deposits matched" in render_html([r])


def test_simulated_bridge_traffic_truth_and_matcher():
    from chaintrace.sim.bridge import bridge_traffic

    t = bridge_traffic(7, deposits=120)
    # exact truth: every release of a deposit is the deposit minus a fee inside the drawn range
    d = np.flatnonzero(t["truth"] >= 0)
    fee = t["dep_value"][d] - t["rel_value"][t["truth"][d]]
    assert (fee >= 0).all() and (fee <= t["dep_value"][d] * t["params"]["fee_max"]).all()
    r = match_bridge(t["dep_value"], t["dep_time"], t["dep_dest"], t["rel_value"], t["rel_time"],
                     t["rel_recipient"], **t["params"])
    ok = t["truth"][r["dep"]] == r["rel"]
    assert ok[r["rule"] == 0].all() and (r["rule"] == 0).sum() == ((t["dep_dest"] >= 0) & (t["truth"] >= 0)).sum()
    assert set(r["dep"][ok].tolist()) == set(d.tolist())  # every true pair is among the candidates
    for side in ("dep", "rel"):
        assert (np.bincount(r[side], weights=r["confidence"]) <= 1.0 + 1e-12).all()


def test_documented_examples(both):
    """docs/detection.md's bridge examples run against this workspace and show their key output."""
    import re
    import shlex

    from tests.conftest import REPO

    text = (REPO / "docs" / "detection.md").read_text().split("## Bridges", 1)[1]
    lines = [x.strip() for x in re.findall(r"^```\n(.*?)^```", text, re.S | re.M)[0].splitlines() if x.strip()]
    assert len(lines) == 2
    for line in lines:
        cmd, expect = line.split("# ->")
        argv = shlex.split(cmd)[1:]
        assert argv[:2] == ["--data", "bridge-ws"] and both["custodian"] in argv
        r = CliRunner().invoke(main, ["--data", str(both["ws"].path), *argv[2:]])
        assert r.exit_code == 0, r.output
        assert expect.strip() in r.output, (line, r.output)


def test_without_the_other_chain_the_bridge_sink_says_unknown(both, tmp_path):
    import yaml

    from chaintrace.report.text import to_text
    from chaintrace.trace import trace

    ws = Workspace(tmp_path / "btc-only")
    ingest_block_files(ws, [both["blk"]])
    tags = tmp_path / "bridge.yaml"
    tags.write_text(yaml.safe_dump({"title": "bridge", "creator": "tests", "currency": "BTC", "category": "bridge",
                                    "confidence": "ownership", "is_public": True,
                                    "tags": [{"address": both["custodian"], "label": "WBTC custodian"}]}))
    r = trace(ws, [both["t1"]], chain="btc", tags=[str(tags)], registry=False, clusters=False)
    s = [x for x in r.sinks if x.category == "bridge"]
    assert len(s) == 1 and s[0].bridge == []
    assert "not in this workspace" in r.assumptions["bridges"] and "unknown" in r.assumptions["bridges"]
    assert "no match" in to_text(r, width=250)
    res = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "bridges", "--bridge", both["custodian"]])
    assert res.exit_code == 2 and "needs both btc and eth data" in res.output
