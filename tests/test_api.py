"""The service through a real `chaintrace serve` process and real HTTP clients: keys and roles, the
screening endpoints, the Chainalysis-compatible sanctions endpoint (OFAC SDN XML), rate limits, the audit
chain, and schemathesis against the OpenAPI schema."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chaintrace import intel
from chaintrace.api.keys import create_key, revoke_key
from tests.conftest import dataset
from tests.screen_fixtures import simulated_hack
from tests.screen_server import REPO, Server

LAZARUS_ETH = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    xml = dataset("ofac-sdn", "sdn_advanced_2025-11-19.xml.bz2")
    ws, sim = simulated_hack(tmp_path_factory.mktemp("api"), txs=3000, seed=5)
    intel.import_paths(ws, "ofac-sdn", [xml])
    keys = {r: create_key(ws, r, f"test-{r}", org="acme" if r == "screener" else "local")["key"]
            for r in ("screener", "analyst", "admin")}
    keys["fuzz"] = create_key(ws, "screener", "fuzz", limit="100000/1")["key"]
    # the server uses the workspace's registry; it builds the index for the registry with the SDN list at start
    srv = Server(ws.path, registry=intel.registry.as_registry(ws).path)
    truth = json.loads((sim / "truth.json").read_text())["incidents"][0]
    yield ws, srv, keys, truth
    srv.stop()


def H(key):
    return {"X-API-Key": key}


def test_health_status_and_auth(served):
    ws, srv, keys, _ = served
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/health").json() == {"status": "ok"}
        r = c.get("/status")
        assert r.status_code == 401 and r.json()["field"] == "X-API-Key"
        assert c.get("/status", headers=H("ct_000000000000_" + "x" * 43)).status_code == 401
        r = c.get("/status", headers=H(keys["screener"]))
        assert r.status_code == 200
        st = r.json()
        assert st["key"]["org"] == "acme" and st["key"]["role"] == "screener"
        assert st["key"]["quota"]["limit"] == 1000 and r.headers["RateLimit-Limit"] == "1000"
        assert st["data_version"]["index"] and st["data_version"]["config_version"] == "chaintrace-severity/2"
        # HTTP Basic: any user name, the key as password (what TAXII clients send)
        assert c.get("/status", auth=("anyone", keys["analyst"])).status_code == 200
        assert c.get("/status", auth=("anyone", "wrong")).status_code == 401
        # roles decide endpoints: the audit endpoint is for admins
        r = c.get("/v1/audit/verify", headers=H(keys["screener"]))
        assert r.status_code == 403 and "admin" in r.json()["message"]
        assert c.get("/v1/audit/verify", headers=H(keys["admin"])).json()["ok"] is True


def test_revoked_key_is_refused(served):
    ws, srv, keys, _ = served
    k = create_key(ws, "screener", "short-lived")
    with httpx.Client(base_url=srv.url, headers=H(k["key"])) as c:
        assert c.get("/status").status_code == 200
        revoke_key(ws, k["key_id"])
        import time

        time.sleep(1.2)  # the server re-reads the key file at most once a second
        assert c.get("/status").status_code == 401


def test_lazarus_sanctioned_severe_dprk3(served):
    ws, srv, keys, _ = served
    listed = intel.lookup(ws, [LAZARUS_ETH])[0]["sanctions"][0]["listed_date"]
    with httpx.Client(base_url=srv.url, headers=H(keys["screener"])) as c:
        r = c.post("/v1/screen/addresses", json={"addresses": [LAZARUS_ETH, "0x" + "11" * 20]})
        assert r.status_code == 200
        laz, clean = r.json()["results"]
        assert laz["risk"] == "severe" and laz["score"] == 100
        s = laz["sanctions"][0]
        assert s["entity"] == "Lazarus Group" and s["programmes"] == ["DPRK3"]
        assert s["listed"] == listed == "2019-09-13" and s["list"].startswith("OFAC")
        assert clean["risk"] == "none" and clean["sanctions"] == [] and clean["invalid"] is None
        r = c.get(f"/v1/screen/address/eth/{LAZARUS_ETH}")
        assert r.json()["results"][0]["risk"] == "severe"
        r = c.get(f"/v1/screen/address/btc/{LAZARUS_ETH}")
        assert r.status_code == 200 and r.json()["results"][0]["invalid"] == "a eth address, not btc"
        r = c.get(f"/v1/screen/address/doge/{LAZARUS_ETH}")
        assert r.status_code == 422 and r.json()["field"] == "path.chain"


def test_chainalysis_compatible_endpoint(served):
    ws, srv, keys, _ = served
    with httpx.Client(base_url=srv.url, headers=H(keys["screener"])) as c:
        r = c.get(f"/api/v1/address/{LAZARUS_ETH}")
        assert r.status_code == 200
        ids = r.json()["identifications"]
        assert ids and all(set(i) == {"category", "name", "description", "url"} for i in ids)
        assert ids[0]["category"] == "sanctions" and "Lazarus Group" in ids[0]["name"]
        assert "DPRK3" in ids[0]["description"]
        assert c.get(f"/api/v1/address/{LAZARUS_ETH.lower()}").json()["identifications"]  # EVM: any case
        assert c.get("/api/v1/address/0x" + "22" * 20).json() == {"identifications": []}


def test_screening_endpoints_on_the_simulated_hack(served):
    ws, srv, keys, inc = served
    c0 = inc["cashouts"][0]
    with httpx.Client(base_url=srv.url, headers=H(keys["analyst"])) as c:
        r = c.post("/v1/screen/transfers", json={"transfers": [f"{c0['txid']}:{c0['vout']}", "zz"]})
        assert r.status_code == 200
        t, bad = r.json()["results"]
        hx = [e for e in t["exposures"] if e["abuse"] == "service_hack" and e["actor"] == "lazarusgroup"]
        assert hx and hx[0]["amount"] == c0["stolen"] and t["evidence"]
        assert bad["invalid"] and bad["risk"] is None
        r = c.get(f"/v1/screen/address/btc/{c0['address']}")
        assert r.json()["results"][0]["risk"] == "severe"
        r = c.post("/v1/screen/addresses", json={"addresses": []})
        assert r.status_code == 422 and r.json()["field"] == "body.addresses"
        r = c.post("/v1/screen/addresses", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        r = c.post("/v1/screen/addresses", json={"addresses": ["x"] * 100_001})
        assert r.status_code == 422 and "100000" in r.json()["message"]


def test_rate_limit_429_with_headers(served):
    ws, srv, keys, _ = served
    k = create_key(ws, "screener", "limited", limit="3/60")["key"]
    import time

    time.sleep(1.2)
    with httpx.Client(base_url=srv.url, headers=H(k)) as c:
        rs = [c.get("/api/v1/address/0x" + "33" * 20) for _ in range(4)]
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in rs] == ["2", "1", "0", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" for r in rs)
    assert 1 <= int(rs[3].headers["Retry-After"]) <= 60 and rs[3].json()["error"] == "rate_limited"


def _cli(ws, *args):
    return subprocess.run([sys.executable, "-m", "chaintrace", "--data", str(ws.path), *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")})


def test_audit_chain_detects_edits_and_deletions(served):
    ws, srv, keys, _ = served
    with httpx.Client(base_url=srv.url, headers=H(keys["screener"])) as c:
        for a in ("0x" + "44" * 20, LAZARUS_ETH, "0x" + "55" * 20):
            assert c.post("/v1/screen/addresses", json={"addresses": [a]}).status_code == 200
    r = _cli(ws, "audit", "verify", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["records"] >= 3
    log = ws.path / "api" / "audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    recs = [json.loads(x) for x in lines]
    laz = max(i for i, x in enumerate(recs) if x["request"]["subjects"] == [LAZARUS_ETH])
    assert recs[laz]["key_id"] and recs[laz]["org"] == "acme" and recs[laz]["answer"]["results"][0][1] == "severe"
    original = log.read_bytes()
    try:
        # edit: turn the severe answer into "none"
        edited = lines[:laz] + [lines[laz].replace(b'"severe"', b'"none"')] + lines[laz + 1:]
        log.write_bytes(b"".join(edited))
        r = _cli(ws, "audit", "verify")
        assert r.returncode == 1 and f":{laz + 1}:" in r.stdout and "modified" in r.stdout
        # deletion in the middle
        log.write_bytes(b"".join(lines[:laz] + lines[laz + 1:]))
        r = _cli(ws, "audit", "verify")
        assert r.returncode == 1 and "deleted" in r.stdout
        # deletion at the end
        log.write_bytes(b"".join(lines[:-1]))
        r = _cli(ws, "audit", "verify")
        assert r.returncode == 1 and "deleted at the end" in r.stdout
    finally:
        log.write_bytes(original)
    assert _cli(ws, "audit", "verify").returncode in (0,)


def test_keys_cli(served):
    ws, srv, keys, _ = served
    r = _cli(ws, "keys", "create", "--role", "analyst", "--name", "cli key", "--org", "fiu", "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["key"].startswith("ct_") and doc["org"] == "fiu" and "hash" not in doc
    stored = (ws.path / "api" / "keys.json").read_text()
    assert doc["key"] not in stored and doc["key_id"] in stored  # hashed at rest
    r = _cli(ws, "keys", "list", "--format", "json")
    assert doc["key_id"] in r.stdout and doc["key"] not in r.stdout
    r = _cli(ws, "keys", "create", "--role", "root", "--name", "x")
    assert r.returncode == 2
    r = _cli(ws, "keys", "revoke", "nobody-has-this-name")
    assert r.returncode == 2 and "no API key" in r.stderr


def test_openapi_schemathesis(served):
    """schemathesis against the real server: every operation of /openapi.json with generated (also
    malformed) input: never a 500, status codes, content types and bodies as documented."""
    ws, srv, keys, _ = served
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe), "run", srv.url + "/openapi.json", "-H", f"X-API-Key: {keys['fuzz']}", "--checks", "all",
           "-n", "25", "--seed", "1", "--no-color", "--suppress-health-check", "all", "--generation-database", "none",
           # the operations of this module (others' routers, e.g. TAXII and tips, are checked by their own tests)
           "--include-tag", "screening", "--include-tag", "sanctions", "--include-tag", "service"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_served_screenings_are_recorded_for_the_monitor(served):
    """The fast GET path and the batch endpoint note what they screened; the service's watcher thread writes
    it to DATA/screen/history.sqlite (read by the monitor's sanctions-change check)."""
    import time

    from chaintrace.screen import history

    ws, srv, keys, _ = served
    clean, got_only = "0x" + "66" * 20, "0x" + "77" * 20
    with httpx.Client(base_url=srv.url, headers=H(keys["screener"])) as c:
        assert c.get(f"/v1/screen/address/eth/{LAZARUS_ETH}").status_code == 200
        assert c.get(f"/v1/screen/address/eth/{got_only}").status_code == 200
        assert c.post("/v1/screen/addresses", json={"addresses": [clean, "nope"]}).status_code == 200
    laz = LAZARUS_ETH.lower()  # recorded as the registry keys it
    got: dict = {}
    for _ in range(100):  # written within the watcher's check interval (2 s); wait for it, no timing assertion
        got = {r["address"]: r for r in history.recent(ws)}
        if laz in got and clean in got and got_only in got:
            break
        time.sleep(0.1)
    assert got[laz]["sanctioned"] is True and got[laz]["chain"] == "eth"
    assert got[got_only]["sanctioned"] is False and got[got_only]["chain"] == "eth"
    assert got[clean]["sanctioned"] is False and "nope" not in got
    assert got[clean]["registry_generation"] == intel.registry.generation(ws)


def test_served_answers_carry_the_detections(served):
    """unidentified_service rows and the detections list reach the HTTP answers (the fast single-address GET
    and the batch) exactly as the library computes them."""
    from chaintrace.screen import Screener
    from chaintrace.screen.service import screen_one_address

    ws, srv, keys, _ = served
    snap = Screener(ws).snapshot()
    idx = snap.index
    facts = idx.meta["facts"]["addresses"]
    svc = [k for k in facts if any(e["direction"] != "self" for e in idx.facts(k)["exposures"])][:5]
    det = [k for k in facts if idx.facts(k)["detections"]][:5]
    assert svc and det
    with httpx.Client(base_url=srv.url, headers=H(keys["analyst"])) as c:
        got = c.post("/v1/screen/addresses", json={"addresses": svc + det}).json()
        assert got["data_version"]["detections"] == snap.data_version["detections"]
        for s, r in zip(svc + det, got["results"]):
            ref = screen_one_address(snap, s)
            one = c.get(f"/v1/screen/address/btc/{s}").json()["results"][0]
            for x in (r, one):
                assert x["exposures"] == ref["exposures"] and x["detections"] == ref["detections"], s
        assert any(e["category"] == "unidentified_service" and e["value"] for e in got["results"][0]["exposures"])


def test_batch_audit_record_digests_the_body_sent(served):
    """A batch of >= 1,000 subjects: its audit record's answer part (the body's SHA-256, subject/risk/score per
    result) is computed by the audit writer after the response; it still matches the bytes the client got."""
    import hashlib

    ws, srv, keys, inc = served
    subjects = [inc["cashouts"][0]["address"]] + ["0x" + f"{i:040x}" for i in range(1, 1200)] + ["nope"]
    with httpx.Client(base_url=srv.url, headers=H(keys["screener"]), timeout=60) as c:
        r = c.post("/v1/screen/addresses", json={"addresses": subjects})
        assert r.status_code == 200
        v = c.get("/v1/audit/verify", headers=H(keys["admin"])).json()  # flushes the queue
        assert v["ok"] is True, v
    recs = [json.loads(x) for x in (ws.path / "api" / "audit.jsonl").read_bytes().splitlines()]
    rec = next(x for x in reversed(recs) if x["action"] == "screen.addresses" and x["request"]["n"] == len(subjects))
    assert rec["answer"]["sha256"] == hashlib.sha256(r.content).hexdigest()
    got = r.json()["results"]
    assert rec["answer"]["results"] == [[x["subject"], x["risk"], x["score"]] for x in got]
    assert got[0]["risk"] == "severe" and rec["answer"]["results"][-1] == ["nope", None, None]


def test_audit_digest_ends_its_gc_pause_in_the_writer(tmp_path):
    """_Digest pauses garbage collection from the request until the audit writer has summarised the answer
    (then frees it there); a digest dropped unwritten ends its pause too."""
    import gc

    from chaintrace.api.audit import AuditLog, verify
    from chaintrace.api.routes import _Digest

    assert gc.isenabled()
    ans = {"results": [{"subject": f"s{i}", "risk": "none", "score": 0} for i in range(3)], "data_version": {}}
    log = AuditLog(tmp_path)
    try:
        d = _Digest(ans, b"{}")
        assert not gc.isenabled()
        log.append({"key_id": "k", "action": "screen.addresses", "answer": d})
        del d
        log.flush()
        assert gc.isenabled()
        rec = json.loads((tmp_path / "audit.jsonl").read_bytes().splitlines()[-1])
        assert rec["answer"]["results"] == [["s0", "none", 0], ["s1", "none", 0], ["s2", "none", 0]]
        assert rec["answer"]["sha256"] == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        assert verify(tmp_path)["ok"]
        lost = _Digest(ans, b"{}")
        assert not gc.isenabled()
        del lost
        assert gc.isenabled()
    finally:
        log.close()
