"""The segment store's commit protocol: atomic commits, truncation, merging, and recovery after a crash at
each step (faults injected at the exact instants a power cut or kill -9 could hit)."""
from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from chaintrace.store import segments
from chaintrace.store.segments import ChainStore, StoreError

SCHEMAS = {"t": pa.schema([("height", pa.int64()), ("v", pa.int64())]),
           "u": pa.schema([("height", pa.int64()), ("s", pa.string())])}


def rows(lo, hi):
    hs = list(range(lo, hi + 1))
    return {"t": pa.table({"height": hs, "v": [h * 10 for h in hs]}),
            "u": pa.table({"height": hs, "s": [f"h{h}" for h in hs]})}


def heights(store, table="t"):
    store.reload()
    return store.read(table)["height"].to_pylist()


@pytest.fixture
def store(tmp_path):
    return ChainStore(tmp_path / "c", "btc", SCHEMAS)


def test_commit_append_truncate_and_read(store, monkeypatch):
    monkeypatch.setattr(segments, "MERGE_ROWS", 5)
    with store.writer() as s:
        s.commit(rows(0, 3), tip={"height": 3})
        s.commit(rows(4, 6), tip={"height": 6})  # small batch, small last segment: merged (7 rows)
        s.commit(rows(7, 7), tip={"height": 7})  # last segment has 7 >= 5 rows: a new segment
        s.commit(rows(8, 9), tip={"height": 9})  # merged into that one
        s.commit(rows(10, 16), tip={"height": 16})  # a large batch (7 rows) is never merged
        s.commit(rows(17, 17), tip={"height": 17})  # ... and is large enough to stand alone
    assert heights(store) == list(range(18))
    assert [(x.lo, x.hi) for x in store.segments("t")] == [(0, 6), (7, 9), (10, 16), (17, 17)]
    assert store.read("t", lo=5, hi=10)["height"].to_pylist() == [5, 6, 7, 8, 9, 10]
    assert store.read("u", columns=["s"], lo=15)["s"].to_pylist() == ["h15", "h16", "h17"]
    with store.writer() as s:
        s.commit(rows(13, 14), tip={"height": 14}, truncate_above=12)  # reorg: cut above 12, append 13..14
    assert heights(store) == list(range(15))
    assert store.read("u")["s"].to_pylist()[-3:] == ["h12", "h13", "h14"]
    assert [(x.lo, x.hi) for x in store.segments("t")] == [(0, 6), (7, 9), (10, 14)]
    files = sorted(p.name for p in (store.root / "t").iterdir())
    assert files == sorted(x.file for x in store.segments("t"))  # superseded files were deleted


def test_append_below_tip_rejected(store):
    with store.writer() as s:
        s.commit(rows(0, 3), tip={"height": 3})
        with pytest.raises(StoreError, match="above height 3"):
            s.commit(rows(3, 4), tip={"height": 4})
    assert heights(store) == [0, 1, 2, 3]


def test_writes_need_the_lock(store):
    with pytest.raises(StoreError, match="writer"):
        store.commit(rows(0, 1), tip=None)


def test_crash_before_commit_point_rolls_back(store, monkeypatch):
    with store.writer() as s:
        s.commit(rows(0, 3), tip={"height": 3})

    real_replace = os.replace

    def die_on_manifest(src, dst):
        if str(dst).endswith("manifest.json"):
            raise KeyboardInterrupt("power cut")  # staged files written, manifest not replaced
        return real_replace(src, dst)

    monkeypatch.setattr(segments.os, "replace", die_on_manifest)
    with pytest.raises(KeyboardInterrupt):
        with store.writer() as s:
            s.commit(rows(4, 6), tip={"height": 6})
    monkeypatch.setattr(segments.os, "replace", real_replace)
    assert list((store.root / "_staging").iterdir())  # debris of the interrupted commit
    fresh = ChainStore(store.root, "btc", SCHEMAS)
    assert heights(fresh) == [0, 1, 2, 3]  # readers see the last commit
    with fresh.writer() as s:
        assert s.recover()["removed"] == 0  # writer() already recovered on entry
    assert not list((store.root / "_staging").iterdir())
    assert heights(fresh) == [0, 1, 2, 3]


def test_crash_after_commit_point_rolls_forward(store, monkeypatch):
    monkeypatch.setattr(segments, "MERGE_ROWS", 1)  # no merge: new files only
    with store.writer() as s:
        s.commit(rows(0, 3), tip={"height": 3})
    real_replace = os.replace
    state = {"manifest_done": False}

    def die_after_manifest(src, dst):
        if state["manifest_done"]:
            raise KeyboardInterrupt("killed while moving files into place")
        real_replace(src, dst)
        if str(dst).endswith("manifest.json"):
            state["manifest_done"] = True

    monkeypatch.setattr(segments.os, "replace", die_after_manifest)
    with pytest.raises(KeyboardInterrupt):
        with store.writer() as s:
            s.commit(rows(4, 6), tip={"height": 6})
    monkeypatch.setattr(segments.os, "replace", real_replace)
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert manifest["tip"] == {"height": 6}
    # a reader (no lock) already sees the committed data, resolving files still in _staging
    reader = ChainStore(store.root, "btc", SCHEMAS)
    assert heights(reader) == list(range(7))
    with reader.writer() as s:
        pass  # recovery moves the staged files into place
    assert not list((store.root / "_staging").iterdir())
    assert sorted(p.name for p in (store.root / "t").iterdir()) == sorted(x.file for x in reader.segments("t"))
    assert heights(reader) == list(range(7))


def test_stray_files_removed_on_recovery(store):
    with store.writer() as s:
        s.commit(rows(0, 3), tip={"height": 3})
    (store.root / "t" / "h000000004-000000009.c000099.parquet").write_bytes(b"junk")
    (store.root / "manifest.json.tmp").write_text("{}")
    with store.writer() as s:
        pass
    assert sorted(p.name for p in (store.root / "t").iterdir()) == [x.file for x in store.segments("t")]
    assert not (store.root / "manifest.json.tmp").exists()


def test_missing_committed_segment_is_reported(store):
    with store.writer() as s:
        s.commit(rows(0, 3), tip={"height": 3})
    for p in (store.root / "t").iterdir():
        p.unlink()
    with pytest.raises(StoreError, match="missing"):
        with store.writer():
            pass


def test_corrupt_manifest_is_reported(store):
    with store.writer() as s:
        s.commit(rows(0, 3), tip={"height": 3})
    (store.root / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="unreadable manifest"):
        _ = ChainStore(store.root, "btc", SCHEMAS).manifest
