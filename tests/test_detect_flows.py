"""The flow detectors of detect/peel.py and detect/flows.py (issue 15, point 3) on a hand-built chain with one
positive and one negative case each, through the real block-file ingest, graph and `chaintrace detect`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from chaintrace.chains.btc import ingest_block_files
from chaintrace.cli import main
from chaintrace.detect import flows, peel
from chaintrace.errors import UserError
from chaintrace.graph.btc import address_ids, load_btc_graph, tx_ids
from chaintrace.graph.detections import detect
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F

BTC = 100_000_000
FEE = 10_000
w = F.p2wpkh


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flows")
    c = F.Chain()
    cb = {i: c.add(miner=f"c{i}")[1] for i in range(1, 7)}  # heights 1..6
    T = {}
    # a peel chain of 3 hops: each pays a deposit address and sends the rest on
    T["p1"] = F.Tx([(cb[1].txid, 0)], [(w("dep1"), 2 * BTC), (w("rest1"), 48 * BTC - FEE)])
    c.add([T["p1"]])
    T["p2"] = F.Tx([(T["p1"].txid, 1)], [(w("dep2"), 3 * BTC), (w("rest2"), 45 * BTC - 2 * FEE)])
    c.add([T["p2"]])
    T["p3"] = F.Tx([(T["p2"].txid, 1)], [(w("rest3"), 44 * BTC - 3 * FEE), (w("dep3"), 1 * BTC)])
    # not a chain: a 1-in-2-out transaction whose outputs are spent by a 2-input transaction
    T["q1"] = F.Tx([(cb[2].txid, 0)], [(w("q1a"), 20 * BTC), (w("q1b"), 30 * BTC - FEE)])
    c.add([T["p3"], T["q1"]])
    T["q2"] = F.Tx([(T["q1"].txid, 0), (T["q1"].txid, 1)], [(w("q2"), 50 * BTC - 2 * FEE)])
    # structuring: 12 outputs of 4 BTC and a 2 BTC change; a fan-out of 12 different amounts
    T["struct"] = F.Tx([(cb[3].txid, 0)], [(w(f"s{i}"), 4 * BTC) for i in range(12)] + [(w("sc"), 2 * BTC - FEE)])
    vals = [(i + 1) * 50_000_000 for i in range(11)]
    T["spray"] = F.Tx([(cb[4].txid, 0)], [(w(f"v{i}"), v) for i, v in enumerate(vals)]
                      + [(w("vc"), 50 * BTC - sum(vals) - FEE)])
    c.add([T["q2"], T["struct"], T["spray"]])
    # fan-in: 10 of the structured outputs converge in one; pass-through: s10 -> fast -> spent the next block
    T["fanin"] = F.Tx([(T["struct"].txid, i) for i in range(10)], [(w("sink"), 40 * BTC - FEE)])
    T["fast_in"] = F.Tx([(T["struct"].txid, 10)], [(w("fast"), 4 * BTC - FEE)])
    T["slow_in"] = F.Tx([(T["struct"].txid, 11)], [(w("slow"), 4 * BTC - FEE)])
    c.add([T["fanin"], T["fast_in"], T["slow_in"]])
    T["fast_out"] = F.Tx([(T["fast_in"].txid, 0)], [(w("after_fast"), 4 * BTC - 2 * FEE)])
    c.add([T["fast_out"]])
    for _ in range(20):
        c.add()
    # slow spends 21 blocks after it received; cb5 sat 30 blocks before moving (dormancy)
    T["slow_out"] = F.Tx([(T["slow_in"].txid, 0)], [(w("after_slow"), 4 * BTC - 2 * FEE)])
    T["wake"] = F.Tx([(cb[5].txid, 0)], [(w("woke"), 50 * BTC - FEE)])
    c.add([T["slow_out"], T["wake"]])
    (tmp / "blk00000.dat").write_bytes(F.blk_file(c.blocks))
    ws = Workspace(tmp / "data")
    ingest_block_files(ws, [tmp / "blk00000.dat"])
    ids = tx_ids(ws, [t.txid[::-1].hex() for t in T.values()])
    hexid = {k: t.txid[::-1].hex() for k, t in T.items()}
    return {"ws": ws, "g": load_btc_graph(ws), "tx": {k: ids[h] for k, h in hexid.items()}, "hex": hexid,
            "cb": {i: t.txid[::-1].hex() for i, t in cb.items()}}


def test_peel_chain_found_with_its_peels_and_value_conserved(story):
    g, tx = story["g"], story["tx"]
    chains = peel.peel_chains(peel.looks_like_peeling_chain(g), g.tx_out, g.out_value, g.out_addr,
                              g.out_spender_tx)
    assert [c["txs"] for c in chains] == [[tx["p1"], tx["p2"], tx["p3"]]]  # q1 (parent of q2) is no chain
    c = chains[0]
    assert [p["value"] for p in c["peels"]] == [2 * BTC, 3 * BTC, 1 * BTC]
    assert c["remainder"]["value"] == 44 * BTC - 3 * FEE
    fees = int(g.tx_fee[c["txs"]].sum())
    assert c["peeled_total"] + c["remainder"]["value"] + fees == 50 * BTC  # the coinbase it started from
    # a stricter minimum length drops it
    assert peel.peel_chains(peel.looks_like_peeling_chain(g), g.tx_out, g.out_value, g.out_addr,
                            g.out_spender_tx, min_length=4) == []
    d = detect(story["ws"], "peel-chain")
    assert d["count"] == 1 and d["detections"][0]["start"] == story["hex"]["p1"]
    assert [p["address"] for p in d["detections"][0]["peels"]] == [w("dep1"), w("dep2"), w("dep3")]
    assert d["detections"][0]["input_value"] == 50 * BTC


def test_fan_out_fan_in_and_structuring(story):
    g, tx = story["g"], story["tx"]
    assert set(flows.fan_out(g.tx_out, g.tx_coinbase, min_outputs=10)) == {tx["struct"], tx["spray"]}
    assert set(flows.fan_in(g.tx_in, min_inputs=10)) == {tx["fanin"]}  # q2 (2 inputs) is not one
    s = flows.structuring(g.tx_out, g.out_value, g.tx_coinbase)
    assert [d["tx"] for d in s] == [tx["struct"]]  # the spray of 12 different amounts is not
    assert s[0]["near_equal"] == 12 and s[0]["median"] == 4 * BTC and s[0]["total"] == 50 * BTC - FEE
    # a higher required share of near-equal outputs rules the structuring out (12 of 13 < 0.95)
    assert flows.structuring(g.tx_out, g.out_value, g.tx_coinbase, min_share=0.95) == []


def test_rapid_pass_through(story):
    g, ws = story["g"], story["ws"]
    a = address_ids(ws, [w("fast"), w("slow")])
    res = flows.pass_through(g.out_tx, g.out_addr, g.out_value, g.out_spender_tx, g.tx_height, max_hold=1,
                             addresses=np.array([a[w("fast")], a[w("slow")]]))
    assert [d["address"] for d in res] == [a[w("fast")]]  # slow held 21 blocks
    assert res[0]["passed"] == res[0]["received"] == 4 * BTC - FEE and res[0]["max_hold_seen"] == 1
    # with a 30-block threshold the slow address passes value through as well
    res = flows.pass_through(g.out_tx, g.out_addr, g.out_value, g.out_spender_tx, g.tx_height, max_hold=30,
                             addresses=np.array([a[w("slow")]]))
    assert len(res) == 1
    d = detect(ws, "pass-through", address=w("fast"))
    assert d["count"] == 1 and d["detections"][0]["txids"] == [story["hex"]["fast_in"], story["hex"]["fast_out"]]
    assert detect(ws, "pass-through", address=w("slow"))["count"] == 0


def test_dormancy_then_movement(story):
    g, tx = story["g"], story["tx"]
    outs = flows.dormancy(g.out_tx, g.out_spender_tx, g.tx_height, min_dormant=25)
    assert [int(g.out_spender_tx[o]) for o in outs] == [tx["wake"]]  # slow (21 blocks) is below the threshold
    d = detect(story["ws"], "dormancy", min_dormant_blocks=25)
    assert d["count"] == 1
    e = d["detections"][0]
    assert e["output"] == f"{story['cb'][5]}:0" and e["moved_txid"] == story["hex"]["wake"]
    assert e["blocks_dormant"] == int(g.tx_height[tx["wake"]]) - 5 and e["value"] == 50 * BTC
    assert e["seconds_dormant"] == 600 * e["blocks_dormant"]


def test_cli_detect_json_and_text(story):
    data = str(story["ws"].path)
    r = CliRunner().invoke(main, ["detect", "structuring", "--all", "--format", "json", "--data", data])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["thresholds"] == {"min_outputs": 5, "tolerance": 0.05, "min_share": 0.8}
    assert [d["txid"] for d in out["detections"]] == [story["hex"]["struct"]]
    assert out["detections"][0]["total"] == str(50 * BTC - FEE)  # amounts as exact decimal strings
    r = CliRunner().invoke(main, ["detect", "peel-chain", "--data", data])
    assert r.exit_code == 0 and "1 peel-chain detection(s)" in r.output and story["hex"]["p1"] in r.output
    r = CliRunner().invoke(main, ["detect", "fan-in", "--min-length", "2", "--data", data])
    assert r.exit_code == 2 and "--min-length does not apply to detect fan-in" in r.output
    r = CliRunner().invoke(main, ["detect", "dormancy", "--address", w("nobody"), "--data", data])
    assert r.exit_code == 2 and "is not in the btc store" in r.output
    with pytest.raises(UserError):
        detect(story["ws"], "mixing")
