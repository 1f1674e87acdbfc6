"""`trace --coinjoins link` (post-mix linking, issue 15) on purpose-built chains: hand-built blocks written as a
real blk file, ingested with the real parser, tags from a real TagPack file.

The story: a theft of 50 BTC; 5 BTC deposited at exchange X (deposit address depX, tagged); 1 BTC into an
equal-output CoinJoin with two other participants (3 x 1 BTC + their change); afterwards the thief's mix
output is deposited at depX again (rule deposit_reuse), an innocent participant's goes to bob, and in the
second chain the third one is co-spent with the thief's traced change (rule co_spend)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import ingest_block_files
from chaintrace.cli import main
from chaintrace.detect import postmix as P
from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace
from chaintrace.trace import trace
from chaintrace.trace.report import InvariantError, TraceReport, check_invariant
from tests.btcfactory import Chain, Tx, blk_file
from tests.test_trace_btc import BTC, FEE, MAIN, TARGET_ONLY, addr, pay


def build(tmp, co_spend: bool):
    c = Chain()
    _, cb1 = c.add(miner="victim")
    _, cb2 = c.add(miner="p2")
    _, cb3 = c.add(miner="p3")
    rest = 50 * BTC - BTC - FEE
    theft = Tx([(cb1.txid, 0)], [pay("thief", BTC), pay("h1", rest)])
    c.add([theft])
    dep = Tx([(theft.txid, 1)], [pay("depX", 5 * BTC), pay("h2", rest - 5 * BTC - FEE)])
    c.add([dep])
    cj = Tx([(theft.txid, 0), (cb2.txid, 0), (cb3.txid, 0)],
            [pay("mixA", BTC), pay("mixB", BTC), pay("mixC", BTC), pay("chg2", 49 * BTC - FEE),
             pay("chg3", 49 * BTC)])
    c.add([cj])
    again = Tx([(cj.txid, 0)], [pay("depX", BTC - FEE)])  # the thief deposits its mix output at depX again
    bob = Tx([(cj.txid, 1)], [pay("bob", BTC - FEE)])  # an innocent participant pays bob
    later = [again, bob]
    if co_spend:  # mixC spent together with the thief's traced change h2
        later.append(Tx([(cj.txid, 2), (dep.txid, 1)], [pay("h3", BTC + rest - 5 * BTC - 2 * FEE)]))
    c.add(later)
    (tmp / "blk00000.dat").write_bytes(blk_file(c.blocks, MAIN.magic))
    tags = tmp / "tags.yaml"
    tags.write_text(f"""title: test exchange
creator: chaintrace tests
currency: BTC
confidence: ownership
source: https://example.org/exchanges
tags:
  - address: {addr("depX")}
    label: Exchange X
    actor: exchange_x
    category: exchange
""")
    ws = Workspace(tmp / "data")
    ingest_block_files(ws, [tmp / "blk00000.dat"], pow_rules=TARGET_ONLY)
    return ws, tags, theft.txid[::-1].hex(), cj.txid[::-1].hex()


@pytest.fixture(scope="module")
def chain1(tmp_path_factory):
    return build(tmp_path_factory.mktemp("postmix1"), co_spend=False)


@pytest.fixture(scope="module")
def chain2(tmp_path_factory):
    return build(tmp_path_factory.mktemp("postmix2"), co_spend=True)


@pytest.mark.parametrize("policy", ["haircut", "fifo", "tiho"])
def test_deposit_reuse_links_the_thiefs_mix_output(chain1, policy):
    ws, tags, theft, cj = chain1
    stop = trace(ws, [theft], policy=policy, tags=[tags], registry=False, clusters=False, coinjoins="stop")
    r = trace(ws, [theft], policy=policy, tags=[tags], registry=False, clusters=False, coinjoins="link")
    check_invariant(r)
    # the deterministic part is the `stop` report: 1 BTC stopped at the round
    assert [(s.reason, s.amount) for s in r.stopped if s.reason == "coinjoin"] == [("coinjoin", BTC)]
    assert [(s.address, s.amount) for s in r.sinks] == [(s.address, s.amount) for s in stop.sinks]
    sec = r.coinjoin_links
    assert sec["rounds"] == [{"txid": cj, "traced_in": str(BTC), "outputs": 5, "linked_outputs": 1,
                              "linked_out": str(BTC), "held": "0"}]
    (link,) = sec["links"]
    assert link["output"] == f"{cj}:0" and link["rule"] == "deposit_reuse" and link["hops"] == 1
    assert link["address"] == addr("mixA")
    assert link["amount"] == str(BTC) and link["confidence"] == P.CONFIDENCE[P.DEPOSIT_REUSE]
    sub = sec["trace"]
    assert [(s.address, s.amount) for s in sub.sinks] == [(addr("depX"), BTC - FEE)]
    assert sub.total_seeded["BTC"] == BTC and sub.fees["BTC"] == FEE
    assert not any(s.address == addr("bob") for s in sub.sinks + sub.holdings)


def test_co_spend_links_and_the_round_is_shared_in_proportion(chain2):
    ws, tags, theft, cj = chain2
    r = trace(ws, [theft], policy="haircut", tags=[tags], registry=False, clusters=False, coinjoins="link")
    check_invariant(r)
    sec = r.coinjoin_links
    rules = {x["output"]: (x["rule"], x["amount"]) for x in sec["links"]}
    # two linked outputs of 1 BTC each for 1 BTC traced in: half each
    assert rules == {f"{cj}:0": ("deposit_reuse", str(BTC // 2)), f"{cj}:2": ("co_spend", str(BTC // 2))}
    (rnd,) = sec["rounds"]
    assert int(rnd["linked_out"]) + int(rnd["held"]) == BTC and int(rnd["linked_out"]) == BTC
    sub = sec["trace"]
    assert sum(s.amount for s in sub.sinks) + sum(h.amount for h in sub.holdings) + sub.fees["BTC"] == BTC
    assert {s.address for s in sub.sinks} == {addr("depX")} and {h.address for h in sub.holdings} == {addr("h3")}


def test_report_round_trip_cli_and_checks(chain1):
    ws, tags, theft, cj = chain1
    res = CliRunner().invoke(main, ["--data", str(ws.path), "trace", "--from", theft, "--no-registry", "--tags",
                                    str(tags), "--no-clusters", "--coinjoins", "link", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["limits"]["coinjoins"] == "link" and d["coinjoin_links"]["links"][0]["rule"] == "deposit_reuse"
    back = TraceReport.from_dict(d)
    check_invariant(back)
    assert back.coinjoin_links["trace"].sinks[0].address == addr("depX")
    from chaintrace.report.html import render_html

    page = render_html([back])
    assert "Heuristic: past CoinJoins" in page and "deposit_reuse" in page
    back.coinjoin_links["rounds"][0]["held"] = "1"  # conservation is checked exactly
    with pytest.raises(InvariantError, match="linked out"):
        check_invariant(back)
    res = CliRunner().invoke(main, ["--data", str(ws.path), "trace", "--from", theft, "--no-registry", "--tags",
                                    str(tags), "--no-clusters", "--coinjoins", "link"])
    assert res.exit_code == 0 and "CoinJoin" in res.output, res.output
    with pytest.raises(UserError, match="Bitcoin only"):
        trace(ws, ["0x" + "00" * 32], chain="eth", coinjoins="link")


def test_link_postmix_walk_limits():
    """The pure walk: a link two transactions after the round; a remix (another CoinJoin) and a service on
    the way stop the walk; max_hops bounds it; co-spending an anchor output links."""
    # tx 0: the round, outputs 0, 1, 2; tx 1 spends 0 -> out 3; tx 2 spends 3 -> out 4 at the anchor address 9;
    # tx 3 (a CoinJoin) spends 1 -> out 5, which tx 4 pays to 9 (out 6); tx 5 spends 2 -> out 7 at a service
    # (address 7), which tx 6 pays to 9 (out 8)
    tx_out = np.array([0, 3, 4, 5, 6, 7, 8, 9])
    out_addr = np.array([0, 1, 2, 3, 9, 5, 9, 7, 9])
    out_spender = np.array([1, 3, 5, 2, -1, 4, -1, 6, -1])
    tx_in = np.array([0, 0, 1, 2, 3, 4, 5, 6])
    in_output = np.array([0, 3, 1, 5, 2, 7])
    anchor_addr = np.zeros(10, bool)
    anchor_addr[9] = True
    stop_addr = np.zeros(10, bool)
    stop_addr[7] = True
    stop_tx = np.array([True, False, False, True, False, False, False])
    L = P.link_postmix(tx_out, tx_in, out_addr, out_spender, in_output, np.array([0]), anchor_addr,
                       np.zeros(9, bool), stop_addr, stop_tx)
    assert L.out.tolist() == [0] and L.hops.tolist() == [2] and L.rule.tolist() == [P.DEPOSIT_REUSE]
    assert L.evidence_tx.tolist() == [2]
    L1 = P.link_postmix(tx_out, tx_in, out_addr, out_spender, in_output, np.array([0]), anchor_addr,
                        np.zeros(9, bool), stop_addr, stop_tx, P.PostmixParams(max_hops=1))
    assert L1.out.tolist() == []
    assert P.linked_amounts(10, np.array([4, 4])).tolist() == [4, 4]
    assert P.linked_amounts(10, np.array([10, 5])).tolist() == [6, 3]
    L2 = P.link_postmix(tx_out, tx_in, out_addr, out_spender, in_output, np.array([3]), anchor_addr,
                        np.zeros(9, bool), stop_addr, stop_tx)  # tx 3 as the round: its output 5 is paid to 9
    assert L2.out.tolist() == [5] and L2.rule.tolist() == [P.DEPOSIT_REUSE] and L2.hops.tolist() == [1]
    with pytest.raises(ValueError):
        P.PostmixParams(max_hops=0)


def test_anchors_need_a_traced_majority():
    """An address that received a sliver of traced value (haircut spreads taint over every output of a
    transaction with a traced input) anchors nothing; one whose receipts were at least half traced does; the
    same for anchor outputs; mixer and CoinJoin sinks are never anchors."""
    from types import SimpleNamespace

    from chaintrace.trace import kernels as K
    from chaintrace.trace.postmix import _anchors

    # outputs: 0 -> address 0 (sink, 90 of 100 traced), 1 -> address 1 (sink, 10 of 100), 2 -> address 2
    # (mixer sink, all traced), 3 -> address 3 (not a sink, 60 of 100 traced), 4 -> address 4 (5 of 100)
    g = SimpleNamespace(out_addr=np.arange(5), out_value=np.full(5, 100), n_addresses=5, n_out=5)
    res = SimpleNamespace(out=np.arange(5), kind=np.array([K.SINK, K.SINK, K.SINK, K.HOLDING, K.PASSED]),
                          amount=np.array([90, 10, 100, 60, 5]))
    sinks = SimpleNamespace(addr_sink=np.array([0, 0, 1, -1, -1]),
                            entities=[SimpleNamespace(category="exchange"),
                                      SimpleNamespace(category="mixing_service")])
    addr_ok, out_ok = _anchors(g, res, sinks, 0.5)
    assert addr_ok.tolist() == [True, False, False, False, False]
    assert out_ok.tolist() == [True, False, True, True, False]
