"""MISP event JSON and feed directories: our exports load in pymisp; MISP events (btc attributes,
coin-address / btc-wallet / cryptocurrency-transaction objects, galaxy tags) import with provenance."""
from __future__ import annotations

import csv
import hashlib
import json

import pytest
from pymisp import MISPEvent

from chaintrace import intel, share
from chaintrace.errors import UserError
from tests.share_fixtures import RONIN, institution

BTC = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def test_incident_event_loads_in_pymisp(ws, tmp_path):
    out = tmp_path / "ronin.misp.json"
    r = share.export(ws, "misp", out, incident="ronin-2022", tlp="amber", producer="Bank A FIU")
    assert r["events"] == 1
    ev = MISPEvent()
    ev.load_file(str(out))
    assert "Ronin" in ev.info and ev.Orgc.name == "Bank A FIU"
    assert {t.name for t in ev.tags} >= {"tlp:amber", 'misp-galaxy:threat-actor="Lazarus Group"'}
    coins = [o for o in ev.objects if o.name == "coin-address"]
    addrs = {a.value for o in coins for a in o.attributes if a.object_relation == "address-crypto"}
    assert RONIN in addrs
    assert all({a.object_relation for a in o.attributes} == {"address-crypto", "symbol"} for o in coins)


def test_feed_directory_round_trip(ws, tmp_path):
    feed = tmp_path / "feed"
    r = share.export(ws, "misp-feed", feed, tlp="green")
    assert r["events"] >= 5
    manifest = json.loads((feed / "manifest.json").read_text())
    assert len(manifest) == r["events"]
    values = set()
    for u, meta in manifest.items():
        ev = MISPEvent()
        ev.load_file(str(feed / f"{u}.json"))
        assert ev.uuid == u and meta["info"] == ev.info and {"name": "tlp:green"}.items() <= meta["Tag"][0].items()
        for a in ev.attributes:
            values.add((hashlib.md5(a.value.encode()).hexdigest(), u))
        for o in ev.objects:
            for a in o.attributes:
                values.add((hashlib.md5(a.value.encode()).hexdigest(), u))
    rows = list(csv.reader((feed / "hashes.csv").open()))
    assert rows and {tuple(r) for r in rows} == values
    peer = institution(tmp_path / "peer")
    got = share.import_file(peer, feed)
    assert got["format"] == "misp" and got["tags"] > 10 and got["rejected"] == 0
    hit = intel.lookup(peer, [RONIN])[0]
    assert hit["known"] and hit["tags"][0]["tlp"] == "green" and "chaintrace" in hit["tags"][0]["source"]
    assert share.import_file(peer, feed).get("skipped_as") == got["import_id"]


def test_import_a_misp_event_with_objects_and_galaxy(ws, tmp_path):
    ev = MISPEvent()
    ev.info = "Exchange hack - laundering addresses (demo)"
    ev.add_tag("tlp:amber")
    ev.add_tag('misp-galaxy:threat-actor="Lazarus Group"')
    ev.add_attribute("btc", BTC, comment="attacker deposit")
    ca = ev.add_object(name="coin-address")
    ca.add_attribute("address-crypto", value=RONIN)
    ca.add_attribute("symbol", value="ETH")
    w = ev.add_object(name="btc-wallet")
    w.add_attribute("wallet-address", value="1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
    tx = ev.add_object(name="cryptocurrency-transaction")
    tx.add_attribute("transaction-number", value="ab" * 32)
    tx.add_attribute("address", value="3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy")
    bad = ev.add_object(name="coin-address")
    bad.add_attribute("address-crypto", value="0xnot-an-address")
    bad.add_attribute("symbol", value="ETH")
    ev.Orgc = None
    doc = json.loads(ev.to_json())
    doc["Orgc"] = {"name": "Demo FIU", "uuid": "55f6ea5e-0000-4000-8000-000000000001"}
    p = tmp_path / "event.json"
    p.write_text(json.dumps({"Event": doc}))
    r = share.import_file(ws, p)
    assert r["format"] == "misp" and r["tags"] == 4 and r["rejected"] == 1 and r["producer"] == "Demo FIU"
    hits = intel.lookup(ws, [BTC, RONIN, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"])
    assert all(h["known"] for h in hits)
    t = hits[0]["tags"][0]
    assert t["tlp"] == "amber" and t["actor"] == "lazarusgroup" and t["source"].startswith("Demo FIU (MISP event")
    assert "attacker deposit" in t["label"]


def test_misp_errors_name_the_file(ws, tmp_path):
    d = tmp_path / "notafeed"
    d.mkdir()
    with pytest.raises(UserError, match="no manifest.json"):
        share.import_file(ws, d)
    (d / "manifest.json").write_text('{"6f1b9a4e-1c55-4a36-9a1d-3c5b8f2e0a11": {}}')
    with pytest.raises(UserError, match="6f1b9a4e-1c55-4a36-9a1d-3c5b8f2e0a11.json is missing"):
        share.import_file(ws, d)
