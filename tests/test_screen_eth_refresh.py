"""The Ethereum exposure index refreshed after an ingest of new blocks (the propagation continued from the
state kept at the previous tip) equals a full rebuild, array by array and answer by answer; it falls back
to a full rebuild, saying why, when the registry facts changed."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from chaintrace import intel
from chaintrace.chains.eth import ingest_etl
from chaintrace.screen import Screener, load_config
from chaintrace.screen.eth_index import ARRAYS, build_eth_index, load_eth_index
from chaintrace.store.workspace import Workspace
from tests.eth.export import cut_export

META_KEYS = ("groups", "assets", "addresses", "trace_paths", "kinds", "conservation", "conservation_outgoing",
             "stop_digest", "seed_digests", "sources_digest", "chain_prefix", "outgoing_partial_groups", "totals",
             "facts")



def _snapshot(ws, cfg):
    idx = load_eth_index(ws, cfg)
    return {n: np.array(idx.arrays[n]) for n in ARRAYS}, json.loads((idx.path / "meta.json").read_text())


def _answers(ws, cfg, idx_arrays, meta):
    """Screening answers of every exposed address and of a sample of tainted transfers (data version aside)."""
    from chaintrace.screen.eth_index import EthExposureIndex

    idx = EthExposureIndex(None, meta, idx_arrays)
    ks = np.unique(idx_arrays["f_k"])
    refs = sorted({idx.ref(int(k))[1] for k in ks[:: max(1, len(ks) // 40)]})
    s = Screener(ws, cfg)
    out = []
    for ans in (s.addresses(meta["addresses"][:300]), s.transfers(refs)):
        for r in ans["results"]:
            out.append(json.dumps(r, sort_keys=True))
    return out


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from chaintrace.sim.eth import simulate_eth

    root = tmp_path_factory.mktemp("screen-eth-refresh")
    out = root / "sim"
    simulate_eth(out, txs=4000, seed=4, scenario="bridge-drain")
    truth = json.loads((out / "truth.json").read_text())
    return root, out, truth["incidents"][0]


def test_eth_refresh_after_ingest_equals_full_rebuild(sim):
    root, out, inc = sim
    cfg = load_config()
    ws = Workspace(root / "data")
    intel.registry.bind(ws, root / "registry")
    hack = int(inc["block"])
    last = max(int(r["number"]) for r in csv.DictReader((out / "blocks.csv").open()))
    part = root / "part"
    cut_export(out, part, hack - 5)  # before the drain: the attacker's address has not received anything yet
    ingest_etl(ws, part)
    intel.import_paths(ws, "tagpack", [out / "tags.yaml"])
    first = build_eth_index(ws, cfg)
    assert first["refreshed_from"] is None and first["refresh_reason"].startswith("no previous")
    prev = first["path"].rsplit("/", 1)[-1]
    walked = []
    for cut in (hack + 6, last):  # the drain and part of the laundering, then every block
        cut_export(out, part, cut)
        ingest_etl(ws, part)
        r = build_eth_index(ws, cfg)
        assert r["refreshed_from"] == prev and r["refresh_reason"] is None, r["refresh_reason"]
        assert r["n_new_transfers"] > 0 and r["n_groups_resumed"] > 0
        walked.append(r["n_groups_outgoing_walked"])
        got, meta = _snapshot(ws, cfg)
        assert meta["chain_prefix"]["n_transfers"] == r["n_transfers"]
        ans = _answers(ws, cfg, got, meta)
        full = build_eth_index(ws, cfg, incremental=False)
        assert full["refreshed_from"] is None and full["refresh_reason"] == "full rebuild requested"
        want, fmeta = _snapshot(ws, cfg)
        for n in ARRAYS:
            assert got[n].dtype == want[n].dtype, n
            assert np.array_equal(got[n], want[n]), n
        for k in META_KEYS:
            assert meta[k] == fmeta[k], k
        assert meta["data_version"]["detections"] == fmeta["data_version"]["detections"]
        for k in ("n_tainted_transfers", "n_records", "n_outgoing_records", "n_exposures", "seeded"):
            assert meta["stats"][k] == fmeta["stats"][k], k
        assert ans == _answers(ws, cfg, want, fmeta)
        prev = r["path"].rsplit("/", 1)[-1]
    # the drain brought the attacker's group new receipts (walked again); the exposure moved on
    assert walked[0] > 0
    assert len(got["f_k"]) > 0 and len(got["s_group"]) > 0


def test_eth_refresh_falls_back_when_the_registry_changed(sim, tmp_path, monkeypatch):
    _root, out, inc = sim
    cfg = load_config()
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    part = tmp_path / "part"
    hack = int(inc["block"])
    cut_export(out, part, hack + 2)
    ingest_etl(ws, part)
    intel.import_paths(ws, "tagpack", [out / "tags.yaml"])
    build_eth_index(ws, cfg)
    # a new exchange tag (a new place where exposure stops) and new blocks: the old propagation no longer holds
    tags = yaml.safe_load((out / "tags.yaml").read_text())
    some = inc["launderer_addresses"][1]
    (tmp_path / "more.yaml").write_text(yaml.safe_dump({**{k: v for k, v in tags.items() if k != "tags"},
                                                        "tags": [{"address": some, "label": "exchange X",
                                                                  "category": "exchange"}]}))
    intel.import_paths(ws, "tagpack", [tmp_path / "more.yaml"])
    cut_export(out, part, hack + 12)
    ingest_etl(ws, part)
    r = build_eth_index(ws, cfg)
    assert r["refreshed_from"] is None and "registry facts changed" in r["refresh_reason"]
    got, meta = _snapshot(ws, cfg)
    build_eth_index(ws, cfg, incremental=False)
    want, _ = _snapshot(ws, cfg)
    assert all(np.array_equal(got[n], want[n]) for n in ARRAYS)
    # `chaintrace screen index` refreshes after the next ingest and says so; `--full` says why it did not
    from click.testing import CliRunner

    from chaintrace.cli import main
    from chaintrace.intel.registry import as_registry

    monkeypatch.setenv("CHAINTRACE_REGISTRY", str(as_registry(ws).path))
    prev = r["path"].rsplit("/", 1)[-1]
    cut_export(out, part, hack + 20)
    ingest_etl(ws, part)
    res = CliRunner().invoke(main, ["--data", str(ws.path), "screen", "index"])
    assert res.exit_code == 0, res.output
    assert f"refreshed from {prev}" in res.output and "new transfers" in res.output
    res = CliRunner().invoke(main, ["--data", str(ws.path), "screen", "index", "--full", "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)["eth"]
    assert doc["refreshed_from"] is None and doc["refresh_reason"] == "full rebuild requested"


def test_swap_test_reads_only_the_transactions_own_transfers(tmp_path):
    """A withdrawal to the swapper at the end of the block lies in the transfer range of the block's last
    transaction (ranges run to the next transaction's first transfer) but is not part of the swap: the
    conversion is what the pool paid, in a full pass as in a pass continued over new blocks."""
    from chaintrace.trace import trace
    from chaintrace.trace.report import check_invariant
    from tests.eth.export import Export, addr

    e18 = 10**18
    ex = Export()
    ex.block()
    ex.tx("C", "POOL", 100 * e18)
    ex.tx("C", "T", 5 * e18)  # clean ether of T: room for a larger conversion
    hack = ex.tx("V", "USDX", 0, tokens=[("USDX", "V", "T", 1000)])
    swap = ex.tx("T", "POOL", 0, tokens=[("USDX", "T", "POOL", 400)], calls=[("POOL", "T", 3 * e18, [0], None)])
    ex.blocks[-1]["withdrawals"] = [{"index": 0, "validator_index": 7, "address": addr("T"), "amount": "1000"}]
    ex.block()
    ex.tx("T", "D", 2 * e18)
    ws = Workspace(tmp_path / "data")
    ingest_etl(ws, ex.write(tmp_path / "x"))
    from chaintrace.graph.eth import KIND_CODE, load_eth_graph

    g = load_eth_graph(ws)
    w = np.flatnonzero(g.tr_kind == KIND_CODE["withdrawal"])
    t_swap = int(g.tr_tx[g.tx_tr[:-1].searchsorted(w[0]) - 1]) if len(w) else -1
    assert len(w) == 1 and g.tx_tr[t_swap] < w[0] < g.tx_tr[t_swap + 1]  # inside the swap's range
    r = trace(ws, [hack], chain="eth", policy="haircut", registry=False, min_value=0)
    check_invariant(r)
    (conv,) = r.stats["conversions"]
    assert conv["txid"] == swap and conv["to_amount"] == str(3 * e18)
    from chaintrace.trace.eth import run_kernel

    t = g.address_ids([addr("T")])[addr("T")]
    seed_of = np.full(g.n_transfers, -1, np.int32)
    seed_of[(g.tr_to == t) & (g.tr_kind == KIND_CODE["token"])] = 0
    for engine in ("numba", "python"):  # the kernel and its exact reference
        res = run_kernel(g, "haircut", seed_of, 0, g.n_transfers, np.full(g.n_addresses, -1, np.int32), -1,
                         [0] * max(g.n_assets, 1), None, None, engine=engine)
        assert [c[5] for c in res["convs"]] == [3 * e18], engine


def test_eth_refresh_falls_back_after_a_reorg(tmp_path):
    """A block below the previous index's tip replaced (a fork, then a new block): the old propagation no
    longer holds, the index is propagated whole and says why."""
    from tests.eth.export import Export, addr, h

    e18 = 10**18

    def chain(fork: bool) -> Export:
        ex = Export()
        ex.block()
        ex.tx("V", "T", 10 * e18)
        ex.tx("T", "A", 4 * e18)
        ex.block()
        if fork:
            ex.blocks[-1]["hash"] = ex.parent = h("fork1")
            ex.tx("A", "C", 3 * e18)
            ex.block()
            ex.tx("C", "D", 1 * e18)
        else:
            ex.tx("A", "B", 2 * e18)
        return ex

    cfg = load_config()
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    ingest_etl(ws, chain(False).write(tmp_path / "a"))
    (tmp_path / "tags.yaml").write_text(yaml.safe_dump({
        "title": "t", "creator": "tests", "currency": "ETH", "confidence": "ownership", "is_public": True,
        "lastmod": "2024-01-01", "tags": [{"address": addr("T"), "label": "Hacker T", "category": "perpetrator",
                                           "abuse": "service_hack"}]}))
    intel.import_paths(ws, "tagpack", [tmp_path / "tags.yaml"])
    build_eth_index(ws, cfg)
    ingest_etl(ws, chain(True).write(tmp_path / "b"))
    r = build_eth_index(ws, cfg)
    assert r["refreshed_from"] is None and "changed (a reorg" in r["refresh_reason"], r["refresh_reason"]
    got, _ = _snapshot(ws, cfg)
    assert addr("B") not in load_eth_index(ws, cfg).meta["addresses"]  # the replaced block's payee
    assert addr("D") in load_eth_index(ws, cfg).meta["addresses"]
    build_eth_index(ws, cfg, incremental=False)
    want, _ = _snapshot(ws, cfg)
    assert all(np.array_equal(got[n], want[n]) for n in ARRAYS)
