"""chaintrace.spark against the embedded engine on a simulated chain (Spark local mode, one shared session
for the module, one spark-submit application for the CLI test): the clusters, their edges and CoinJoins,
the edge counts, the statistics, the address table and the screening exposure index computed by Spark
equal the embedded engine's exactly; the results are read back through the same views, `cluster show` and
`screen`; `chaintrace spark run` works through spark-submit."""
from __future__ import annotations

import json
import os
import shlex
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
from tests.conftest import REPO  # noqa: E402

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
    ingest_block_files(ws, [out], pow_rules="target-only")  # a simulated chain under mainnet parameters
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
            "edges": edges, "coinjoins": cjs, "view": view, "counts": c.state["union"]["counts"],
            "label": np.asarray(c.labels()).astype(np.int64)}


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


@pytest.fixture(scope="module")
def both(spark, chain):
    """The same chain clustered by both engines with tight guards: a merge limit of 4 addresses and the
    service-tag guard make the order-dependent guards fire (Spark re-runs those components on the driver)."""
    tags = load_tags(chain["ws"], [chain["tags"]])
    cfg = ClusterConfig.parse("mih", activation_heights=False, max_merge_size=4)
    emb = fresh_copy(chain, "emb")
    rep_e = build_clusters(emb, cfg, tags=tags)
    sp = fresh_copy(chain, "spark")
    rep_s = run_job(sp, "clusters", cluster_config=cfg, tags=tags)
    return {"emb": emb, "sp": sp, "rep_e": rep_e, "rep_s": rep_s, "a": committed(emb), "b": committed(sp),
            "order_e": edge_rows_in_order(emb), "order_s": edge_rows_in_order(sp)}


def test_clusters_equal_embedded(both):
    """Same clusters (ids = smallest member), same candidate edges in the same order, same CoinJoins, same
    edge counts by outcome, guards included."""
    a, b, rep_e, rep_s = both["a"], both["b"], both["rep_e"], both["rep_s"]
    assert len(a["cluster_of"]) == len(b["cluster_of"]) > 1000
    assert np.array_equal(a["cluster_of"], b["cluster_of"])
    assert np.array_equal(a["size"], b["size"])
    assert np.array_equal(a["label"], b["label"]) and (a["label"] >= 0).sum() > 10  # services of the clusters
    assert a["view"] == b["view"]
    assert a["edges"] == b["edges"] and len(a["edges"]) > 1000
    assert both["order_e"] == both["order_s"]
    assert a["coinjoins"] == b["coinjoins"] and len(a["coinjoins"]) > 5
    assert rep_s["edges_by_status"] == rep_e["edges_by_status"] == a["counts"] == b["counts"]
    assert rep_s["edges_by_status"]["blocked:mih"] > 0  # CoinJoin guard exercised
    assert rep_s["edges_by_status"].get("size_limit:mih", 0) > 0  # size guard exercised
    assert rep_s["guarded_components"] > 0
    for k in ("clusters", "multi_address_clusters", "largest_cluster", "largest_cluster_size"):
        assert rep_s[k] == rep_e[k]


def test_spark_clusters_used_unchanged(both, chain):
    """`cluster show` reads the Spark clusters; a user exclusion is honoured; the next embedded build
    recomputes the evidence from the committed edges and keeps the same clusters."""
    cfg = ClusterConfig.parse("mih", activation_heights=False)
    sp = both["sp"]
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


def test_stats_equal_embedded(both):
    """Every address's and every cluster's balance, received, sent, outputs, transaction count and first/last
    seen equal `activity` (what `cluster show` reports) over its outputs; sums conserve value."""
    ws = both["emb"]
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


@pytest.fixture(scope="module")
def exposure(spark, chain):
    """The screening exposure index of the same chain (its hack's TagPack in a registry shared by both
    copies, so both indexes carry the same name), built by the embedded engine and by Spark. The Spark side
    is `chaintrace spark run addresses exposure` through spark-submit (a second JVM, the driver program of
    chaintrace.spark.submit; both jobs in one application), against the registry of the calling workspace."""
    from chaintrace import intel
    from chaintrace.screen import build_index, load_config, load_index

    reg = chain["root"] / "registry"
    emb = fresh_copy(chain, "exp-emb")
    intel.registry.bind(emb, reg)
    intel.import_paths(emb, "tagpack", [chain["tags"]])
    cfg = load_config()
    build_index(emb, cfg)
    sp = fresh_copy(chain, "cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHAINTRACE_REGISTRY", str(reg))  # the registry the embedded side filled
        r = CliRunner().invoke(main, ["--data", str(sp.path), "spark", "run", "addresses", "exposure", "--master",
                                      "local[1]", "--conf", "spark.sql.shuffle.partitions=1", "--format", "json"])
    assert r.exit_code == 0, r.output
    addr_rep, rep = json.loads(r.output)["jobs"]
    intel.registry.bind(sp, reg)  # from here on the Spark copy reads the registry as the embedded one does
    return {"emb": emb, "sp": sp, "rep": rep, "addr_rep": addr_rep, "cfg": cfg, "a": load_index(emb, cfg),
            "b": load_index(sp, cfg)}


def test_exposure_equal_embedded(exposure):
    """Every tainted output (group, direction, amount, hop, parent) and every address's exposure (group,
    direction, amount, minimal hop, evidence output) equal the embedded index's exactly; Spark's own
    `btc.exposure` table says the same; the index Spark committed is the one `screen` loads."""
    a, b, rep = exposure["a"], exposure["b"], exposure["rep"]
    assert a.path.name == b.path.name and a.meta["engine"] == "embedded" and b.meta["engine"] == "spark"
    for k in a.arrays:
        assert np.array_equal(np.asarray(a.arrays[k]), np.asarray(b.arrays[k])), k
    assert a.meta["addresses"] == b.meta["addresses"] and a.meta["groups"] == b.meta["groups"]
    e = a.arrays
    dirs = set(np.asarray(e["e_dir"]).tolist())
    assert dirs == {0, 1} and len(e["e_addr"]) > 100 and int(np.asarray(e["e_hops"]).max()) == exposure["cfg"].max_hops
    assert rep["rounds"] >= 2 and rep["tables"]["exposure_outputs"] == len(e["f_out"])
    rows = exposure["sp"].connect().execute(
        "SELECT address_id, group_id, direction, amount, hops, e_out FROM btc.exposure").fetchall()
    want = set(zip(*(np.asarray(e[k]).tolist() for k in ("e_addr", "e_group", "e_dir", "e_amount", "e_hops", "e_out"))))
    assert set(rows) == want and len(rows) == len(want)


def test_exposure_screen_answers_equal(exposure):
    """`screen` answers every exposed address the same from both indexes: risk, score, and each exposure's
    category, direction, hops, amount and share."""
    from chaintrace.screen import screen_addresses

    addrs = exposure["a"].meta["addresses"]
    ra = screen_addresses(exposure["emb"], addrs)["results"]
    rb = screen_addresses(exposure["sp"], addrs)["results"]
    keep = ("subject", "risk", "score", "exposures", "sanctions")
    assert [{k: r[k] for k in keep} for r in ra] == [{k: r[k] for k in keep} for r in rb]
    shares = [x["share"] for r in ra for x in r["exposures"] if x["amount"]]
    assert len(shares) > 100 and any(0 < s < 1 for s in shares)


def test_exposure_conserves_value(exposure):
    """Forward haircut on the Spark index: each transaction passes on to its (non-seed) outputs exactly
    floor(X * W / T) of the tainted amount X its inputs carried (W its output value, T its total value)."""
    b = exposure["b"].arrays
    g = load_btc_graph(exposure["sp"])
    fwd = np.asarray(b["f_dir"]) == 0
    out, grp, taint, hop = (np.asarray(b[k])[fwd] for k in ("f_out", "f_group", "f_taint", "f_hop"))
    checked = 0
    for gi in np.unique(grp).tolist():
        m = grp == gi
        t_of = dict(zip(out[m].tolist(), taint[m].tolist()))
        h_of = dict(zip(out[m].tolist(), hop[m].tolist()))
        for t in np.unique(g.out_tx[out[m][hop[m] > 0]]).tolist():
            outs = range(int(g.tx_out[t]), int(g.tx_out[t + 1]))
            if any(h_of.get(o) == 0 for o in outs):
                continue  # a seed output keeps its full value (its part is not counted twice)
            ins = [int(o) for o in g.in_output[g.tx_in[t]:g.tx_in[t + 1]] if o >= 0]
            X = sum(t_of.get(o, 0) for o in ins)
            T = max(sum(int(g.out_value[o]) for o in ins), sum(int(g.out_value[o]) for o in outs))
            W = sum(int(g.out_value[o]) for o in outs)
            assert sum(t_of.get(o, 0) for o in outs) == X * W // T, t
            checked += 1
    assert checked > 50


def test_exposure_muldiv_is_exact(spark):
    """The haircut part floor(x * c / t) in DECIMAL(38,0) equals Python's integers up to 2**124 products."""
    import random

    from chaintrace.spark.exposure import muldiv

    r = random.Random(5)
    rows = [(2**62 - 1, 2**62 - 1, 2**62 - 1), (2**62 - 2, 2**62 - 1, 2**62 - 1), (2**51, 2**51 - 1, 2**51)]
    for _ in range(3000):
        t = r.choice([r.randrange(1, 2**62), r.randrange(1, 2**51), r.randrange(1, 1000)])
        rows.append((r.randrange(0, t + 1), r.randrange(0, t + 1), t))
    got = spark.createDataFrame(rows, "x long, c long, t long").select("x", "c", "t", muldiv("x", "c", "t").alias("q"))
    assert all(q.q == q.x * q.c // q.t for q in got.collect())


def walkthrough() -> list[str]:
    text = (REPO / "docs" / "spark.md").read_text()
    block = text.split("```console", 1)[1].split("```", 1)[0]
    return [ln[2:].strip() for ln in block.splitlines() if ln.startswith("$ chaintrace ")]


def test_docs_walkthrough(spark, tmp_path, monkeypatch):
    """docs/spark.md's commands run as written, except that `spark run` runs in this process (--in-process,
    sharing the test's JVM; the spark-submit path is tested below): the reports, the statistics view and
    `cluster stats` over the Spark clusters."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "250")
    out = {}
    for cmd in walkthrough():
        argv = shlex.split(cmd)
        if argv[3:5] == ["spark", "run"]:
            argv += ["--format", "json", "--in-process"]
        r = CliRunner().invoke(main, argv[1:], catch_exceptions=False)
        assert r.exit_code == 0, f"{cmd}\n{r.output}"
        out[" ".join(argv[3:6])] = r.output
    rep = json.loads(out["spark run clusters"])
    assert rep["engine"] == "spark" and rep["master"] == "local[2]" and rep["clusters"] > 100
    assert rep["edges_by_status"]["union:mih"] > 0 and rep["edges_generated"]["coinjoins"] > 0
    st = json.loads(out["spark run stats"])
    assert st["tables"] == {"address_stats": rep["addresses"], "cluster_stats": rep["clusters"]}
    sql = out[next(k for k in out if k.startswith("sql"))]
    assert "cluster_id" in sql and "balance" in sql
    assert "largest" in out["cluster stats --top"].lower()
    bad = CliRunner().invoke(main, ["--data", "ws", "spark", "run", "stats", "--conf", "nonsense"])
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output


def test_cli_through_spark_submit(exposure):
    """`chaintrace spark run addresses exposure` through spark-submit (the `exposure` fixture): JSON reports,
    outputs committed, views readable, the exposure index built against the registry of the calling
    workspace equal to the embedded one."""
    ws, rep, exp = exposure["sp"], exposure["addr_rep"], exposure["rep"]
    assert rep["job"] == "addresses" and rep["master"] == "local[1]" and rep["mismatches"] == 0
    assert rep["dense"] and rep["addresses_without_output"] == 0
    bad, n = ws.connect().execute(
        "SELECT count(*) FILTER (WHERE t.first_height <> a.height OR t.address <> a.address), count(*) "
        "FROM btc.address_table t JOIN btc.addresses a USING (address_id)").fetchone()
    assert bad == 0 and n == rep["addresses"] == rep["tables"]["address_table"] > 1000
    a = exposure["a"]
    assert exp["job"] == "exposure" and exp["master"] == "local[1]"
    assert exp["n_exposures"] == len(a.arrays["e_addr"]) > 100
    b = exposure["b"]
    assert b.meta["engine"] == "spark"
    for k in ("e_addr", "e_group", "e_dir", "e_amount", "e_hops", "e_out", "f_out", "f_taint", "f_parent"):
        assert np.array_equal(np.asarray(a.arrays[k]), np.asarray(b.arrays[k])), k


def test_help_example_is_documented():
    r = CliRunner().invoke(main, ["spark", "run", "--help"])
    ex = [ln.strip() for ln in r.output.split("Example:", 1)[1].strip().splitlines()]
    cmds = {c.replace("chaintrace --data ws ", "chaintrace ") for c in walkthrough()}
    assert ex[0] in cmds and ex[1] in cmds


def test_exposure_index_written_only_for_what_spark_computed(exposure, tmp_path):
    """The screening index is written from the committed Spark exposures only for the same chain commit,
    configuration and source groups: another configuration, or a registry whose groups differ, is a clear
    error and leaves no index behind; the same ones write the index again, equal."""
    from chaintrace import intel
    from chaintrace.errors import UserError
    from chaintrace.screen import load_index
    from chaintrace.screen.config import default_text, load_config
    from chaintrace.screen.index import index_root
    from chaintrace.spark import write_exposure_index

    ws = Workspace(tmp_path / "copy")
    shutil.copytree(exposure["sp"].path, ws.path, ignore=shutil.ignore_patterns("cache"))
    other = tmp_path / "hops3.yaml"
    other.write_bytes(default_text().replace(b"max_hops: 4 ", b"max_hops: 3 ", 1))
    intel.registry.bind(ws, tmp_path / "empty-registry")  # no source groups at all
    with pytest.raises(UserError, match="another screening configuration"):
        write_exposure_index(ws, load_config(other))
    with pytest.raises(UserError, match="source groups changed"):
        write_exposure_index(ws, exposure["cfg"])
    assert not list(index_root(ws).glob("screen-*"))  # nothing written
    intel.registry.bind(ws, exposure["sp"].path.parent / "registry")
    rep = write_exposure_index(ws, exposure["cfg"])
    assert rep["n_exposures"] == exposure["rep"]["n_exposures"] > 100
    b, c = exposure["b"], load_index(ws, exposure["cfg"])
    for k in ("e_addr", "e_amount", "f_out", "f_taint"):
        assert np.array_equal(np.asarray(b.arrays[k]), np.asarray(c.arrays[k])), k


def test_stop_spark_ends_the_jvm_it_launched(tmp_path):
    """`spark run --in-process` ends the JVM it launched before the screening index is written (so its heap is
    not held beside the index writer): in a fresh process, the gateway JVM is gone after stop_spark()."""
    import subprocess
    import sys

    code = ("import os\nfrom pyspark import SparkContext\nfrom chaintrace.spark import spark_session, stop_spark\n"
            "spark_session('local[1]', {'spark.ui.enabled': 'false'})\n"
            "pid = SparkContext._gateway.proc.pid\nassert stop_spark()\n"
            "assert not os.path.exists(f'/proc/{pid}') or open(f'/proc/{pid}/stat').read().split()[2] == 'Z'\n"
            "assert SparkContext._gateway is None and not stop_spark()\nprint('ended', pid)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert r.returncode == 0 and "ended" in r.stdout, r.stderr[-2000:]


def test_exposure_with_recognised_mixer_equal_embedded(spark, tmp_path):
    """Custodial mixers recognised by behaviour are source groups of the exposure index (docs/screening.md):
    Spark's exposure job adds the same groups as the embedded build. The simulator's mixer scenario with the
    mixer's tags left out, clusters built: one recognised mixer group, every array equal."""
    import yaml

    from chaintrace import intel
    from chaintrace.screen import build_index, load_config, load_index

    sim = tmp_path / "sim"
    simulate_btc(sim, txs=4000, seed=11, scenario="mixer", network="main")
    doc = yaml.safe_load((sim / "tags.yaml").read_text())
    doc["tags"] = [t for t in doc["tags"] if t.get("category") != "mixing_service"]
    (tmp_path / "no-mixer.yaml").write_text(yaml.safe_dump(doc))
    cfg = load_config()
    idx = {}
    for name in ("emb", "sp"):
        ws = Workspace(tmp_path / name)
        intel.registry.bind(ws, tmp_path / f"registry-{name}")
        ingest_block_files(ws, [sim], pow_rules="target-only")
        intel.import_paths(ws, "tagpack", [tmp_path / "no-mixer.yaml"])
        build_clusters(ws)
        if name == "emb":
            build_index(ws, cfg)
        else:
            run_job(ws, "exposure", screen_config=cfg)
        idx[name] = load_index(ws, cfg)
    a, b = idx["emb"], idx["sp"]
    assert b.meta["engine"] == "spark" and a.meta["groups"] == b.meta["groups"]
    assert sum(g.get("category") == "mixer" for g in a.meta["groups"]) == 1
    for k in a.arrays:
        assert np.array_equal(np.asarray(a.arrays[k]), np.asarray(b.arrays[k])), k
