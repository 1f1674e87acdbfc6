"""The TAXII 2.1 server of `chaintrace serve` driven by the OASIS taxii2-client: discovery, collections,
paging through the registry collection, filters, POST with status, manifest, versions; access by key and
organisation; TLP enforced object by object; hidden properties."""
from __future__ import annotations

import json

import pytest
import requests
from taxii2client.v21 import Server, as_pages

from chaintrace import share
from chaintrace.api.app import create_app
from chaintrace.api.keys import create_key
from chaintrace.share import stix
from chaintrace.share.taxii_server import create_collection
from chaintrace.share.taxii_store import REGISTRY_COLLECTION
from tests.share_fixtures import LAZARUS, add_red_tag, institution
from tests.taxii_helpers import serve

TAXII = "application/taxii+json;version=2.1"
EXCHANGE = "3f9c2b4e-1d2a-4c5b-8e7f-0a1b2c3d4e5f"
INTERNAL = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"


def _indicator(n: int, level: str, *, amount: str | None = None) -> dict:
    o = {"type": "indicator", "spec_version": "2.1", "id": stix.sdo_id("indicator", "test", n),
         "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": f"test {n}",
         "pattern": f"[cryptocurrency-wallet:value = '0x{n:040x}']", "pattern_type": "stix",
         "valid_from": "2026-11-01T00:00:00.000Z", "object_marking_refs": [stix.TLP2_IDS[level]],
         "description": "case notes"}
    if amount:
        o["x_chaintrace_amount"] = amount
        o["extensions"] = {stix.REPORT_EXTENSION: {"extension_type": "property-extension",
                                                   "cash_outs": [{"address": "0xab", "amount": amount}]}}
    return o


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("taxii")
    ws = institution(tmp)
    add_red_tag(ws, tmp)
    keys = {name: create_key(ws, role, name, org)["key"] for name, role, org in (
        ("a-analyst", "analyst", "bank-a"), ("b-analyst", "analyst", "bank-b"), ("b-screener", "screener", "bank-b"),
        ("c-analyst", "analyst", "bank-c"))}
    create_collection(ws, cid=EXCHANGE, title="ISAC exchange", readers="bank-a,bank-b", writers="bank-a,bank-b",
                      max_tlp="green", hide="amounts")
    create_collection(ws, cid=INTERNAL, title="Bank A internal", readers="bank-a", writers="bank-a", max_tlp="red")
    with serve(create_app(ws)) as url:
        yield {"url": url, "ws": ws, "keys": keys}


def _server(server, who: str) -> Server:
    return Server(server["url"] + "/taxii2/", user=who, password=server["keys"][who])


def test_discovery_root_and_collections(server):
    s = _server(server, "b-screener")
    assert s.title == "chaintrace TAXII 2.1" and s.default.url.endswith("/taxii2/chaintrace/")
    root = s.default
    assert root.versions == [TAXII] and root.max_content_length > 0
    cols = {c.id: c for c in root.collections}
    assert set(cols) == {REGISTRY_COLLECTION, EXCHANGE}  # bank-b does not see bank-a's internal collection
    assert cols[REGISTRY_COLLECTION].can_read and not cols[REGISTRY_COLLECTION].can_write
    assert cols[EXCHANGE].can_read and cols[EXCHANGE].can_write
    c_cols = {c.id for c in _server(server, "c-analyst").default.collections}
    assert c_cols == {REGISTRY_COLLECTION}


def test_registry_collection_pages_through_the_shareable_registry(server):
    col = next(c for c in _server(server, "b-screener").default.collections if c.id == REGISTRY_COLLECTION)
    got = []
    for env in as_pages(col.get_objects, per_request=100):
        assert len(env.get("objects", [])) <= 100
        got += env.get("objects", [])
    bundle, summary = share.build_bundle(server["ws"])
    assert sorted(o["id"] for o in got) == sorted(o["id"] for o in bundle["objects"])
    red = "0x1111111111111111111111111111111111111111"
    assert not any(o.get("value") == red or red in o.get("pattern", "") for o in got)  # TLP:RED not published
    incidents = col.get_objects(type="incident")["objects"]
    assert len(incidents) == summary["by_type"]["incident"]
    laz = col.get_object(LAZARUS)["objects"]
    assert laz[0]["name"] == "Lazarus Group"
    assert col.object_versions(LAZARUS)["versions"] == [laz[0]["modified"]]
    man = col.get_manifest(limit=5)
    assert man["more"] is True and len(man["objects"]) == 5
    assert all(m["media_type"] == "application/stix+json;version=2.1" for m in man["objects"])
    # added_after: nothing after the last date_added
    last = max(m["date_added"] for env in as_pages(col.get_manifest, per_request=1000) for m in env["objects"])
    assert col.get_objects(added_after=last).get("objects", []) == []


def test_post_status_tlp_and_hidden_amounts(server):
    a = next(c for c in _server(server, "a-analyst").default.collections if c.id == EXCHANGE)
    objs = [_indicator(1, "green", amount="700000000"), _indicator(2, "amber"), _indicator(3, "red"),
            _indicator(4, "clear")]
    st = a.add_objects(json.dumps({"objects": objs}))
    assert st.status == "complete" and st.total_count == 4 and st.success_count == 2 and st.failure_count == 2
    assert {f["id"] for f in st.failures} == {objs[1]["id"], objs[2]["id"]}
    assert "TLP:RED" in next(f["message"] for f in st.failures if f["id"] == objs[2]["id"])
    again = _server(server, "a-analyst").default.get_status(st.id)
    assert again.success_count == 2
    # idempotent: posting the same objects again adds no version
    a.add_objects(json.dumps({"objects": objs[:1]}))
    b = next(c for c in _server(server, "b-analyst").default.collections if c.id == EXCHANGE)
    got = {o["id"]: o for o in b.get_objects()["objects"]}
    assert set(got) == {objs[0]["id"], objs[3]["id"]}
    one = got[objs[0]["id"]]
    assert one["extensions"][stix.REPORT_EXTENSION]["cash_outs"] == [{"address": "0xab"}]  # amounts hidden
    assert one["x_chaintrace_amount"] == "700000000"  # not in the hidden list: served
    assert b.object_versions(objs[0]["id"])["versions"] == ["2026-11-01T00:00:00.000Z"]
    # a new version of an object: `last` by default, `all` on request
    v2 = {**objs[0], "modified": "2026-11-02T00:00:00.000Z", "name": "test 1 (v2)"}
    a.add_objects(json.dumps({"objects": [v2]}))
    assert [o["name"] for o in b.get_object(v2["id"])["objects"]] == ["test 1 (v2)"]
    assert len(b.get_object(v2["id"], version="all")["objects"]) == 2
    assert [o["name"] for o in b.get_object(v2["id"], version="first")["objects"]] == ["test 1"]
    # DELETE needs write access: bank-b's screener may not, bank-a's analyst may
    url = f"{server['url']}/taxii2/chaintrace/collections/{EXCHANGE}/objects/{objs[3]['id']}/"
    hdr = {"Accept": TAXII}
    assert requests.delete(url, headers={**hdr, "X-API-Key": server["keys"]["b-screener"]}, timeout=10).status_code == 403
    assert requests.delete(url, headers={**hdr, "X-API-Key": server["keys"]["a-analyst"]}, timeout=10).status_code == 200
    assert objs[3]["id"] not in {o["id"] for o in b.get_objects()["objects"]}


def test_red_stays_inside_its_organisation(server):
    internal = next(c for c in _server(server, "a-analyst").default.collections if c.id == INTERNAL)
    red = _indicator(10, "red")
    assert internal.add_objects(json.dumps({"objects": [red]})).success_count == 1
    assert [o["id"] for o in internal.get_objects()["objects"]] == [red["id"]]
    r = requests.get(f"{server['url']}/taxii2/chaintrace/collections/{INTERNAL}/objects/",
                     headers={"Accept": TAXII, "X-API-Key": server["keys"]["b-analyst"]}, timeout=10)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/taxii+json")


def test_http_errors(server):
    base = f"{server['url']}/taxii2/chaintrace/collections/{EXCHANGE}/objects/"
    key = {"X-API-Key": server["keys"]["b-screener"]}
    assert requests.get(base, headers={"Accept": TAXII}, timeout=10).status_code == 401
    r = requests.get(base, headers={"Accept": "application/xml", **key}, timeout=10)
    assert r.status_code == 406 and r.json()["http_status"] == "406"
    r = requests.post(base, data=b'{"objects": []}', headers={"Accept": TAXII, "Content-Type": "application/json",
                                                               **key}, timeout=10)
    assert r.status_code == 415
    r = requests.post(base, data=b'{"objects": []}', headers={"Accept": TAXII, "Content-Type": TAXII, **key},
                      timeout=10)
    assert r.status_code == 403  # a screener key does not write
    r = requests.get(base + "?next=garbage!", headers={"Accept": TAXII, **key}, timeout=10)
    assert r.status_code == 400
    r = requests.get(base, headers={"Accept": TAXII, **key}, timeout=10)
    assert r.status_code == 200 and "X-TAXII-Date-Added-First" in r.headers and "X-TAXII-Date-Added-Last" in r.headers
