"""STIX `incident`s are imported as registry incidents (victim, amounts, dates, sources, actor) with their
provenance (producer, TLP, confidence): STIX -> registry -> STIX keeps ids, markings and amounts."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from chaintrace import share
from chaintrace.errors import UserError
from chaintrace.intel.incidents import all_incidents, timeline
from chaintrace.share import misp, stix
from tests.share_fixtures import LAZARUS, by_type, institution, load, validate

RONIN_ID = stix.sdo_id("incident", "ronin-2022")
PEER = "identity--0c7f7b0a-3d3b-4a53-9e5e-bb5c3f0a0a01"


def _incident_part(bundle: dict, incident_sid: str) -> dict[str, dict]:
    """The incident, its victim, and every object whose relationship touches the incident (seed indicators,
    wallets, transactions) with those relationships."""
    objs = {o["id"]: o for o in bundle["objects"]}
    rels = [o for o in by_type(bundle, "relationship") if incident_sid in (o["source_ref"], o["target_ref"])]
    ids = {incident_sid} | {r["id"] for r in rels} | {r["source_ref"] for r in rels} | \
        {r["target_ref"] for r in rels if objs[r["target_ref"]]["type"] == "identity"}
    inds = {i for i in ids if i.startswith("indicator--")}
    based = [o for o in by_type(bundle, "relationship")
             if o["relationship_type"] == "based-on" and o["source_ref"] in inds]
    ids |= {r["id"] for r in based} | {r["target_ref"] for r in based}
    return {i: objs[i] for i in ids}


def test_catalogue_incident_round_trips_through_a_peer_registry(tmp_path):
    bank_a, bank_b = institution(tmp_path / "a"), institution(tmp_path / "b")
    share.export(bank_a, "stix", tmp_path / "ronin.json", incident="ronin-2022", tlp="amber", producer="Bank A")
    first = load(tmp_path / "ronin.json")
    validate(first)
    r = share.import_file(bank_b, tmp_path / "ronin.json")
    assert r["incidents"] == 1 and r["rejected"] == 0 and r["producer"] == "Bank A"
    # in bank B's registry: the incident with its facts and provenance (it replaces B's built-in row)
    inc = next(i for i in all_incidents(bank_b)[0] if i["incident_id"] == "ronin-2022")
    assert inc["origin"].startswith("import #") and inc["tlp"] == "amber" and inc["producer"] == "Bank A"
    assert Decimal(inc["amount_usd"]) == Decimal("625000000") and inc["amount_asset"] == "173600"
    assert inc["date"] == "2022-03-23" and inc["victim"].startswith("Ronin Network") and inc["actor"] == "lazarusgroup"
    assert json.loads(inc["context"])["chaintrace_share"]["incident"] == RONIN_ID
    # AMBER is not in B's shareable registry; asked for, it leaves with A's ids, marking and amounts
    _, summary = share.build_bundle(bank_b)
    assert summary["held_back"].get("TLP:AMBER incident") == 1
    with pytest.raises(UserError, match="no shareable incident 'ronin-2022'.*TLP:AMBER incident"):
        share.build_bundle(bank_b, incident="ronin-2022")
    share.export(bank_b, "stix", tmp_path / "again.json", incident="ronin-2022", include_restricted=True,
                 producer="Bank B")
    again = load(tmp_path / "again.json")
    validate(again)
    before, after = _incident_part(first, RONIN_ID), _incident_part(again, RONIN_ID)
    assert len(before) > 20 and set(before) == set(after)
    assert before == after  # same ids, same markings (AMBER), same producer (Bank A), same amounts
    (o,) = by_type(again, "incident")
    assert o["object_marking_refs"] == [stix.TLP2_IDS["amber"]]
    assert o["extensions"][stix.INCIDENT_EXTENSION]["amount_usd"] == "625000000"
    assert next(x for x in by_type(again, "identity") if x["id"] == o["created_by_ref"])["name"] == "Bank A"
    # and over MISP the incident event keeps AMBER too
    (ev,) = misp.build_events(bank_b, incident="ronin-2022", include_restricted=True)
    assert "tlp:amber" in {t["name"] for t in ev["Event"]["Tag"]}


def _peer_bundle(tlp: str = "green") -> dict:
    """An incident as another tool (OpenCTI) shares it: no chaintrace extension, `targets` its victim."""
    inc = "incident--7d1f0c2e-5b7a-4c1e-9f4e-2a6b8c0d1e2f"
    victim = "identity--3e9a1b7c-2d4f-4a6b-8c0d-1e2f3a4b5c6d"
    ind = "indicator--9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    addr = "0x8589427373D6D84E98730D7795D8f6f8731FDA16"
    mark = [stix.TLP2_IDS[tlp]]
    ts = "2025-02-21T00:00:00.000Z"
    objs = [
        {"type": "identity", "spec_version": "2.1", "id": PEER, "created": ts, "modified": ts, "name": "Peer CERT",
         "identity_class": "organization"},
        {"type": "identity", "spec_version": "2.1", "id": victim, "created": ts, "modified": ts,
         "name": "Example Exchange", "identity_class": "organization", "created_by_ref": PEER,
         "object_marking_refs": mark},
        {"type": "incident", "spec_version": "2.1", "id": inc, "created": ts, "modified": ts,
         "name": "Example Exchange hot wallet drain", "first_seen": ts, "confidence": 70, "created_by_ref": PEER,
         "object_marking_refs": mark,
         "external_references": [{"source_name": "peer", "url": "https://cert.example/advisories/2025-02"}]},
        {"type": "intrusion-set", "spec_version": "2.1", "id": LAZARUS, "created": ts, "modified": ts,
         "name": "Lazarus Group"},
        {"type": "cryptocurrency-wallet", "spec_version": "2.1", "id": stix.wallet_id(addr), "value": addr},
        {"type": "indicator", "spec_version": "2.1", "id": ind, "created": ts, "modified": ts,
         "name": "Example Exchange hot wallet drain: drainer", "pattern": f"[cryptocurrency-wallet:value = '{addr}']",
         "pattern_type": "stix", "valid_from": ts, "created_by_ref": PEER, "object_marking_refs": mark},
    ]
    for kind, src, dst in (("targets", inc, victim), ("attributed-to", inc, LAZARUS), ("related-to", ind, inc),
                           ("based-on", ind, stix.wallet_id(addr))):
        objs.append({"type": "relationship", "spec_version": "2.1", "id": stix.sdo_id("relationship", kind, src, dst),
                     "created": ts, "modified": ts, "relationship_type": kind, "source_ref": src, "target_ref": dst,
                     "created_by_ref": PEER, "object_marking_refs": mark})
    return {"type": "bundle", "id": "bundle--5c4b3a29-1807-4f6e-9d5c-4b3a29180706", "objects": objs}


def test_foreign_incident_gets_an_id_victim_actor_seed_and_keeps_its_stix_ids(tmp_path):
    ws = institution(tmp_path / "b")
    p = tmp_path / "peer.json"
    p.write_text(json.dumps(_peer_bundle()))
    r = share.import_file(ws, p)
    assert r["incidents"] == 1 and r["seeds"] == 1 and r["producer"] == "Peer CERT"
    iid = "stix-7d1f0c2e-5b7a-4c1e-9f4e-2a6b8c0d1e2f"
    inc = next(i for i in all_incidents(ws)[0] if i["incident_id"] == iid)
    assert inc["victim"] == "Example Exchange" and inc["date"] == "2025-02-21" and inc["actor"] == "lazarusgroup"
    assert inc["tlp"] == "green" and inc["confidence"] == 70 and inc["producer"] == "Peer CERT"
    assert inc["sources"] == ["https://cert.example/advisories/2025-02"] and "synthesised" in inc["notes"]
    assert any(i["incident_id"] == iid for i in timeline(ws, actor="lazarus")["incidents"])
    # exported again (shareable: GREEN): the peer's incident, victim and producer ids, its marking
    b, _ = share.build_bundle(ws, incident=iid, producer="Bank B")
    validate(b)
    (o,) = by_type(b, "incident")
    assert o["id"] == "incident--7d1f0c2e-5b7a-4c1e-9f4e-2a6b8c0d1e2f" and o["created_by_ref"] == PEER
    assert o["object_marking_refs"] == [stix.TLP2_IDS["green"]] and o["confidence"] == 70
    rels = {(x["relationship_type"], x["source_ref"], x["target_ref"]) for x in by_type(b, "relationship")}
    assert ("related-to", o["id"], "identity--3e9a1b7c-2d4f-4a6b-8c0d-1e2f3a4b5c6d") in rels
    assert ("attributed-to", o["id"], LAZARUS) in rels
    seed = [x for x in by_type(b, "indicator") if "0x8589427373D6D84E98730D7795D8f6f8731FDA16" in x["pattern"]]
    assert seed and seed[0]["object_marking_refs"] == [stix.TLP2_IDS["green"]]


def test_red_incident_never_leaves(tmp_path):
    ws = institution(tmp_path / "b")
    p = tmp_path / "red.json"
    p.write_text(json.dumps(_peer_bundle("red")))
    assert share.import_file(ws, p)["incidents"] == 1
    iid = "stix-7d1f0c2e-5b7a-4c1e-9f4e-2a6b8c0d1e2f"
    assert any(i["incident_id"] == iid for i in all_incidents(ws)[0])  # known at home
    b, summary = share.build_bundle(ws, include_restricted=True)
    assert summary["held_back"]["TLP:RED incident"] == 1
    assert not any(o["type"] == "incident" and o["id"].endswith("7d1f0c2e-5b7a-4c1e-9f4e-2a6b8c0d1e2f")
                   for o in b["objects"])
    with pytest.raises(UserError, match="RED never leaves"):
        share.build_bundle(ws, incident=iid, include_restricted=True)
