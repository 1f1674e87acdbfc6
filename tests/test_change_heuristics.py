"""Each of the eight change heuristics of detect/change.py on hand-built transactions with a known answer:
one case where it names the change candidates and one where it rules every output out (as BlockSci's
test_change.py tests each heuristic on a purpose-built chain). The chain goes through the real block-file
ingest and graph."""
from __future__ import annotations

import numpy as np
import pytest

from chaintrace.chains.btc import ingest_block_files
from chaintrace.detect import change as ch
from chaintrace.graph.btc import load_btc_graph, tx_ids
from chaintrace.model.encoding import hash160
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F

BTC = 100_000_000
FEE = 10_000


def wpkh(name: str) -> str:
    return F.p2wpkh(name)


def pkh(name: str) -> bytes:
    """A pay-to-pubkey-hash output script (another script type than the p2wpkh coinbases)."""
    return b"\x76\xa9\x14" + hash160(name.encode()) + b"\x88\xac"


class Story:
    def __init__(self, tmp):
        c = F.Chain()
        cb = {i: c.add(miner=f"c{i}")[1] for i in range(1, 9)}
        T = {}
        # address_type +, power_of_ten +: one p2wpkh input; a round p2pkh payment and a non-round p2wpkh change
        T["type_pos"] = F.Tx([(cb[1].txid, 0)], [(pkh("p1"), 10 * BTC), (wpkh("k1"), 40 * BTC - FEE)])
        c.add([T["type_pos"]])
        # address_type -: inputs of two script types; optimal_change +: only output 1 is below the 10 BTC input
        T["type_neg"] = F.Tx([(T["type_pos"].txid, 0), (cb[2].txid, 0)],
                             [(wpkh("q1"), 55 * BTC), (wpkh("q2"), 5 * BTC - FEE)])
        c.add([T["type_neg"]])
        # optimal_change -: both outputs above the smallest input (4.9999 BTC)
        T["opt_neg"] = F.Tx([(cb[3].txid, 0), (T["type_neg"].txid, 1)],
                            [(wpkh("r1"), 30 * BTC), (wpkh("r2"), 50 * BTC + 5 * BTC - FEE - 30 * BTC - FEE)])
        # power_of_ten -: both outputs multiples of 0.01 BTC (fee 0.01 BTC)
        T["round_neg"] = F.Tx([(cb[4].txid, 0)], [(wpkh("s1"), 20 * BTC), (wpkh("s2"), 2_999_000_000)])
        c.add([T["opt_neg"], T["round_neg"]])
        # fresh_address +: q1 was paid before, new1 is new
        T["fresh_pos"] = F.Tx([(cb[5].txid, 0)], [(wpkh("q1"), 10 * BTC), (wpkh("new1"), 40 * BTC - FEE)])
        c.add([T["fresh_pos"]])
        # fresh_address -, address_reuse -: both payees seen before, neither is the input's address
        T["fresh_neg"] = F.Tx([(T["fresh_pos"].txid, 1)], [(wpkh("q1"), 20 * BTC), (wpkh("s1"), 20 * BTC - 2 * FEE)])
        # address_reuse +: output 1 goes back to the input's address
        T["reuse_pos"] = F.Tx([(cb[6].txid, 0)], [(wpkh("t1"), 10 * BTC), (wpkh("c6"), 40 * BTC - FEE)])
        c.add([T["fresh_neg"], T["reuse_pos"]])
        # the dynamic heuristics: T_dyn (locktime 0, 1 input 2 outputs); output 0 is spent by a transaction of the
        # same shape, locktime behaviour and fee rate (a peeling chain); output 1 by one of 2 inputs, locktime > 0
        # and another fee rate
        T["dyn"] = F.Tx([(cb[7].txid, 0)], [(wpkh("u1"), 20 * BTC), (wpkh("u2"), 30 * BTC - FEE)])
        c.add([T["dyn"]])
        T["same"] = F.Tx([(T["dyn"].txid, 0)], [(wpkh("v1"), 10 * BTC), (wpkh("v2"), 10 * BTC - FEE)])
        T["diff"] = F.Tx([(T["dyn"].txid, 1), (cb[8].txid, 0)],
                         [(wpkh("w1"), 50 * BTC), (wpkh("w2"), 30 * BTC - 4 * FEE)], locktime=700)
        c.add([T["same"], T["diff"]])
        # negatives of the dynamic heuristics: a peeling-chain-shaped child of `same` whose outputs are both spent
        # by transactions with locktime > 0, other fee rates and another shape
        T["neg2"] = F.Tx([(T["same"].txid, 0)], [(wpkh("x1"), 5 * BTC), (wpkh("x2"), 5 * BTC - FEE)])
        c.add([T["neg2"]])
        T["y1"] = F.Tx([(T["neg2"].txid, 0)], [(wpkh("y1"), 5 * BTC - 5 * FEE)], locktime=900)
        T["y2"] = F.Tx([(T["neg2"].txid, 1)], [(wpkh("y2"), 5 * BTC - 8 * FEE)], locktime=900)
        c.add([T["y1"], T["y2"]])
        (tmp / "blk00000.dat").write_bytes(F.blk_file(c.blocks))
        self.ws = Workspace(tmp / "data")
        ingest_block_files(self.ws, [tmp / "blk00000.dat"])
        self.g = load_btc_graph(self.ws)
        self.vsize = self.ws.chain("btc").read("transactions", ["vsize"])["vsize"].to_numpy().astype(np.int64)
        ids = tx_ids(self.ws, [t.txid[::-1].hex() for t in T.values()])
        self.tx = {k: ids[t.txid[::-1].hex()] for k, t in T.items()}

    def candidates(self, key: str, heuristic: str) -> set[int]:
        """Output positions of transaction `key` that `heuristic` cannot rule out as change."""
        m = ch.change_masks(self.g, self.vsize, txs=np.array([self.tx[key]]))
        return {n for n, bits in enumerate(m.tolist()) if bits & ch.BITS[heuristic]}


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    return Story(tmp_path_factory.mktemp("change"))


CASES = [  # heuristic, positive (tx, candidates), negative (tx, candidates)
    ("address_type", ("type_pos", {1}), ("type_neg", set())),
    ("optimal_change", ("type_neg", {1}), ("opt_neg", set())),
    ("power_of_ten", ("type_pos", {1}), ("round_neg", set())),
    ("fresh_address", ("fresh_pos", {1}), ("fresh_neg", set())),
    ("address_reuse", ("reuse_pos", {1}), ("fresh_neg", set())),
    ("locktime", ("dyn", {0}), ("neg2", set())),
    ("peeling_chain", ("dyn", {0}), ("neg2", set())),
    ("fixed_fee", ("dyn", {0}), ("neg2", set())),
]


def test_every_heuristic_is_covered():
    assert sorted(h for h, _, _ in CASES) == sorted(ch.HEURISTICS)


@pytest.mark.parametrize("heuristic,pos,neg", CASES, ids=[c[0] for c in CASES])
def test_heuristic_known_answers(story, heuristic, pos, neg):
    (tx_pos, want_pos), (tx_neg, want_neg) = pos, neg
    assert story.candidates(tx_pos, heuristic) == want_pos
    assert story.candidates(tx_neg, heuristic) == want_neg


def test_peeling_chain_needs_the_shape(story):
    # `diff` has two inputs: not a peeling chain, so no output is a peeling-chain change candidate
    assert story.candidates("diff", "peeling_chain") == set()


def test_unique_change_intersects_the_chosen_heuristics(story):
    g = story.g
    t = story.tx["type_pos"]
    txs = np.array([t])
    masks = ch.change_masks(g, story.vsize, txs=txs)
    change, conf = ch.unique_change(g, masks, ch.DEFAULT, txs=txs)
    assert change[0] == g.tx_out[t] + 1  # the non-round p2wpkh output
    assert 0 < conf[0] <= 1
    # with optimal_change alone both outputs remain: no unique change
    change, _ = ch.unique_change(g, masks, ("optimal_change",), txs=txs)
    assert change[0] == -1
