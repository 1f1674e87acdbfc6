"""The fast paths of screening answer exactly what the computed path answers: precomputed (baked) answers of
exposed and tagged addresses, the canned answer of clean chain addresses, the vectorised batch."""
from __future__ import annotations

import dataclasses
import random

import orjson
import pytest

from chaintrace.screen import Screener
from chaintrace.screen.service import screen_address_batch, screen_one_address
from tests.screen_fixtures import simulated_hack


@pytest.fixture(scope="module")
def hack(tmp_path_factory):
    ws, sim = simulated_hack(tmp_path_factory.mktemp("screen-speed"), txs=3000, seed=5)
    return ws, sim


def _subjects(ws, snap) -> list[str]:
    idx = snap.index
    con = ws.connect()
    chain = [r[0] for r in con.execute("SELECT address FROM btc.addresses ORDER BY address").fetchall()]
    rng = random.Random(3)
    clean = rng.sample(chain, min(300, len(chain)))
    odd = ["", " " + chain[0], chain[0] + "\n", "not-an-address", "0x" + "ab" * 20, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
           chain[0].upper(), "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"]
    facts = list(idx.meta["baked_facts"])  # addresses whose answer holds only detections (screen.detections)
    return (list(idx.meta["addresses"]) + list(idx.meta["baked_direct"]) + rng.sample(facts, min(300, len(facts)))
            + clean + odd)


def test_baked_answers_equal_computed_answers(hack):
    ws, _ = hack
    snap = Screener(ws).snapshot()
    assert snap.baked and snap.index.blob is not None
    assert snap.index.meta["addresses"] and snap.index.meta["baked_direct"]  # exposed and tagged-only addresses
    assert snap.index.meta["baked_facts"]  # addresses with detections only
    slow = dataclasses.replace(snap, baked=False)
    subjects = _subjects(ws, snap)
    n_canned = 0
    for s in subjects:
        fast, ref = screen_one_address(snap, s), screen_one_address(slow, s)
        assert orjson.dumps(fast) == orjson.dumps(ref), s  # same keys, same order, same values
        n_canned += fast["risk"] == "none" and not fast["exposures"] and fast["invalid"] is None
    assert n_canned >= 100
    # the vectorised batch (in order, with duplicates) answers the same, byte for byte
    batch = subjects + subjects[:50]
    got = screen_address_batch(snap, batch)
    assert [r["subject"] for r in got] == batch
    assert orjson.dumps(got) == orjson.dumps([screen_one_address(slow, s) for s in batch])
    flagged = [r for r in got if r["risk"] not in ("none", None)]
    assert flagged and all(r["evidence"] or r["sanctions"] or r["exposures"] for r in flagged)


def test_snapshot_warnings_reach_baked_answers(hack):
    ws, _ = hack
    snap = Screener(ws).snapshot()
    s = snap.index.meta["addresses"][0]
    extra = dataclasses.replace(snap, warnings=snap.warnings + ["a snapshot-wide warning"])
    r = screen_one_address(extra, s)
    assert "a snapshot-wide warning" in r["warnings"] and r["subject"] == s
    # the baked bytes themselves are not changed by an answer
    assert "a snapshot-wide warning" not in screen_one_address(snap, s)["warnings"]


def test_registry_change_turns_baked_answers_off(hack, tmp_path):
    """After an intel import the index's facts are behind: answers are computed until the index is rebuilt."""
    from chaintrace import intel
    from chaintrace.screen import build_index, load_config

    ws, _ = hack
    sc = Screener(ws)
    target = sc.snapshot().index.meta["addresses"][0]
    pack = tmp_path / "extra.yaml"
    pack.write_text("title: extra\ncreator: test\nlabel: extra mixer\nsource: test\ncurrency: BTC\n"
                    "category: mixer\nconfidence: forensic\nlastmod: 2024-01-01\n"
                    f"tags:\n  - address: {target}\n")
    intel.import_paths(ws, "tagpack", [pack])
    behind = Screener(ws).snapshot()
    assert not behind.baked
    r = screen_one_address(behind, target)
    assert any(e["category"] == "mixer" for e in r["exposures"])  # the new fact is in the answer
    build_index(ws, load_config())
    fresh = Screener(ws).snapshot()
    assert fresh.baked
    assert orjson.dumps(screen_one_address(fresh, target)) == orjson.dumps(
        screen_one_address(dataclasses.replace(fresh, baked=False), target))


def test_incremental_index_after_import_equals_full_rebuild(hack, tmp_path):
    """After an intel import the index reuses the unchanged groups' propagation; the result is exactly
    what a full rebuild produces (every array, the groups, the precomputed answers)."""
    import shutil

    import numpy as np

    from chaintrace import intel
    from chaintrace.screen import build_index, load_config, load_index
    from chaintrace.screen.index import ARRAYS

    ws, _ = hack
    cfg = load_config()
    before = build_index(ws, cfg)
    idx0 = load_index(ws, cfg)
    # a new source group on a chain address that is not a service (exposure does not stop there)
    target = idx0.meta["addresses"][-1]
    pack = tmp_path / "more.yaml"
    pack.write_text("title: more\ncreator: test\nlabel: another mixer\nsource: test2\ncurrency: BTC\n"
                    "category: mixer\nconfidence: forensic\nlastmod: 2024-01-02\n"
                    f"tags:\n  - address: {target}\n")
    intel.import_paths(ws, "tagpack", [pack])
    inc = build_index(ws, cfg)
    assert inc["previous_index"] == before["path"].rsplit("/", 1)[-1]
    assert inc["n_groups_reused"] >= 1 and inc["n_groups_reused"] < inc["n_sources_in_chain"]
    a = load_index(ws, cfg)
    got = {n: np.array(a.arrays[n]) for n in ARRAYS}
    meta = a.meta
    shutil.rmtree(a.path)
    full = build_index(ws, cfg, incremental=False)
    assert full["n_groups_reused"] == 0 and full["previous_index"] is None
    b = load_index(ws, cfg)
    for n in ARRAYS:
        assert np.array_equal(got[n], np.asarray(b.arrays[n])), n
    for k in ("groups", "addresses", "baked_direct", "txids", "seed_digests", "stop_digest"):
        assert meta[k] == b.meta[k], k
    assert any(g["entity"] == "another mixer" for g in b.groups)
