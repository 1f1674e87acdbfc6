"""Tips: validation of hostile input, sealed storage (the database holds no plaintext), receipt follow-ups,
abuse limiting without IPs, triage (a sanctioned address ranks above an unknown one) into the append-only
case store, and the public endpoint + form served by a real uvicorn process on 127.0.0.1."""
from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner

import chaintrace
from chaintrace import intel
from chaintrace.cli import main
from chaintrace.intake import TipError, TipLimiter, TipStore, keygen, screen_tip, triage, validate_tip
from chaintrace.intake.store import tips_path
from chaintrace.report import cases
from tests.conftest import REPO, dataset

UNKNOWN_ETH = "0x52908400098527886E0F7030069857D2E4169EE7"      # EIP-55 test vector, no intel
SEED_ETH = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"         # built-in DPRK incident seed (Ronin)
BTC = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
SECRET = "the-narrative-secret-7f3a"


@pytest.fixture
def store(tmp_path):
    ws = chaintrace.Workspace(tmp_path / "ws")
    k = keygen(tmp_path / "analysts.key")
    s = TipStore(ws)
    s.set_public_key(k["public_key"])
    return s, str(tmp_path / "analysts.key")


@pytest.mark.parametrize("body,field", [
    ([1, 2], "body"),
    ({}, "body"),
    ({"narrative": "x", "evil": 1}, "evil"),
    ({"addresses": ["0x52908400098527886e0F7030069857D2E4169EE7"]}, "addresses[0]"),   # bad EIP-55 checksum
    ({"addresses": ["<script>alert(1)</script>"]}, "addresses[0]"),
    ({"addresses": [{"chain": "btc", "address": "1BoatSLRHtKNngkdXEeobR76b53LETtpyU"}]}, "addresses[0]"),
    ({"addresses": "0xabc"}, "addresses"),
    ({"txids": ["0x1234"]}, "txids[0]"),
    ({"txids": ["zz" * 32]}, "txids[0]"),
    ({"narrative": "a" * 20001}, "narrative"),
    ({"narrative": "nul\x00byte"}, "narrative"),
    ({"narrative": "x", "contact": "me@example.org", "anonymous": True}, "contact"),
    ({"narrative": "x", "time": "yesterday"}, "time"),
    ({"narrative": "x", "amounts": [{"value": 1.5, "asset": "BTC"}]}, "amounts[0].value"),
    ({"narrative": "x", "amounts": [{"value": "NaN", "asset": "BTC"}]}, "amounts[0].value"),
    ({"narrative": "x", "attachments": [{"name": "a.exe", "content_type": "application/x-msdownload", "data": ""}]},
     "attachments[0].content_type"),
    ({"narrative": "x", "attachments": [{"name": "a.txt", "content_type": "text/plain", "data": "!!!"}]},
     "attachments[0].data"),
    ({"narrative": "x", "attachments": [{"name": "a.txt", "content_type": "text/plain",
                                         "data": base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()}]},
     "attachments[0].data"),
])
def test_hostile_or_invalid_tips_rejected(body, field):
    with pytest.raises(TipError) as e:
        validate_tip(body)
    assert e.value.field == field


def test_valid_tip_canonical():
    t = validate_tip({"addresses": [SEED_ETH, {"chain": "btc", "address": BTC}], "txids": ["AB" * 32],
                      "amounts": [{"value": "1,000.5", "asset": "eth"}], "time": "2024-05-01T13:00Z",
                      "narrative": "<b>hi</b>", "attachments": [{"name": "../../etc/passwd", "content_type": "text/plain",
                                                                 "data": base64.b64encode(b"hello").decode()}]})
    assert [a["chain"] for a in t["addresses"]] == ["eth", "btc"]
    assert t["txids"][0] == {"chain": "btc", "txid": "ab" * 32}
    assert t["amounts"][0] == {"value": "1000.5", "asset": "ETH"} and t["anonymous"] is True
    assert t["attachments"][0]["name"] == "passwd" and t["narrative"] == "<b>hi</b>"


def test_store_holds_no_plaintext_and_receipts_work(store):
    s, key = store
    att = base64.b64encode(b"attachment-secret-bytes").decode()
    r = s.submit({"addresses": [UNKNOWN_ETH], "narrative": SECRET, "contact": "signal:+1555",
                  "anonymous": False, "attachments": [{"name": "n.txt", "content_type": "text/plain", "data": att}]})
    f = s.follow_up(r["receipt"], {"narrative": "followup-secret-91"})
    assert f["followup"] == 1
    raw = tips_path(s.ws).read_bytes() + b"".join(p.read_bytes() for p in tips_path(s.ws).parent.glob("tips.sqlite*"))
    for needle in (SECRET, "signal:+1555", UNKNOWN_ETH, UNKNOWN_ETH.lower(), "attachment-secret-bytes", att,
                   "followup-secret-91", r["receipt"], r["receipt"].replace("-", "")):
        assert needle.encode() not in raw, needle
    got = s.get(r["id"], key)
    assert got["tip"]["narrative"] == SECRET and got["followups"][0]["tip"]["narrative"] == "followup-secret-91"
    assert base64.b64decode(got["tip"]["attachments"][0]["data"]) == b"attachment-secret-bytes"
    assert s.status(r["receipt"]) == {"status": "new", "followups": 1}
    with pytest.raises(Exception, match="no tip has this receipt"):
        s.follow_up("AAAAAA-AAAAAA-AAAAAA-AAAAAA", {"narrative": "x"})
    other = keygen(os.path.join(os.path.dirname(key), "other.key"))
    with pytest.raises(Exception, match="cannot decrypt"):
        s.get(r["id"], other["private_key"])


def test_limiter_stores_no_ip_and_limits():
    now = [0.0]
    lim = TipLimiter(capacity=2, per_hour=3600, clock=lambda: now[0])
    assert lim.take("203.0.113.7") == 0 and lim.take("203.0.113.7") == 0
    assert lim.take("203.0.113.7") > 0            # bucket empty
    assert lim.take("198.51.100.1") == 0          # another client has its own bucket
    now[0] += 1.0
    assert lim.take("203.0.113.7") == 0           # refilled at 1/s
    assert all(b"203.0.113.7" not in k and len(k) == 16 for k in lim.stored_keys())


def test_triage_sanctioned_ranks_above_unknown(store, tmp_path):
    s, key = store
    lists = dataset("ofac-sdn", "0xB10C-lists-2024-09")
    intel.import_paths(s.ws, "ofac-sdn", [lists], as_of="2024-09-27")
    sanctioned = (lists / "sanctioned_addresses_ETH.txt").read_text().split()[0]
    a = s.submit({"addresses": [UNKNOWN_ETH], "narrative": "unknown"}, screen=lambda t: screen_tip(s.ws, t))
    b = s.submit({"addresses": [sanctioned], "narrative": "sanctioned"}, screen=lambda t: screen_tip(s.ws, t))
    assert b["score"] > a["score"]
    assert [t["id"] for t in s.list()][:2] == [b["id"], a["id"]]
    c = triage(s.ws, b["id"], key, analyst="alice")
    assert c["addresses"][0]["address"] == sanctioned and c["origin"]["tip"] == b["id"]
    assert c["detail"]["screening"]["sanctioned"] == [sanctioned]
    assert c["audit"][0]["action"] == "opened" and c["audit"][0]["analyst"] == "alice"
    assert s.list()[0]["case_id"] == c["id"]
    with pytest.raises(Exception, match="triaged already"):
        triage(s.ws, b["id"], key)
    cases.note(s.ws, c["id"], "looked at it", analyst="bob")
    assert [x["action"] for x in cases.get(s.ws, c["id"])["audit"]] == ["opened", "note"]
    con = sqlite3.connect(cases.cases_path(s.ws))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET action = 'x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit")


def test_tips_cli(tmp_path):
    ws = str(tmp_path / "ws")
    run = CliRunner().invoke
    key = str(tmp_path / "a.key")
    r = run(main, ["--data", ws, "tips", "keygen", "--key", key])
    assert r.exit_code == 0, r.output
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    f = tmp_path / "tip.json"
    f.write_text(json.dumps({"addresses": [SEED_ETH], "narrative": "[bold]markup[/bold] <i>x</i>"}))
    r = run(main, ["--data", ws, "tips", "submit", str(f), "--format", "json"])
    assert r.exit_code == 0, r.output
    tid = json.loads(r.output)["id"]
    r = run(main, ["--data", ws, "tips", "show", tid, "--key", key])
    assert "[bold]markup[/bold] <i>x</i>" in r.output             # shown literally, not as Rich markup
    r = run(main, ["--data", ws, "tips", "list", "--format", "json"])
    assert json.loads(r.output)["tips"][0]["score"] >= 40 and "narrative" not in json.loads(r.output)["tips"][0]
    r = run(main, ["--data", ws, "tips", "triage", tid, "--key", key, "--format", "json"])
    cid = json.loads(r.output)["id"]
    r = run(main, ["--data", ws, "case", "show", cid, "--format", "json"])
    assert json.loads(r.output)["addresses"][0]["address"] == SEED_ETH
    f.write_text("{not json")
    r = run(main, ["--data", ws, "tips", "submit", str(f)])
    assert r.exit_code == 2 and "malformed JSON" in r.output


# ------------------------------------------------------------------------------------ real HTTP server


def _serve(tmp_path, factory):
    ws = tmp_path / "ws"
    k = keygen(tmp_path / "analysts.key")
    TipStore(chaintrace.Workspace(ws)).set_public_key(k["public_key"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = dict(os.environ, CHAINTRACE_DATA=str(ws), CHAINTRACE_TIP_RATE="5/3600",
               PYTHONPATH=str(REPO / "src") + os.pathsep + str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", factory,
                             "--fd", str(sock.fileno()), "--log-level", "warning"], env=env, pass_fds=[sock.fileno()])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/tip", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        yield base, ws, str(tmp_path / "analysts.key")
    finally:
        proc.terminate()
        proc.wait(10)
        sock.close()


@pytest.fixture
def server(tmp_path):
    """`chaintrace serve`'s app (create_app, with the tip router mounted) in a real uvicorn process."""
    yield from _serve(tmp_path, "chaintrace.api.server:app_factory")


@pytest.fixture
def tip_server(tmp_path):
    """The tip line alone (create_tip_app), for a separate public host."""
    yield from _serve(tmp_path, "chaintrace.api.tips:create_tip_app")


def _post(url, data: bytes, ctype="application/json"):
    req = urllib.request.Request(url, data=data, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_http_tip_line(server):
    base, ws, key = server
    st, body, _ = _post(base + "/v1/tips", json.dumps({"addresses": [SEED_ETH], "narrative": SECRET}).encode())
    assert st == 201, body
    receipt = json.loads(body)["receipt"]
    st, body, _ = _post(base + "/v1/tips/followup", json.dumps({"receipt": receipt, "narrative": "more"}).encode())
    assert st == 201 and json.loads(body)["followup"] == 1
    st, body, _ = _post(base + "/v1/tips", b"{not json")
    assert st == 400 and json.loads(body)["error"] == "malformed_json"
    st, body, _ = _post(base + "/v1/tips", json.dumps({"addresses": ["<script>"]}).encode())
    assert st == 422 and json.loads(body)["field"] == "addresses[0]"
    # oversize: refused on the Content-Length header, before the body is read
    conn = http.client.HTTPConnection(base.split("//")[1], timeout=10)
    conn.putrequest("POST", "/v1/tips")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(5 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"] == "too_large"
    conn.close()
    st, body, hdr = _post(base + "/v1/tips", json.dumps({"narrative": "one too many"}).encode())
    assert st == 429 and int(hdr["retry-after"]) > 0          # 5 requests per client, then the bucket is empty
    raw = b"".join(p.read_bytes() for p in (ws / "intake").glob("tips.sqlite*"))
    assert SECRET.encode() not in raw and SEED_ETH.encode() not in raw and SEED_ETH.lower().encode() not in raw
    store = TipStore(chaintrace.Workspace(ws))
    tips = store.list(key)
    assert len(tips) == 1 and tips[0]["score"] >= 40
    assert store.get(tips[0]["id"], key)["tip"]["narrative"] == SECRET


def test_http_form_en_ar(tip_server):
    base, ws, key = tip_server
    with urllib.request.urlopen(base + "/tip", timeout=10) as r:
        en = r.read().decode()
        assert "default-src 'none'" in r.headers["content-security-policy"]
    assert '<html lang="en" dir="ltr">' in en and 'enctype="multipart/form-data"' in en
    assert "<script" not in en and "http" not in en.split("<body>")[1]     # no script, no external resources
    with urllib.request.urlopen(base + "/tip?lang=ar", timeout=10) as r:
        ar = r.read().decode()
    assert '<html lang="ar" dir="rtl">' in ar and "إرسال البلاغ مشفراً" in ar
    boundary = "----chaintrace-test"
    parts = [("addresses", f"eth:{SEED_ETH}\n{BTC}"), ("narrative", "<script>alert('x')</script> حول"),
             ("anonymous", "1")]
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in parts)
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="attachment"; filename="note.txt"\r\n'
             f'Content-Type: text/plain\r\n\r\nattached words\r\n--{boundary}--\r\n').encode()
    st, page, _ = _post(base + "/tip?lang=ar", body, f"multipart/form-data; boundary={boundary}")
    assert st == 201, page
    page = page.decode()
    assert "رمز الإيصال" in page and "<script>alert" not in page
    store = TipStore(chaintrace.Workspace(ws))
    t = store.get(store.list()[0]["id"], key)["tip"]
    assert t["narrative"].startswith("<script>alert('x')</script>") and t["lang"] == "ar"
    assert [a["chain"] for a in t["addresses"]] == ["eth", "btc"]
    assert base64.b64decode(t["attachments"][0]["data"]) == b"attached words"
    parts = [("addresses", "not-an-address<img src=x onerror=alert(1)>")]
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in parts)
    body += f"--{boundary}--\r\n".encode()
    st, page, _ = _post(base + "/tip", body, f"multipart/form-data; boundary={boundary}")
    assert st == 422 and b"<img" not in page and b"&lt;img" in page
