"""Detections in Ethereum screening answers (issue 15, points 1 and 5): ``unidentified_service`` exposure
rows and the subject's own ``detections`` (structuring, dormancy), baked into the Ethereum index; checked
against the store (independent SQL over ``eth.transfers``), the simulator's truth (an OTC desk no tag names,
a dormant launderer's address), ``chaintrace detect services`` and the configuration."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chaintrace.cli import main
from chaintrace.screen import Screener, load_config
from chaintrace.screen.eth_index import build_eth_index, load_eth_index
from chaintrace.store.workspace import Workspace
from tests.eth.export import cut_export

FEES = "('fee_burn', 'fee_tip')"


@pytest.fixture(scope="module")
def otc(tmp_path_factory):
    """The simulator's OTC scenario: a desk trading ETH for tokens with its clients, untagged; exchanges whose
    deposit accounts sweep into hot wallets no tag names either."""
    d = tmp_path_factory.mktemp("eth-det")
    r = CliRunner().invoke(main, ["--data", str(d / "ws"), "simulate", "eth", "--out", str(d / "sim"), "--txs", "3000",
                                  "--seed", "5", "--scenario", "otc", "--ingest"])
    assert r.exit_code == 0, r.output
    ws = Workspace(d / "ws")
    build_eth_index(ws, load_config())
    return ws, d / "sim", json.loads((d / "sim" / "truth.json").read_text()), d


def _facts(ws, cfg=None) -> dict[str, dict]:
    idx = load_eth_index(ws, cfg or load_config())
    return {k: idx.facts(k) for k in idx.meta["facts"]["addresses"]}


def test_desk_recognised_in_its_customers_answers(otc):
    """The untagged desk screens as an otc_desk (``self``); every account that traded with it has an
    incoming / outgoing row naming it, with the exact values per asset of what it paid / received."""
    ws, sim, truth, _ = otc
    desk = truth["otc_desk"]["address"].lower()
    assert desk not in (sim / "tags.yaml").read_text().lower()
    con = ws.connect()
    sc = Screener(ws)
    own = sc.addresses([desk])["results"][0]
    rows = [e for e in own["exposures"] if e["category"] == "unidentified_service" and e["direction"] == "self"]
    assert len(rows) == 1 and rows[0]["detection"]["kind"] == "otc_desk" and rows[0]["severity"] is None
    assert rows[0]["detection"]["features"]["swappers"] >= 5 and rows[0]["detection"]["txids"]
    assert own["risk"] == "none"  # informational
    for direction, mine, theirs in (("outgoing", "from_address", "to_address"), ("incoming", "to_address", "from_address")):
        cust = [a for (a,) in con.execute(f"SELECT DISTINCT {mine} FROM eth.transfers WHERE {theirs} = ? AND {mine} "
                                          f"IS NOT NULL AND {mine} <> ? AND kind NOT IN {FEES}", [desk, desk]).fetchall()]
        assert len(cust) >= 10, direction
        res = sc.addresses(cust)["results"]
        for a, r in zip(cust, res):
            hit = [e for e in r["exposures"] if e["direction"] == direction and e["detection"]["address"] == desk]
            assert len(hit) == 1, (a, direction)
            e = hit[0]
            assert e["entity"] == f"unidentified otc_desk {desk}" and e["hops_min"] == 1 and e["amount"] is None
            want = con.execute(f"SELECT coalesce(lower(token_address), 'ETH'), sum(value)::VARCHAR, count(*) FROM eth.transfers "
                               f"WHERE {mine} = ? AND {theirs} = ? AND kind NOT IN {FEES} GROUP BY 1", [a, desk]).fetchall()
            assert e["values"] == {k: v for k, v, _ in want}
            assert e["transfers"] == sum(n for _, _, n in want)
            txs = {t for (t,) in con.execute(f"SELECT tx_hash FROM eth.transfers WHERE {mine} = ? AND {theirs} = ?",
                                             [a, desk]).fetchall()}
            assert e["txids"] and set(e["txids"]) <= txs


def test_exchange_rows_match_the_store_and_detect_services(otc):
    """Every unidentified_service row: ``self`` rows carry the detection exactly as ``chaintrace detect services
    --chain eth`` prints it; counterparty rows' values, counts and txids recomputed by SQL."""
    from chaintrace.graph.services import detect_services

    ws, _, _, _ = otc
    # the mixing pools it also lists are mixer source groups in screening (their own test below)
    printed = {d["address"]: d for d in detect_services(ws, "eth")["detections"] if d["kind"] != "mixer"}
    facts = _facts(ws)
    con = ws.connect()
    seen = {"self": 0, "incoming": 0, "outgoing": 0}
    kinds = set()
    for subject, f in facts.items():
        for e in f["exposures"]:
            d = e["detection"]
            kinds.add(d["kind"])
            if e["direction"] == "self" and d["kind"] == "mixer":  # a mixing pool: its own test below
                continue
            if e["direction"] == "self":
                assert d == printed[subject] and e["hops_min"] == 0
                seen["self"] += 1
                continue
            if seen[e["direction"]] >= 40:
                continue
            assert set(d) == {"address", "kind", "confidence", "hub"} and d["confidence"] == printed[d["address"]]["confidence"]
            src, dst = (d["address"], subject) if e["direction"] == "incoming" else (subject, d["address"])
            want = con.execute(f"SELECT coalesce(lower(token_address), 'ETH'), sum(value)::VARCHAR, count(*) FROM eth.transfers "
                               f"WHERE from_address = ? AND to_address = ? AND kind NOT IN {FEES} GROUP BY 1",
                               [src, dst]).fetchall()
            assert e["values"] == {k: v for k, v, _ in want} and e["transfers"] == sum(n for *_, n in want)
            seen[e["direction"]] += 1
    # every detection reaches its own answer (self) and some counterparties'
    assert seen["self"] == len(printed) and seen["incoming"] >= 20 and seen["outgoing"] >= 20, seen
    assert {"exchange", "exchange_deposit", "otc_desk"} <= kinds


def test_precomputed_equals_computed_and_data_version(otc):
    """The answers from the index's facts equal the per-request computation's rows (the one that answers
    without an index) on the detection they name; the answers state the detection run."""
    from chaintrace.screen.service import make_snapshot

    ws, _, truth, _ = otc
    cfg = load_config()
    snap = make_snapshot(ws, cfg)
    assert snap.eth_index is not None
    run = snap.data_version["detections"]
    assert run == snap.data_version["eth_detections"] and run["chain"] == "eth"
    assert run["n_services"] > 0 and run["flows"]["dormancy"]["min_dormant_blocks"] == 50_400  # a week
    facts = _facts(ws)
    keys = sorted(facts)[:: max(1, len(facts) // 60)] + [truth["otc_desk"]["address"].lower()]
    res = Screener(ws).addresses(keys)
    assert res["data_version"]["detections"] == run
    for k, r in zip(keys, res["results"]):
        baked = [e for e in r["exposures"] if e["category"] == "unidentified_service"
                 and e["detection"]["kind"] != "mixer"]  # mixing pools: index-only (their own test)
        computed = snap.service_facts.exposures(k)
        assert [(e["direction"], e["detection"]["address"], e["detection"]["kind"], e["detection"]["confidence"])
                for e in baked] == \
               sorted(((e["direction"], e["detection"]["address"], e["detection"]["kind"], e["detection"]["confidence"])
                       for e in computed), key=lambda x: ({"self": 0, "incoming": 1, "outgoing": 2}[x[0]], x[1]))
        assert r["detections"] == facts[k]["detections"]


def test_severity_and_thresholds_from_the_configuration(otc):
    """``detected_otc_desk: medium`` makes the desk's customers medium risk (a direct exposure); a
    ``detections:`` threshold reaches the index (another configuration digest, another index)."""
    ws, _, truth, d = otc
    from chaintrace.screen.config import default_text

    text = default_text().decode().replace("version: chaintrace-severity/2", "version: test-eth-detections/1")
    assert "  p2p_exchange: medium\n" in text
    text = text.replace("  p2p_exchange: medium\n", "  p2p_exchange: medium\n  detected_otc_desk: medium\n"
                        "  detected_structuring: low\n")
    p = d / "sev.yaml"
    p.write_text(text + "detections:\n  dormancy: {min_dormant_blocks: 20}\n")
    cfg = load_config(p)
    build_eth_index(ws, cfg)
    desk = truth["otc_desk"]["address"].lower()
    con = ws.connect()
    cust = [a for (a,) in con.execute(f"SELECT DISTINCT from_address FROM eth.transfers WHERE to_address = ? AND "
                                      f"from_address <> ? AND kind NOT IN {FEES}", [desk, desk]).fetchall()]
    res = Screener(ws, cfg).addresses(cust)
    assert res["data_version"]["detections"]["flows"]["dormancy"]["min_dormant_blocks"] == 20
    for r in res["results"]:
        e = next(e for e in r["exposures"] if e["detection"]["address"] == desk)
        assert e["severity"] == "medium" and e["counts"] and r["risk"] in ("medium", "high", "severe")
        assert "medium:outgoing:hops1" in r["rules"]


@pytest.fixture(scope="module")
def drain(tmp_path_factory):
    """The simulator's bridge drain: part of the loot goes dormant, then moves (truth ``dormancy_events``)."""
    d = tmp_path_factory.mktemp("eth-det-drain")
    r = CliRunner().invoke(main, ["--data", str(d / "ws"), "simulate", "eth", "--out", str(d / "sim"), "--txs", "4000",
                                  "--seed", "4", "--scenario", "bridge-drain", "--ingest"])
    assert r.exit_code == 0, r.output
    return Workspace(d / "ws"), json.loads((d / "sim" / "truth.json").read_text())["incidents"][0], d


def test_dormancy_then_movement_on_the_truth(drain):
    """With ``min_dormant_blocks`` 30 (the simulated chain is ~100 blocks long): every address the truth wakes
    up after the dormancy has a dormancy detection whose moved transfer is in the block the truth names, and
    every reported dormancy is one by SQL (no transfer of the account in the blocks before)."""
    from chaintrace.screen.config import default_text

    ws, inc, d = drain
    p = d / "dormant.yaml"
    p.write_text(default_text().decode() + "detections:\n  dormancy: {min_dormant_blocks: 30}\n")
    cfg = load_config(p)
    build_eth_index(ws, cfg)
    facts = _facts(ws, cfg)
    events = inc["dormancy_events"]
    assert events
    con = ws.connect()
    for ev in events:
        f = facts[ev["address"].lower()]
        row = next(x for x in f["detections"] if x["kind"] == "dormancy")
        assert row["role"] == "self" and row["thresholds"] == {"min_dormant_blocks": 30}
        moved = [con.execute("SELECT max(height) FROM eth.transfers WHERE tx_hash = ?", [x["moved_txid"]]).fetchone()[0]
                 for x in row["evidence"]]
        assert ev["moved_block"] in moved
    flagged = [(k, x) for k, f in facts.items() for r in f["detections"] if r["kind"] == "dormancy"
               for x in r["evidence"]]
    assert len(flagged) >= len(events)
    for k, x in flagged[:30]:
        h = con.execute("SELECT max(height) FROM eth.transfers WHERE tx_hash = ?", [x["moved_txid"]]).fetchone()[0]
        before = con.execute("SELECT max(height) FROM eth.transfers WHERE (from_address = ? OR to_address = ?) "
                             "AND height < ?", [k, k, h]).fetchone()[0]
        assert before is not None and h - before == x["blocks_dormant"] >= 30, (k, x)


def test_eth_refresh_after_ingest_keeps_facts_equal_to_a_rebuild(tmp_path):
    """The index built after an ingest of new blocks and a full rebuild hold the same detection facts (they are
    recomputed over the grown store at every build)."""
    import csv

    import numpy as np

    from chaintrace.chains.eth import ingest_etl
    from chaintrace.sim.eth import simulate_eth

    out = tmp_path / "sim"
    simulate_eth(out, txs=3000, seed=5, scenario="otc")
    last = max(int(r["number"]) for r in csv.DictReader((out / "blocks.csv").open()))
    part = tmp_path / "part"

    ws = Workspace(tmp_path / "ws")
    cfg = load_config()
    cut_export(out, part, last // 2)
    ingest_etl(ws, part)
    build_eth_index(ws, cfg)
    cut_export(out, part, last)
    ingest_etl(ws, part)
    r = build_eth_index(ws, cfg)
    # continued from the previous index, or rebuilt whole because the untagged mixing pools (source groups)
    # changed with the new blocks: said so
    assert r["refreshed_from"] is not None or "mixing pools recognised by behaviour changed" in r["refresh_reason"], \
        r["refresh_reason"]
    got = load_eth_index(ws, cfg)
    g_off, g_blob, g_keys = np.array(got.arrays["x_off"]), np.array(got.arrays["x_blob"]), got.meta["facts"]
    g_run = got.data_version["detections"]
    build_eth_index(ws, cfg, incremental=False)
    want = load_eth_index(ws, cfg)
    assert g_keys == want.meta["facts"] and g_run == want.data_version["detections"]
    assert np.array_equal(g_off, want.arrays["x_off"]) and np.array_equal(g_blob, want.arrays["x_blob"])
    assert len(g_keys["addresses"]) > 100


def test_structuring_and_dormancy_on_a_hand_made_chain(tmp_path):
    """X splits 6,000 TOK into six near-equal transfers in one transaction (structuring: X payer, R1..R6
    recipients), then 1,500 TOK into five uneven ones (none); an internal-call disperse of ETH by contract M
    to four accounts (too few: none); Q receives 1 ETH in block 0, is silent 25 blocks, then pays Z (dormancy
    at 20 blocks; P, active every 5 blocks, is not). Exact evidence; severities from the configuration."""
    from chaintrace.chains.eth import ingest_etl
    from chaintrace.screen.config import default_text
    from tests.eth.export import Export, addr

    E = 10**18
    ex = Export()
    ex.block()
    ex.tx("V", "TOK", 0, tokens=[("TOK", "V", "X", 10_000)])
    ex.tx("W", "Q", E)
    ex.tx("W", "P", E)
    ex.block()
    split = ex.tx("X", "TOK", 0, tokens=[("TOK", "X", f"R{i}", v) for i, v in
                                         enumerate((1000, 1010, 990, 1000, 1005, 995), 1)])
    ex.tx("X", "TOK", 0, tokens=[("TOK", "X", f"S{i}", v) for i, v in enumerate((100, 200, 300, 400, 500), 1)])
    ex.tx("W", "M", 4 * E, calls=[("M", f"U{i}", E, [i], None) for i in range(4)])
    for b in range(2, 27):
        ex.block()
        if b % 5 == 0:
            ex.tx("P", "Z", E // 100)
    moved = ex.tx("Q", "Z", E // 2)
    ws = Workspace(tmp_path / "ws")
    ingest_etl(ws, ex.write(tmp_path / "export"))
    text = default_text().decode().replace("version: chaintrace-severity/2", "version: test-eth-flows/1")
    text = text.replace("  p2p_exchange: medium\n", "  p2p_exchange: medium\n  detected_structuring: low\n")
    (tmp_path / "c.yaml").write_text(text + "detections:\n  dormancy: {min_dormant_blocks: 20}\n")
    cfg = load_config(tmp_path / "c.yaml")
    build_eth_index(ws, cfg)
    facts = _facts(ws, cfg)
    tok = addr("TOK")
    want = {"txid": split, "asset": tok, "n_outputs": 6, "near_equal": 6, "median": "1000", "total": "6000"}
    got = {k: [(d["kind"], d["role"]) for d in f["detections"]] for k, f in facts.items() if f["detections"]}
    assert got == {addr("X"): [("structuring", "payer")],
                   **{addr(f"R{i}"): [("structuring", "recipient")] for i in range(1, 7)},
                   addr("Q"): [("dormancy", "self")]}
    row = facts[addr("X")]["detections"][0]
    assert row["evidence"] == [want] and row["count"] == 1 and row["severity"] == "low"
    assert row["thresholds"] == {"min_outputs": 5, "tolerance": 0.05, "min_share": 0.8}
    d = facts[addr("Q")]["detections"][0]
    assert d["severity"] is None and d["evidence"] == [
        {"moved_txid": moved, "asset": "ETH", "value": str(E // 2), "last_active_txid": ex.txs[1]["hash"],
         "blocks_dormant": 26, "seconds_dormant": 26 * 12}]
    r = Screener(ws, cfg).addresses([addr("X"), addr("Q")])["results"]
    assert r[0]["risk"] == "low" and "low:detection:structuring" in r[0]["rules"] and r[0]["detections"] == [row]
    assert r[1]["risk"] == "none" and r[1]["detections"] == [d]


def test_real_blocks_dormancy_equals_sql(tmp_path):
    """Two real mainnet blocks (ethereum-etl's test export): with ``min_dormant_blocks`` 1 the dormancy rule
    reports exactly the accounts SQL finds sending value (gas aside) in the second block after a transfer in
    the first, each with the first such transfer as evidence; no service is recognised on two blocks (said by
    ``n_services`` 0, not guessed)."""
    from chaintrace import intel
    from chaintrace.chains.eth import ingest_etl
    from chaintrace.screen.config import default_text
    from tests.conftest import dataset

    blocks = dataset("eth-raw-blocks", "ethereum-etl", "blocks_17173049_17173050")
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    ingest_etl(ws, blocks, chain_id=1)
    (tmp_path / "c.yaml").write_text(default_text().decode() + "detections:\n  dormancy: {min_dormant_blocks: 1}\n")
    cfg = load_config(tmp_path / "c.yaml")
    build_eth_index(ws, cfg)
    idx = load_eth_index(ws, cfg)
    assert idx.data_version["detections"]["n_services"] == 0
    facts = {k: idx.facts(k) for k in idx.meta["facts"]["addresses"]}
    got = {k: d for k, f in facts.items() for d in f["detections"] if d["kind"] == "dormancy"}
    con = ws.connect()
    want = {a: (t, h) for a, t, h in con.execute(
        f"SELECT from_address, arg_min(tx_hash, transfer_id), min(height) FROM eth.transfers WHERE height = 17173050 "
        f"AND value > 0 AND kind NOT IN {FEES} AND from_address IN (SELECT from_address FROM eth.transfers WHERE "
        "height = 17173049 UNION SELECT to_address FROM eth.transfers WHERE height = 17173049) GROUP BY 1").fetchall()}
    assert len(want) >= 10 and set(got) == set(want)
    for a, d in got.items():
        assert d["count"] == 1 and d["evidence"][0]["moved_txid"] == want[a][0]
        assert d["evidence"][0]["blocks_dormant"] == 1 and d["evidence"][0]["seconds_dormant"] == 12
    assert not any(f["exposures"] for f in facts.values())


def test_untagged_mixing_pools_are_sources_within_max_hops(drain):
    """The simulator's mixing pools with their tags removed from the registry: the pools recognised by
    behaviour are exactly pools of the truth; each is a source group of category ``mixer`` (informational by
    default), so the launderer's withdrawal accounts screen with a hop-1 ``mixer`` exposure of exactly what the
    pool paid them (SQL), carrying the detection's confidence; depositors an outgoing one; with
    ``detected_mixer: high`` the withdrawals are high risk."""
    import yaml

    from chaintrace import intel
    from chaintrace.screen.config import default_text

    ws, inc, d = drain
    sim = d / "sim"
    doc = yaml.safe_load((sim / "tags.yaml").read_text())
    pools = set(json.loads((sim / "truth.json").read_text())["mixer"]["pools"].values())
    doc["tags"] = [t for t in doc["tags"] if t["address"].lower() not in pools]
    assert doc["tags"]
    (d / "nopools.yaml").write_text(yaml.safe_dump(doc))
    intel.registry.bind(ws, d / "registry")
    intel.import_paths(ws, "tagpack", [d / "nopools.yaml"])
    cfg = load_config()
    build_eth_index(ws, cfg)
    idx = load_eth_index(ws, cfg)
    run = idx.data_version["detections"]["mixers"]
    det = idx.meta["detected_groups"]
    assert run["count"] == len(det) >= 1 and {x["address"] for x in det.values()} <= pools
    by_pool = {x["address"]: (int(gi), x) for gi, x in det.items()}
    con = ws.connect()
    sc = Screener(ws, cfg)
    checked = 0
    for w in inc["mixer_withdrawals"]:
        pool = con.execute("SELECT from_address FROM eth.transfers WHERE tx_hash = ? AND to_address = ?",
                           [w["tx_hash"], w["to"]]).fetchone()[0]
        if pool not in by_pool:
            continue
        r = sc.addresses([w["to"]])["results"][0]
        got = [e for e in r["exposures"] if e["category"] == "mixer" and e["direction"] == "incoming"
               and e["entity"] == f"unidentified mixer {pool}"]
        assert len(got) == 1, r["exposures"]
        e = got[0]
        paid = con.execute("SELECT sum(value)::VARCHAR FROM eth.transfers WHERE from_address = ? AND to_address = ? "
                           f"AND kind NOT IN {FEES}", [pool, w["to"]]).fetchone()[0]
        assert e["entity"] == f"unidentified mixer {pool}" and e["hops_min"] == 1 and e["amount"] == paid
        assert e["confidence"] == by_pool[pool][1]["confidence"] and e["severity"] is None
        checked += 1
    assert checked >= 5
    pool, (gi, x) = next(iter(by_pool.items()))
    own = sc.addresses([pool])["results"][0]
    assert any(e["direction"] == "self" and e["detection"]["kind"] == "mixer" for e in own["exposures"])
    depositor = con.execute(f"SELECT from_address FROM eth.transfers WHERE to_address = ? AND kind NOT IN {FEES} "
                            "ORDER BY transfer_id LIMIT 1", [pool]).fetchone()[0]
    r = sc.addresses([depositor])["results"][0]
    assert any(e["category"] == "mixer" and e["direction"] == "outgoing" and e["hops_min"] == 1 for e in r["exposures"])
    text = default_text().decode().replace("version: chaintrace-severity/2", "version: test-eth-mixers/1")
    text = text.replace("  p2p_exchange: medium\n", "  p2p_exchange: medium\n  detected_mixer: high\n")
    (d / "mix.yaml").write_text(text)
    hi = load_config(d / "mix.yaml")
    build_eth_index(ws, hi)
    tos = [w["to"] for w in inc["mixer_withdrawals"]][:40]
    res = Screener(ws, hi).addresses(tos)["results"]
    flagged = [r for r in res if any(e["category"] == "mixer" and e.get("counts") for e in r["exposures"])]
    assert flagged and all(r["risk"] in ("high", "severe") and "high:incoming:hops1" in r["rules"] for r in flagged)


def test_detect_services_lists_the_untagged_mixing_pools(drain):
    """``detect services --chain eth`` lists the mixing pools ``chaintrace.detect.pools`` recognises (the ones
    Ethereum screening turns into ``mixer`` source groups): kind ``mixer``, pools of the truth only, with their
    confidence and the deposits, depositors and withdrawals of their denomination as the store has them (SQL);
    ``--kind exchange`` leaves them out and ``--address`` picks one."""
    ws, _inc, d = drain
    pools = set(json.loads((d / "sim" / "truth.json").read_text())["mixer"]["pools"].values())
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "services", "--chain", "eth", "--kind", "mixer",
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    rows = res["detections"]
    assert rows and res["by_kind"]["mixer"] == len(rows) == res["count"]
    assert {x["address"] for x in rows} <= pools and res["thresholds"]["mixer"]["min_depositors"] == 10
    con = ws.connect()
    for x in rows:
        f = x["features"]
        assert x["kind"] == "mixer" and x["hub"] == x["address"] and 0.5 <= x["confidence"] < 1 and x["txids"]
        asset = "token_address IS NULL" if f["asset"] == "ETH" else "lower(token_address) = ?"
        args = [x["address"], f["denomination"]] + ([] if f["asset"] == "ETH" else [f["asset"]])
        n, senders = con.execute(f"SELECT count(*), count(DISTINCT from_address) FROM eth.transfers WHERE "
                                 f"to_address = ? AND value = ?::HUGEINT AND {asset} AND kind NOT IN {FEES}",
                                 args).fetchone()
        assert (f["receipts"], f["senders"]) == (n, senders)
        paid = con.execute(f"SELECT count(*) FROM eth.transfers WHERE from_address = ? AND {asset} AND kind NOT IN "
                           f"{FEES} AND value <= ?::HUGEINT AND value >= ?::HUGEINT * 0.95",
                           [x["address"]] + args[2:] + [f["denomination"], f["denomination"]]).fetchone()[0]
        assert f["spends"] == paid and f["recipients"] <= paid
    one = rows[-1]["address"]
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "services", "--chain", "eth", "--address", one,
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    assert [x["address"] for x in json.loads(r.output)["detections"]] == [one]
    r = CliRunner().invoke(main, ["--data", str(ws.path), "detect", "services", "--chain", "eth", "--kind",
                                  "exchange", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert all(x["kind"] == "exchange" for x in json.loads(r.output)["detections"])


def test_the_documented_pool_example_runs_as_written(tmp_path, monkeypatch):
    """docs/detection.md, "Example: mixing pools listed by detect services --chain eth": the commands as
    written, and the figures it quotes (two of the four simulated pools: the 0.1 and 1 ETH ones)."""
    from tests.conftest import doc_commands, run_commands

    cmds = doc_commands("detection.md", r"### Example: mixing pools listed by `detect services --chain eth`")
    assert [c[2:4] for c in cmds] == [["simulate", "eth"], ["detect", "services"]]
    monkeypatch.chdir(tmp_path)
    outs = run_commands(cmds + [cmds[-1] + ["--format", "json"]])
    pools = json.loads((tmp_path / "sim-eth" / "truth.json").read_text())["mixer"]["pools"]
    assert "2 service-like address(es) on eth (mixer 2)" in " ".join(outs[1].split())
    got = {x["address"]: x for x in json.loads(outs[2])["detections"]}
    assert set(got) == {pools[str(10**17)], pools[str(10**18)]}
    a, b = got[pools[str(10**17)]], got[pools[str(10**18)]]
    assert (a["features"]["senders"], a["features"]["recipients"], a["confidence"]) == (36, 44, 0.918)
    assert (b["features"]["senders"], b["features"]["recipients"], b["confidence"]) == (23, 38, 0.797)

def test_dormancy_thresholds_per_chain(tmp_path):
    """The dormancy default is about a week on each chain (1000 Bitcoin blocks, 50,400 Ethereum blocks); the
    ``detections:`` section sets both chains, ``detections.<chain>:`` one; a typo in either is an error naming
    it."""
    from chaintrace.errors import UserError
    from chaintrace.screen.config import default_text
    from chaintrace.screen.detections import thresholds

    dflt = load_config()
    assert thresholds(dflt)["dormancy"] == {"min_dormant_blocks": 1000}
    assert thresholds(dflt, "eth")["dormancy"] == {"min_dormant_blocks": 50_400}
    p = tmp_path / "c.yaml"
    p.write_text(default_text().decode() + "detections:\n  dormancy: {min_dormant_blocks: 20}\n"
                 "  eth:\n    dormancy: {min_dormant_blocks: 7200}\n    peel-chain: {min_length: 3}\n")
    cfg = load_config(p)
    assert thresholds(cfg)["dormancy"]["min_dormant_blocks"] == 20 and thresholds(cfg)["peel-chain"]["min_length"] == 8
    assert thresholds(cfg, "eth")["dormancy"]["min_dormant_blocks"] == 7200
    assert thresholds(cfg, "eth")["peel-chain"]["min_length"] == 3
    for bad, named in (("  btc:\n    dormancy: {min_blocks: 3}\n", "detections.btc.dormancy: no threshold min_blocks"),
                       ("  eth:\n    dormant: {min_dormant_blocks: 3}\n", "detections.eth.dormant: not one of"),
                       ("  sol:\n    dormancy: {min_dormant_blocks: 3}\n", "detections.sol: not one of")):
        p.write_text(default_text().decode() + "detections:\n" + bad)
        with pytest.raises(UserError, match=named):
            thresholds(load_config(p))  # the Bitcoin side checks the Ethereum subsection too
