"""``trace --through-bridges`` (chaintrace.trace.crosschain) on a purpose-built two-chain workspace.

Bitcoin: hack proceeds paid to a WBTC-style custodian, 10 BTC with an OP_RETURN naming the Ethereum recipient
(the event rule: deterministic), 5 BTC without a memo (amount+time: two mints fit, so two probabilistic
candidates at 0.5); a custodian payout released for an Ethereum deposit into the bridge contract, then cashed out
at a Bitcoin exchange. Ethereum: the WBTC mints (one of them a decoy of the same amount to another address, which
the event rule must not follow), recipients cashing out at an exchange, and stolen WBTC locked in the bridge
contract (Ethereum -> Bitcoin)."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

import tests.btcfactory as F
from chaintrace.chains.btc import ingest_block_files
from chaintrace.chains.eth import ingest_etl
from chaintrace.chains.eth.records import ZERO_ADDRESS
from chaintrace.cli import main
from chaintrace.store.workspace import Workspace
from chaintrace.trace import trace
from chaintrace.trace.crosschain import scale_report
from chaintrace.trace.report import InvariantError, TraceReport, check_invariant
from tests.eth.export import Export, addr

BTC = 100_000_000


def _tagpack(path, currency, tags):
    path.write_text(yaml.safe_dump({"title": f"{currency} bridge test", "creator": "tests", "currency": currency,
                                    "confidence": "ownership", "is_public": True, "tags": tags}))
    return str(path)


@pytest.fixture(scope="module")
def xws(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xbridge")
    w = F.p2wpkh
    c = F.Chain()
    cb = {i: c.add(miner=f"c{i}")[1] for i in range(1, 5)}
    memo = b"\x6a\x14" + bytes.fromhex(addr("alice")[2:])
    t1 = F.Tx([(cb[1].txid, 0)], [(w("custodian"), 10 * BTC), (memo, 0), (w("hacker"), 40 * BTC - 10_000)])
    t2 = F.Tx([(cb[2].txid, 0)], [(w("custodian"), 5 * BTC), (w("hacker2"), 45 * BTC - 10_000)])
    c.add([t1, t2])                                   # height 5
    for _ in range(3):
        c.add()
    # the custodian releases 3 BTC - 5,000 sat to bob for the Ethereum deposit; bob cashes out at an exchange
    t3 = F.Tx([(t2.txid, 0)], [(w("bob"), 3 * BTC - 5_000), (w("custodian"), 2 * BTC - 5_000)])
    c.add([t3])                                       # height 9
    t4 = F.Tx([(t3.txid, 0)], [(w("exchange-btc"), 3 * BTC - 15_000)])
    c.add([t4])
    (tmp / "blk00000.dat").write_bytes(F.blk_file(c.blocks))
    ws = Workspace(tmp / "data")
    ingest_block_files(ws, [tmp / "blk00000.dat"])
    ex = Export()
    ex.block()
    mint_alice = ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "alice", 10 * BTC - 100_000)])   # event
    ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "carol", 10 * BTC - 100_000)])  # decoy: same amount
    mint_dave = ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "dave", 5 * BTC - 20_000)])    # candidate 1
    ex.tx("minter", "wbtc", tokens=[("wbtc", "zero", "erin", 5 * BTC - 30_000)])                # candidate 2
    ex.block()
    ex.tx("alice", "wbtc", tokens=[("wbtc", "alice", "exchange-eth", 6 * BTC)])      # cash-out
    ex.tx("carol", "wbtc", tokens=[("wbtc", "carol", "exchange-eth", 10 * BTC - 100_000)])  # the decoy's own
    ex.tx("dave", "wbtc", tokens=[("wbtc", "dave", "exchange-eth", 5 * BTC - 20_000)])
    ex.tx("victim", "wbtc", tokens=[("wbtc", "victim", "thief", 3 * BTC)])          # Ethereum hack
    ex.block()
    lock = ex.tx("thief", "wbtc", tokens=[("wbtc", "thief", "bridge-eth", 3 * BTC)])  # ETH -> BTC deposit
    for t in ex.tts:
        for k in ("from_address", "to_address"):
            if t[k] == addr("zero"):
                t[k] = ZERO_ADDRESS
    for x in ex.blocks + ex.txs:  # eth block n at 1_700_003_600 + 12 n: after the BTC deposits (height 5)
        x["timestamp" if x["type"] == "block" else "block_timestamp"] += 3600
    out = ex.write(tmp / "export")
    (out / "tokens.json").write_text(json.dumps({"type": "token", "address": addr("wbtc"), "symbol": "WBTC",
                                                 "name": "Wrapped BTC", "decimals": 8, "total_supply": 0,
                                                 "block_number": 0}) + "\n")
    ingest_etl(ws, out)
    tags = [_tagpack(tmp / "btc.yaml", "BTC", [
        {"address": w("custodian"), "label": "WBTC custodian", "category": "bridge", "actor": "wbtc-bridge"},
        {"address": w("exchange-btc"), "label": "Exchange B", "category": "exchange", "actor": "exb"}]),
        _tagpack(tmp / "eth.yaml", "ETH", [
            {"address": addr("bridge-eth"), "label": "WBTC bridge", "category": "bridge", "actor": "wbtc-bridge"},
            {"address": addr("exchange-eth"), "label": "Exchange E", "category": "exchange", "actor": "exe"}])]
    return {"ws": ws, "tags": tags, "t1": t1.txid[::-1].hex(), "t2": t2.txid[::-1].hex(),
            "t3": t3.txid[::-1].hex(), "mint_alice": mint_alice, "mint_dave": mint_dave, "lock": lock,
            "custodian": w("custodian"), "bob": w("bob")}


def _trace(x, seeds, chain="btc", min_confidence=None, **kw):
    return trace(x["ws"], seeds, chain=chain, tags=x["tags"], registry=False, clusters=False, through_bridges=True,
                 bridge_params={"delay_max": 7200, "fee_max": 0.02, "min_confidence": min_confidence}, **kw)


def test_deterministic_continuation_event_match(xws):
    r = _trace(xws, [xws["t1"] + ":0"])
    cc = r.cross_chain
    assert cc["from_chain"] == "btc" and cc["to_chain"] == "eth"
    (f,) = cc["flows"]
    assert f["deterministic"] and f["rule"] == "event" and f["confidence"] == 1.0
    assert f["release"]["recipient"] == addr("alice") and f["release"]["tx"] == xws["mint_alice"]
    # the whole deposit was traced: the whole release crosses (bridge fee 100,000 sat kept on Bitcoin)
    assert f["carried"] == str(10 * BTC - 100_000) and f["carried_src"] == str(10 * BTC - 100_000)
    (d,) = cc["deposits"]
    assert d["traced_in"] == str(10 * BTC) and d["kept"] == "100000" and d["crossed_probabilistic"] == "0"
    sub = f["trace"]
    assert sub.chain == "eth"
    ex = [s for s in sub.sinks if s.label == "Exchange E"]
    assert [s.amount for s in ex] == [6 * BTC]  # alice's cash-out; alice still holds the rest
    assert sum(h.amount for h in sub.holdings) == 4 * BTC - 100_000
    # the decoy (same amount to carol, carol's own cash-out) is not followed
    assert all(s.address != addr("carol") for s in sub.sinks) and all(h.address != addr("carol")
                                                                    for h in sub.holdings)
    tot = cc["totals"]["deterministic"]
    (a,) = tot
    assert tot[a]["carried"] == tot[a]["seeded"] == str(10 * BTC - 100_000)
    assert cc["totals"]["probabilistic"] == {}


def test_probabilistic_continuation_split_between_two_candidates(xws):
    r = _trace(xws, [xws["t2"] + ":0"])
    flows = r.cross_chain["flows"]
    assert {f["release"]["recipient"] for f in flows} == {addr("dave"), addr("erin")}
    for f in flows:
        assert not f["deterministic"] and f["rule"] == "amount+time" and f["confidence"] == 0.5
        assert int(f["carried"]) == int(f["release"]["amount"]) // 2
    dave = next(f for f in flows if f["release"]["recipient"] == addr("dave"))
    assert [(s.label, s.amount) for s in dave["trace"].sinks] == [("Exchange E", (5 * BTC - 20_000) // 2)]
    (d,) = r.cross_chain["deposits"]
    crossed = int(d["crossed_probabilistic"])
    assert d["crossed_deterministic"] == "0" and crossed == sum(int(f["carried"]) for f in flows)
    assert int(d["kept"]) == 5 * BTC - crossed > 0
    assert r.cross_chain["totals"]["deterministic"] == {}
    # a minimum confidence above the split carries nothing
    r2 = _trace(xws, [xws["t2"] + ":0"], min_confidence=0.6)
    assert r2.cross_chain["flows"] == [] and {s["reason"] for s in r2.cross_chain["skipped"]} == {"below_min_confidence"}


def test_ethereum_to_bitcoin_through_the_bridge_contract(xws):
    r = _trace(xws, [xws["lock"]], chain="eth", policy="fifo")
    (f,) = r.cross_chain["flows"]
    assert f["from_chain"] == "eth" and f["to_chain"] == "btc" and f["rule"] == "amount+time"
    assert f["release"]["tx"] == xws["t3"] and f["release"]["recipient"] == xws["bob"]
    assert f["carried"] == str(3 * BTC - 5_000) and f["carried_asset"] == "BTC"
    sub = f["trace"]
    assert sub.policy["name"] == "fifo"
    assert [(s.label, s.amount) for s in sub.sinks] == [("Exchange B", 3 * BTC - 15_000)]
    assert sub.fees["BTC"] == 10_000


def test_conservation_and_json_round_trip(xws):
    r = _trace(xws, [xws["t1"] + ":0", xws["t2"] + ":0"])
    check_invariant(r)
    d = json.loads(r.to_json())
    assert {f["deterministic"] for f in d["cross_chain"]["flows"]} == {True, False}
    back = TraceReport.from_dict(d)
    check_invariant(back)
    assert back.cross_chain["flows"][0]["trace"].total_seeded == r.cross_chain["flows"][0]["trace"].total_seeded
    # tampering with a flow breaks the exact checks
    bad = TraceReport.from_dict(d)
    bad.cross_chain["deposits"][0]["kept"] = str(int(bad.cross_chain["deposits"][0]["kept"]) + 1)
    with pytest.raises(InvariantError):
        check_invariant(bad)
    bad = TraceReport.from_dict(d)
    bad.cross_chain["flows"][0]["carried"] = str(int(bad.cross_chain["flows"][0]["carried"]) - 1)
    with pytest.raises(InvariantError):
        check_invariant(bad)


def test_scale_report_is_exact_for_awkward_shares(xws):
    r = trace(xws["ws"], [xws["t3"] + ":0"], tags=xws["tags"], registry=False, clusters=False)
    for num, den in [(1, 3), (2, 7), (12345, 99991), (0, 5), (5, 5)]:
        s = scale_report(r, num, den)
        check_invariant(s)
        assert s.total_seeded["BTC"] == r.total_seeded["BTC"] * num // den


def test_without_through_bridges_the_trace_stops_and_cli_reports(xws, tmp_path):
    r = trace(xws["ws"], [xws["t1"] + ":0"], tags=xws["tags"], registry=False, clusters=False)
    assert r.cross_chain is None and r.sinks[0].bridge[0]["recipient"] == addr("alice")
    base = ["--data", str(xws["ws"].path), "trace", "--from", xws["t1"] + ":0", "--from", xws["t2"] + ":0",
            "--tags", xws["tags"][0], "--tags", xws["tags"][1], "--no-registry", "--no-clusters",
            "--through-bridges", "--bridge-delay-max", "7200", "--bridge-fee-max", "0.02",
            "--explain", addr("alice")]
    out = CliRunner().invoke(main, base + ["--format", "json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert len(d["cross_chain"]["flows"]) == 3
    ex = [e for f in d["cross_chain"]["flows"] for e in f["trace"]["explain"] if e["found"]]
    assert ex and ex[0]["address"] == addr("alice")
    out = CliRunner().invoke(main, base + ["--out", str(tmp_path / "r.html")], terminal_width=250)
    assert out.exit_code == 0, out.output
    assert "CROSS-CHAIN" in out.output and "event" in out.output and "amount+time" in out.output
    assert "exchange" in out.output and "PROBABILISTIC" in out.output and "DETERMINISTIC" in out.output
    html = (tmp_path / "r.html").read_text()
    assert "Cross-chain" in html and addr("alice") in html
    bad = CliRunner().invoke(main, base + ["--bridge-min-confidence", "2"])
    assert bad.exit_code == 2 and "--bridge-min-confidence" in bad.output


def test_documented_two_chain_example(tmp_path, monkeypatch):
    """docs/tracing.md 'Through bridges': simulate both chains, trace across both ways; the deterministic
    continuation reaches only the thief's true cash-outs (truth.json), conservation exact per chain."""
    from tests.conftest import doc_commands, run_commands

    cmds = doc_commands("tracing.md", r"## Through bridges")
    assert [c[2] for c in cmds] == ["simulate", "trace", "trace"]
    monkeypatch.chdir(tmp_path)
    outs = run_commands(cmds)
    assert "DETERMINISTIC cross-chain flows (5)" in outs[1] and "PROBABILISTIC cross-chain flows (4)" in outs[1]
    assert "7.90464984 WBTC" in outs[1] and "sinks 6.63560110" in outs[1]
    truth = json.loads((tmp_path / "sim-bridge" / "truth.json").read_text())
    true_refs = {c["ref"]: c["amount"] for c in truth["btc_to_eth"]["cashouts"]}
    ws = Workspace(tmp_path / "bridge-ws")
    from chaintrace.trace import read_seed_file

    r = trace(ws, read_seed_file(tmp_path / "sim-bridge" / "stolen-btc.txt"), tags=[str(tmp_path / "sim-bridge" / "tags.yaml")],
              registry=False, through_bridges=True, bridge_params={"delay_max": 7200})
    det = [s for f in r.cross_chain["flows"] if f["deterministic"] for s in f["trace"].sinks]
    assert det and all(s.ref in true_refs and s.amount <= true_refs[s.ref] for s in det)
    memo = {d["ref"] for d in truth["btc_to_eth"]["deposits"] if d["memo"]}
    assert {f["deposit"]["ref"] for f in r.cross_chain["flows"] if f["deterministic"]} == memo
    back = TraceReport.read_json(tmp_path / "xb-eth.json")
    check_invariant(back)
    assert back.cross_chain["to_chain"] == "btc" and back.cross_chain["flows"]
    assert not any(f["deterministic"] for f in back.cross_chain["flows"])  # no memo on the Ethereum side


def test_bridge_simulator_truth_is_exact_and_reproducible(tmp_path):
    from chaintrace.sim.bridge_world import simulate_bridge

    a = simulate_bridge(tmp_path / "a", seed=3, params={"hacks": 3, "users": 10})
    simulate_bridge(tmp_path / "b", seed=3, params={"hacks": 3, "users": 10})
    for f in ("btc/blk00000.dat", "eth/token_transfers.csv", "truth.json", "tags.yaml"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    t = json.loads((tmp_path / "a" / "truth.json").read_text())
    p = t["params"]
    for d in ("btc_to_eth", "eth_to_btc"):
        deps = t[d]["deposits"]
        assert len(deps) == 3 and t[d]["seeds"]
        for x in deps:
            fee = x["amount"] - x["release"]["amount"]
            assert p["fee_min"] * x["amount"] - 1 <= fee <= p["fee_max"] * x["amount"]
        rel = {x["release"]["recipient"]: x["release"]["amount"] for x in deps}
        assert sum(x["amount"] for x in deps) <= t[d]["stolen"]
        assert t[d]["cashout_total"] == sum(c["amount"] for c in t[d]["cashouts"]) > 0
        assert all(c["amount"] <= max(rel.values()) for c in t[d]["cashouts"])
    assert a["btc_blocks"] == 140 and a["eth_transactions"] > 0
    with pytest.raises(ValueError):
        simulate_bridge(tmp_path / "c", seed=3, params={"users": 500})


def test_eth_transfer_seed_names_the_transfer(xws):
    from chaintrace.errors import UserError

    r = trace(xws["ws"], [xws["mint_alice"] + ":log0"], chain="eth", tags=xws["tags"], registry=False)
    assert r.seeds[0].kind == "transfer" and r.total_seeded == {next(iter(r.total_seeded)): 10 * BTC - 100_000}
    with pytest.raises(UserError, match="log7"):
        trace(xws["ws"], [xws["mint_alice"] + ":log7"], chain="eth", registry=False)
