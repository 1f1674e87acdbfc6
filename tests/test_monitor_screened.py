"""Sanctions list changes for addresses that were screened (not watched): the record of recently screened
addresses that `chaintrace screen` keeps, read by the watcher; the retention window bounds it."""
from __future__ import annotations

import json
import time

from chaintrace import intel
from chaintrace.monitor import JsonLines, run_watch
from chaintrace.screen import history, screen_addresses
from chaintrace.store.workspace import Workspace
from tests.test_monitor_alerts import _snapshot

SCREENED = "0x" + "3a" * 20  # synthetic: on no real list
LONG_AGO = "0x" + "44" * 20
OTHER = "0x" + "55" * 20


def _alerts(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_new_snapshot_alerts_for_recently_screened_address(tmp_path):
    ws = Workspace(tmp_path / "data")
    ans = screen_addresses(ws, [SCREENED.upper().replace("0X", "0x"), "not-an-address"])
    assert ans["results"][0]["risk"] == "none"
    history.record(ws, [("eth", LONG_AGO, False, 0)], at=time.time() - 100 * 86400)  # outside the 90 days
    rec = history.recent(ws)
    assert [r["address"] for r in rec] == [SCREENED]  # the invalid subject is not recorded
    assert rec[0]["chain"] == "eth" and rec[0]["sanctioned"] is False
    assert history.recent(ws, days=365) == rec  # pruned when written, not only filtered
    out = tmp_path / "a.jsonl"
    chans = [JsonLines(str(out))]
    assert run_watch(ws, channels=chans, once=True).alerts == 0  # no list change yet

    intel.import_paths(ws, "ofac-sdn", [_snapshot(tmp_path, "2024-01-01", [SCREENED, LONG_AGO])])
    st = run_watch(ws, channels=chans, once=True)
    got = _alerts(out)
    assert st.alerts == 1 and len(got) == 1, got
    a = got[0]
    assert a["kind"] == "sanctions_change" and a["change"] == "added" and a["address"] == SCREENED
    assert a["source"] == "screening" and a["watchlist"] is None and a["chain"] == "eth"
    assert a["entries"][0]["uid"] == "30000" and a["sanctioned_now"] is True
    assert a["screened_generation"] < a["registry_generation"] and a["last_screened"].endswith("Z")
    assert run_watch(ws, channels=chans, once=True).alerts == 0  # nothing new: no repeat

    # screened again now: the answer is sanctioned, at the current generation
    assert screen_addresses(ws, [SCREENED])["results"][0]["sanctions"]
    assert history.recent(ws)[0]["sanctioned"] is True
    # a later snapshot drops it: removed, with the entry that was in force
    intel.import_paths(ws, "ofac-sdn", [_snapshot(tmp_path, "2024-06-01", [OTHER])])
    assert run_watch(ws, channels=chans, once=True).alerts == 1
    b = _alerts(out)[1]
    assert b["change"] == "removed" and b["address"] == SCREENED and b["source"] == "screening"
    assert b["entries"][0]["uid"] == "30000" and b["sanctioned_now"] is False
    assert b["dedup_key"] != a["dedup_key"]
    assert LONG_AGO not in {x["address"] for x in _alerts(out)}


def test_screened_after_the_change_gets_no_alert(tmp_path):
    """An address first screened with the new list already got the new answer: no alert for it."""
    ws = Workspace(tmp_path / "data")
    out = tmp_path / "a.jsonl"
    run_watch(ws, channels=[JsonLines(str(out))], once=True)
    intel.import_paths(ws, "ofac-sdn", [_snapshot(tmp_path, "2024-01-01", [SCREENED])])
    assert screen_addresses(ws, [SCREENED])["results"][0]["sanctions"]
    assert run_watch(ws, channels=[JsonLines(str(out))], once=True).alerts == 0
