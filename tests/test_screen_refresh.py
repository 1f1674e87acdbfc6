"""The Bitcoin exposure index refreshed after an ingest of new blocks equals a full rebuild, array by array
and precomputed answer byte by byte; the refresh falls back to a full rebuild (saying why) when it cannot
continue; an interrupted refresh leaves nothing half-written."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

import chaintrace
from chaintrace import intel
from chaintrace.screen import build_index, load_config, load_index
from chaintrace.screen.index import ARRAYS
from chaintrace.sim import simulate_btc
from chaintrace.store.workspace import Workspace
from tests.screen_fixtures import first_blocks, n_blocks

META_KEYS = ("groups", "addresses", "baked_direct", "txids", "seed_digests", "stop_digest", "sources_digest",
             "chain_prefix", "registry_ids", "facts", "baked_facts")


def _extra_tags(sim, path) -> None:
    """Sources that keep receiving across the chain (launderers as scam, some ordinary receivers as darknet
    market), so new blocks bring new seeds and the outgoing view reaches back into old transactions."""
    rows = pq.read_table(sim / "addresses.parquet").to_pylist()
    laund = [r["address"] for r in rows if r["role"] == "launderer"][::15]
    recv = [r["address"] for r in rows if r["role"] == "receive"][::700]
    lines = ["title: more", "creator: test", "source: test-refresh", "currency: BTC", "confidence: forensic",
             "lastmod: 2024-01-02", "tags:"]
    lines += [f"  - address: {a}\n    label: scam wallet {i % 2}\n    category: perpetrator\n    abuse: scam"
              for i, a in enumerate(laund)]
    lines += [f"  - address: {a}\n    label: market {i % 3}\n    category: darknet_market" for i, a in enumerate(recv)]
    path.write_text("\n".join(lines) + "\n")


def _snapshot(ws, cfg) -> tuple[dict, dict]:
    idx = load_index(ws, cfg)
    return {n: np.array(idx.arrays[n]) for n in ARRAYS}, idx.meta


def _assert_equal_to_full(ws, cfg, got: dict, meta: dict) -> dict:
    full = build_index(ws, cfg, incremental=False)
    assert full["refreshed_from"] is None and full["refresh_reason"] == "full rebuild requested"
    b = load_index(ws, cfg)
    for n in ARRAYS:
        assert got[n].dtype == np.asarray(b.arrays[n]).dtype, n
        assert np.array_equal(got[n], np.asarray(b.arrays[n])), n
    for k in META_KEYS:
        assert meta[k] == b.meta[k], k
    return full


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("refresh")
    sim = root / "sim"
    simulate_btc(sim, txs=3000, seed=5, scenario="fan-out")
    ws = Workspace(root / "data")
    intel.registry.bind(ws, root / "registry")
    return root, sim, ws


def test_refresh_after_ingest_equals_full_rebuild(chain):
    root, sim, ws = chain
    cfg = load_config()
    n = n_blocks(sim / "blk00000.dat")
    part = root / "part" / "blk00000.dat"
    first_blocks(sim / "blk00000.dat", part, n * 6 // 10)
    chaintrace.ingest_block_files(ws, [part.parent])
    intel.import_paths(ws, "tagpack", [sim / "tags.yaml"])
    _extra_tags(sim, root / "more.yaml")
    intel.import_paths(ws, "tagpack", [root / "more.yaml"])
    first = build_index(ws, cfg)
    assert first["refreshed_from"] is None and first["refresh_reason"].startswith("no previous index")
    prev_name = first["path"].rsplit("/", 1)[-1]
    for frac in (8, 10):  # two more ingests: 80 %, then every block
        first_blocks(sim / "blk00000.dat", part, n * frac // 10)
        chaintrace.ingest_block_files(ws, [part.parent])
        r = build_index(ws, cfg)
        assert r["refreshed_from"] == prev_name, r.get("refresh_reason")
        assert r["n_new_tx"] > 0 and r["n_tx_propagated"] > 0
        meta = load_index(ws, cfg).meta  # baked: exposed, registry-only and detection-only addresses
        assert 0 < r["n_answers_recomputed"] < (r["n_exposed_addresses"] + len(meta["baked_direct"])
                                                + len(meta["baked_facts"]))
        got, meta = _snapshot(ws, cfg)
        # the outgoing view reached back into old transactions: rows of old outputs changed or appeared
        old_n_out = meta["chain_prefix"]["n_out"]
        assert old_n_out > 0
        _assert_equal_to_full(ws, cfg, got, meta)
        prev_name = r["path"].rsplit("/", 1)[-1]
    # the registry facts kept per generation (DATA/screen/sources/) are those read from the registry
    import orjson

    from chaintrace.screen.sources import read_sources

    kept, fresh = read_sources(ws, "btc", cfg), read_sources(ws, "btc", cfg, cache=False)
    assert list((ws.path / "screen" / "sources").glob("btc-*.json"))
    assert (kept.groups, kept.keys, kept.services, kept.n_tags, kept.generation, kept.at) == \
        (fresh.groups, fresh.keys, fresh.services, fresh.n_tags, fresh.generation, fresh.at)
    assert kept.key_group.dtype == fresh.key_group.dtype and np.array_equal(kept.key_group, fresh.key_group)
    assert kept.key_from.dtype == fresh.key_from.dtype and np.array_equal(kept.key_from, fresh.key_from)
    assert orjson.dumps(kept.direct) == orjson.dumps(fresh.direct) and kept.direct
    # the answers of the refreshed index are those the full one gives, screened through the library
    from chaintrace.screen import screen_addresses

    idx = load_index(ws, cfg)
    some = idx.meta["addresses"][:: max(1, len(idx.meta["addresses"]) // 25)]
    ans = screen_addresses(ws, some, config=cfg)["results"]
    assert any(a["exposures"] for a in ans)


def test_index_of_an_older_format_is_rebuilt_and_says_why(tmp_path):
    """An index written by an older chaintrace (another index format, e.g. format 3 with a baked answer per
    detected address) is not read: `screen index` builds the current format, saying why, and answers equal
    the computed ones."""
    import dataclasses

    import orjson

    from chaintrace.screen import Screener
    from chaintrace.screen.index import FORMAT, PREFIX, index_root
    from chaintrace.screen.service import screen_address_batch
    from tests.screen_fixtures import simulated_hack

    ws, _ = simulated_hack(tmp_path, txs=1500, seed=3)
    cfg = load_config()
    cur = next(index_root(ws).glob(f"{PREFIX}*"))
    cur.rename(cur.parent / cur.name.replace(PREFIX, f"screen-v{FORMAT - 1}-"))  # as an older version left it
    r = build_index(ws, cfg)
    assert r["refreshed_from"] is None and f"another index format (this chaintrace writes format {FORMAT})" in \
        r["refresh_reason"] and f"screen-v{FORMAT - 1}-" in r["refresh_reason"]
    assert r["path"].rsplit("/", 1)[-1].startswith(PREFIX)
    assert not list(index_root(ws).glob(f"screen-v{FORMAT - 1}-*"))  # the old format's directory is removed
    assert list(index_root(ws).glob("graph-v*"))  # (other caches stay)
    snap = Screener(ws, cfg).snapshot()
    subjects = list(snap.index.meta["addresses"])[:50] + list(snap.index.meta["baked_facts"])[:50]
    assert orjson.dumps(screen_address_batch(snap, subjects * 2)) == orjson.dumps(
        screen_address_batch(dataclasses.replace(snap, baked=False), subjects * 2))


def test_refresh_falls_back_to_full_rebuild_and_says_why(tmp_path):
    sim = tmp_path / "sim"
    simulate_btc(sim, txs=1500, seed=7, scenario="fan-out")
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    cfg = load_config()
    n = n_blocks(sim / "blk00000.dat")
    part = tmp_path / "part" / "blk00000.dat"
    first_blocks(sim / "blk00000.dat", part, n // 2)
    chaintrace.ingest_block_files(ws, [part.parent])
    intel.import_paths(ws, "tagpack", [sim / "tags.yaml"])
    build_index(ws, cfg)
    # an intel import and an ingest before the next refresh: the registry facts changed
    _extra_tags(sim, tmp_path / "more.yaml")
    intel.import_paths(ws, "tagpack", [tmp_path / "more.yaml"])
    first_blocks(sim / "blk00000.dat", part, n * 3 // 4)
    chaintrace.ingest_block_files(ws, [part.parent])
    r = build_index(ws, cfg)
    assert r["refreshed_from"] is None and "registry facts changed" in r["refresh_reason"]
    # an index whose chain prefix does not match the data (as after a reorg) is not continued
    idx = load_index(ws, cfg)
    meta_path = idx.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["chain_prefix"]["digest"] = "0" * 32
    meta_path.write_text(json.dumps(meta))
    chaintrace.ingest_block_files(ws, [sim])
    r = build_index(ws, cfg)
    assert r["refreshed_from"] is None and "changed (a reorg" in r["refresh_reason"]


KILLER = """
import os, signal, sys
import numpy as np
from chaintrace import intel
from chaintrace.screen import build_index, load_config
from chaintrace.store.workspace import Workspace

ws = Workspace(sys.argv[1])
intel.registry.bind(ws, sys.argv[2])
save, n = np.save, [0]
def dying_save(path, arr, *a, **k):  # killed hard half-way through writing the index directory
    n[0] += ".screen-v" in str(path) and ".tmp" in str(path)
    if n[0] == 6:
        os.kill(os.getpid(), signal.SIGKILL)
    return save(path, arr, *a, **k)
np.save = dying_save
build_index(ws, load_config())
"""


def test_refresh_killed_half_way_leaves_the_previous_index_answering(tmp_path):
    import subprocess
    import sys

    from chaintrace.screen.service import make_snapshot, screen_one_address
    from chaintrace.screen.index import current_name, index_root
    from tests.conftest import REPO

    sim = tmp_path / "sim"
    simulate_btc(sim, txs=1500, seed=7, scenario="fan-out")
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    cfg = load_config()
    n = n_blocks(sim / "blk00000.dat")
    part = tmp_path / "part" / "blk00000.dat"
    first_blocks(sim / "blk00000.dat", part, n * 8 // 10)
    chaintrace.ingest_block_files(ws, [part.parent])
    intel.import_paths(ws, "tagpack", [sim / "tags.yaml"])
    _extra_tags(sim, tmp_path / "more.yaml")
    intel.import_paths(ws, "tagpack", [tmp_path / "more.yaml"])
    old = build_index(ws, cfg)
    old_idx = load_index(ws, cfg)
    target = old_idx.meta["addresses"][0]
    before = screen_one_address(make_snapshot(ws, cfg), target)
    chaintrace.ingest_block_files(ws, [sim])
    p = subprocess.run([sys.executable, "-c", KILLER, str(ws.path), str(tmp_path / "registry")],
                       env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr[-2000:]
    name = current_name(ws, cfg)[0]
    stale = list(index_root(ws).glob(f".{name}.tmp*"))
    assert len(stale) == 1 and not (stale[0] / "DONE").exists()  # half-written, never renamed into place
    assert load_index(ws, cfg) is None
    snap = make_snapshot(ws, cfg)  # a screen now answers from the previous complete index, and says so
    assert snap.index.path.name == old["path"].rsplit("/", 1)[-1]
    assert any("is behind the current data" in w for w in snap.chain_warnings["btc"])
    after = screen_one_address(snap, target)
    assert after["exposures"] == before["exposures"] and after["evidence"] == before["evidence"]
    r = build_index(ws, cfg)  # the next refresh completes (and removes the dead writer's leftovers)
    assert r["refreshed_from"] == old["path"].rsplit("/", 1)[-1] and not r["reused"]
    assert not list(index_root(ws).glob(".*.tmp*"))
    got, meta = _snapshot(ws, cfg)
    _assert_equal_to_full(ws, cfg, got, meta)


def test_eth_counterparties_from_the_per_account_index_equal_a_scan():
    """`unidentified_service` rows of Ethereum answers read an account's transfers from a per-account index
    (CSR) built once per snapshot: the same counterparties and counts as scanning every transfer."""
    from types import SimpleNamespace

    from chaintrace.screen.services import _by_account, _counterparties

    rng = np.random.default_rng(3)
    n_addr, n_tr = 300, 5000
    g = SimpleNamespace(tr_from=rng.integers(-1, n_addr, n_tr), tr_to=rng.integers(-1, n_addr, n_tr),
                        n_addresses=n_addr)
    row_of = {int(a): i for i, a in enumerate(rng.choice(n_addr, 60, replace=False))}
    csr = _by_account(g)
    n_hits = 0
    for a in range(n_addr):
        want = []
        for direction, mask, other in (("in", g.tr_to == a, g.tr_from), ("out", g.tr_from == a, g.tr_to)):
            ids, n = np.unique(other[mask], return_counts=True)
            want += [(direction, int(x), int(c)) for x, c in zip(ids.tolist(), n.tolist())
                     if x >= 0 and x != a and x in row_of]
        assert _counterparties(g, a, row_of, csr) == want
        n_hits += len(want)
    assert n_hits > 0


def test_eth_index_after_an_import_reuses_unchanged_groups_and_equals_a_full_rebuild(tmp_path):
    from chaintrace.chains.eth import ingest_etl
    from chaintrace.screen.eth_index import ARRAYS as ETH_ARRAYS
    from chaintrace.screen.eth_index import build_eth_index, load_eth_index
    from chaintrace.sim.eth import simulate_eth

    out = tmp_path / "sim"
    simulate_eth(out, txs=2000, seed=4, scenario="bridge-drain")
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    ingest_etl(ws, out)
    intel.import_paths(ws, "tagpack", [out / "tags.yaml"])
    cfg = load_config()
    first = build_eth_index(ws, cfg)
    assert first["n_groups_reused"] == 0 and first["n_exposed_addresses"] > 2
    idx0 = load_eth_index(ws, cfg)
    from chaintrace.screen.sources import read_sources

    tagged = set(read_sources(ws, "eth", cfg).direct)
    targets = [x for x in idx0.meta["addresses"] if x not in tagged][:2]  # untagged exposed accounts: a new group
    pack = tmp_path / "more.yaml"
    pack.write_text("title: more\ncreator: test\nlabel: another mixer\nsource: test2\ncurrency: ETH\n"
                    "category: mixer\nconfidence: forensic\nlastmod: 2024-01-02\ntags:\n"
                    + "".join(f"  - address: '{t}'\n" for t in targets))
    intel.import_paths(ws, "tagpack", [pack])
    inc = build_eth_index(ws, cfg)
    assert inc["previous_index"] == first["path"].rsplit("/", 1)[-1]
    assert 1 <= inc["n_groups_reused"] < inc["n_sources_in_chain"]
    a = load_eth_index(ws, cfg)
    got = {n: np.array(a.arrays[n]) for n in ETH_ARRAYS}
    meta = a.meta
    full = build_eth_index(ws, cfg, incremental=False)
    assert full["n_groups_reused"] == 0 and full["refresh_reason"] == "full rebuild requested"
    b = load_eth_index(ws, cfg)
    for n in ETH_ARRAYS:
        assert got[n].dtype == np.asarray(b.arrays[n]).dtype, n
        assert np.array_equal(got[n], np.asarray(b.arrays[n])), n
    for k in ("groups", "addresses", "assets", "conservation", "conservation_outgoing", "outgoing_partial_groups",
              "totals", "seed_digests", "stop_digest"):
        assert meta[k] == b.meta[k], k
    assert any(g["entity"] == "another mixer" for g in b.groups)


def test_refresh_on_real_mainnet_blocks_equals_full_rebuild(tmp_path):
    """The first 439 mainnet blocks, ingested in three steps (before Satoshi's payment to Hal Finney in block
    170, up to block 299, all): each refresh equals a full rebuild. The tags are invented for the test:
    Satoshi's block-9 address as a scam source (forward exposure follows the 10 BTC to Hal and the change),
    Hal's address as a darknet market (outgoing exposure reaches back to Satoshi's coins)."""
    from tests.conftest import dataset

    src = dataset("btc-raw-blocks", "bitcoinj", "first-100k-blocks.dat")
    ws = Workspace(tmp_path / "data")
    intel.registry.bind(ws, tmp_path / "registry")
    pack = tmp_path / "invented.yaml"
    pack.write_text("title: invented for a test\ncreator: test\nsource: test-mainnet\ncurrency: BTC\n"
                    "confidence: forensic\nlastmod: 2024-01-02\ntags:\n"
                    "  - address: 12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S\n    label: test source\n"
                    "    category: perpetrator\n    abuse: scam\n"
                    "  - address: 1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3\n    label: test market\n"
                    "    category: darknet_market\n")
    cfg = load_config()
    part = tmp_path / "part" / "blk00000.dat"
    prev, propagated = None, 0
    for k in (170, 300, n_blocks(src)):
        first_blocks(src, part, k)
        chaintrace.ingest_block_files(ws, [part.parent])
        if prev is None:
            intel.import_paths(ws, "tagpack", [pack])
        r = build_index(ws, cfg)
        assert r["refreshed_from"] == prev, r.get("refresh_reason")
        got, meta = _snapshot(ws, cfg)
        _assert_equal_to_full(ws, cfg, got, meta)
        prev = r["path"].rsplit("/", 1)[-1]
        propagated += r["n_tx_propagated"] or 0
    assert r["n_new_tx"] > 0 and propagated > 0
    idx = load_index(ws, cfg)
    dirs = set(np.asarray(idx.arrays["e_dir"]).tolist())
    assert dirs == {0, 1}  # both views hold exposure
