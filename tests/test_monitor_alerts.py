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
from chaintrace.monitor import JsonLines, Smtp, add_watchlist, list_watchlists, remove_watchlist, run_watch
from chaintrace.store.workspace import Workspace

WATCHED = "0x8576acc5c05d6ce88f4e49bf65bdf0c62f91353c"
OTHER = "0x1da5821544e25c636c1417ba96ade4cf6d2f9b5a"


def _snapshot(tmp, date: str, addresses: list[str]):
    p = tmp / f"sdn_{date}.csv"
    rows = ["address,asset,sdn_uid,entity_name,party_subtype,programs,listed_date"]
    rows += [f"{a},ETH,{30000 + k},Test Entity {k},Entity,CYBER2,2022-01-01" for k, a in enumerate(addresses)]
    p.write_text("\n".join(rows) + "\n")
    return p


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller  # a dev dependency: missing is a failure, not a skip
    from tests.monitor_sinks import free_port

    class Handler:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
            self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content)))
            return "250 OK"

    h = Handler()
    c = Controller(h, hostname="127.0.0.1", port=free_port())
    c.start()
    yield c, h
    c.stop()


def test_new_sanctions_snapshot_raises_list_change_by_email(tmp_path, smtp_server):
    ctl, handler = smtp_server
    ws = Workspace(tmp_path / "data")
    add_watchlist(ws, "watch-eth", "eth", addresses=[WATCHED, OTHER])
    chans = [Smtp("127.0.0.1", ctl.port, "monitor@test", ["analyst@test"]), JsonLines(str(tmp_path / "a.jsonl"))]
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
    # nothing new: no repeat
    assert run_watch(ws, channels=chans, once=True).alerts == 0
    # a later snapshot drops the address: removed
    intel.import_paths(ws, "ofac-sdn", [_snapshot(tmp_path, "2024-06-01", [OTHER])])
    run_watch(ws, channels=chans, once=True)
    got = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [(x["address"], x["change"]) for x in got] == [(WATCHED, "added"), (WATCHED, "removed"), (OTHER, "added")] \
        or sorted((x["address"], x["change"]) for x in got[1:]) == sorted([(WATCHED, "removed"), (OTHER, "added")])
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
