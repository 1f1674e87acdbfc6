"""Screening while an ingest commits: a running server answers every request from one consistent data
version (the old index until the new one is complete, then the new one), never from a half-written state."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx

import chaintrace
from chaintrace import intel
from chaintrace.api.keys import create_key
from chaintrace.screen import build_index, load_config
from chaintrace.sim import simulate_btc
from chaintrace.store.workspace import Workspace
from tests.screen_server import REPO, Server
from tests.screen_fixtures import first_blocks


def test_screening_during_an_ingest(tmp_path):
    sim = tmp_path / "sim"
    simulate_btc(sim, txs=3000, seed=5, scenario="fan-out")
    inc = json.loads((sim / "truth.json").read_text())["incidents"][0]
    late = max(inc["cashouts"], key=lambda c: c["height"])
    early = min(inc["cashouts"], key=lambda c: c["height"])
    assert late["height"] > early["height"]
    split = late["height"] - 1  # heights start at 1: records 1..split hold blocks up to the split
    first_blocks(sim / "blk00000.dat", tmp_path / "part" / "blk00000.dat", split)
    ws = Workspace(tmp_path / "data")
    chaintrace.ingest_block_files(ws, [tmp_path / "part"])
    intel.import_paths(ws, "tagpack", [sim / "tags.yaml"])
    build_index(ws, load_config())
    key = create_key(ws, "screener", "ingest-test", limit="100000/1")["key"]
    srv = Server(ws.path)  # --auto-index (default): the server rebuilds the index after the ingest itself
    refs = [f"{late['txid']}:{late['vout']}", f"{early['txid']}:{early['vout']}"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}  # the test's registry (CHAINTRACE_REGISTRY) included
    seen: dict[str, int] = {}
    try:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "chaintrace", "--data", str(ws.path), "ingest", "btc-blocks", str(sim),
             "--batch-mb", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        with httpx.Client(base_url=srv.url, headers={"X-API-Key": key}, timeout=30) as c:
            def check():
                r = c.post("/v1/screen/transfers", json={"transfers": refs})
                assert r.status_code == 200, r.text
                doc = r.json()
                dv = doc["data_version"]
                tip = dv["chains"]["btc"]["tip_height"]
                new, old = doc["results"]
                # the early deposit is in every version: always flagged
                assert old["risk"] == "severe", old
                if tip < late["height"]:  # this version does not hold the late deposit yet: unknown, said so
                    assert new["risk"] is None and "not in the btc chain data" in new["warnings"][0]
                else:
                    assert new["risk"] == "severe" and new["exposures"], new
                seen[dv["index"]] = tip
                return dv["index"]

            first = check()
            while ingest.poll() is None:
                check()
            assert ingest.returncode == 0, ingest.stderr.read().decode()[-2000:]
            deadline = time.monotonic() + 180
            while max(seen.values()) < late["height"] and time.monotonic() < deadline:
                check()
                time.sleep(0.2)
        # the old version while ingesting, newer ones once their index was complete (built by the server)
        assert len(seen) >= 2, seen
        assert seen[first] < late["height"] <= max(seen.values())
        # the server refreshed the index from the previous one (an ingest of new blocks), not a full rebuild
        from chaintrace.screen import load_index

        last = load_index(ws, load_config(), max(seen, key=lambda k: seen[k]))
        assert last.meta["stats"]["refreshed_from"] is not None and last.meta["stats"]["n_new_tx"] > 0
    finally:
        srv.stop()
