"""CoinJoin detectors: transactions shaped exactly like the documented Whirlpool, Wasabi 1.x, Wasabi 2.0 and
JoinMarket structures (built as real regtest blocks and ingested through the block-file path), look-alikes
that must not match, mainnet activation heights, unknown inputs, and real mainnet blocks."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from chaintrace.chains.btc import ingest_block_files
from chaintrace.model.scripts import P2WPKH
from chaintrace.detect import coinjoin as CJ
from chaintrace.graph.btc import load_btc_graph
from chaintrace.graph.cluster import _resolve_txids
from chaintrace.store.workspace import Workspace
from tests.conftest import dataset
from tests.test_cluster_ledger import Ledger

BTC = 10**8


def detected(ws, txs) -> dict[str, tuple]:
    """txid -> (protocol, detectors, denomination, n_equal, partial) for the given transactions."""
    g = load_btc_graph(ws)
    res = CJ.detect_coinjoins(g)
    ids = _resolve_txids(ws, [t.txid[::-1].hex() for t in txs])
    out = {}
    for txid, t in ids.items():
        p = int(res.protocol[t])
        dets = tuple(CJ.PROTOCOLS[c] for c in sorted(CJ.PROTOCOLS) if res.mask[t] >> (c - 1) & 1)
        out[txid] = (CJ.PROTOCOLS.get(p), dets, int(res.denomination[t]), int(res.n_equal[t]), bool(res.partial[t]))
    return out


def h(tx) -> str:
    return tx.txid[::-1].hex()


@pytest.fixture
def shapes(tmp_path):
    """One chain holding every shape; returns (workspace, {name: tx})."""
    lg = Ledger()
    txs = {}
    # --- Whirlpool 0.01 BTC pool: 2 remixers at exactly p, 3 new entrants at p + fee share (<= 0.0011 BTC)
    p = 1_000_000
    ins = lg.fund([(f"wp{i}", p) for i in range(2)] + [(f"wp{i}", p + 7_000 * i) for i in range(2, 5)])
    lg.mine()
    txs["whirlpool"], _ = lg.pay(ins, [(f"wpo{i}", p) for i in range(5)])
    # look-alike: same shape but one entrant brings 0.002 BTC more than the pool (not a Whirlpool input)
    ins = lg.fund([(f"wq{i}", p) for i in range(2)] + [(f"wq{i}", p + 5_000) for i in range(2, 4)]
                  + [("wq4", p + 200_000)])
    lg.mine()
    txs["whirlpool_bad_input"], _ = lg.pay(ins, [(f"wqo{i}", p) for i in range(5)])
    # look-alike: P2PKH outputs (Whirlpool is native segwit only)
    ins = lg.fund([(f"wr{i}", p + 1000 * i) for i in range(5)])
    lg.mine()
    txs["whirlpool_legacy_outputs"], _ = lg.pay(ins, [(f"wro{i}@p2pkh", p) for i in range(5)])
    # --- Wasabi 1.x (after the coordinator-address era): 12 P2WPKH inputs, 10 outputs of ~0.1 BTC,
    # unique-valued change outputs and the coordinator fee, everything P2WPKH
    d = 10_010_000
    vals = [d + 3_000_000 + 137_000 * i for i in range(12)]
    ins = lg.fund([(f"ws{i}", v) for i, v in enumerate(vals)])
    lg.mine()
    outs = [(f"wso{i}", d) for i in range(10)]
    outs += [(f"wsc{i}", vals[i] - d - 3000 - 11 * i) for i in range(9)]
    outs += [("wasabi_coordinator", 30_000)]
    txs["wasabi1"], _ = lg.pay(ins, outs)
    # --- Wasabi 2.0: 25 inputs (P2WPKH and P2TR) sorted by value descending; outputs sorted descending,
    # almost all standard denominations (with repeats), one change
    in_vals = sorted([3_000_000 + 91_000 * i for i in range(25)], reverse=True)
    ins = lg.fund([(f"w2i{i}" + ("@p2tr" if i % 3 == 0 else ""), v) for i, v in enumerate(in_vals)])
    lg.mine()
    denoms = [20_000_000, 10_000_000, 10_000_000, 5_000_000, 5_000_000, 4_782_969, 4_194_304, 2_000_000,
              2_000_000, 1_594_323, 1_048_576, 1_000_000, 1_000_000, 531_441, 500_000, 500_000, 200_000,
              100_000, 65_536, 50_000]
    total_in = sum(in_vals)
    change = total_in - sum(denoms) - 25_000
    outs = sorted([(f"w2o{i}", v) for i, v in enumerate(denoms)] + [("w2change", change)], key=lambda x: -x[1])
    assert change > 0
    txs["wasabi2"], _ = lg.pay(ins, outs)
    # --- JoinMarket: one taker + three makers; 4 equal outputs of 0.05 BTC; each maker's change is its input
    # minus 0.05 BTC plus its 12,000 sat fee; the taker sweeps (no change) and pays the fees and the miner
    mk = [("jm_t", 5_000_000 + 3 * 12_000 + 4_000), ("jm_m1@p2sh", 7_300_000), ("jm_m2", 9_100_000),
          ("jm_m3@p2pkh", 6_500_000)]
    ins = lg.fund(mk)
    lg.mine()
    txs["joinmarket"], _ = lg.pay(ins, [("jm_o0", 5_000_000), ("jm_c1", 2_312_000), ("jm_o1@p2sh", 5_000_000),
                                        ("jm_c2", 4_112_000), ("jm_o2", 5_000_000), ("jm_c3@p2pkh", 1_512_000),
                                        ("jm_o3", 5_000_000)])
    # --- BlockSci equal-output only: 3 participants, 3 equal outputs, but one input far larger than any
    # participant's equal output + change (so not JoinMarket-like by the Dumplings value rule)
    ins = lg.fund([("eq1", 50_000_000), ("eq2", 3_000_000), ("eq3", 2_500_000)])
    lg.mine()
    txs["equal_output"], _ = lg.pay(ins, [("eqo1", 2_000_000), ("eqo2", 2_000_000), ("eqo3", 2_000_000),
                                          ("eqc1", 1_000_000), ("eqc2", 48_000_000)])
    # --- negatives
    ins = lg.fund([("pay1", 30_000_000), ("pay2", 20_000_000)])
    lg.mine()
    txs["payment"], _ = lg.pay(ins, [("shop", 45_000_000), ("pay3", 4_990_000)])
    ins = lg.fund([("hot", 50 * BTC)])
    lg.mine()
    batch = [(f"cust{i}", 1_000_000 if i < 4 else 1_234_000 + i * 7_777) for i in range(20)]
    txs["batch_payout"], _ = lg.pay(ins, batch + [("hot2", 50 * BTC - sum(v for _, v in batch) - 20_000)])
    ins = lg.fund([(f"dep{i}", 1_000_000 + i) for i in range(10)])
    lg.mine()
    txs["sweep"], _ = lg.pay(ins, [("coldwallet", 10_000_000)])
    # Whirlpool TX0 (premix): one deposit fans out into 5 pool-sized outputs + coordinator fee + change
    ins = lg.fund([("tx0in", 6_000_000)])
    lg.mine()
    txs["whirlpool_tx0"], _ = lg.pay(ins, [(f"pre{i}", 1_000_170) for i in range(5)] + [("samourai_fee", 50_000),
                                                                                          ("tx0change", 940_000)])
    # dust pairs (BlockSci ignores 546 and 2730 sat equal outputs)
    ins = lg.fund([("du1", 100_000), ("du2", 100_000)])
    lg.mine()
    txs["dust"], _ = lg.pay(ins, [("duo1", 546), ("duo2", 546), ("duo3", 190_000)])
    lg.mine()
    ws = Workspace(tmp_path / "data")
    lg.ingest(ws, tmp_path)
    return ws, txs


def test_documented_structures_are_detected_and_named(shapes):
    ws, txs = shapes
    got = detected(ws, list(txs.values()))
    r = {name: got[h(tx)] for name, tx in txs.items()}
    assert r["whirlpool"][:4] == ("whirlpool", ("whirlpool",), 1_000_000, 5)
    assert r["wasabi1"][0] == "wasabi1" and r["wasabi1"][2:4] == (10_010_000, 10)
    assert r["wasabi2"][0] == "wasabi2" and "wasabi2" in r["wasabi2"][1]
    assert r["joinmarket"][0] == "joinmarket" and r["joinmarket"][2:4] == (5_000_000, 4)
    assert set(r["joinmarket"][1]) == {"joinmarket", "equal_output"}  # BlockSci's rule agrees
    assert r["equal_output"][:2] == ("equal_output", ("equal_output",))
    assert not any(v[4] for v in r.values()), "all inputs are in the store: no partial detection"


def test_look_alikes_are_not_coinjoins(shapes):
    ws, txs = shapes
    got = detected(ws, list(txs.values()))
    for name in ("whirlpool_bad_input", "whirlpool_legacy_outputs", "payment", "batch_payout", "sweep",
                 "whirlpool_tx0", "dust"):
        p, dets, *_ = got[h(txs[name])]
        assert "whirlpool" not in dets and "wasabi1" not in dets and "wasabi2" not in dets, name
        if name in ("payment", "batch_payout", "sweep", "whirlpool_tx0", "dust"):
            assert p is None, (name, dets)


def test_detector_selection(shapes):
    ws, txs = shapes
    g = load_btc_graph(ws)
    ids = _resolve_txids(ws, [h(txs["whirlpool"]), h(txs["joinmarket"])])
    only = CJ.detect_coinjoins(g, CJ.CoinJoinParams(detectors=("equal_output",)))
    assert only.protocol[ids[h(txs["whirlpool"])]] == 0
    assert CJ.PROTOCOLS[int(only.protocol[ids[h(txs["joinmarket"])]])] == "equal_output"
    with pytest.raises(ValueError, match="unknown CoinJoin detector"):
        CJ.CoinJoinParams(detectors=("wasabi3",))


W = P2WPKH


def _whirl(p=1_000_000):
    return [(p, W, 1), (p, W, 2), (p + 6000, W, 3), (p + 9000, W, 4), (p + 100, W, 5)], \
        [(p, W, 10 + i) for i in range(5)]


def test_mainnet_activation_heights():
    ins, outs = _whirl()
    assert CJ.classify_transaction(ins, outs, height=560_000, mainnet=True)["protocol"] is None
    assert CJ.classify_transaction(ins, outs, height=600_000, mainnet=True)["protocol"] == "whirlpool"
    # test networks have no activation heights
    assert CJ.classify_transaction(ins, outs, height=100, mainnet=False)["protocol"] == "whirlpool"
    # the 0.5 BTC pool, and a pool size that is not Samourai's
    ins5, outs5 = _whirl(50_000_000)
    assert CJ.classify_transaction(ins5, outs5)["protocol"] == "whirlpool"
    ins2, outs2 = _whirl(2_000_000)
    assert "whirlpool" not in CJ.classify_transaction(ins2, outs2)["detectors"]


def test_wasabi1_coordinator_rule_before_610000():
    coord = 999
    ins = [(5_000_000 + i, W, i) for i in range(5)]
    outs = [(4_000_000, W, 20 + i) for i in range(3)] + [(1_000_000 + i, W, 30 + i) for i in range(4)]
    with_coord = outs + [(12_345, W, coord)]
    r = CJ.classify_transaction(ins, with_coord, height=560_000, mainnet=True, coordinator_ids=[coord])
    assert r["protocol"] == "wasabi1"
    r = CJ.classify_transaction(ins, outs + [(12_345, W, 77)], height=560_000, mainnet=True,
                                coordinator_ids=[coord])
    assert "wasabi1" not in r["detectors"]
    # from 610,000 the coordinator address rule no longer applies
    r = CJ.classify_transaction(ins, with_coord, height=620_000, mainnet=True, coordinator_ids=[coord])
    assert "wasabi1" not in r["detectors"]


def test_unknown_inputs_assume_or_fail():
    ins, outs = _whirl()
    unknown = [(-1, -1, -1)] * 3 + ins[:2]
    r = CJ.classify_transaction(unknown, outs)
    assert r["protocol"] == "whirlpool" and r["partial"]
    r = CJ.classify_transaction(unknown, outs, params=CJ.CoinJoinParams(unknown_inputs="fail"))
    assert r["protocol"] is None


def test_wasabi2_denominations():
    d = set(CJ.wasabi2_denominations().tolist())
    for v in (5_000, 2**13, 3**9, 2 * 3**8, 10**5, 2 * 10**5, 5 * 10**8, 2**36, 10**11):
        assert v in d, v
    for v in (4_096, 6_000, 700_000, 2**37, 3 * 10**5):  # below the range, not of the forms, above the range
        assert v not in d, v
    assert min(d) == 5_000 and max(d) <= 134_375_000_000


def _ground_truth_txids() -> dict[str, str]:
    base = "coinjoin-ground-truth"
    out: dict[str, str] = {}
    p = dataset(base, "defconst-wasabi-samourai", "data", "wasabi", "CoinJoinsMain_20211221.csv")
    with open(p) as fh:
        for row in csv.DictReader(fh):
            out[row["tx_hash"]] = "wasabi1"
    for name, proto in (("WasabiCoinJoins.txt", "wasabi1"), ("SamouraiCoinJoins.txt", "whirlpool")):
        for line in open(dataset(base, "nopara73-WasabiVsSamourai", "WasabiVsSamourai", name)):
            if line.strip():
                out[line.strip()] = proto
    coord = json.loads(dataset(base, "crocs-muni-coinjoin-analysis", "data", "wasabi2", "txid_coord.json").read_text())
    for txids in coord.values():
        for t in txids:
            out[t] = "wasabi2"
    return out


@pytest.mark.parametrize("block", [
    "block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk",  # height 540,107
    "block-0000000000000000001602407ac49862a7bca9d00f7f402db20b7be2f5de59d2.blk",  # height 574,200
])
def test_real_mainnet_blocks_have_no_coordinator_coinjoin_detections(tmp_path, block):
    """Two real mainnet blocks in the Wasabi 1.x / Whirlpool era. None of their transactions is in the
    public CoinJoin lists (checked here), and the coordinator-protocol detectors flag none of them, even
    with the inputs unknown (single blocks: every prevout is outside the store, conditions assumed met)."""
    path = dataset("btc-raw-blocks", "btcd", "wire", "testdata", block)
    truth = _ground_truth_txids()
    assert len(truth) > 60_000
    ws = Workspace(tmp_path / "data")
    ingest_block_files(ws, [path], network="main")
    g = load_btc_graph(ws)
    con = ws.connect()
    txids = [r[0] for r in con.execute("SELECT txid FROM btc.transactions").fetchall()]
    assert not set(txids) & set(truth)
    res = CJ.detect_coinjoins(g)
    counts = res.counts()
    assert counts["wasabi1"] == counts["wasabi2"] == counts["whirlpool"] == 0
    # every detection there can only be partial (no prevout is known)
    assert bool(np.all(res.partial[res.protocol != 0]))
