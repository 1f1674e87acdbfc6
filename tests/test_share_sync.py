"""Two institutions in sync over TAXII 2.1, end to end: chaintrace pushes to and pulls from medallion (the
OASIS reference TAXII server) on 127.0.0.1, and two `chaintrace serve` processes exchange intelligence.
Incremental (added_after) and idempotent; TLP:RED and AMBER+STRICT never cross; after a pull, screening
flags the address the peer shared."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from chaintrace import intel
from chaintrace.api.keys import create_key
from chaintrace.cli import main
from chaintrace.share.taxii_client import pull, push
from chaintrace.share.taxii_server import create_collection
from chaintrace.share.taxii_store import REGISTRY_COLLECTION
from chaintrace.store.workspace import Workspace
from tests.share_fixtures import institution
from tests.taxii_helpers import free_port

GREEN = "0x2222222222222222222222222222222222222222"
AMBER = "0x3333333333333333333333333333333333333333"
RED = "0x4444444444444444444444444444444444444444"
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
EXCHANGE = "2b8c7d6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e"

PACK = """title: {org} findings
creator: {org}
lastmod: 2026-11-20
source: {org} investigation
confidence: forensic_investigation
currency: ETH
network: ETH
category: perpetrator
abuse: service_hack
label: '{label}'
tags:
- address: '{address}'
"""


def _intel(ws: Workspace, tmp: Path, org: str, address: str, tlp: str, label: str) -> None:
    p = tmp / f"{org}-{tlp}.yaml"
    p.write_text(PACK.format(org=org, address=address, label=label), encoding="utf-8")
    intel.import_paths(ws, "tagpack", [p], tlp=tlp)


def _wait_http(url: str, proc, auth=None, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        try:
            requests.get(url, auth=auth, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {timeout}s")


@pytest.fixture
def bank_a(tmp_path) -> Workspace:
    ws = institution(tmp_path / "bank-a")
    _intel(ws, tmp_path, "bank-a", GREEN, "green", "bank-a: laundering deposit")
    _intel(ws, tmp_path, "bank-a", AMBER, "amber", "bank-a: suspect (amber)")
    _intel(ws, tmp_path, "bank-a", RED, "red", "bank-a: internal only")
    return ws


@pytest.fixture
def medallion(tmp_path):
    # a dev dependency: missing is a failure, not a skip
    assert shutil.which("medallion", path=str(Path(sys.executable).parent)), "medallion is not installed (dev extra)"
    port = free_port()
    root = f"http://127.0.0.1:{port}/peer1/"
    data = {"/discovery": {"title": "peer", "description": "medallion peer", "contact": "test",
                           "default": root, "api_roots": [root]},
            "peer1": {"information": {"title": "peer", "description": "peer root",
                                      "versions": ["application/taxii+json;version=2.1"],
                                      "max_content_length": 100000000},
                      "status": [],
                      "collections": [{"id": COLLECTION, "title": "shared", "description": "",
                                       "can_read": True, "can_write": True,
                                       "media_types": ["application/stix+json;version=2.1"],
                                       "objects": [], "manifest": []}]}}
    (tmp_path / "data.json").write_text(json.dumps(data))
    cfg = {"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
                       "filename": str(tmp_path / "data.json")},
           "users": {"peer": "s3cret"}, "taxii": {"max_page_size": 100}}
    (tmp_path / "medallion.json").write_text(json.dumps(cfg))
    exe = str(Path(sys.executable).parent / "medallion")
    proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port), str(tmp_path / "medallion.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_http(f"http://127.0.0.1:{port}/taxii2/", proc, auth=("peer", "s3cret"))
        yield root
    finally:
        proc.terminate()
        proc.wait(10)


def test_push_to_and_pull_from_medallion(bank_a, tmp_path, medallion):
    r = push(bank_a, medallion, COLLECTION, user="peer", password="s3cret", skip_types=["extension-definition"])
    assert r["pushed"] > 50 and r["accepted"] == r["pushed"] and r["refused"] == 0
    assert "TLP:AMBER is above --max-tlp green" in r["held_back"]
    again = push(bank_a, medallion, COLLECTION, user="peer", password="s3cret", skip_types=["extension-definition"])
    assert again["pushed"] == 0 and again["already_pushed"] == r["pushed"]  # incremental, idempotent
    bank_b = institution(tmp_path / "bank-b")
    got = pull(bank_b, medallion, COLLECTION, user="peer", password="s3cret", page_size=100)
    assert got["objects"] == r["pushed"] and got["import"]["tags"] > 0
    hits = {h["address"]: h for h in intel.lookup(bank_b, [GREEN, AMBER, RED])}
    assert hits[GREEN]["known"] and not hits[AMBER]["known"] and not hits[RED]["known"]
    tag = hits[GREEN]["tags"][0]
    assert tag["tlp"] == "green" and tag["label"] == "bank-a: laundering deposit"
    assert pull(bank_b, medallion, COLLECTION, user="peer", password="s3cret")["objects"] == 0


def _serve(ws: Workspace, org: str, tmp: Path):
    port = free_port()
    env = {**os.environ, "CHAINTRACE_ORG": org, "CHAINTRACE_REGISTRY": str(ws._intel_registry.path)}
    proc = subprocess.Popen([sys.executable, "-m", "chaintrace", "--data", str(ws.path), "serve", "--port", str(port),
                             "--no-build-index"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_http(f"http://127.0.0.1:{port}/taxii2/", proc)
    return proc, f"http://127.0.0.1:{port}/taxii2/chaintrace/"


def test_two_chaintrace_servers_stay_in_sync(bank_a, tmp_path):
    bank_b = institution(tmp_path / "bank-b")
    _intel(bank_b, tmp_path, "bank-b", "0x5555555555555555555555555555555555555555", "green", "bank-b: mule")
    _intel(bank_b, tmp_path, "bank-b", "0x6666666666666666666666666666666666666666", "red", "bank-b: internal")
    key_b_at_a = create_key(bank_a, "analyst", "bank-b sync", "bank-b")["key"]
    key_a_at_b = create_key(bank_b, "analyst", "bank-a sync", "bank-a")["key"]
    create_collection(bank_a, cid=EXCHANGE, title="from partners", readers="bank-a,bank-b", writers="bank-b")
    procs = []
    try:
        pa, url_a = _serve(bank_a, "bank-a", tmp_path)
        procs.append(pa)
        pb, url_b = _serve(bank_b, "bank-b", tmp_path)
        procs.append(pb)
        runner = CliRunner()
        A = {"CHAINTRACE_REGISTRY": str(bank_a._intel_registry.path)}
        B = {"CHAINTRACE_REGISTRY": str(bank_b._intel_registry.path)}
        # B pulls A's published registry
        res = runner.invoke(main, env=B, args=["--data", str(bank_b.path), "share", "pull", "--taxii", url_a, "--collection",
                                   REGISTRY_COLLECTION, "--key", key_b_at_a, "--format", "json"])
        assert res.exit_code == 0, res.output
        first = json.loads(res.output)
        assert first["objects"] > 50 and first["import"]["tags"] > 0
        res = runner.invoke(main, env=B, args=["--data", str(bank_b.path), "share", "pull", "--taxii", url_a, "--collection",
                                   REGISTRY_COLLECTION, "--key", key_b_at_a, "--format", "json"])
        assert json.loads(res.output)["objects"] == 0  # incremental: nothing new
        hits = {h["address"]: h["known"] for h in intel.lookup(bank_b, [GREEN, AMBER, RED])}
        assert hits == {GREEN: True, AMBER: False, RED: False}
        # screening at B flags the address A shared
        res = runner.invoke(main, env=B, args=["--data", str(bank_b.path), "screen", "address", GREEN, "--format", "json"])
        assert res.exit_code == 0, res.output
        (result,) = json.loads(res.output)["results"]
        assert result["risk"] not in ("none", "unknown", None) and result["exposures"]
        assert any(e["source"] == "bank-a (STIX)" for e in result["exposures"]) or \
            any("bank-a" in (e.get("label") or "") for e in result["exposures"])
        # B pushes its registry into A's partner collection: its RED tag stays home
        res = runner.invoke(main, env=B, args=["--data", str(bank_b.path), "share", "push", "--taxii", url_a, "--collection",
                                   EXCHANGE, "--key", key_b_at_a, "--producer", "bank-b", "--format", "json"])
        assert res.exit_code == 0, res.output
        pushed = json.loads(res.output)
        assert pushed["pushed"] > 0 and pushed["refused"] == 0
        res = runner.invoke(main, env=A, args=["--data", str(bank_a.path), "share", "pull", "--taxii", url_b, "--collection",
                                   REGISTRY_COLLECTION, "--key", key_a_at_b, "--format", "json"])
        assert res.exit_code == 0, res.output
        a_hits = {h["address"]: h["known"] for h in intel.lookup(bank_a, [
            "0x5555555555555555555555555555555555555555", "0x6666666666666666666666666666666666666666"])}
        assert a_hits == {"0x5555555555555555555555555555555555555555": True,
                          "0x6666666666666666666666666666666666666666": False}
        from taxii2client.v21 import Collection

        col = Collection(f"{url_a}collections/{EXCHANGE}/", user="a", password=create_key(
            bank_a, "analyst", "a reader", "bank-a")["key"])
        vals = json.dumps(col.get_objects()["objects"])
        assert "0x5555555555555555555555555555555555555555" in vals
        assert "0x6666666666666666666666666666666666666666" not in vals
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
