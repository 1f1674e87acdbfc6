"""Address clustering end to end: hand-built regtest chains ingested through the real block-file path, then
`build_clusters` / `cluster_info` / `explain` / `exclude` and the CLI. Every expectation is derived from the
scenario (who owns which address), not from the code under test."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner

from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.graph import cluster as C
from chaintrace.model.tags import Tag
from chaintrace.store import query
from chaintrace.store.workspace import Workspace
from tests import btcfactory as F
from tests.test_cluster_ledger import Ledger

BTC = 10**8


def clusters_by_name(ws, lg: Ledger, names: list[str], kinds: dict | None = None) -> set[frozenset]:
    """The partition of the named addresses under the committed clusters (via the SQL view)."""
    addr = {lg.addr(n, (kinds or {}).get(n, "p2wpkh")): n for n in names}
    con = ws.connect()
    rows = con.execute("SELECT a.address, c.cluster_id FROM btc.addresses a JOIN btc.address_clusters c "
                       "USING (address_id)").fetchall()
    groups: dict[int, set] = {}
    for a, cid in rows:
        if a in addr:
            groups.setdefault(cid, set()).add(addr[a])
    return {frozenset(g) for g in groups.values()}


def basic_chain() -> tuple[Ledger, dict]:
    """alice: a1 a2 a3 (+ change a4); bob: b1 b2; payments to c1 c2 c3."""
    lg = Ledger()
    f = lg.fund([("a1", BTC), ("a2", BTC), ("a3", BTC), ("b1", BTC), ("b2", BTC)])
    lg.mine()
    # tx1: alice pays c1 1.5 BTC (round) with a fresh, odd-valued change a4 smaller than every input
    tx1, o1 = lg.pay([f[0], f[1]], [("c1", 150_000_000), ("a4", 49_999_500)])
    lg.mine()
    tx2, _ = lg.pay([f[2], o1[1]], [("c2", 149_999_000)])
    tx3, _ = lg.pay([f[3], f[4]], [("c3", 2 * BTC - 700)])
    lg.mine()
    return lg, {"tx1": tx1.txid[::-1].hex(), "tx2": tx2.txid[::-1].hex(), "tx3": tx3.txid[::-1].hex()}


NAMES = ["a1", "a2", "a3", "a4", "b1", "b2", "c1", "c2", "c3"]


def test_multi_input_clusters_evidence_and_sql_view(ws, tmp_path):
    lg, tx = basic_chain()
    lg.ingest(ws, tmp_path)
    rep = C.build_clusters(ws, C.ClusterConfig(), tags=[])
    assert not rep["incremental"] and rep["transactions"] > 0
    # MIH only: {a1,a2} (tx1), {a3,a4} (tx2), {b1,b2} (tx3); payees alone
    assert clusters_by_name(ws, lg, NAMES) == {frozenset(s) for s in (
        {"a1", "a2"}, {"a3", "a4"}, {"b1", "b2"}, {"c1"}, {"c2"}, {"c3"})}
    assert rep["edges_by_status"] == {"union:mih": 3}
    # cluster id = smallest address id among the members
    ids = C._ids_of(ws, [lg.addr("a1"), lg.addr("a2")])
    info = C.cluster_info(ws, lg.addr("a2"), tags=[])
    assert info["cluster_id"] == min(ids.values()) and info["size"] == 2
    assert set(info["addresses"]) == {lg.addr("a1"), lg.addr("a2")}
    assert info["unions_by_heuristic"] == {"mih": 1}
    # evidence: one co-spend, named by txid and heuristic
    w = C.explain(ws, lg.addr("a1"), lg.addr("a2"))
    assert w["same_cluster"] and len(w["path"]) == 1
    step = w["path"][0]
    assert (step["txid"], step["heuristic"], step["confidence"]) == (tx["tx1"], "mih", 1.0)
    assert {step["from"], step["to"]} == {lg.addr("a1"), lg.addr("a2")}
    assert not C.explain(ws, lg.addr("a1"), lg.addr("a3"))["same_cluster"]
    # the evidence tables are queryable
    con = ws.connect()
    n_unions = con.execute("SELECT count(*) FROM btc.cluster_unions").fetchone()[0]
    n_addr, n_clusters = con.execute(
        "SELECT count(*), count(DISTINCT cluster_id) FROM btc.address_clusters").fetchone()
    assert n_unions == n_addr - n_clusters  # a union-find forest
    assert con.execute("SELECT count(*) FROM btc.cluster_edges WHERE heuristic = 'mih'").fetchone()[0] == 3
    sizes = con.execute("SELECT cluster_id, count(*) AS n, max(cluster_size) AS s FROM btc.address_clusters "
                        "GROUP BY cluster_id HAVING n <> s").fetchall()
    assert sizes == []


def test_cluster_balance_equals_sum_of_member_balances(ws, tmp_path):
    lg, _ = basic_chain()
    lg.ingest(ws, tmp_path)
    C.build_clusters(ws, C.ClusterConfig(heuristics=("mih", "change")), tags=[])
    con = ws.connect()
    roots = [r[0] for r in con.execute("SELECT DISTINCT cluster_id FROM btc.address_clusters").fetchall()]
    total_balance = 0
    for cid in roots:
        info = C.cluster_info(ws, str(cid), tags=[], sample=1000)
        members = [r[0] for r in con.execute("SELECT a.address FROM btc.address_clusters c JOIN btc.addresses a "
                                             "USING (address_id) WHERE cluster_id = ?", [cid]).fetchall()]
        per = [query.btc_address(ws, m) for m in members]
        assert info["balance"] == sum(p["balance"] for p in per)
        assert info["received"] == sum(p["received"] for p in per)
        assert info["sent"] == sum(p["sent"] for p in per)
        total_balance += info["balance"]
    st = query.stats(ws)["chains"]["btc"]
    assert total_balance == st["utxo_value"]  # every unspent satoshi is in exactly one cluster


def test_change_layer_links_change_and_can_be_dropped(ws, tmp_path):
    lg, tx = basic_chain()
    lg.ingest(ws, tmp_path)
    rep = C.build_clusters(ws, C.ClusterConfig.parse("mih,change"), tags=[])
    # a4 is the unique change of tx1 (fresh, odd, below the smallest input, same type): alice is one entity
    assert clusters_by_name(ws, lg, NAMES) == {frozenset(s) for s in (
        {"a1", "a2", "a3", "a4"}, {"b1", "b2"}, {"c1"}, {"c2"}, {"c3"})}
    change = "change:" + "+".join(C.ch.DEFAULT)
    assert rep["edges_by_status"].get(f"union:{change}") == 1
    w = C.explain(ws, lg.addr("a1"), lg.addr("a3"))
    assert sorted(s["txid"] for s in w["path"]) == sorted([tx["tx1"], tx["tx2"]])  # in either order
    hs = {s["heuristic"] for s in w["path"]}
    assert change in hs and "mih" in hs
    conf = [s["confidence"] for s in w["path"] if s["heuristic"] == change][0]
    assert 0 < conf <= 1
    # the payment c1 is never linked (round amount, above the smallest input)
    assert C.explain(ws, lg.addr("a1"), lg.addr("c1"))["same_cluster"] is False
    # rebuild without the change heuristic: from the stored edges, the change layer is kept on disk
    rep2 = C.build_clusters(ws, C.ClusterConfig(), tags=[])
    assert not rep2["incremental"] and rep2["edges_generated"] == {}
    assert clusters_by_name(ws, lg, ["a1", "a2", "a3", "a4"]) == {frozenset({"a1", "a2"}), frozenset({"a3", "a4"})}
    st = C.ClusterStore(ws).state()
    assert st["layers"]["change"]["files"], "layer 1 edges stay stored for a later rebuild"


def whirlpool_round(lg: Ledger, pool: int = 1_000_000, tag: str = "w"):
    ins = lg.fund([(f"{tag}{i}", pool + (0 if i < 2 else 5_000 + 1_000 * i)) for i in range(5)])
    lg.mine()
    tx, outs = lg.pay(ins, [(f"{tag}o{i}", pool) for i in range(5)])
    lg.mine()
    return tx, outs


def test_coinjoin_is_never_unioned_and_each_refusal_is_logged(ws, tmp_path):
    lg = Ledger()
    tx, _ = whirlpool_round(lg)
    lg.ingest(ws, tmp_path)
    names = [f"w{i}" for i in range(5)]
    rep = C.build_clusters(ws, C.ClusterConfig(), tags=[])
    assert clusters_by_name(ws, lg, names) == {frozenset({n}) for n in names}
    assert rep["edges_by_status"] == {"blocked:mih": 4}
    w = C.explain(ws, lg.addr("w0"), lg.addr("w3"))
    assert not w["same_cluster"]
    assert [(r["reason"], r["detail"], r["txid"]) for r in w["refusals"]] == \
        [("coinjoin", "whirlpool", tx.txid[::-1].hex())]
    cj = C.coinjoin_list(ws)
    assert [(r["txid"], r["protocol"], r["denomination"], r["n_equal"]) for r in cj] == \
        [(tx.txid[::-1].hex(), "whirlpool", 1_000_000, 5)]
    # the naive setting merges the five participants: what CoinJoin detection prevents
    C.build_clusters(ws, C.ClusterConfig(coinjoin="include"), tags=[])
    assert clusters_by_name(ws, lg, names) == {frozenset(names)}


def two_wallets_then_bridge(n: int = 6):
    """Two wallets of n addresses, each consolidated in its own block; then one tx co-spending a second
    coin of x0 and of y0, which joins the two wallets."""
    lg = Ledger()
    fx = lg.fund([(f"x{i}", BTC) for i in range(n)] + [("x0", BTC)])
    fy = lg.fund([(f"y{i}", BTC) for i in range(n)] + [("y0", BTC)])
    lg.mine()
    lg.pay(fx[:n], [("xs", n * BTC - 1000)])
    lg.mine()
    lg.pay(fy[:n], [("ys", n * BTC - 1000)])
    lg.mine()
    bridge, _ = lg.pay([fx[n], fy[n]], [("z", 2 * BTC - 500)])
    lg.mine()
    return lg, bridge.txid[::-1].hex()


def test_size_guard_refuses_merging_two_large_clusters(ws, tmp_path):
    lg, bridge = two_wallets_then_bridge()
    lg.ingest(ws, tmp_path)
    x = [f"x{i}" for i in range(6)]
    y = [f"y{i}" for i in range(6)]
    rep = C.build_clusters(ws, C.ClusterConfig(max_merge_size=6), tags=[])
    assert clusters_by_name(ws, lg, x + y) == {frozenset(x), frozenset(y)}
    assert rep["edges_by_status"]["size_limit:mih"] == 1
    w = C.explain(ws, lg.addr("x0"), lg.addr("y0"))
    assert [(r["reason"], r["txid"]) for r in w["refusals"]] == [("size_limit", bridge)]


def test_growth_alarm_then_exclude_undoes_the_collapse(ws, tmp_path):
    lg, bridge = two_wallets_then_bridge()
    lg.ingest(ws, tmp_path)
    x = [f"x{i}" for i in range(6)]
    y = [f"y{i}" for i in range(6)]
    cfg = C.ClusterConfig(max_merge_size=0, alarm_growth=0.5, alarm_min_size=10)
    rep = C.build_clusters(ws, cfg, tags=[])
    assert clusters_by_name(ws, lg, x + y) == {frozenset(x + y)}
    assert len(rep["alarms"]) == 1
    al = rep["alarms"][0]
    assert al["txid"] == bridge and al["largest_before"] == 6 and al["largest_after"] == 12
    # undo: refuse the unions of that transaction, recomputed from the stored edges
    rep2 = C.exclude(ws, [bridge], "payjoin, not common ownership", config=cfg)
    assert rep2["edges_generated"] == {}
    assert clusters_by_name(ws, lg, x + y) == {frozenset(x), frozenset(y)}
    w = C.explain(ws, lg.addr("x0"), lg.addr("y0"))
    assert [(r["reason"], r["detail"]) for r in w["refusals"]] == [("excluded", "payjoin, not common ownership")]
    assert rep2["alarms"] == []
    C.exclude(ws, [bridge], undo=True, config=cfg)
    assert clusters_by_name(ws, lg, x + y) == {frozenset(x + y)}
    with pytest.raises(UserError, match="not in the store"):
        C.exclude(ws, ["00" * 32], config=cfg)


def exchange_tags(lg: Ledger) -> list[Tag]:
    return [Tag(chain="btc", address=lg.addr("x0"), label="Kraken", category="exchange", actor="kraken",
                source="test"),
            Tag(chain="btc", address=lg.addr("y0"), label="Bitstamp", category="exchange", actor="bitstamp",
                source="test"),
            Tag(chain="btc", address=lg.addr("y1"), label="Bitstamp deposit", category="exchange", actor="bitstamp",
                source="test2"),
            Tag(chain="btc", address=lg.addr("x1"), label="hacker", category="hacker", source="test")]


def test_tag_conflict_guard_and_query_time_labels(ws, tmp_path):
    lg, bridge = two_wallets_then_bridge()
    lg.ingest(ws, tmp_path)
    x = [f"x{i}" for i in range(6)]
    y = [f"y{i}" for i in range(6)]
    tags = exchange_tags(lg)
    rep = C.build_clusters(ws, C.ClusterConfig(max_merge_size=0), tags=tags)
    assert clusters_by_name(ws, lg, x + y) == {frozenset(x), frozenset(y)}
    assert rep["edges_by_status"]["tag_conflict:mih"] == 1
    w = C.explain(ws, lg.addr("x3"), lg.addr("y3"))
    assert [(r["reason"], r["detail"]) for r in w["refusals"]] == [("tag_conflict", "kraken | bitstamp")]
    # a member without any tag is labelled by its cluster (query time)
    info = C.cluster_info(ws, lg.addr("x4"), tags=tags)
    assert info["label"] == "kraken" and info["conflicts"] == []
    assert {(t["addresses"][0], t["label"], t["count"]) for t in info["tags"]} == {
        (lg.addr("x0"), "Kraken", 1), (lg.addr("x1"), "hacker", 1)}
    assert info["tagged_addresses"] == 2
    assert C.cluster_stats(ws)["largest"][0]["service"] in ("kraken", "bitstamp")
    # guard off: the clusters merge and the conflict is reported, not resolved
    C.build_clusters(ws, C.ClusterConfig(max_merge_size=0, tag_guard=False), tags=tags)
    info = C.cluster_info(ws, lg.addr("x4"), tags=tags)
    assert info["size"] >= 12 and info["services"] == ["bitstamp", "kraken"]
    assert info["label"] == "CONFLICT: bitstamp / kraken"
    assert {c["service"] for c in info["conflicts"]} == {"bitstamp", "kraken"}
    # tracing's sink expansion skips a conflicted cluster instead of picking a service
    expand = C.cluster_expander(ws)
    ids = C._ids_of(ws, [lg.addr("x0"), lg.addr("y0")])
    members, origin = expand(np.array([ids[lg.addr("x0")], ids[lg.addr("y0")]]), keys=np.array([0, 1]))
    assert len(members) == 0 and len(expand.conflicts) == 1
    members, origin = expand(np.array([ids[lg.addr("x0")]]))
    assert len(members) == info["size"] and set(origin.tolist()) == {0}


def random_economy(seed: int, blocks: int = 12) -> Ledger:
    """Wallets with several addresses paying each other, consolidations, change, and a Whirlpool round."""
    rnd = random.Random(seed)
    lg = Ledger()
    wallets = {w: [f"{w}{i}" for i in range(6)] for w in "pqrst"}
    coins: dict[str, list] = {w: [] for w in wallets}
    ops = lg.fund([(n, rnd.randint(1, 20) * 10_000_000) for w in wallets for n in wallets[w][:3]])
    k = 0
    for w in wallets:
        for n in wallets[w][:3]:
            coins[w].append((ops[k], n))
            k += 1
    lg.mine()
    fresh = {w: 3 for w in wallets}
    for b in range(blocks):
        for w in rnd.sample(sorted(wallets), 3):
            if not coins[w]:
                continue
            take = rnd.sample(coins[w], min(len(coins[w]), rnd.randint(1, 3)))
            for c in take:
                coins[w].remove(c)
            total = sum(lg.values[c[0]] for c in take)
            to = rnd.choice([v for v in wallets if v != w])
            pay = total // rnd.randint(2, 4)
            name_to = f"{to}{fresh[to] % 6}"
            fresh[to] += 1
            chg = f"{w}{fresh[w] % 6}"
            fresh[w] += 1
            _, out = lg.pay([c[0] for c in take], [(name_to, pay), (chg, total - pay - 1000)])
            coins[to].append((out[0], name_to))
            coins[w].append((out[1], chg))
        if b == blocks // 2:
            whirlpool_round(lg, tag=f"wp{seed}_")
        lg.mine()
    return lg


def _snapshot(ws) -> tuple:
    con = ws.connect()
    ac = con.execute("SELECT address_id, cluster_id, cluster_size FROM btc.address_clusters ORDER BY 1").fetchall()
    un = sorted(con.execute("SELECT a, b, tx_id, heuristic FROM btc.cluster_unions").fetchall())
    rf = sorted(con.execute("SELECT a, b, tx_id, reason FROM btc.cluster_refusals").fetchall())
    return ac, un, rf


def test_incremental_build_equals_full_build(tmp_path):
    lg = random_economy(5)
    path = lg.write(tmp_path / "all.dat")
    blocks = lg.chain.blocks
    half = len(blocks) // 2
    cfg = C.ClusterConfig.parse("mih,change")
    inc = Workspace(tmp_path / "inc")
    (tmp_path / "a.dat").write_bytes(F.blk_file(blocks[:half]))
    (tmp_path / "b.dat").write_bytes(F.blk_file(blocks[half:]))
    from chaintrace.chains.btc import ingest_block_files

    ingest_block_files(inc, [tmp_path / "a.dat"])
    r1 = C.build_clusters(inc, cfg, tags=[])
    ingest_block_files(inc, [tmp_path / "b.dat"])
    r2 = C.build_clusters(inc, cfg, tags=[])
    assert r2["incremental"] and 0 < r2["new_transactions"] < r2["transactions"]
    assert r2["generation"] == r1["generation"] + 1
    assert C.build_clusters(inc, cfg, tags=[]).get("up_to_date")
    full = Workspace(tmp_path / "full")
    ingest_block_files(full, [path])
    C.build_clusters(full, cfg, tags=[])
    a, b = _snapshot(inc), _snapshot(full)
    assert a == b
    assert len(a[1]) > 10 and any(r[3] == "coinjoin" for r in a[2])


def test_reorg_below_clustered_tip_rebuilds(tmp_path, monkeypatch):
    lg = random_economy(9, blocks=6)
    lg.write(tmp_path / "main.dat")
    ws = Workspace(tmp_path / "ws")
    from chaintrace.chains.btc import ingest_block_files

    ingest_block_files(ws, [tmp_path / "main.dat"])
    C.build_clusters(ws, C.ClusterConfig(), tags=[])
    # a longer branch forking 3 blocks below the tip (coinbase-only blocks): the last txs disappear
    fork_at = len(lg.chain.blocks) - 3
    prev = lg.chain.hashes[fork_at]
    t = lg.chain.time
    raws = []
    for k in range(4):
        h = fork_at + 1 + k
        cb = F.Tx([], [(F.p2wpkh("forkminer"), 2 * BTC)] * 25, height=h, extra=b"fork")  # more outputs than
        # the abandoned blocks had: output ids of the old branch are reused
        raw = F.block(prev, [cb], t + 60 * (k + 1))
        raws.append(raw)
        prev = F.block_hash(raw)
    (tmp_path / "fork.dat").write_bytes(F.blk_file(raws))
    ingest_block_files(ws, [tmp_path / "fork.dat"])
    # before the rebuild, `cluster show` does not read the outputs index of the abandoned branch
    from chaintrace.graph.cluster import index as I

    monkeypatch.setattr(I, "SCAN_SHARE", 0)  # the index would be read for clusters this large
    for name in ("p0", "q0", "r0", "forkminer"):
        info = C.cluster_info(ws, lg.addr(name), tags=[], sample=1000)
        per = [query.btc_address(ws, a) for a in info["addresses"]]
        assert info["balance"] == sum(p["balance"] for p in per) and info["stale"]
    rep = C.build_clusters(ws, C.ClusterConfig(), tags=[])
    assert any("reorganised" in n for n in rep["notes"]) and not rep["incremental"]
    fresh = Workspace(tmp_path / "fresh")
    (tmp_path / "kept.dat").write_bytes(F.blk_file(lg.chain.blocks[:fork_at] + raws))
    ingest_block_files(fresh, [tmp_path / "kept.dat"])
    C.build_clusters(fresh, C.ClusterConfig(), tags=[])
    assert _snapshot(ws) == _snapshot(fresh)


def test_interrupted_build_keeps_previous_clusters(ws, tmp_path, monkeypatch):
    lg, _ = basic_chain()
    lg.ingest(ws, tmp_path)
    C.build_clusters(ws, C.ClusterConfig(), tags=[])
    before = _snapshot(ws)
    st0 = C.ClusterStore(ws).state()

    def crash(self, state):
        raise KeyboardInterrupt  # the process dies right before the commit point

    monkeypatch.setattr(C.ClusterStore, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        C.build_clusters(ws, C.ClusterConfig.parse("mih,change"), tags=[])
    monkeypatch.undo()
    assert C.ClusterStore(ws).state() == st0
    assert _snapshot(ws) == before  # readers still see the committed clusters
    leftovers = [p for p in (ws.path / "btc" / "clusters").rglob("*.parquet")
                 if p.relative_to(ws.path / "btc" / "clusters").as_posix() not in C.ClusterStore.referenced(st0)]
    assert leftovers, "the interrupted build wrote files"
    C.build_clusters(ws, C.ClusterConfig.parse("mih,change"), tags=[])
    st = C.ClusterStore(ws).state()
    on_disk = {p.relative_to(ws.path / "btc" / "clusters").as_posix()
               for p in (ws.path / "btc" / "clusters").rglob("*.parquet")}
    assert on_disk == {x for x in C.ClusterStore.referenced(st) if x.endswith(".parquet")}


def test_errors_name_what_is_wrong(ws, tmp_path):
    lg, _ = basic_chain()
    lg.ingest(ws, tmp_path)
    with pytest.raises(UserError, match="cluster build"):
        C.cluster_info(ws, lg.addr("a1"), tags=[])
    C.build_clusters(ws, C.ClusterConfig(), tags=[])
    with pytest.raises(UserError, match="does not appear in the store"):
        C.cluster_info(ws, "bcrt1qnotanaddressinthestore", tags=[])
    ids = C._ids_of(ws, [lg.addr("a1"), lg.addr("a2")])
    hi = max(ids.values())
    with pytest.raises(UserError, match="is not a cluster id"):
        C.cluster_info(ws, str(hi), tags=[])
    with pytest.raises(UserError, match="unknown heuristic"):
        C.ClusterConfig.parse("mih,colour")
    with pytest.raises(UserError, match="unknown change heuristic"):
        C.ClusterConfig.parse("change:fresh+moon")
    with pytest.raises(UserError, match="unknown CoinJoin detector"):
        C.ClusterConfig.parse("mih", detectors="wasabi3")


def test_cli_build_show_why_stats_coinjoins(tmp_path):
    lg, tx = basic_chain()
    whirlpool_round(lg)
    data = tmp_path / "data"
    lg.write(tmp_path / "blk00000.dat")
    r = CliRunner()
    assert r.invoke(main, ["--data", str(data), "ingest", "btc-blocks", str(tmp_path / "blk00000.dat")]).exit_code == 0
    res = r.invoke(main, ["--data", str(data), "cluster", "build", "--heuristics", "mih,change", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["heuristics"] == ["mih", "change:" + "+".join(C.ch.DEFAULT)] and d["clusters"] > 0
    res = r.invoke(main, ["--data", str(data), "cluster", "show", lg.addr("a1"), "--why", lg.addr("a3"),
                          "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert d["size"] == 4 and d["why"]["same_cluster"] and isinstance(d["balance"], str)
    res = r.invoke(main, ["--data", str(data), "cluster", "show", lg.addr("a1"), "--why", lg.addr("a3")])
    assert res.exit_code == 0 and tx["tx1"] in res.output and "mih" in res.output
    res = r.invoke(main, ["--data", str(data), "cluster", "why", lg.addr("w0"), lg.addr("w1")])
    assert res.exit_code == 0 and "not" in res.output and "whirlpool" in res.output
    res = r.invoke(main, ["--data", str(data), "cluster", "stats", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.output)["coinjoins_by_protocol"] == {"whirlpool": 1}
    res = r.invoke(main, ["--data", str(data), "cluster", "coinjoins", "--format", "csv"])
    assert res.exit_code == 0 and res.output.splitlines()[1].split(",")[2] == "whirlpool"
    res = r.invoke(main, ["--data", str(data), "sql",
                          "SELECT count(DISTINCT cluster_id) FROM btc.address_clusters WHERE cluster_size > 1",
                          "--format", "csv"])
    assert res.exit_code == 0 and int(res.output.splitlines()[1]) == 2  # alice, bob
    res = r.invoke(main, ["--data", str(data), "cluster", "show", "bcrt1qunknown"])
    assert res.exit_code == 2 and "does not appear in the store" in res.output
    res = r.invoke(main, ["--data", str(data), "cluster", "build", "--heuristics", "magic"])
    assert res.exit_code == 2 and "unknown heuristic" in res.output
    res = r.invoke(main, ["--data", str(data), "cluster", "exclude", tx["tx2"], "--format", "json"])
    assert res.exit_code == 0, res.output
    assert tx["tx2"] in json.loads(res.output)["exclusions"]


def test_service_entity_names_the_service_not_the_role():
    def e(label, actor=None, category="exchange"):
        return C.service_entity(Tag(chain="btc", address="x", label=label, category=category, actor=actor))

    assert e("Arbor Exchange deposit address") == e("Arbor Exchange hot wallet") == "arbor exchange"
    assert e("binance reserve wallets") == "binance" and e("Kraken") == "kraken"
    assert e("whatever label", actor="Bitstamp") == "bitstamp"  # the actor wins
    assert e("Lazarus group", category="sanction") is None  # not a service: no guard label
    labels = C.ServiceLabels.from_tags([
        Tag(chain="btc", address="a1", label="Kraken", category="exchange"),
        Tag(chain="btc", address="a1", label="Kraken deposit address", category="exchange"),
        Tag(chain="btc", address="a2", label="Kraken", category="exchange"),
        Tag(chain="btc", address="a2", label="Bitstamp", category="exchange"),
        Tag(chain="eth", address="a3", label="Bitstamp", category="exchange")])
    assert labels.entities == ["kraken"] and labels.ambiguous == ["a2"] and set(labels.by_address) == {"a1"}


def test_balance_reads_members_outputs_including_blocks_after_the_build(ws, tmp_path, monkeypatch):
    """`cluster show` reads its members' outputs from the address -> outputs index (segments written by
    each build) plus the outputs of blocks ingested since the build; the figures always equal the sum of the
    members' own balances in the current store."""
    from chaintrace.chains.btc import ingest_block_files
    from chaintrace.graph.btc import load_btc_graph
    from chaintrace.graph.cluster import build as B, index as I

    monkeypatch.setattr(B, "MERGE_ROWS", 0)  # small index segments are not merged just for being small
    monkeypatch.setattr(I, "SCAN_SHARE", 0)  # read through the index even for clusters this large
    lg = Ledger()
    f = lg.fund([("k1", BTC), ("k2", BTC), ("k3", BTC), ("m1", BTC)])
    lg.mine()
    lg.pay([f[0], f[1]], [("x", 2 * BTC - 700)])  # k1 + k2: one wallet
    lg.mine()
    cuts = [len(lg.chain.blocks)]
    lg.pay([f[2]], [("k1", BTC // 2), ("k5", BTC // 2 - 500)])  # k1 is paid again
    lg.mine()
    cuts.append(len(lg.chain.blocks))
    k2 = lg.fund([("k2", 3 * BTC)])
    lg.mine()
    lg.pay([k2[0], f[3]], [("n1", 4 * BTC - 900)])  # k2 spends with m1: the wallet grows by m1
    lg.mine()
    cuts.append(len(lg.chain.blocks))
    lg.fund([("m1", BTC // 4)])  # m1 paid after the last build
    lg.mine()
    blocks = lg.chain.blocks
    bounds = [0, *cuts, len(blocks)]
    for i in range(len(bounds) - 1):
        (tmp_path / f"p{i}.dat").write_bytes(F.blk_file(blocks[bounds[i]:bounds[i + 1]]))

    def check(names: list[str]) -> dict:
        info = C.cluster_info(ws, lg.addr("k1"), tags=[], sample=100)
        per = [query.btc_address(ws, lg.addr(n)) for n in names]
        assert sorted(info["addresses"]) == sorted(lg.addr(n) for n in names)
        for k in ("balance", "received", "sent", "outputs_received"):
            assert info[k] == sum(p[k] for p in per), k
        c = C.Clusters(ws)  # the same outputs as a scan of every output
        g = load_btc_graph(ws)
        members = c.members(info["cluster_id"])
        assert np.array_equal(c.outputs_of(g, members), np.flatnonzero(np.isin(np.asarray(g.out_addr), members)))
        return info

    ingest_block_files(ws, [tmp_path / "p0.dat"])
    C.build_clusters(ws, C.ClusterConfig(), tags=[])
    assert not check(["k1", "k2"])["stale"]
    ingest_block_files(ws, [tmp_path / "p1.dat"])  # not clustered yet: read from the outputs added since
    info = check(["k1", "k2"])
    assert info["stale"] and info["balance"] == BTC // 2
    C.build_clusters(ws, C.ClusterConfig(), tags=[])
    assert len(C.ClusterStore(ws).state()["address_outputs"]["files"]) == 2
    check(["k1", "k2"])
    ingest_block_files(ws, [tmp_path / "p2.dat"])
    C.build_clusters(ws, C.ClusterConfig(), tags=[])
    ingest_block_files(ws, [tmp_path / "p3.dat"])
    info = check(["k1", "k2", "m1"])
    assert info["balance"] == BTC // 2 + BTC // 4 and info["received"] == 6 * BTC + BTC // 2 + BTC // 4
    st = C.ClusterStore(ws).state()
    segs = st["address_outputs"]["files"]
    assert segs[0]["lo"] == 0 and segs[-1]["hi"] == st["address_outputs"]["n_out"]
    assert [s["lo"] for s in segs[1:]] == [s["hi"] for s in segs[:-1]]  # contiguous output ranges


def test_incremental_build_reports_change_links_altered_by_later_spends(tmp_path):
    """Dynamic change heuristics (here locktime) depend on later spends: an incremental build keeps the
    links evaluated when a transaction was new, counts the ones the new blocks alter and says so; --full
    re-evaluates them (and equals a fresh full build)."""
    lg = Ledger()
    f = lg.fund([("a1", BTC), ("a2", BTC)])
    lg.mine()
    lg.pay([f[0], f[1]], [("p", 120_000_003), ("a3", 79_998_997)])  # locktime 0; both outputs unspent
    lg.mine()
    cut = len(lg.chain.blocks)
    p = next(op for op, name in lg.owner.items() if name == "p")
    lg.pay([p], [("q", 120_000_003 - 800)], locktime=500)  # the payee spends with another locktime behaviour
    lg.mine()
    blocks = lg.chain.blocks
    (tmp_path / "a.dat").write_bytes(F.blk_file(blocks[:cut]))
    (tmp_path / "b.dat").write_bytes(F.blk_file(blocks[cut:]))
    (tmp_path / "all.dat").write_bytes(F.blk_file(blocks))
    from chaintrace.chains.btc import ingest_block_files

    cfg = C.ClusterConfig.parse("mih,change:locktime")
    ws = Workspace(tmp_path / "inc")
    ingest_block_files(ws, [tmp_path / "a.dat"])
    r1 = C.build_clusters(ws, cfg, tags=[])
    assert r1["edges_generated"].get("change_edges", 0) == 0  # two candidates: no unique change yet
    ingest_block_files(ws, [tmp_path / "b.dat"])
    r2 = C.build_clusters(ws, cfg, tags=[])
    assert r2["incremental"] and r2["change_drift"]["links"] == 1
    assert any("--full" in n and "1 of them" in n for n in r2["notes"])
    assert C.cluster_stats(ws)["change_drift"] == {"links": 1, "confidence": 0}
    res = CliRunner().invoke(main, ["--data", str(ws.path), "cluster", "stats"])
    assert res.exit_code == 0 and "change links altered by later spends" in res.output and "1 links" in res.output
    assert clusters_by_name(ws, lg, ["a1", "a2", "a3"]) == {frozenset({"a1", "a2"}), frozenset({"a3"})}
    r3 = C.build_clusters(ws, cfg, tags=[], full=True)
    assert not r3["incremental"] and C.cluster_stats(ws)["change_drift"] == {"links": 0, "confidence": 0}
    assert clusters_by_name(ws, lg, ["a1", "a2", "a3"]) == {frozenset({"a1", "a2", "a3"})}
    fresh = Workspace(tmp_path / "fresh")
    ingest_block_files(fresh, [tmp_path / "all.dat"])
    C.build_clusters(fresh, cfg, tags=[])
    assert _snapshot(ws) == _snapshot(fresh)
