"""Custodial mixers recognised by behaviour as source groups of the Bitcoin exposure index (issue 15): on the
simulator's mixer scenario with the mixer's tags left out (clusters built), a launderer's payout recipients
show incoming ``mixer`` exposure with the detection, its depositors outgoing, an address that could not have
touched the mixer none; exposure is conserved; precomputed answers equal computed ones; the configured
``detected_mixer`` severity scores them; a tagged mixer is left to its tag (never counted twice); a refresh
after an ingest equals a full rebuild and says why when the detection changed."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import orjson
import pytest
import yaml

import chaintrace
from chaintrace import intel
from chaintrace.screen import Screener, build_index, load_config, load_index
from chaintrace.screen.index import ARRAYS
from chaintrace.screen.service import screen_one_address, screen_one_transfer
from tests.screen_fixtures import first_blocks, n_blocks


def _tags_without_mixer(sim, path):
    doc = yaml.safe_load((sim / "tags.yaml").read_text())
    doc["tags"] = [t for t in doc["tags"] if t.get("category") != "mixing_service"]
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    from chaintrace.graph.cluster import build_clusters
    from chaintrace.sim import simulate_btc
    from chaintrace.store.workspace import Workspace

    root = tmp_path_factory.mktemp("mixer-sources")
    sim = root / "sim"
    simulate_btc(sim, txs=4000, seed=11, scenario="mixer", network="main")
    ws = Workspace(root / "data")
    intel.registry.bind(ws, root / "registry")
    chaintrace.ingest_block_files(ws, [sim], pow_rules="target-only")
    intel.import_paths(ws, "tagpack", [_tags_without_mixer(sim, root / "no-mixer.yaml")])
    build_clusters(ws)
    build_index(ws, load_config())
    truth = json.loads((sim / "truth.json").read_text())
    return ws, sim, root, truth


def _out_addresses(ws, refs: list[dict]) -> dict[str, int]:
    """address -> value received over the outputs `refs` ({txid, vout}), from the store."""
    con = ws.connect()
    got: dict[str, int] = {}
    for r in refs:
        a, v = con.execute("SELECT address, value FROM btc.outputs WHERE txid = ? AND n = ?",
                           [r["txid"], r["vout"]]).fetchone()
        got[a] = got.get(a, 0) + int(v)
    return got


def _mixer_rows(r: dict, direction: str) -> list[dict]:
    return [e for e in r["exposures"] if e["category"] == "mixer" and e["direction"] == direction]


def test_launderer_payout_recipients_show_mixer_exposure(mixed):
    ws, sim, root, truth = mixed
    snap = Screener(ws).snapshot()
    idx = snap.index
    run = snap.data_version["detections"]["mixers"]
    assert run["count"] == 1 and run["source_groups"] == 1 and run["left_to_tags"] == []
    (gi, det), = idx.meta["detected_groups"].items()
    g = idx.groups[int(gi)]
    assert g["category"] == "mixer" and g["entity"] == f"unidentified mixer {det['address']}" and g["severity"] is None
    assert det["kind"] == "mixer" and 0 < det["confidence"] <= 1 and det["features"]["depositors"] >= 20
    orders = [o for o in truth["mixer"]["order_list"] if o["customer"] == "launderer"]
    assert orders
    payees = _out_addresses(ws, [p for o in orders for p in o["payouts"]])
    hop1 = 0
    for a, value in payees.items():
        r = screen_one_address(snap, a)
        rows = _mixer_rows(r, "incoming")
        assert len(rows) == 1, a  # one detected mixer, one row
        e = rows[0]
        # hop 0: an address the detection (widened along the reserve's change) took for the mixer's own; hop > 1:
        # paid by reserve change the detection did not follow (reached through the reserve's own spends)
        assert e["entity"] == g["entity"] and 0 <= e["hops_min"] <= snap.config.max_hops
        assert e["confidence"] == det["confidence"] and e["detection"] == det and e["severity"] is None
        if e["hops_min"] == 1:  # a payout spends the mixer's own coins only: all of it is exposure
            hop1 += 1
            assert e["type"] == "direct" and int(e["amount"]) >= value
        assert r["risk"] in ("none", "low", "medium", "high", "severe")
        assert not any(e["category"] == "mixing_service" for e in r["exposures"])
    assert hop1 >= 0.7 * len(payees), (hop1, len(payees))
    # the launderers' deposits into the mixer: their payers sent to it (outgoing, hop 1 at least)
    depositors = {row[0] for o in orders for row in ws.connect().execute(
        "SELECT i.address FROM btc.outputs i WHERE i.spending_txid = ?", [o["deposit"]["txid"]]).fetchall()}
    for a in depositors:
        rows = _mixer_rows(screen_one_address(snap, a), "outgoing")
        assert len(rows) == 1 and rows[0]["hops_min"] >= 1 and int(rows[0]["amount"]) > 0, a
    # a payout output screened as a transfer carries the mixer's exposure with the detection
    p = orders[0]["payouts"][0]
    t = screen_one_transfer(snap, f"{p['txid']}:{p['vout']}")
    row = next(e for e in t["exposures"] if e["category"] == "mixer")
    assert row["amount"] == p["value"] and row["detection"] == det


def test_unrelated_address_has_no_mixer_exposure(mixed):
    """Addresses all of whose coins were created before the mixer's first transaction and never spent could
    neither receive from it nor pay into it: no mixer row (nor any from a tagged mixer)."""
    ws, sim, root, truth = mixed
    snap = Screener(ws).snapshot()
    first = min(o["deposit"]["height"] for o in truth["mixer"]["order_list"])
    con = ws.connect()
    rows = con.execute("SELECT o.address FROM btc.outputs o JOIN btc.transactions t ON t.txid = o.txid "
                       "WHERE o.address IS NOT NULL GROUP BY o.address "
                       "HAVING max(t.height) < ? AND bool_and(o.spending_txid IS NULL) ORDER BY o.address LIMIT 50",
                       [first]).fetchall()
    assert rows
    for (a,) in rows:
        r = screen_one_address(snap, a)
        assert not any(e["category"] in ("mixer", "mixing_service") for e in r["exposures"]), a


def test_mixer_exposure_is_conserved(mixed):
    """Forward: no output carries more than its value, what a transaction passes on never exceeds what its
    inputs carried, and the seeds carry exactly what the mixer's addresses received."""
    from chaintrace.graph.btc import load_btc_graph

    ws, sim, root, truth = mixed
    idx = Screener(ws).snapshot().index
    gi = int(next(iter(idx.meta["detected_groups"])))
    a = idx.arrays
    m = (a["f_dir"] == 0) & (a["f_group"] == gi)
    out, taint, hop = a["f_out"][m], a["f_taint"][m], a["f_hop"][m]
    assert len(out) and (taint > 0).all() and (taint <= a["out_value"][out]).all()
    g = load_btc_graph(ws)
    seed = out[hop == 0]
    assert (taint[hop == 0] == a["out_value"][seed]).all()
    by_out = dict(zip(out.tolist(), taint.tolist()))
    hop_of = dict(zip(out.tolist(), hop.tolist()))
    for t in np.unique(g.out_tx[out[hop > 0]]).tolist()[:300]:
        ins = sum(by_out.get(int(o), 0) for o in g.in_output[g.tx_in[t]:g.tx_in[t + 1]] if o >= 0)
        outs = sum(by_out[o] for o in range(int(g.tx_out[t]), int(g.tx_out[t + 1])) if o in by_out and hop_of[o] > 0)
        assert 0 < outs <= ins


def test_precomputed_equal_computed_and_configured_severity(mixed):
    ws, sim, root, truth = mixed
    snap = Screener(ws).snapshot()
    idx = snap.index
    gi = int(next(iter(idx.meta["detected_groups"])))
    exposed = [s for s, row in idx.addr_row.items()
               if gi in np.asarray(idx.arrays["e_group"][idx.e_start[row]:idx.e_end[row]]).tolist()]
    assert len(exposed) > 20
    slow = dataclasses.replace(snap, baked=False)
    for s in exposed[::max(1, len(exposed) // 60)]:
        assert orjson.dumps(screen_one_address(snap, s)) == orjson.dumps(screen_one_address(slow, s)), s
    # `detected_mixer: high`: the rows count and raise the answers' risk
    from chaintrace.screen.config import default_text

    text = default_text().decode().replace("version: chaintrace-severity/2", "version: test-mixer-sources/1")
    text = text.replace("  p2p_exchange: medium\n", "  p2p_exchange: medium\n  detected_mixer: high\n")
    path = root / "sev.yaml"
    path.write_text(text)
    cfg = load_config(path)
    build_index(ws, cfg)
    snap2 = Screener(ws, cfg).snapshot()
    payee = next(iter(_out_addresses(ws, truth["mixer"]["order_list"][0]["payouts"][:1])))
    r = screen_one_address(snap2, payee)
    row = _mixer_rows(r, "incoming")[0]
    assert row["severity"] == "high" and row["counts"] is True and r["risk"] in ("high", "severe")
    assert any(ev["entity"] == row["entity"] for ev in r["evidence"])
    slow2 = dataclasses.replace(snap2, baked=False)
    assert orjson.dumps(r) == orjson.dumps(screen_one_address(slow2, payee))


def test_other_tag_on_a_detected_address_leaves_that_address_out(mixed):
    """A detected mixer address that a tag names as something else (an exchange): its tag decides (a service,
    where exposure stops); the rest of the detection stays a source group."""
    ws, sim, root, truth = mixed
    snap = Screener(ws).snapshot()
    idx = snap.index
    det = next(iter(idx.meta["detected_groups"].values()))
    src = snap.sources["btc"]
    keys = sorted(set(idx.meta["registry_ids"]) - set(src.keys) - src.services - set(src.direct))  # the detection's
    assert len(keys) == det["features"]["addresses"] - det["features"]["addresses_tagged_left_out"]
    victim = next(k for k in keys if k != det["address"])
    (root / "exch.yaml").write_text("title: t\ncreator: test\nsource: test-mixer-sources\ncurrency: BTC\n"
                                    "confidence: forensic\nlastmod: 2024-01-02\ntags:\n"
                                    f"  - address: {victim}\n    label: some exchange\n    category: exchange\n")
    intel.import_paths(ws, "tagpack", [root / "exch.yaml"])
    build_index(ws, load_config())
    snap = Screener(ws).snapshot()
    run = snap.data_version["detections"]["mixers"]
    assert run["source_groups"] == 1 and run["left_to_tags"] == []
    det2 = next(iter(snap.index.meta["detected_groups"].values()))
    assert det2["address"] == det["address"]
    assert det2["features"]["addresses_tagged_left_out"] == det["features"]["addresses_tagged_left_out"] + 1
    src2 = snap.sources["btc"]
    assert victim in src2.services and victim not in src2.keys
    assert sorted(set(snap.index.meta["registry_ids"]) - set(src2.keys) - src2.services - set(src2.direct)) == \
        [k for k in keys if k != victim]


def test_tagged_mixer_is_left_to_its_tag(mixed):
    """With the mixer's TagPack tags imported the detection is not a source group: a payout recipient has the
    tagged mixer's exposure once, no `unidentified mixer` row beside it."""
    ws, sim, root, truth = mixed
    intel.import_paths(ws, "tagpack", [sim / "tags.yaml"])
    build_index(ws, load_config())
    snap = Screener(ws).snapshot()
    run = snap.data_version["detections"]["mixers"]
    assert run["count"] == 1 and run["source_groups"] == 0 and run["left_to_tags"][0]["n_tagged"] > 0
    assert snap.index.meta["detected_groups"] == {}
    assert not any(g["category"] == "mixer" for g in snap.index.groups)
    payee = next(iter(_out_addresses(ws, truth["mixer"]["order_list"][0]["payouts"][:1])))
    r = screen_one_address(snap, payee)
    inc = [e for e in r["exposures"] if e["direction"] == "incoming" and e["category"] in ("mixer", "mixing_service")]
    assert len(inc) == 1 and inc[0]["category"] == "mixing_service" and "detection" not in inc[0]



def test_refresh_after_ingest_equals_full_rebuild(tmp_path):
    """Ingest 70 % of the blocks, build clusters and the index, ingest the rest, refresh: equal to a full
    rebuild array by array; when the recognised mixer changed (new deposits change its features) the refresh
    is a full rebuild that says so."""
    from chaintrace.graph.cluster import build_clusters
    from chaintrace.sim import simulate_btc
    from chaintrace.store.workspace import Workspace

    sim = tmp_path / "sim"
    simulate_btc(sim, txs=4000, seed=11, scenario="mixer", network="main")
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    blk = sim / "blk00000.dat"
    n = n_blocks(blk)
    part = tmp_path / "part" / "blk00000.dat"
    first_blocks(blk, part, n * 7 // 10)
    chaintrace.ingest_block_files(ws, [part.parent], pow_rules="target-only")
    intel.import_paths(ws, "tagpack", [_tags_without_mixer(sim, tmp_path / "no-mixer.yaml")])
    build_clusters(ws)
    cfg = load_config()
    first = build_index(ws, cfg)
    first_groups = load_index(ws, cfg).meta["detected_groups"]
    chaintrace.ingest_block_files(ws, [sim], pow_rules="target-only")
    r = build_index(ws, cfg)
    idx = load_index(ws, cfg)
    if idx.meta["detected_groups"] != first_groups:
        assert r["refreshed_from"] is None and "custodial mixers recognised by behaviour changed" in r["refresh_reason"]
    else:
        assert r["refreshed_from"] == first["path"].rsplit("/", 1)[-1], r["refresh_reason"]
    got = {k: np.array(idx.arrays[k]) for k in ARRAYS}
    meta = idx.meta
    full = build_index(ws, cfg, incremental=False)
    assert full["refresh_reason"] == "full rebuild requested"
    b = load_index(ws, cfg)
    for k in ARRAYS:
        assert np.array_equal(got[k], np.asarray(b.arrays[k])), k
    for k in ("groups", "addresses", "detected_groups", "sources_digest", "registry_digest", "seed_digests"):
        assert meta[k] == b.meta[k], k
