"""Detections in Bitcoin screening answers (issue 15, points 1 and 5): unidentified_service exposure rows and
the subject's own ``detections`` (peel chain, structuring, pass-through, dormancy), computed at index build;
checked against the store (independent SQL), the simulator's truth, and the configuration."""
from __future__ import annotations

import dataclasses
import json

import orjson
import pytest

from chaintrace.errors import UserError
from chaintrace.screen import Screener, build_index, load_config
from chaintrace.screen.service import screen_address_batch, screen_one_address
from tests.screen_fixtures import simulated_hack


@pytest.fixture(scope="module")
def peel(tmp_path_factory):
    root = tmp_path_factory.mktemp("screen-detections")
    ws, sim = simulated_hack(root, txs=3000, seed=5, scenario="peel-chain")
    return ws, sim, root


def _facts(snap) -> dict[str, dict]:
    idx = snap.index
    return {k: idx.facts(k) for k in idx.meta["facts"]["addresses"]}


def test_service_rows_value_and_txids_match_the_store(peel):
    """Every incoming / outgoing unidentified_service row's value and transaction count, recomputed by SQL
    over the store's inputs and outputs."""
    ws, _, _ = peel
    snap = Screener(ws).snapshot()
    facts = _facts(snap)
    con = ws.connect()
    checked = {"incoming": 0, "outgoing": 0, "self": 0}
    for subject, f in list(facts.items()):
        for e in f["exposures"]:
            if checked[e["direction"]] >= 25:
                continue
            assert e["category"] == "unidentified_service" and e["severity"] is None and e["amount"] is None
            d = e["detection"]
            assert d["kind"] and 0 < d["confidence"] <= 1 and d["hub"]
            # the service's features and example txids: on its own row; its counterparties carry its identity
            assert bool(d.get("txids")) == bool(d.get("features")) == (e["direction"] == "self")
            assert e["entity"] == f"unidentified {d['kind']} {d['hub']}"
            if e["direction"] == "self":
                assert d["address"] == subject and e["hops_min"] == 0
                checked["self"] += 1
                continue
            svc = d["address"]
            if e["direction"] == "incoming":  # transactions paying the subject whose first input is the service's
                rows = con.execute(
                    "SELECT o.txid, sum(o.value) FROM btc.outputs o JOIN btc.inputs i ON i.tx_id = o.tx_id AND i.n = 0 "
                    "WHERE o.address = ? AND i.address = ? GROUP BY o.txid", [subject, svc]).fetchall()
            else:  # outputs to the service of transactions spending the subject's coins
                rows = con.execute(
                    "SELECT o.txid, sum(o.value) FROM btc.outputs o WHERE o.address = ? AND o.tx_id IN "
                    "(SELECT tx_id FROM btc.inputs WHERE address = ?) GROUP BY o.txid", [svc, subject]).fetchall()
            assert e["value"] == str(sum(int(v) for _, v in rows)), (subject, e)
            assert e["transfers"] == len(rows) and set(e["txids"]) <= {t for t, _ in rows}
            assert len(e["txids"]) == min(3, len(rows)) and e["hops_min"] == 1
            checked[e["direction"]] += 1
    assert all(n >= 5 for n in checked.values()), checked


def test_peel_chain_detections_stand_on_the_truth(peel):
    """The simulator's peel chains: their peel recipients screen with a peel-chain detection whose evidence
    is transactions of that very chain."""
    ws, sim, _ = peel
    snap = Screener(ws).snapshot()
    truth = json.loads((sim / "truth.json").read_text())["peel_chains"]
    long_chains = [set(c["txids"]) for c in truth if len(c["txids"]) >= 10]
    assert long_chains
    con = ws.connect()
    found = 0
    for chain in long_chains:
        peels = con.execute("SELECT address FROM btc.outputs WHERE txid IN (SELECT unnest(?::VARCHAR[])) "
                            "AND spending_txid NOT IN (SELECT unnest(?::VARCHAR[])) AND address IS NOT NULL",
                            [sorted(chain), sorted(chain)]).fetchall()
        for (a,) in peels:
            r = screen_one_address(snap, a)
            rows = [d for d in r["detections"] if d["kind"] == "peel-chain" and d["role"] == "peel"]
            if not rows or rows[0]["count"] > len(rows[0]["evidence"]):
                continue  # (an address peeled to by more chains than the evidence keeps)
            ev = [x for x in rows[0]["evidence"] if set(x["txids"]) & chain]
            assert ev and set(ev[0]["txids"]) <= chain and ev[0]["length"] >= 8
            assert int(ev[0]["value"]) > 0 and rows[0]["thresholds"] == {"min_length": 8}
            assert rows[0]["confidence"] is None and rows[0]["severity"] is None and rows[0]["count"] >= 1
            found += 1
    assert found >= len(long_chains)  # at least one peel recipient per chain
    dv = snap.data_version["detections"]
    assert dv["commit"] == int(ws.chain("btc").manifest["commit"]) and dv["flows"]["peel-chain"] == {"min_length": 8}
    assert dv["services"]["min_counterparties"] == 10


def test_detections_are_informational_by_default(peel):
    ws, _, _ = peel
    snap = Screener(ws).snapshot()
    n = 0
    for k, f in _facts(snap).items():
        if k in snap.index.addr_row or k in snap.sources["btc"].direct:
            continue  # only the addresses whose answer holds nothing but detections
        r = screen_one_address(snap, k)
        assert r["risk"] == "none" and r["score"] == 0 and r["rules"] == [], k
        assert r["exposures"] == f["exposures"] and r["detections"] == f["detections"]
        n += 1
    assert n >= 100
    kinds = {d["kind"] for f in _facts(snap).values() for d in f["detections"]}
    assert {"peel-chain", "structuring", "pass-through"} <= kinds


def test_baked_answers_of_detected_addresses_equal_computed(peel):
    ws, _, _ = peel
    snap = Screener(ws).snapshot()
    assert snap.baked and snap.index.meta["baked_facts"]
    slow = dataclasses.replace(snap, baked=False)
    subjects = list(snap.index.meta["facts"]["addresses"])[:400] + list(snap.index.meta["baked_facts"])[-200:]
    for s in subjects:
        assert orjson.dumps(screen_one_address(snap, s)) == orjson.dumps(screen_one_address(slow, s)), s
    batch = subjects * 2
    assert orjson.dumps(screen_address_batch(snap, batch)) == orjson.dumps(screen_address_batch(slow, batch))


ROW_KEYS = ["category", "abuse", "entity", "actor", "type", "direction", "hops_min", "amount", "share", "severity",
            "transfers", "detection", "value", "txids"]
DET_KEYS = ["kind", "role", "confidence", "severity", "count", "evidence", "thresholds"]


def test_facts_are_stored_once_per_service_and_detection_only_answers_assembled(peel):
    """Index format 4: the service table holds each recognised service once, the addresses' facts name it; the
    rows expand to the documented fields (in order) sharing the service's objects; addresses whose only facts
    are detections have no precomputed answer bytes and are answered from the facts, equal to the computed
    answer (one by one and in a batch)."""
    ws, _, _ = peel
    snap = Screener(ws).snapshot()
    idx = snap.index
    meta, a = idx.meta, idx.arrays
    assert len(a["s_off"]) == meta["facts"]["n_services"] + 1 and meta["facts"]["n_services"] > 0
    assert meta["facts"]["informational"] is True  # the default configuration gives detections no severity
    facts = _facts(snap)
    by_service: dict[tuple, object] = {}
    expanded = 0
    flows = snap.data_version["detections"]["flows"]
    for k, f in facts.items():
        expanded += len(orjson.dumps(f))
        for e in f["exposures"]:
            assert list(e) == ROW_KEYS, k
            assert e["entity"] == f"unidentified {e['detection']['kind']} {e['detection']['hub']}"
            if e["direction"] == "self":
                assert e["detection"]["address"] == k and e["value"] is None and e["txids"] == []
                continue
            same = by_service.setdefault((e["detection"]["address"], e["direction"]), e["detection"])
            assert same is e["detection"]  # one object per service, shared by its counterparties' rows
        for d in f["detections"]:
            assert list(d) == DET_KEYS and d["thresholds"] == flows[d["kind"]]
    assert by_service and len(a["x_blob"]) < 0.4 * expanded  # compact: the shared parts are stored once
    baked = set(meta["baked_facts"])
    assert baked and not baked & set(idx.ans_row)  # no answer bytes for detection-only addresses
    assert len(a["ans_off"]) == len(meta["addresses"]) + len(meta["baked_direct"]) + 1
    slow = dataclasses.replace(snap, baked=False)
    subjects = sorted(baked)[:300]
    for s in subjects:
        assert orjson.dumps(screen_one_address(snap, s)) == orjson.dumps(screen_one_address(slow, s)), s
    batch = subjects + list(meta["addresses"])[:100] + subjects[:20]
    got = screen_address_batch(snap, batch)
    assert orjson.dumps(got) == orjson.dumps([screen_one_address(slow, s) for s in batch])
    assert got[0]["exposures"] is not got[len(subjects)]["exposures"]  # answers do not share their lists


def test_configured_severity_and_thresholds(peel):
    """`detections:` thresholds and `detected_<kind>` severities in the screening configuration."""
    ws, _, root = peel
    base = (root.parent / "cfg").with_suffix("")
    base.mkdir(exist_ok=True)
    from chaintrace.screen.config import default_text

    text = default_text().decode().replace("version: chaintrace-severity/2", "version: test-detections/1")
    text = text.replace("  p2p_exchange: medium\n", "  p2p_exchange: medium\n  detected_dormancy: low\n"
                        "  detected_exchange: low\n")
    cfg_path = base / "sev.yaml"
    cfg_path.write_text(text + "detections:\n  dormancy: {min_dormant_blocks: 20}\n  peel-chain: {min_length: 12}\n")
    cfg = load_config(cfg_path)
    build_index(ws, cfg)
    snap = Screener(ws, cfg).snapshot()
    dv = snap.data_version["detections"]
    assert dv["flows"]["dormancy"] == {"min_dormant_blocks": 20} and dv["flows"]["peel-chain"] == {"min_length": 12}
    facts = _facts(snap)
    dormant = [k for k, f in facts.items() if any(d["kind"] == "dormancy" for d in f["detections"])]
    assert dormant
    for k in dormant[:20]:
        r = screen_one_address(snap, k)
        d = next(d for d in r["detections"] if d["kind"] == "dormancy")
        assert d["severity"] == "low" and d["thresholds"] == {"min_dormant_blocks": 20}
        assert all(x["blocks_dormant"] >= 20 for x in d["evidence"])
        assert "low:detection:dormancy" in r["rules"] and r["risk"] in ("low", "medium", "high", "severe")
    peels = [d for f in facts.values() for d in f["detections"] if d["kind"] == "peel-chain"]
    assert peels and all(x["length"] >= 12 for d in peels for x in d["evidence"])
    exch = [k for k, f in facts.items() if k not in snap.index.addr_row
            and any(e["detection"]["kind"] == "exchange" and e["direction"] != "self" for e in f["exposures"])]
    r = screen_one_address(snap, exch[0])
    row = next(e for e in r["exposures"] if e["detection"]["kind"] == "exchange")
    assert row["severity"] == "low" and row["counts"] is True and r["risk"] != "none"
    # with severities the detection-only answers are scored: assembled from the facts, equal to computed
    assert snap.index.meta["facts"]["informational"] is False
    slow = dataclasses.replace(snap, baked=False)
    subjects = list(snap.index.meta["baked_facts"])[:300] + dormant[:20]
    assert any(screen_one_address(snap, s)["risk"] != "none" for s in subjects)
    for s in subjects:
        assert orjson.dumps(screen_one_address(snap, s)) == orjson.dumps(screen_one_address(slow, s)), s
    assert orjson.dumps(screen_address_batch(snap, subjects * 2)) == orjson.dumps(
        screen_address_batch(slow, subjects * 2))
    bad = base / "bad.yaml"
    bad.write_text(text + "detections:\n  peel: {min_length: 3}\n")
    with pytest.raises(UserError, match="detections.peel"):
        build_index(ws, load_config(bad))
    bad.write_text(text + "detections:\n  dormancy: {blocks: 3}\n")
    with pytest.raises(UserError, match="no threshold blocks"):
        build_index(ws, load_config(bad))


def test_custodial_mixer_recognised_by_behaviour_in_answers(tmp_path):
    """A simulated custodial mixer no tag names (clusters built, no tags): its addresses screen with a `self`
    row of kind mixer, its depositors with an `outgoing` row whose value SQL recomputes, its payout recipients
    with an `incoming` row; informational, and the precomputed answers equal the computed ones."""
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.graph.cluster import build_clusters
    from chaintrace.sim import simulate_btc
    from chaintrace.store.workspace import Workspace

    sim = tmp_path / "sim"
    simulate_btc(sim, txs=4000, seed=11, scenario="mixer", network="main")
    ws = Workspace(tmp_path / "ws")
    ingest_block_files(ws, [sim], pow_rules="target-only")
    build_clusters(ws)
    build_index(ws, load_config())
    snap = Screener(ws).snapshot()
    run = snap.data_version["detections"]["mixers"]
    assert run["count"] == 1 and run["addresses"] >= 20
    rows: dict[str, list] = {"self": [], "incoming": [], "outgoing": []}
    for k, f in _facts(snap).items():
        for e in f["exposures"]:
            if e["detection"]["kind"] == "mixer":
                rows[e["direction"]].append((k, e))
    assert len(rows["self"]) == run["addresses"] and rows["incoming"] and rows["outgoing"]
    hub = rows["self"][0][1]["detection"]["hub"]
    assert all(e["detection"]["hub"] == hub and e["entity"] == f"unidentified mixer {hub}" for _, e in rows["self"])
    assert rows["self"][0][1]["detection"]["features"]["depositors"] >= 20
    con = ws.connect()
    for k, e in rows["outgoing"][:10]:
        got = con.execute("SELECT sum(o.value), count(DISTINCT o.txid) FROM btc.outputs o WHERE o.address = ? AND "
                          "o.tx_id IN (SELECT tx_id FROM btc.inputs WHERE address = ?)",
                          [e["detection"]["address"], k]).fetchone()
        assert e["value"] == str(got[0]) and e["transfers"] == got[1] and e["severity"] is None
    slow = dataclasses.replace(snap, baked=False)
    for k, _ in rows["self"][:10] + rows["incoming"][:10] + rows["outgoing"][:10]:
        fast = screen_one_address(snap, k)
        assert orjson.dumps(fast) == orjson.dumps(screen_one_address(slow, k))
        assert fast["risk"] == "none" and fast["score"] == 0 and fast["rules"] == []  # informational (no tags here)
