"""chaintrace.spark against the embedded engine on a simulated chain (Spark local mode, one shared session):
the clusters, their edges and CoinJoins, the edge counts, the statistics and the address table computed by
Spark equal the embedded engine's exactly; the results are read back through the same views and
`cluster show`; `chaintrace spark run` works through spark-submit."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pyspark", reason="pyspark not installed (pip install 'chaintrace[spark]')")
if shutil.which("java") is None:  # pragma: no cover
    pytest.skip("no Java runtime (apt-get install openjdk-17-jre-headless)", allow_module_level=True)

from chaintrace.chains.btc import ingest_block_files  # noqa: E402
from chaintrace.cli import main  # noqa: E402
from chaintrace.graph.btc import load_btc_graph  # noqa: E402
from chaintrace.graph.cluster import ClusterConfig, Clusters, build_clusters, cluster_info, exclude, load_tags  # noqa: E402
from chaintrace.graph.cluster.info import activity  # noqa: E402
from chaintrace.sim.btc import simulate_btc  # noqa: E402
from chaintrace.spark import run_job, spark_session  # noqa: E402
from chaintrace.store.workspace import Workspace  # noqa: E402

TXS = 2500


@pytest.fixture(scope="module")
def spark():
    s = spark_session("local[2]", {"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false",
                                   "spark.ui.showConsoleProgress": "false", "spark.sql.adaptive.enabled": "false"})
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("sparkbtc")
    out = root / "sim"
    simulate_btc(out, txs=TXS, seed=7, scenario="dprk", network="main")
    ws = Workspace(root / "data")
    ingest_block_files(ws, [out], pow_rules="target-only")  # simulated at regtest difficulty, mainnet magic
    return {"ws": ws, "tags": out / "tags.yaml", "root": root}


def fresh_copy(chain, name):
    """A copy of the ingested workspace (each engine commits into its own)."""
    dst = chain["root"] / name
    shutil.copytree(chain["ws"].path, dst, ignore=shutil.ignore_patterns("clusters", "derived", "cache"))
    return Workspace(dst)


def committed(ws) -> dict:
    c = Clusters(ws)
    con = ws.connect()
    edges = con.execute("SELECT a, b, tx_id, height, heuristic, confidence, coinjoin FROM btc.cluster_edges "
                        "ORDER BY tx_id, a, b").fetchall()
    cjs = con.execute("SELECT * FROM btc.coinjoins ORDER BY tx_id").fetchall()
    view = con.execute("SELECT address_id, cluster_id, cluster_size FROM btc.address_clusters ORDER BY 1").fetchall()
    return {"cluster_of": np.asarray(c.cluster_of).astype(np.int64), "size": np.asarray(c.cluster_size_of).astype(np.int64),
            "edges": edges, "coinjoins": cjs, "view": view, "counts": c.state["union"]["counts"]}


def edge_rows_in_order(ws) -> list[tuple]:
    """The layer-0 edge files in the order the state lists them, rows in file order (the union order)."""
    import pyarrow.parquet as pq

    from chaintrace.graph.cluster import ClusterStore

    cs = ClusterStore(ws)
    st = cs.state()
    rows = []
    for f in st["layers"]["mih"]["files"]:
        t = pq.read_table(cs.root / f["file"], columns=["a", "b", "tx_id"])
        rows += list(zip(*(t[c].to_pylist() for c in ("a", "b", "tx_id"))))
    return rows


@pytest.mark.parametrize("guards", ["default", "tight"])
def test_clusters_equal_embedded(spark, chain, guards):
    """Same clusters (ids = smallest member), same candidate edges in the same order, same CoinJoins, same
    edge counts. "tight": a merge limit of 4 addresses and the service-tag guard make the order-dependent
    guards fire; Spark re-runs the affected components on the driver."""
    tags = load_tags(chain["ws"], [chain["tags"]]) if guards == "tight" else []
    cfg = ClusterConfig.parse("mih", activation_heights=False, max_merge_size=4 if guards == "tight" else 100_000)
    emb = fresh_copy(chain, f"emb-{guards}")
    rep_e = build_clusters(emb, cfg, tags=tags)
    sp = fresh_copy(chain, f"spark-{guards}")
    rep_s = run_job(sp, "clusters", cluster_config=cfg, tags=tags)
    a, b = committed(emb), committed(sp)
    assert len(a["cluster_of"]) == len(b["cluster_of"]) > 1000
    assert np.array_equal(a["cluster_of"], b["cluster_of"])
    assert np.array_equal(a["size"], b["size"])
    assert a["view"] == b["view"]
    assert a["edges"] == b["edges"] and len(a["edges"]) > 1000
    assert edge_rows_in_order(emb) == edge_rows_in_order(sp)
    assert a["coinjoins"] == b["coinjoins"] and len(a["coinjoins"]) > 5
    assert rep_s["edges_by_status"] == rep_e["edges_by_status"] == a["counts"] == b["counts"]
    assert rep_s["edges_by_status"]["blocked:mih"] > 0  # CoinJoin guard exercised
    for k in ("clusters", "multi_address_clusters", "largest_cluster", "largest_cluster_size"):
        assert rep_s[k] == rep_e[k]
    if guards == "tight":
        assert rep_s["guarded_components"] > 0
        assert any(k.startswith(("size_limit", "tag_conflict")) for k in rep_s["edges_by_status"])
    else:
        assert rep_s["guarded_components"] == 0


def test_spark_clusters_used_unchanged(spark, chain):
    """`cluster show` reads the Spark clusters; a user exclusion is honoured; the next embedded build
    recomputes the evidence from the committed edges and keeps the same clusters."""
    cfg = ClusterConfig.parse("mih", activation_heights=False)
    sp = fresh_copy(chain, "spark-use")
    run_job(sp, "clusters", cluster_config=cfg, tags=[])
    c = Clusters(sp)
    cid = int(np.argmax(np.asarray(c.cluster_size_of)))
    cid = int(c.cluster_of[cid])
    info = cluster_info(sp, str(cid), tags=[])
    assert info["cluster_id"] == cid and info["size"] == int(c.cluster_size_of[cid]) > 1
    g = load_btc_graph(sp)
    members = c.members(cid)
    assert info["balance"] == activity(g, c.outputs_of(g, members))["balance"]
    # an exclusion recorded by `cluster exclude` is a guard for Spark too
    con = sp.connect()
    txid, = con.execute("SELECT t.txid FROM btc.cluster_edges e JOIN btc.transactions t USING (tx_id) "
                        "WHERE e.coinjoin = 0 AND e.a = ? LIMIT 1", [cid]).fetchone()
    exclude(sp, [txid], "test", config=cfg)
    after_embedded = committed(sp)
    run_job(sp, "clusters", cluster_config=cfg, tags=[])
    after_spark = committed(sp)
    assert np.array_equal(after_embedded["cluster_of"], after_spark["cluster_of"])
    assert after_spark["counts"] == after_embedded["counts"]
    # the embedded build takes over from a Spark state: same clusters, evidence filled in
    rep = build_clusters(sp, cfg, tags=[])
    assert not rep.get("up_to_date")
    assert np.array_equal(committed(sp)["cluster_of"], after_spark["cluster_of"])
    assert sp.connect().execute("SELECT count(*) FROM btc.cluster_unions").fetchone()[0] > 0


def test_stats_equal_embedded(spark, chain):
    """Every address's and every cluster's balance, received, sent, outputs, transaction count and first/last
    seen equal `activity` (what `cluster show` reports) over its outputs; sums conserve value."""
    cfg = ClusterConfig.parse("mih", activation_heights=False)
    ws = fresh_copy(chain, "stats")
    build_clusters(ws, cfg, tags=[])
    rep = run_job(ws, "stats")
    con = ws.connect()
    cols = "balance, received, sent, outputs_received, tx_count, first_seen, last_seen, first_height, last_height"
    addr = {r[0]: r[1:] for r in con.execute(f"SELECT address_id, {cols} FROM btc.address_stats").fetchall()}
    clus = {r[0]: r[1:] for r in con.execute(f"SELECT cluster_id, cluster_size, {cols} FROM btc.cluster_stats").fetchall()}
    assert rep["tables"] == {"address_stats": len(addr), "cluster_stats": len(clus)}
    g = load_btc_graph(ws)
    c = Clusters(ws)
    keys = ["balance", "received", "sent", "outputs_received", "tx_count", "first_seen", "last_seen",
            "first_height", "last_height"]
    out_addr = np.asarray(g.out_addr)
    order = np.argsort(out_addr, kind="stable")
    sorted_addr = out_addr[order]
    paid = np.unique(sorted_addr[sorted_addr >= 0])
    assert set(addr) == set(paid.tolist())
    for a in paid.tolist():
        lo, hi = np.searchsorted(sorted_addr, [a, a + 1])
        want = activity(g, np.sort(order[lo:hi]))
        assert addr[a] == tuple(want[k] for k in keys), a
    cid = np.asarray(c.cluster_of)
    for k in set(cid[paid].tolist()):
        members = c.members(k)
        want = activity(g, c.outputs_of(g, members))
        assert clus[k] == (int(c.cluster_size_of[k]),) + tuple(want[x] for x in keys), k
    # conservation: the balances add up to the unspent outputs paid to an address
    unspent = int(np.asarray(g.out_value)[(np.asarray(g.out_spender_tx) < 0) & (out_addr >= 0)].sum())
    assert sum(v[0] for v in addr.values()) == sum(v[1] for v in clus.values()) == unspent


def test_addresses_job(spark, chain):
    ws = fresh_copy(chain, "addresses")
    rep = run_job(ws, "addresses")
    assert rep["dense"] and rep["mismatches"] == 0 and rep["addresses_without_output"] == 0
    con = ws.connect()
    bad, n = con.execute("SELECT count(*) FILTER (WHERE t.first_height <> a.height OR t.address <> a.address), "
                         "count(*) FROM btc.address_table t JOIN btc.addresses a USING (address_id)").fetchone()
    assert bad == 0 and n == rep["addresses"] == rep["tables"]["address_table"]


def test_cli_spark_submit(spark, chain):
    """`chaintrace spark run` through spark-submit (a second JVM): JSON report, output committed, views."""
    ws = fresh_copy(chain, "cli")
    r = CliRunner().invoke(main, ["--data", str(ws.path), "spark", "run", "addresses", "--master", "local[1]",
                                  "--conf", "spark.sql.shuffle.partitions=2", "--format", "json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["job"] == "addresses" and rep["master"] == "local[1]" and rep["mismatches"] == 0
    assert ws.connect().execute("SELECT count(*) FROM btc.address_table").fetchone()[0] == rep["addresses"]
    bad = CliRunner().invoke(main, ["--data", str(ws.path), "spark", "run", "stats", "--conf", "nonsense"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
