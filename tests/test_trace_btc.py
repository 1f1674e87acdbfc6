"""`chaintrace trace` for Bitcoin end to end: hand-built blocks written as a real blk file, ingested with the
real parser, tags from a real TagPack YAML file (and the registry), traced under every policy; the real
mainnet sample (Satoshi -> Hal Finney); limits, partial results, explanations, errors, CLI formats."""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import ingest_block_files
from chaintrace.chains.btc.script import script_for_address
from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.model.encoding import hash160, segwit_encode
from chaintrace.model.networks import network
from chaintrace.store.workspace import Workspace
from chaintrace.trace import trace
from chaintrace.trace.report import TraceReport, check_invariant, entities
from tests.btcfactory import Chain, Tx, blk_file
from tests.conftest import dataset

MAIN = network("main")
TARGET_ONLY = "target-only"  # hand-built blocks at regtest difficulty with mainnet magic and addresses
BTC = 100_000_000
FEE = 10_000
POLICIES = ["poison", "haircut", "fifo", "lifo", "tiho"]


def addr(name: str) -> str:
    return segwit_encode("bc", 0, hash160(name.encode()))


def pay(name: str, value: int):
    return (script_for_address(addr(name), MAIN), value)


class Story:
    """A small DPRK-style story: a victim's 50 BTC stolen, peeled to two exchanges, merged with a clean
    customer's coins at exchange A, the rest held and moved later."""

    def __init__(self, tmp):
        c = Chain()
        _, cb_victim = c.add(miner="victim")
        _, cb_alice = c.add(miner="alice")
        self.stolen = 50 * BTC - FEE
        theft = Tx([(cb_victim.txid, 0)], [pay("h1", self.stolen)])
        c.add([theft])
        peel1 = Tx([(theft.txid, 0)], [pay("depA1", 5 * BTC), pay("h2", self.stolen - 5 * BTC - FEE)])
        c.add([peel1])
        h2 = self.stolen - 5 * BTC - FEE
        self.h3 = h2 - 10 * BTC - 2 * BTC - FEE
        peel2 = Tx([(peel1.txid, 1)], [pay("depB1", 10 * BTC), pay("depA3", 2 * BTC), pay("h3", self.h3)])
        alice = Tx([(cb_alice.txid, 0)], [pay("depA1", 1 * BTC), pay("alice2", 49 * BTC - FEE)])
        c.add([peel2, alice])
        self.alice2 = 49 * BTC - FEE
        self.h4 = self.h3 + self.alice2 - 50 * BTC - FEE
        merge = Tx([(peel2.txid, 2), (alice.txid, 1)],
                   [pay("depA2", 50 * BTC), (b"\x6a\x04test", 0), pay("h4", self.h4)])
        c.add([merge])
        sweep = Tx([(peel1.txid, 0), (alice.txid, 0), (peel2.txid, 1)], [pay("hotA", 8 * BTC - FEE)])
        c.add([sweep])  # exchange A sweeps its deposits (depA1 twice, depA3): MIH links depA3 to depA1
        self.until_height = len(c.blocks)  # height of the last block before the late move
        late = Tx([(merge.txid, 2)], [pay("depB2", self.h4 - FEE)])
        c.add([late])
        self.txs = {"theft": theft, "peel1": peel1, "peel2": peel2, "alice": alice, "merge": merge, "late": late,
                    "sweep": sweep}
        self.blk = tmp / "blk00000.dat"
        self.blk.write_bytes(blk_file(c.blocks, MAIN.magic))
        self.tags = tmp / "exchanges.yaml"
        self.tags.write_text(f"""title: test exchanges
creator: chaintrace tests
currency: BTC
confidence: ownership
source: https://example.org/exchanges
tags:
  - address: {addr("depA1")}
    label: Exchange A
    actor: exchange_a
    category: exchange
  - address: {addr("depA2")}
    label: Exchange A
    actor: exchange_a
    category: exchange
  - address: {addr("depB1")}
    label: Exchange B
    actor: exchange_b
    category: exchange
  - address: {addr("depB2")}
    label: Exchange B
    actor: exchange_b
    category: exchange
  - address: {addr("h1")}
    label: Test hacker
    category: perpetrator
""")
        self.ws = Workspace(tmp / "data")
        ingest_block_files(self.ws, [self.blk], pow_rules=TARGET_ONLY)

    def txid(self, name: str) -> str:
        return self.txs[name].txid[::-1].hex()


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    return Story(tmp_path_factory.mktemp("story"))


def run(story, policy, **kw):
    kw.setdefault("tags", [story.tags])
    kw.setdefault("registry", False)
    r = trace(story.ws, kw.pop("seeds", [story.txid("theft")]), policy=policy, **kw)
    check_invariant(r)
    return r


def sinks_of(r: TraceReport) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in r.sinks:
        out[s.address] = out.get(s.address, 0) + s.amount
    return out


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_conserves_and_finds_the_peels(story, policy):
    r = run(story, policy, min_value=0)
    t = r.totals("BTC")
    assert t["seeded"] == story.stolen
    assert t["sinks"] + t["holdings"] + t["stopped"] + t["fees"] == story.stolen
    s = sinks_of(r)
    # the two peels are unambiguous: every policy sends exactly the peeled amounts there
    assert s[addr("depA1")] == 5 * BTC  # the clean 1 BTC alice deposited there is not counted
    assert s[addr("depB1")] == 10 * BTC
    by = {x.address: x for x in r.sinks}
    assert by[addr("depA1")].hops == 1 and by[addr("depB1")].hops == 2
    assert by[addr("depA1")].label == "Exchange A" and by[addr("depA1")].category == "exchange"
    assert by[addr("depA1")].txid == story.txid("peel1") and by[addr("depA1")].ref == story.txid("peel1") + ":0"
    ents = {e["entity"]: e for e in entities(r)}
    assert set(ents) >= {"exchange_a", "exchange_b"}  # no actor names known: shown by actor id


ACTORPACK = """title: test actors
creator: chaintrace tests
lastmod: 2024-01-01
actors:
  - id: exchange_a
    uri: https://example.org/a
    label: Exchange A Ltd
    lastmod: 2024-01-01
    categories: [exchange]
"""


def test_entities_are_named_by_actor_label(story, tmp_path):
    """Sink transfers group per actor id, and the entity is shown by the actor's label from an ActorPack
    given to the trace or imported into the registry; an actor no pack names keeps its id."""
    pack = tmp_path / "actors.yaml"
    pack.write_text(ACTORPACK)
    plain = run(story, "fifo", min_value=0)
    named = run(story, "fifo", min_value=0, actors=[pack])
    assert named.tags["actor_files"] == [str(pack)] and plain.tags["actor_files"] == []
    a = [s for s in named.sinks if s.actor == "exchange_a"]
    assert a and all(s.actor_name == "Exchange A Ltd" for s in a)
    assert all(s.actor_name is None for s in named.sinks if s.actor == "exchange_b")
    ents = {e["entity"]: e for e in entities(named)}
    assert set(ents) >= {"Exchange A Ltd", "exchange_b"} and "exchange_a" not in ents
    # the same rows and amounts as without names: only the display name changes
    before = {e["actor"]: (e["amount"], e["transfers"], e["addresses"]) for e in entities(plain)}
    assert {e["actor"]: (e["amount"], e["transfers"], e["addresses"]) for e in entities(named)} == before
    assert ents["Exchange A Ltd"]["amount"] == sum(s.amount for s in a)
    # JSON keeps the name; a report read back shows it again
    d = named.to_dict()
    assert {x["actor_name"] for x in d["sinks"] if x["actor"] == "exchange_a"} == {"Exchange A Ltd"}
    assert {e["entity"] for e in entities(TraceReport.from_dict(d))} == set(ents)
    # through the registry: the ActorPack imported into a copy of the workspace (the story's stays clean)
    from chaintrace.intel import import_paths

    ws = Workspace(tmp_path / "data")
    ingest_block_files(ws, [story.blk], pow_rules=TARGET_ONLY)
    import_paths(ws, "actorpack", [pack])
    r = trace(ws, [story.txid("theft")], policy="fifo", min_value=0, tags=[story.tags])
    assert {e["entity"] for e in entities(r)} == set(ents)
    r = trace(ws, [story.txid("theft")], policy="fifo", min_value=0, tags=[story.tags], registry=False)
    assert "Exchange A Ltd" not in {e["entity"] for e in entities(r)}  # --no-registry: imported actors unused
    with pytest.raises(UserError, match="no such file"):
        run(story, "fifo", actors=[tmp_path / "missing.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("tags: []\n")
    with pytest.raises(UserError, match="TagPack"):
        run(story, "fifo", actors=[bad])
    r = CliRunner().invoke(main, ["--data", str(story.ws.path), "trace", "--from", story.txid("theft"), "--tags",
                                  str(story.tags), "--actors", str(pack), "--no-registry", "--policy", "fifo"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "Exchange A Ltd" in r.output and "exchange_b" in r.output


def test_policies_differ_where_taint_meets_clean_coins(story):
    merged = story.h3 + story.alice2
    fifo, lifo, tiho, hair = (sinks_of(run(story, p, min_value=0)) for p in ("fifo", "lifo", "tiho", "haircut"))
    # FIFO: the tainted input comes first, so the first output (exchange A, 50 BTC) takes all of it
    assert fifo[addr("depA2")] == story.h3
    # LIFO: alice's clean coins first; the 50 BTC output gets 50 - alice2 of the taint
    assert lifo[addr("depA2")] == 50 * BTC - story.alice2
    # TIHO: taint goes to the largest output (exchange A's 50 BTC)
    assert tiho[addr("depA2")] == story.h3
    # haircut: the uniform fraction h3/merged of 50 BTC, within one sat of rounding
    assert abs(hair[addr("depA2")] * merged - story.h3 * 50 * BTC) < merged
    # the late move of h4 to exchange B: FIFO left h4 clean; under LIFO h4 is fully tainted (the clean coins
    # went first into the 50 BTC output) and its late move to exchange B carries all of it, less the fee
    assert addr("depB2") not in fifo
    assert lifo[addr("depB2")] == story.h4 - FEE


def test_poison_flags_everything_but_amounts_stay_conserved(story):
    r = run(story, "poison", min_value=0)
    # the OP_RETURN output of the merge and h4 are flagged in full; amounts are the conserved shares
    flagged = {s.address for s in r.sinks} | {h.address for h in r.holdings}
    assert addr("depB2") in flagged
    stopped = {s.reason for s in r.stopped}
    assert "unspendable" in stopped


def test_seed_by_address_and_outpoint_match_txid(story):
    a = run(story, "fifo")
    b = run(story, "fifo", seeds=[addr("h1")])
    c = run(story, "fifo", seeds=[story.txid("theft") + ":0"])
    assert sinks_of(a) == sinks_of(b) == sinks_of(c)
    assert b.seeds[0].kind == "address" and c.seeds[0].kind == "output"


def test_two_seeds_are_attributed_separately(story):
    r = run(story, "fifo", seeds=[story.txid("theft"), story.txid("alice") + ":1"], min_value=0)
    assert [s.amount for s in r.seeds] == [story.stolen, story.alice2]
    depA2 = [s for s in r.sinks if s.address == addr("depA2")][0]
    assert depA2.by_seed == [story.h3, 50 * BTC - story.h3]  # FIFO: the rest of the 50 BTC is alice's
    assert r.to_dict()["sinks"][0]["by_seed"]  # carried in JSON as decimal strings


def test_explain_gives_the_path_with_amounts(story):
    r = run(story, "fifo", explain=[addr("depA2")])
    e = r.explain[0]
    assert e["found"] and len(e["paths"]) == 1
    p = e["paths"][0]
    assert [s.txid for s in p.steps] == [story.txid(x) for x in ("theft", "peel1", "peel2", "merge")]
    assert [s.hop for s in p.steps] == [0, 1, 2, 3]
    assert [s.amount for s in p.steps] == [story.stolen, story.stolen - 5 * BTC - FEE, story.h3, story.h3]
    assert p.kind == "sink" and p.to == addr("depA2")
    r2 = run(story, "fifo", explain=[addr("alice2")])
    assert not r2.explain[0]["found"] and "no traced value" in r2.explain[0]["note"]
    with pytest.raises(UserError, match="never appears"):
        run(story, "fifo", explain=[addr("nobody")])


def test_limits(story):
    r = run(story, "fifo", max_hops=1)
    assert {s.reason for s in r.stopped} == {"max_hops"}
    assert addr("depB1") not in sinks_of(r) and sinks_of(r)[addr("depA1")] == 5 * BTC
    r = run(story, "fifo", min_value=6 * BTC)
    below = [s for s in r.stopped if s.reason == "below_threshold"]
    assert addr("depA1") in {s.address for s in below}
    r = run(story, "fifo", min_share=0.15)  # 15% of ~50 BTC: the 5 BTC peel is below it
    assert r.limits["min_value_effective"] == str(-(-15 * story.stolen // 100))
    assert addr("depA1") in {s.address for s in r.stopped if s.reason == "below_threshold"}
    r = run(story, "lifo", until=story.until_height, min_value=0)
    assert addr("depB2") not in sinks_of(r)
    until = [s for s in r.stopped if s.reason == "until"]
    assert until and until[0].address == addr("h4")


def test_max_txs_gives_a_partial_result(story):
    r = run(story, "haircut", max_txs=2)
    assert r.partial and "max-txs 2" in r.partial_reason
    assert r.stats["txs_processed"] == 2
    assert "max_txs" in {s.reason for s in r.stopped}
    assert r.totals("BTC")["seeded"] == story.stolen


def test_registry_tags_and_clusters(story, tmp_path):
    from chaintrace.intel import import_paths

    ws = Workspace(tmp_path / "data")
    ingest_block_files(ws, [story.blk], pow_rules=TARGET_ONLY)
    import_paths(ws, "tagpack", [story.tags])
    r = trace(ws, [story.txid("theft")], policy="fifo", clusters=False)
    assert sinks_of(r)[addr("depA1")] == 5 * BTC  # tags from the registry, no --tags needed
    assert addr("depA3") not in sinks_of(r)  # untagged deposit: its 2 BTC flows on to the hot wallet
    r = trace(ws, [story.txid("theft")], policy="fifo", registry=False)
    assert not r.sinks
    from chaintrace.graph.cluster import build_clusters  # a missing feature fails, never skips

    build_clusters(ws)
    r = trace(ws, [story.txid("theft")], policy="fifo")
    s = {x.address: x for x in r.sinks}
    assert addr("depA3") in s and s[addr("depA3")].via_cluster and s[addr("depA3")].amount == 2 * BTC
    assert s[addr("depA3")].label == "Exchange A"
    assert r.tags["clusters"]


def test_bad_requests(story, tmp_path):
    ws = story.ws
    cases = [
        (dict(seeds=["00" * 32]), "not in the btc store"),
        (dict(seeds=[story.txid("theft") + ":7"]), "output 7 does not exist"),
        (dict(seeds=["bc1qnotanaddress"]), "not an address, txid"),
        (dict(seeds=[]), "nothing to trace"),
        (dict(policy="seniority"), "not supported for btc"),
        (dict(max_hops=-1), "--max-hops"),
        (dict(min_share=2.0), "--min-share"),
        (dict(max_txs=0), "--max-txs"),
        (dict(since="2030-01-01", until="2020-01-01"), "is after --until"),
        (dict(until="yesterday"), "--until 'yesterday'"),
        (dict(until=1), "after --until"),
        (dict(chain="doge"), "unknown chain .doge.: valid chains are btc, eth"),
    ]
    for kw, msg in cases:
        seeds = kw.pop("seeds", [story.txid("theft")])
        with pytest.raises(UserError, match=msg):
            trace(ws, seeds, registry=False, **kw)
    with pytest.raises(UserError, match="no btc data"):
        trace(Workspace(tmp_path / "empty"), [story.txid("theft")])


def cli(story, *args, data=None):
    return CliRunner().invoke(main, ["--data", str(data or story.ws.path), "trace", *map(str, args)],
                              catch_exceptions=False)


def test_cli_text_json_csv_html(story, tmp_path):
    r = cli(story, "--from", story.txid("theft"), "--tags", story.tags, "--no-registry", "--policy", "fifo",
            "--explain", addr("depA2"), "--out", tmp_path / "r.html")
    assert r.exit_code == 0, r.output
    assert "exchange_a" in r.output and "total seeded" in r.output and "= sum above" in r.output
    assert addr("depA2") in r.output
    html = (tmp_path / "r.html").read_text()
    assert html.startswith("<!doctype html>") and "exchange_a" in html and "Top paths" in html
    r = cli(story, "--from", story.txid("theft"), "--tags", story.tags, "--no-registry", "--policy", "tiho",
            "--format", "json", "--out", tmp_path / "r.json")
    assert r.exit_code == 0
    d = json.loads(r.output)
    assert d == json.loads((tmp_path / "r.json").read_text())
    assert d["schema"] == "chaintrace.trace/1" and d["policy"]["name"] == "tiho"
    assert d["total_seeded"] == {"BTC": str(story.stolen)}
    assert all(isinstance(s["amount"], str) for s in d["sinks"])
    total = sum(int(x["amount"]) for k in ("sinks", "holdings", "stopped") for x in d[k]) + int(d["fees"]["BTC"])
    assert total == story.stolen
    back = TraceReport.from_dict(d)
    check_invariant(back)
    assert back.to_dict()["sinks"] == d["sinks"]
    r = cli(story, "--from", story.txid("theft"), "--tags", story.tags, "--no-registry", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert {x["address"] for x in rows} >= {addr("depA1"), addr("depB1")}
    assert sum(int(x["amount"]) for x in rows) == sum(s.amount for s in
                                                      run(story, "haircut", min_value=None).sinks)


def test_cli_errors_exit_2_without_traceback(story, tmp_path):
    for args in (["--from", "ff" * 32], ["--from", story.txid("theft"), "--policy", "nope"],
                 ["--from", story.txid("theft"), "--max-hops", "-3"],
                 ["--from", story.txid("theft"), "--until", "not-a-date"]):
        r = cli(story, *args, "--no-registry")
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output and "error" in r.output
    r = cli(story, "--from", story.txid("theft"), data=tmp_path / "nothing")
    assert r.exit_code == 2 and "no btc data" in r.output


def test_real_mainnet_satoshi_to_hal(tmp_path):
    """Block 170: Satoshi sends 10 BTC to Hal Finney (the first person-to-person payment)."""
    blk = dataset("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")
    ws = Workspace(tmp_path / "data")
    ingest_block_files(ws, [blk])
    txid = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16"
    hal = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3"
    for policy in POLICIES:
        r = trace(ws, [txid], policy=policy, registry=False, explain=[hal])
        check_invariant(r)
        assert r.totals("BTC")["seeded"] == 50 * BTC  # 10 to Hal + 40 change back to Satoshi
        held = {h.ref: h for h in r.holdings}
        assert held[txid + ":0"].address == hal and held[txid + ":0"].amount == 10 * BTC
        assert r.explain[0]["paths"][0].steps[0].address == hal
    # the 40 BTC change moved on: following it by address gives the same total as by output
    r = trace(ws, [txid + ":1"], policy="fifo", registry=False)
    assert r.totals("BTC")["seeded"] == 40 * BTC and r.stats["txs_processed"] >= 1


def test_overlapping_and_many_seeds(story):
    # a seed downstream of another: already carries its taint, so it seeds nothing more
    r = run(story, "fifo", seeds=[story.txid("theft"), story.txid("peel1") + ":1"])
    assert [s.amount for s in r.seeds] == [story.stolen, 0]
    assert r.seeds[1].nominal == story.stolen - 5 * BTC - FEE
    # more seeds than tracked sources: one source, exact per-seed amounts, no by_seed breakdown
    specs = [story.txid("theft")] + [story.txid("alice") + ":1"] * 70
    r = run(story, "haircut", seeds=specs, min_value=0)
    assert r.seeds[0].amount == story.stolen and r.seeds[1].amount == story.alice2
    assert all(s.amount == 0 and s.outputs == 0 for s in r.seeds[2:])
    assert r.totals("BTC")["seeded"] == story.stolen + story.alice2
    assert all(s.by_seed is None for s in r.sinks)


def test_docs_examples_run(tmp_path):
    """The command examples of docs/tracing.md run as written (workspace and output paths moved to tmp)."""
    import re as _re
    import shlex
    from pathlib import Path

    blk = dataset("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")
    doc = (Path(__file__).resolve().parent.parent / "docs" / "tracing.md").read_text()
    block = _re.findall(r"```\n(chaintrace --data hal.*?)```", doc, _re.S)[0]
    cmds = [c.replace("\\\n", " ") for c in _re.split(r"\n(?=chaintrace )", block.strip())]
    assert len(cmds) == 3
    for c in cmds:
        args = shlex.split(c)[1:]
        args = [str(tmp_path / "hal") if a == "hal" else a for a in args]
        args = [str(blk) if a.endswith("first-100k-blocks.dat") else a for a in args]
        args = [str(tmp_path / "report.json") if a == "report.json" else a for a in args]
        r = CliRunner().invoke(main, args, catch_exceptions=False)
        assert r.exit_code == 0, (c, r.output)
    d = json.loads((tmp_path / "report.json").read_text())
    assert d["seeds"][0]["spec"] == "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S" and d["limits"]["until_height"] == 200


def test_coinjoins_follow_or_stop(tmp_path):
    """Stolen coins enter an equal-output CoinJoin (3 participants, 3 x 1 BTC + 2 change): followed under the
    policy by default, stopped with reason "coinjoin" on request."""
    from chaintrace.detect.coinjoin import detect_coinjoins
    from chaintrace.graph.btc import load_btc_graph

    c = Chain()
    _, cb1 = c.add(miner="victim")
    _, cb2 = c.add(miner="p2")
    _, cb3 = c.add(miner="p3")
    theft = Tx([(cb1.txid, 0)], [pay("thief", 3 * BTC)])
    c.add([theft])
    cj = Tx([(theft.txid, 0), (cb2.txid, 0), (cb3.txid, 0)],
            [pay("mixA", BTC), pay("mixB", BTC), pay("mixC", BTC), pay("chg2", 49 * BTC - FEE),
             pay("chg3", 49 * BTC)])
    c.add([cj])
    (tmp_path / "blk00000.dat").write_bytes(blk_file(c.blocks, MAIN.magic))
    ws = Workspace(tmp_path / "data")
    ingest_block_files(ws, [tmp_path / "blk00000.dat"], pow_rules=TARGET_ONLY)
    g = load_btc_graph(ws)
    assert (detect_coinjoins(g).protocol > 0).sum() == 1  # the detectors recognise it (equal_output)
    seed = [theft.txid[::-1].hex()]
    follow = trace(ws, seed, policy="fifo", registry=False)
    assert follow.stats["txs_processed"] == 2 and not [s for s in follow.stopped if s.reason == "coinjoin"]
    stop = trace(ws, seed, policy="fifo", registry=False, coinjoins="stop")
    check_invariant(stop)
    assert [(s.reason, s.address, s.amount) for s in stop.stopped] == [("coinjoin", addr("thief"), 3 * BTC)]
    assert stop.stats["coinjoins_detected"] == 1 and stop.limits["coinjoins"] == "stop"
    with pytest.raises(UserError, match="--coinjoins"):
        trace(ws, seed, coinjoins="maybe", registry=False)


def test_coinjoins_stop_at_a_whirlpool_mix_on_a_simulated_mainnet_chain(tmp_path):
    """A Whirlpool-shaped mix (5 native-segwit inputs: one remixer at exactly the 0.01 BTC pool, four new
    entrants paying the miner fee; 5 x 0.01 BTC out) at height 5 of a mainnet-magic chain: the mainnet
    activation heights (Whirlpool from 570,000) hide it, as on every simulated mainnet chain; with
    activation_heights=False / --no-activation-heights the trace stops there (reason coinjoin), value exact."""
    from chaintrace.detect.coinjoin import CoinJoinParams, detect_coinjoins
    from chaintrace.graph.btc import load_btc_graph

    pool = 1_000_000
    c = Chain()
    _, cb1 = c.add(miner="victim")
    _, cb2 = c.add(miner="others")
    theft = Tx([(cb1.txid, 0)], [pay("thief", pool + 500), pay("victim2", 50 * BTC - pool - 500 - FEE)])
    fund = Tx([(cb2.txid, 0)], [pay("remixer", pool), pay("e2", pool + 300), pay("e3", pool + 300),
                                pay("e4", pool + 300), pay("others2", 50 * BTC - 4 * pool - 900 - FEE)])
    c.add([theft, fund])
    mix = Tx([(fund.txid, 0), (theft.txid, 0), (fund.txid, 1), (fund.txid, 2), (fund.txid, 3)],
             [pay(f"post{k}", pool) for k in range(5)])
    c.add([mix])
    (tmp_path / "blk00000.dat").write_bytes(blk_file(c.blocks, MAIN.magic))
    ws = Workspace(tmp_path / "data")
    ingest_block_files(ws, [tmp_path / "blk00000.dat"], pow_rules=TARGET_ONLY)
    g = load_btc_graph(ws)
    assert g.network == "main"
    assert (detect_coinjoins(g).protocol > 0).sum() == 0  # height 4 < 570,000
    found = detect_coinjoins(g, CoinJoinParams(mainnet_heights=False))
    assert found.counts()["whirlpool"] == 1 and found.denomination[found.protocol > 0].tolist() == [pool]
    seed = [theft.txid[::-1].hex() + ":0"]
    gated = trace(ws, seed, policy="fifo", registry=False, coinjoins="stop")
    assert gated.stats["coinjoins_detected"] == 0 and gated.limits["activation_heights"] is True
    assert not [s for s in gated.stopped if s.reason == "coinjoin"]
    stop = trace(ws, seed, policy="fifo", registry=False, coinjoins="stop", activation_heights=False)
    check_invariant(stop)
    assert stop.stats["coinjoins_detected"] == 1 and stop.limits["activation_heights"] is False
    assert [(s.reason, s.address, s.amount) for s in stop.stopped] == [("coinjoin", addr("thief"), pool + 500)]
    r = CliRunner().invoke(main, ["--data", str(ws.path), "trace", "--from", seed[0], "--no-registry",
                                  "--coinjoins", "stop", "--no-activation-heights", "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [(s["reason"], s["address"], int(s["amount"])) for s in out["stopped"]] == [
        ("coinjoin", addr("thief"), pool + 500)]
