"""Monitor alerts that need no chain traffic: sanctions list changes delivered by email to a real SMTP server
(aiosmtpd on 127.0.0.1), JSON lines; watchlist commands and their errors."""
from __future__ import annotations

import email
import json
import subprocess
import sys

import pytest

from chaintrace import intel
from chaintrace.errors import UserError
from chaintrace.monitor import JsonLines, Smtp, Syslog, add_watchlist, list_watchlists, remove_watchlist, run_watch
from chaintrace.store.workspace import Workspace

WATCHED = "0x" + "11" * 20  # synthetic: on no real list (the registry ships a real OFAC snapshot)
OTHER = "0x" + "22" * 20


def _snapshot(tmp, date: str, addresses: list[str]):
    p = tmp / f"sdn_{date}.csv"
    rows = ["address,asset,sdn_uid,entity_name,party_subtype,programs,listed_date"]
    rows += [f"{a},ETH,{30000 + k},Test Entity {k},Entity,CYBER2,2022-01-01" for k, a in enumerate(addresses)]
    p.write_text("\n".join(rows) + "\n")
    return p


@pytest.fixture
def smtp_server():
    import aiosmtpd.controller  # a dev dependency: missing is a failure, not a skip
    from tests.monitor_sinks import free_port

    class Handler:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
            self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    h = Handler()
    c = aiosmtpd.controller.Controller(h, hostname="127.0.0.1", port=free_port())
    c.start()
    yield c, h
    c.stop()


def test_new_sanctions_snapshot_raises_list_change_by_email(tmp_path, smtp_server):
    ctl, handler = smtp_server
    ws = Workspace(tmp_path / "data")
    add_watchlist(ws, "watch-eth", "eth", addresses=[WATCHED, OTHER])
    import socket

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    chans = [Smtp("127.0.0.1", ctl.port, "monitor@test", ["analyst@test"]), JsonLines(str(tmp_path / "a.jsonl")),
             Syslog(f"127.0.0.1:{udp.getsockname()[1]}")]
    st = run_watch(ws, channels=chans, once=True)
    assert st.alerts == 0  # the answer recorded at `watch add` has not changed
    intel.import_paths(ws, "ofac-sdn", [_snapshot(tmp_path, "2024-01-01", [WATCHED])])
    st = run_watch(ws, channels=chans, once=True)
    assert st.alerts == 1 and st.pending == 0
    a = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    assert a["kind"] == "sanctions_change" and a["change"] == "added" and a["address"] == WATCHED
    assert a["entries"][0]["uid"] == "30000" and a["watchlist"] == "watch-eth"
    rcpt, msg = handler.messages[0]
    assert rcpt == ["analyst@test"] and msg["X-Chaintrace-Dedup-Key"] == a["dedup_key"]
    assert "added" in msg["Subject"] and WATCHED in msg["Subject"]
    line = udp.recv(65536)
    assert line.startswith(b"<132>1 ") and f'dedup_key="{a["dedup_key"]}"'.encode() in line
    assert json.loads(line[line.index(b"{"):])["change"] == "added"
    udp.close()
    # nothing new: no repeat
    assert run_watch(ws, channels=chans, once=True).alerts == 0
    # a later snapshot drops the address: removed
    intel.import_paths(ws, "ofac-sdn", [_snapshot(tmp_path, "2024-06-01", [OTHER])])
    run_watch(ws, channels=chans, once=True)
    got = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert got[0]["address"] == WATCHED and got[0]["change"] == "added"
    assert sorted((x["address"], x["change"]) for x in got[1:]) == [(WATCHED, "removed"), (OTHER, "added")]
    assert len(handler.messages) == 3
    assert len({x["dedup_key"] for x in got}) == 3


def test_watchlist_sources_and_errors(tmp_path):
    ws = Workspace(tmp_path / "data")
    with pytest.raises(UserError, match="exactly one"):
        add_watchlist(ws, "x", "eth", addresses=[WATCHED], sanctioned=True)
    with pytest.raises(UserError, match="not a eth address"):
        add_watchlist(ws, "x", "eth", addresses=["0x123"])
    with pytest.raises(UserError, match="no eth attacker addresses"):
        add_watchlist(ws, "x", "eth", incident="no-such-incident")
    with pytest.raises(UserError, match="sanctioned"):
        add_watchlist(ws, "x", "eth", sanctioned=True)
    intel.import_paths(ws, "ofac-sdn", [_snapshot(tmp_path, "2024-01-01", [WATCHED, OTHER])])
    w = add_watchlist(ws, "ofac", "eth", sanctioned=True)
    assert w["addresses"] == 2 and w["source"] == "sanctioned" and w["since_height"] == -1
    with pytest.raises(UserError, match="exists"):
        add_watchlist(ws, "ofac", "eth", addresses=[WATCHED])
    assert [x["name"] for x in list_watchlists(ws)] == ["ofac"]
    assert remove_watchlist(ws, "ofac")["removed_items"] == 2
    with pytest.raises(UserError, match="no watchlist named"):
        remove_watchlist(ws, "ofac")


def test_cli_watch_add_list_remove(tmp_path):
    from click.testing import CliRunner

    from chaintrace.cli import main

    def run(*args):
        return CliRunner().invoke(main, ["--data", str(tmp_path / "d"), "watch", *args])

    p = run("add", "--chain", "eth", "--name", "w1", "--address", WATCHED, "--address", OTHER, "--format", "json")
    assert p.exit_code == 0, p.output
    assert json.loads(p.stdout)["addresses"] == 2
    p = run("list", "--format", "json")
    assert [(w["name"], w["active"]) for w in json.loads(p.stdout)] == [("w1", 2)]
    p = run("add", "--chain", "eth", "--name", "w2", "--address", "0xnothex")
    assert p.exit_code == 2 and "0xnothex" in p.output and "Traceback" not in p.output
    p = run("run", "--webhook", "http://127.0.0.1:9/x", "--eth-rpc", "http://127.0.0.1:9")
    assert p.exit_code == 2 and "--secret" in p.output
    p = run("remove", "w1")
    assert p.exit_code == 0 and "removed watchlist w1 (2 items)" in p.stdout
    # the real entry point, once
    p = subprocess.run([sys.executable, "-m", "chaintrace", "--data", str(tmp_path / "d"), "watch", "list",
                        "--format", "json"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and json.loads(p.stdout) == []


def test_webhook_retried_with_backoff_until_accepted(tmp_path):
    """A receiver failing with HTTP 503 gets the same signed alert again (same dedup key) until it accepts."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from chaintrace.monitor import Webhook, verify_signature
    from chaintrace.monitor import alerts as A
    from chaintrace.monitor import db, deliver

    got = []

    class Flaky(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers["X-Chaintrace-Dedup-Key"], verify_signature("s", self.headers, body)))
            self.send_response(503 if len(got) <= 2 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        ws = Workspace(tmp_path / "data")
        con = db.connect(ws)
        hook = Webhook(f"http://127.0.0.1:{srv.server_address[1]}/", "s")
        a = A.make("moved", ("k",), chain="btc", watchlist=None, txid="00" * 32, amount="5")
        with db.tx(con):
            assert A.record(ws, con, a, [hook.id])
            assert not A.record(ws, con, dict(a), [hook.id])  # same dedup key: queued once
        delays = []
        while True:
            r = deliver.deliver_due(con, {hook.id: hook})
            row = con.execute("SELECT attempts, next_try, delivered FROM outbox").fetchone()
            if row["delivered"] is not None:
                break
            assert r["failed"] == 1
            delays.append(row["next_try"] - db.now())
            con.execute("UPDATE outbox SET next_try = 0")  # skip the wait
        assert row["attempts"] == 3 and len(delays) == 2 and delays[1] > delays[0] > 0
        assert got == [(a["dedup_key"], True)] * 3
    finally:
        srv.shutdown()
