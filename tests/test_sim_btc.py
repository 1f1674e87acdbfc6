"""The Bitcoin simulator, checked through the real ingest path: chain validity by construction (spends,
values, coinbase, merkle roots, PoW, timestamps, segwit sizes, wallet fingerprints) and truth agreeing
with the chain at the satoshi level."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from chaintrace.chains.btc import ingest_block_files
from chaintrace.chains.btc.parse import hash_transactions, merkle_root, parse_blocks
from chaintrace.model.encoding import b58check_decode, segwit_decode
from chaintrace.model.networks import network
from chaintrace.model.tags import CATEGORIES
from chaintrace.sim import load_truth
from chaintrace.sim.btc import simulate_btc
from chaintrace.store.workspace import Workspace

TXS = 9000
REGTEST = network("regtest")


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("simbtc")
    out = root / "out"
    r = simulate_btc(out, txs=TXS, seed=11, scenario="dprk", tag_coverage=0.6)
    ws = Workspace(root / "data")
    rep = ingest_block_files(ws, [out])
    return {"out": out, "result": r, "ws": ws, "report": rep, "truth": load_truth(out), "con": ws.connect()}


def q(sim, sql, params=()):
    return sim["con"].execute(sql, params).fetchall()


def test_ingest_takes_every_block_and_transaction(sim):
    rep, t = sim["report"], sim["truth"]
    assert rep.transactions == TXS == t["chain_summary"]["transactions"] == sim["result"].transactions
    assert rep.blocks == t["chain_summary"]["blocks"]
    assert rep.tip_hash == t["chain_summary"]["tip_hash"]
    assert rep.unresolved_inputs == 0
    assert rep.network == "regtest"
    assert rep.orphans == []


def test_every_input_spends_an_existing_unspent_output_once(sim):
    (n_in, resolved, distinct, coinbase), = q(sim, """
        SELECT count(*), count(spent_output_id), count(DISTINCT spent_output_id),
               count(*) FILTER (WHERE prev_txid IS NULL) FROM btc.inputs_raw""")
    assert resolved + coinbase == n_in
    assert distinct == resolved
    # spends point backwards in chain order, never to the same or a later transaction
    (bad,), = q(sim, """SELECT count(*) FROM btc.inputs_raw i JOIN btc.outputs_raw o ON o.output_id = i.spent_output_id
                        WHERE o.tx_id >= i.tx_id""")
    assert bad == 0
    # in-block spends are never used: every spent output comes from an earlier block
    (same_block,), = q(sim, """SELECT count(*) FROM btc.inputs_raw i JOIN btc.outputs_raw o
                               ON o.output_id = i.spent_output_id WHERE o.height >= i.height""")
    assert same_block == 0


def test_values_balance_and_coinbase_pays_subsidy_plus_fees(sim):
    (neg,), = q(sim, "SELECT count(*) FROM btc.transactions WHERE NOT is_coinbase AND (fee IS NULL OR fee < 0)")
    assert neg == 0
    rows = q(sim, """
        SELECT b.height, cb.output_value, coalesce(f.fees, 0)
        FROM btc.blocks b JOIN btc.transactions cb ON cb.height = b.height AND cb.is_coinbase
        LEFT JOIN (SELECT height, sum(fee) AS fees FROM btc.transactions WHERE NOT is_coinbase GROUP BY height) f
               ON f.height = b.height ORDER BY b.height""")
    for h, cb_value, fees in rows:
        subsidy = (50 * 10**8) >> (h // 150)
        assert cb_value == subsidy + fees, h
    # conservation: the unspent outputs hold exactly the subsidies (fees were paid into coinbases)
    (utxo,), = q(sim, """SELECT sum(o.value) FROM btc.outputs_raw o WHERE NOT EXISTS
                         (SELECT 1 FROM btc.inputs_raw i WHERE i.spent_output_id = o.output_id)""")
    (mined,), = q(sim, "SELECT sum(output_value) FROM btc.transactions WHERE is_coinbase")
    (fees,), = q(sim, "SELECT sum(fee) FROM btc.transactions WHERE NOT is_coinbase")
    assert utxo == mined - fees == int(sim["truth"]["chain_summary"]["subsidy_total"])
    assert int(sim["truth"]["chain_summary"]["fees_total"]) == fees


def _records(path: Path):
    data = path.read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        assert data[pos:pos + 4] == REGTEST.magic
        n = int.from_bytes(data[pos + 4:pos + 8], "little")
        yield data[pos + 8:pos + 8 + n]
        pos += 8 + n
    assert pos == len(data)


def test_headers_merkle_roots_pow_and_timestamps(sim):
    blocks = [b for p in sorted(sim["out"].glob("blk*.dat")) for b in _records(p)]
    assert len(blocks) == sim["truth"]["chain_summary"]["blocks"]
    prev = bytes.fromhex(REGTEST.genesis)[::-1]
    times = []
    target = 0x7FFFFF << (8 * (0x20 - 3))
    for raw in blocks:
        h = hashlib.sha256(hashlib.sha256(raw[:80]).digest()).digest()
        assert raw[4:36] == prev
        assert int.from_bytes(raw[72:76], "little") == 0x207FFFFF
        assert int.from_bytes(h, "little") <= target
        p = parse_blocks(np.frombuffer(raw, np.uint8), [0], [len(raw)])
        hash_transactions(p)
        assert merkle_root(p.txid) == raw[36:68]
        # BIP-141 witness commitment in the coinbase, over the wtxids (coinbase's taken as zero)
        wroot = merkle_root([b"\0" * 32] + p.wtxid[1:])
        commit = hashlib.sha256(hashlib.sha256(wroot + b"\0" * 32).digest()).digest()
        assert b"\x6a\x24\xaa\x21\xa9\xed" + commit in raw[int(p.tx_start[0]):int(p.tx_end[0])]
        times.append(int.from_bytes(raw[68:72], "little"))
        prev = h
    gaps = np.diff(times)
    assert (gaps > 0).all()
    assert 400 < gaps.mean() < 900  # about ten minutes a block
    (first,), = q(sim, "SELECT min(height) FROM btc.blocks")
    assert first == 1  # the first block's parent is the regtest genesis block


def test_segwit_serialization_has_realistic_sizes(sim):
    rows = q(sim, """SELECT t.size, t.vsize, t.weight, t.n_inputs, t.n_outputs, i.types, o.types
                     FROM btc.transactions t
                     JOIN (SELECT tx_id, list(DISTINCT a.script_type ORDER BY a.script_type) types FROM btc.inputs_raw
                           JOIN btc.addresses a USING (address_id) GROUP BY 1) i USING (tx_id)
                     JOIN (SELECT tx_id, list(DISTINCT script_type ORDER BY script_type) types FROM btc.outputs_raw
                           GROUP BY 1) o USING (tx_id)
                     WHERE NOT t.is_coinbase""")
    seen = Counter()
    for size, vsize, weight, nin, nout, itypes, otypes in rows:
        assert weight <= 400_000
        if itypes == otypes == ["p2wpkh"] and nin == 1 and nout == 2:
            # one P2WPKH input, two P2WPKH outputs: 140.5-141 vbytes, as Bitcoin Core's wallet makes them
            seen["p2wpkh-1-2"] += 1
            assert 141 <= vsize <= 142 and size in (222, 223), (size, vsize)
        if itypes == otypes == ["p2pkh"] and nin == 1 and nout == 2:
            seen["legacy"] += 1
            assert size == vsize and 225 <= size <= 226  # the classic 226-byte transaction
        if itypes == otypes == ["p2tr"] and nin == 1 and nout == 2:
            seen["p2tr-1-2"] += 1
            assert vsize == 154  # key-path input (57.5 vB) + two P2TR outputs (43 each)
    assert seen["p2wpkh-1-2"] > 20 and seen["legacy"] > 5 and seen["p2tr-1-2"] > 5, seen
    types = dict(q(sim, "SELECT script_type, count(*) FROM btc.outputs_raw GROUP BY 1"))
    for t in ("p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr", "nulldata"):
        assert types.get(t, 0) > 0, t
    (max_w,), = q(sim, "SELECT max(weight) FROM btc.blocks")
    assert max_w <= 4_000_000


def test_wallet_fingerprints_are_visible_on_chain(sim):
    lock = dict(q(sim, """SELECT CASE WHEN locktime = 0 THEN 'zero'
                                      WHEN locktime = height - 1 THEN 'tip'
                                      WHEN locktime < height - 1 THEN 'older' ELSE 'future' END, count(*)
                          FROM btc.transactions WHERE NOT is_coinbase GROUP BY 1"""))
    assert lock.get("future", 0) == 0
    assert lock["zero"] > 1000 and lock["tip"] > 500 and lock["older"] > 10
    seqs = dict(q(sim, "SELECT sequence, count(*) FROM btc.inputs_raw WHERE prev_txid IS NOT NULL GROUP BY 1"))
    assert set(seqs) == {0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF}
    # anti-fee-sniping locktimes come with non-final sequences (else the locktime would not apply)
    (bad,), = q(sim, """SELECT count(*) FROM btc.transactions t JOIN btc.inputs_raw i USING (tx_id)
                        WHERE t.locktime > 0 AND i.sequence = 4294967295""")
    assert bad == 0
    versions = dict(q(sim, "SELECT version, count(*) FROM btc.transactions GROUP BY 1"))
    assert versions.get(1, 0) > 100 and versions.get(2, 0) > 100
    users = pq.read_table(sim["out"] / "users.parquet")
    assert set(users["wallet"].to_pylist()) >= {"bitcoin-core", "electrum", "legacy", "hardware-taproot"}
    # address reuse exists (legacy wallets, exchange hot wallets) but most addresses are used once
    (reused, total), = q(sim, """SELECT count(*) FILTER (WHERE n > 1), count(*) FROM
                                 (SELECT address_id, count(*) n FROM btc.outputs_raw WHERE address_id IS NOT NULL
                                  GROUP BY 1)""")
    assert 0.02 < reused / total < 0.5


def _addr_table(sim):
    return pq.read_table(sim["out"] / "addresses.parquet")


def _addr_index(sim) -> dict[str, dict]:
    if "addr_index" not in sim:
        sim["addr_index"] = {r["address"]: r for r in _addr_table(sim).to_pylist()}
    return sim["addr_index"]


def test_every_address_has_its_true_entity(sim):
    con = sim["con"]
    con.register("truth_addr", _addr_table(sim))
    (n, matched), = q(sim, """SELECT count(*), count(t.entity) FROM btc.addresses a
                              LEFT JOIN truth_addr t USING (address)""")
    assert n == matched
    (dups,), = q(sim, "SELECT count(*) FROM (SELECT address FROM truth_addr GROUP BY 1 HAVING count(*) > 1)")
    assert dups == 0
    # script types agree with the chain's own classification
    (bad,), = q(sim, """SELECT count(*) FROM btc.addresses a JOIN truth_addr t USING (address)
                        WHERE a.script_type <> t.script_type""")
    assert bad == 0
    truth = sim["truth"]
    ids = {e["id"] for e in truth["entities"]}
    users = truth["users"]
    (unknown,), = q(sim, f"""SELECT count(*) FROM truth_addr WHERE entity NOT IN ({",".join(map(str, ids))})
                             AND NOT (entity >= {users['first_id']} AND entity < {users['first_id'] + users['count']})""")
    assert unknown == 0
    # an exchange sweep spends deposit addresses of one exchange only (the clustering truth holds)
    (mixed,), = q(sim, """SELECT count(*) FROM (SELECT i.tx_id, count(DISTINCT t.entity) e FROM btc.inputs i
                          JOIN truth_addr t USING (address) GROUP BY 1) WHERE e > 1""")
    coinjoins = len(truth["coinjoins"]) - sum(1 for c in truth["coinjoins"] if c["protocol"] == "whirlpool_tx0")
    assert mixed == coinjoins  # only CoinJoins (and the hack, paid from the victim alone) combine entities


def test_theft_outputs_and_cashouts_match_the_chain(sim):
    inc = sim["truth"]["incidents"][0]
    con = sim["con"]

    def output(txid, vout):
        r = con.execute("SELECT value, address, height FROM btc.outputs WHERE txid = ? AND n = ?", [txid, vout]).fetchall()
        assert r, (txid, vout)
        return r[0]

    for o in inc["stolen"]["outputs"]:
        v, a, h = output(o["txid"], o["vout"])
        assert (v, a, h) == (o["value"], o["address"], o["height"])
    assert sum(o["value"] for o in inc["stolen"]["outputs"]) == inc["stolen"]["total"] > 0
    addr = _addr_index(sim)
    names = {e["id"]: e["name"] for e in sim["truth"]["entities"]}
    assert inc["cashouts"]
    for c in inc["cashouts"]:
        v, a, h = output(c["txid"], c["vout"])
        assert a == c["address"] and v == c["value"] >= c["amount"] == c["stolen"] + c["mixed"] > 0
        assert addr[a]["role"] == "deposit"
        assert names[addr[a]["entity"]] == c["exchange"] != inc["victim"]["name"]
        assert c["hops"] >= 2 and c["asset"] == "BTC"
        assert addr[a]["customer"] in inc["exchange_identities"]
    for c in inc["cashouts_via_mixer"]:
        assert c["via_mixer"] and c["mixed"] > 0
    # the theft transactions spend the victim's hot wallet
    victim = inc["victim"]["entity"]
    for txid in inc["theft_txids"]:
        ents = {addr[a]["entity"] for (a,) in con.execute(
            "SELECT address FROM btc.inputs WHERE txid = ?", [txid]).fetchall()}
        assert ents == {victim}


def test_stolen_value_balances_to_the_satoshi(sim):
    inc = sim["truth"]["incidents"][0]
    b = inc["balance"]
    parts = {k: v for k, v in b.items() if k != "stolen_total"}
    assert sum(parts.values()) == b["stolen_total"] == inc["stolen"]["total"]
    assert b["cashed_out"] == sum(c["stolen"] for c in inc["cashouts"])
    assert b["mixer_deposited"] == sum(c["stolen"] for c in inc["mixer_deposits"])
    assert b["dormant"] == sum(d["stolen"] for d in inc["dormant"])
    assert b["fees"] == inc["fees"]["stolen"]
    m = inc["mixed_balance"]
    assert m["received"] == sum(p["value"] for p in inc["mixer_payouts"]) > 0
    assert sum(v for k, v in m.items() if k != "received") == m["received"]
    # every branch of the playbook happened
    assert b["cashed_out"] > 0 and b["mixer_deposited"] > 0 and b["dormant"] > 0 and b["fees"] > 0
    assert inc["cashouts_via_mixer"] and inc["dormancy_events"] and inc["peel_chains"]
    assert any(c["via_coinjoin"] for c in inc["cashouts"])


def test_dormant_holdings_are_unspent_and_dormancy_events_move_them(sim):
    inc = sim["truth"]["incidents"][0]
    con = sim["con"]
    for d in inc["dormant"]:
        r = con.execute("SELECT value, address, spending_txid FROM btc.outputs WHERE txid = ? AND n = ?",
                        [d["txid"], d["vout"]]).fetchall()
        assert r and r[0][0] == d["value"] and r[0][1] == d["address"] and r[0][2] is None
        assert d["stolen"] + d["mixed"] <= d["value"]
    for e in inc["dormancy_events"]:
        (spender,), = con.execute("SELECT spending_txid FROM btc.outputs WHERE txid = ? AND n = ?",
                                  [e["txid"], e["vout"]]).fetchall()
        assert spender == e["moved_txid"]
        assert e["blocks_dormant"] >= 20 and e["seconds_dormant"] > 0


def test_transaction_lists_exist_and_have_their_shapes(sim):
    truth, con = sim["truth"], sim["con"]
    shape = {}
    for c in truth["coinjoins"]:
        r = con.execute("SELECT n_inputs, n_outputs FROM btc.transactions WHERE txid = ?", [c["txid"]]).fetchall()
        assert r, c
        nin, nout = r[0]
        assert nin == c["n_inputs"] and nout == c["n_outputs"]
        vals = [v for (v,) in con.execute("SELECT value FROM btc.outputs WHERE txid = ? ORDER BY n",
                                          [c["txid"]]).fetchall()]
        p = c["protocol"]
        shape[p] = shape.get(p, 0) + 1
        if p == "whirlpool":
            assert nin == nout == 5 and set(vals) == {c["denomination"]}
        elif p == "whirlpool_tx0":
            assert vals.count(0) == 1  # the OP_RETURN
        elif p == "wasabi1":
            most, cnt = Counter(vals).most_common(1)[0]
            assert cnt >= 10 and abs(most - 10_000_000) <= 200_000
        elif p == "wasabi2":
            assert nin >= 50 and vals == sorted(vals, reverse=True)
            ins = [v for (v,) in con.execute("SELECT value FROM btc.inputs WHERE txid = ? ORDER BY n",
                                             [c["txid"]]).fetchall()]
            assert ins == sorted(ins, reverse=True)
    assert set(shape) == {"whirlpool", "whirlpool_tx0", "wasabi1", "wasabi2"}
    assert any(c["launderer_inputs"] for c in truth["coinjoins"])
    mixer = truth["mixer"]["txids"]
    assert mixer["deposits"] and mixer["payouts"]
    for k in ("deposits", "payouts", "consolidations"):
        for txid in mixer[k]:
            assert con.execute("SELECT 1 FROM btc.transactions WHERE txid = ?", [txid]).fetchall()
    # peel chains: each transaction spends an output of the previous one
    inc = truth["incidents"][0]
    assert len(inc["peel_chains"]) >= 3
    for chain in inc["peel_chains"]:
        for a, b in zip(chain, chain[1:]):
            (n,), = con.execute("SELECT count(*) FROM btc.inputs WHERE txid = ? AND prev_txid = ?", [b, a]).fetchall()
            assert n == 1
    kinds = Counter(t["kind"] for t in inc["transactions"])
    assert kinds["theft"] >= 1 and kinds["fan_out"] >= 1 and kinds["peel"] >= 10


def test_tags_form_a_tagpack_with_the_requested_coverage(sim):
    data = yaml.safe_load((sim["out"] / "tags.yaml").read_text())
    for k in ("title", "creator", "currency", "network", "lastmod", "source"):
        assert data[k]
    tags = data["tags"]
    assert len(tags) == sim["truth"]["tags"]["count"]
    addr = _addr_index(sim)
    for t in tags:
        assert t["category"] in CATEGORIES
        a = t["address"]
        if a.startswith("bcrt1"):
            segwit_decode("bcrt", a)
        else:
            assert b58check_decode(a)[0] in (REGTEST.p2pkh, REGTEST.p2sh)
        ctx = json.loads(t["context"])
        assert addr[a]["entity"] == ctx["entity"]  # tags never lie about the entity
    roles = Counter(json.loads(t["context"])["role"] for t in tags)
    assert roles["hot_wallet"] >= 6 and roles["cold_wallet"] == 6 and roles["theft"] >= 1
    all_roles = Counter(r["role"] for r in addr.values())
    cov = roles["deposit"] / all_roles["deposit"]
    assert 0.5 < cov < 0.7
    hot = {a for a, r in addr.items() if r["role"] == "hot_wallet"}
    assert hot <= {t["address"] for t in tags}


def test_service_tags_name_their_actor_and_the_actorpack_lists_them(sim):
    """Every service tag carries its service's GraphSense actor id (one per entity: deposit addresses, hot
    and cold wallets alike); actors.yaml is an ActorPack the intel importer reads, with one actor per
    service named by the entity's name; the truth's entities carry the same ids."""
    from chaintrace.intel import import_paths
    from chaintrace.intel.actors import all_actors
    from chaintrace.intel.tagpack import parse_actorpack, parse_tagpack
    from chaintrace.model.tags import SERVICE_CATEGORIES

    out, truth = sim["out"], sim["truth"]
    ents = {e["id"]: e for e in truth["entities"]}
    raw = yaml.safe_load((out / "tags.yaml").read_text())["tags"]
    service = [t for t in raw if t["category"] in SERVICE_CATEGORIES]
    assert service and all(t.get("actor") for t in service)
    by_entity: dict[int, set] = {}
    for t in service:
        e = json.loads(t["context"])["entity"]
        by_entity.setdefault(e, set()).add(t["actor"])
        assert ents[e]["actor"] == t["actor"] and t["actor"].isalnum() and t["actor"] == t["actor"].lower()
    assert all(len(v) == 1 for v in by_entity.values())  # one actor per service entity
    assert {t.get("actor") for t in raw if t["category"] == "perpetrator"} == {"lazarusgroup"}
    assert len(parse_tagpack(out / "tags.yaml").tags) == len(raw)  # the importer's parser takes every tag
    pack = parse_actorpack(out / "actors.yaml")
    assert not pack.rejects and len(pack.actors) == truth["actors"]["count"]
    services = {e["actor"]: e for e in truth["entities"] if e["category"] in SERVICE_CATEGORIES}
    assert {a.id for a in pack.actors} == set(services) >= {t["actor"] for t in service}
    for a in pack.actors:
        assert a.name == services[a.id]["name"] and a.categories == [services[a.id]["category"]]
        assert a.uri and a.lastmod
    kinds = Counter(e["kind"] for e in services.values())
    assert kinds["exchange"] == 6 and kinds["mining_pool"] >= 1 and kinds["mixer"] == 1
    # the real importer takes the pack; the registry then names the actors
    ws = Workspace(out.parent / "intel")
    rep = import_paths(ws, "actorpack", [out / "actors.yaml"])
    assert rep["totals"]["actors"] == len(pack.actors) and rep["totals"]["rejected"] == 0
    known = all_actors(ws)
    assert all(known[a]["name"] == services[a]["name"] for a in services)


def test_coinjoin_detectors_recognise_the_simulated_rounds(sim):
    """The simulator's rounds have the structure of real coordinators' rounds, so the published detectors
    (chaintrace.detect.coinjoin; regtest: no activation heights) recognise every Wasabi 1/2 round and every
    Whirlpool mix, the protocol matching, and nothing else; only a pool's first mix (no remixer exists yet)
    may be missed. Every input of a Wasabi 2 round, the launderer's included, is P2WPKH or P2TR."""
    from chaintrace.detect.coinjoin import detect_coinjoins
    from chaintrace.graph.btc import load_btc_graph, txids

    g = load_btc_graph(sim["ws"])
    inv = {v: k for k, v in txids(sim["ws"], np.arange(g.n_tx)).items()}
    found = detect_coinjoins(g)
    rounds = [c for c in sim["truth"]["coinjoins"] if c["protocol"] != "whirlpool_tx0"]
    assert {c["protocol"] for c in rounds} == {"whirlpool", "wasabi1", "wasabi2"}
    names = {1: "wasabi2", 2: "wasabi1", 3: "whirlpool"}
    missed: Counter = Counter()
    for c in rounds:
        p = int(found.protocol[inv[c["txid"]] - found.lo])
        if p == 0:
            missed[(c["protocol"], c["denomination"])] += 1
        else:
            assert names.get(p) == c["protocol"], c
    assert all(proto == "whirlpool" and n == 1 for (proto, _d), n in missed.items()), missed
    assert set(found.tx_ids().tolist()) <= {inv[c["txid"]] for c in rounds}  # no false positive
    from chaintrace.model.scripts import P2TR, P2WPKH

    for c in rounds:
        if c["protocol"] == "wasabi2":
            t = inv[c["txid"]]
            types = set(g.out_type[g.in_output[g.tx_in[t]:g.tx_in[t + 1]]].tolist())
            assert types <= {P2WPKH, P2TR}, (c, types)
