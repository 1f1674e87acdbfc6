"""STIX 2.1 export/import of the registry: every bundle passes the OASIS stix2-validator; ids are
deterministic; STIX -> registry -> STIX keeps ids and markings; TLP:RED stays home; signatures."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chaintrace import intel, share
from chaintrace.cli import main
from chaintrace.errors import UserError
from chaintrace.share import stix
from chaintrace.trace.report import Seed, Sink, Step, TracePath, TraceReport, check_invariant
from tests.share_fixtures import LAZARUS, RED_PACK, RONIN, add_red_tag, institution, by_type, load, ofac_workspace, validate


@pytest.fixture(scope="module")
def ofac_ws_shared(tmp_path_factory):
    return ofac_workspace(institution(tmp_path_factory.mktemp("ofac")))


@pytest.fixture
def ofac_ws(ofac_ws_shared):
    return ofac_ws_shared


def test_registry_bundle_is_valid_stix_with_fixed_ids(ofac_ws, tmp_path):
    r = share.export(ofac_ws, "stix", tmp_path / "a.json")
    b = load(tmp_path / "a.json")
    validate(b, per_type=60)
    assert b["type"] == "bundle" and r["objects"] == len(b["objects"])
    # TLP 2.0 marking definitions with the OASIS fixed ids travel in the bundle
    marks = {o["id"]: o for o in by_type(b, "marking-definition")}
    assert set(marks) == set(stix.TLP2_IDS.values())
    assert marks["marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"]["extensions"][
        stix.TLP2_EXTENSION]["tlp_2_0"] == "amber+strict"
    # Lazarus is MITRE ATT&CK G0032 with its ATT&CK STIX id and the MISP galaxy aliases
    laz = next(o for o in by_type(b, "intrusion-set") if o["id"] == LAZARUS)
    assert laz["name"] == "Lazarus Group"
    assert {"source_name": "mitre-attack", "external_id": "G0032",
            "url": "https://attack.mitre.org/groups/G0032"} in laz["external_references"]
    assert {"Hidden Cobra", "APT38", "Labyrinth Chollima"} <= set(laz["aliases"])
    # the Ronin exploiter: an OpenCTI cryptocurrency-wallet with our chain extension + an indicator
    wid = stix.wallet_id(RONIN)
    w = next(o for o in by_type(b, "cryptocurrency-wallet") if o["value"] == RONIN)
    assert w["id"] == wid and w["extensions"][stix.WALLET_EXTENSION]["chain"] == "eth"
    inds = [o for o in by_type(b, "indicator") if RONIN in o["pattern"]]
    assert any(o["pattern"] == f"[cryptocurrency-wallet:value = '{RONIN}']" and "OFAC" in o["name"] for o in inds)
    rels = {(o["relationship_type"], o["source_ref"], o["target_ref"]) for o in by_type(b, "relationship")}
    sanc = next(o for o in inds if "OFAC" in o["name"])
    assert ("based-on", sanc["id"], wid) in rels and ("indicates", sanc["id"], LAZARUS) in rels
    # 761 OFAC addresses (some on several assets) all exported
    assert len({o["value"] for o in by_type(b, "cryptocurrency-wallet")}) >= 761
    # incidents of the built-in catalogue with victims, attributed to Lazarus
    ronin = next(o for o in by_type(b, "incident") if o["id"] == stix.sdo_id("incident", "ronin-2022"))
    assert ("attributed-to", ronin["id"], LAZARUS) in rels
    assert ronin["extensions"][stix.INCIDENT_EXTENSION]["amount_usd"].startswith("6")
    # every object but markings/extension-definitions/producer is marked; default CLEAR
    for o in b["objects"]:
        if o["type"] not in ("marking-definition", "extension-definition"):
            assert o["object_marking_refs"], o["id"]


def test_same_fact_exported_twice_is_the_same_object(ofac_ws, tmp_path):
    share.export(ofac_ws, "stix", tmp_path / "a.json")
    share.export(ofac_ws, "stix", tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    # an incident's objects are the same objects as in the full export
    share.export(ofac_ws, "stix", tmp_path / "c.json", incident="ronin-2022")
    full = {o["id"]: o for o in load(tmp_path / "a.json")["objects"]}
    one = load(tmp_path / "c.json")
    validate(one)
    for o in one["objects"]:
        if o["type"] in ("incident", "indicator", "intrusion-set"):
            assert full[o["id"]] == o
    assert {o["type"] for o in one["objects"]} >= {"incident", "identity", "indicator", "cryptocurrency-wallet"}
    assert len(by_type(one, "incident")) == 1


def test_tlp_floor_and_wallet_ids_match_the_stix2_library(ofac_ws, tmp_path):
    import stix2

    b, _ = share.build_bundle(ofac_ws, tlp="amber", incident="ronin-2022")
    validate(b)
    amber = stix.TLP2_IDS["amber"]
    assert all(o["object_marking_refs"] == [amber] for o in by_type(b, "indicator"))

    @stix2.CustomObservable("cryptocurrency-wallet", [("value", stix2.properties.StringProperty(required=True))],
                            id_contrib_props=["value"])
    class Wallet:
        pass

    assert Wallet(value=RONIN).id == stix.wallet_id(RONIN)
    with pytest.raises(UserError, match="not a TLP level"):
        share.build_bundle(ofac_ws, tlp="purple")


def _trace_report() -> TraceReport:
    steps = [Step(hop=1, txid="0x" + "ab" * 32, ref="0x" + "ab" * 32 + ":0", address=RONIN, amount=70, value=70,
                  time=1648000000)]
    sinks = [Sink(address="0x28c6c06298d514db089934071355e5743bf21d60", label="Binance 14", category="exchange",
                  actor=None, amount=70, asset="ETH", hops=2, txid="0x" + "cd" * 32, time=1648100000,
                  ref="0x" + "cd" * 32 + ":1", value=100),
             Sink(address="0xd90e2f925da726b50c4ed8d0fb90ad053324f31b", label="Tornado Cash", category="mixing_service",
                  actor=None, amount=25, asset="ETH", hops=3, txid="0x" + "ef" * 32, time=1648200000,
                  ref="0x" + "ef" * 32 + ":2", value=25)]
    rep = TraceReport(chain="eth", network="mainnet", policy={"name": "haircut", "params": {}}, limits={},
                      seeds=[Seed(spec=RONIN, kind="address", amount=100, asset="ETH", outputs=1, nominal=100)],
                      assets={"ETH": {"decimals": 18}}, total_seeded={"ETH": 100}, sinks=sinks, holdings=[],
                      stopped=[], fees={"ETH": 5}, stats={},
                      paths=[TracePath(to=sinks[0].address, kind="sink", amount=70, asset="ETH", steps=steps)])
    check_invariant(rep)
    return rep


def test_trace_findings_become_a_report_with_exact_amounts(ofac_ws, tmp_path):
    rep = _trace_report()
    path = rep.write_json(tmp_path / "trace.json")
    b, _ = share.build_bundle(ofac_ws, trace=path)
    validate(b)
    (report,) = by_type(b, "report")
    ext = report["extensions"][stix.REPORT_EXTENSION]
    assert [c["amount"] for c in ext["cash_outs"]] == ["70", "25"]
    # value conserved: cash-outs + fees == seeded, in base units
    assert sum(int(c["amount"]) for c in ext["cash_outs"]) + int(ext["totals"]["ETH"]["fees"]) == \
        int(ext["totals"]["ETH"]["seeded"]) == 100
    assert ext["paths"][0]["steps"][0]["txid"] == "0x" + "ab" * 32
    # grouped: the Ronin incident (the seed is one of its addresses) and the cash-out wallets
    assert stix.sdo_id("incident", "ronin-2022") in report["object_refs"]
    assert stix.wallet_id("0x28c6c06298d514db089934071355e5743bf21d60") in report["object_refs"]
    refs = {o["id"] for o in b["objects"]}
    assert set(report["object_refs"]) <= refs


def test_round_trip_keeps_ids_and_markings(ofac_ws, tmp_path):
    share.export(ofac_ws, "stix", tmp_path / "a.json", tlp="green")
    a = load(tmp_path / "a.json")
    peer = institution(tmp_path / "peer")
    r = share.import_file(peer, tmp_path / "a.json")
    assert r["tags"] > 761 and r["rejected"] == 0 and r["producer"] == "chaintrace"
    assert share.import_file(peer, tmp_path / "a.json")["skipped_as"] == r["import_id"]  # idempotent
    b, _ = share.build_bundle(peer)
    validate(b, per_type=30)
    keep = ("indicator", "cryptocurrency-wallet")
    before = {o["id"]: o["object_marking_refs"] for o in a["objects"] if o["type"] in keep}
    after = {o["id"]: o["object_marking_refs"] for o in b["objects"] if o["type"] in keep}
    assert before == after
    # provenance: the peer's registry says who produced the address, under which TLP
    hit = intel.lookup(peer, [RONIN])[0]
    assert hit["known"]
    t = next(t for t in hit["tags"] if "OFAC" in t["label"])
    assert t["source"] == "chaintrace (STIX)" and t["tlp"] == "green" and t["actor"] == "lazarusgroup"
    assert t["confidence"] == 60


def test_import_opencti_style_bundle_with_tlp1_and_old_address_field(ws, tmp_path):
    ident = {"type": "identity", "spec_version": "2.1", "id": "identity--0c7f7b0a-3d3b-4a53-9e5e-bb5c3f0a0a01",
             "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": "Peer CERT",
             "identity_class": "organization"}
    opencti_amber_strict = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"
    objs = [ident,
            {"type": "cryptocurrency-wallet", "spec_version": "2.1", "id": stix.wallet_id("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
             "value": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "x_opencti_score": 80,
             "created_by_ref": ident["id"], "object_marking_refs": [stix.TLP1_IDS["amber"]],
             "labels": ["ransomware"]},
            {"type": "cryptocurrency-wallet", "spec_version": "2.1", "id": "cryptocurrency-wallet--5e0b8e6c-4f3a-5b8f-9d6c-1a2b3c4d5e6f",
             "address": "0x098B716B8Aaf21512996dC57EB0615e2383E2f96", "created_by_ref": ident["id"],
             "object_marking_refs": [opencti_amber_strict]},
            {"type": "cryptocurrency-wallet", "spec_version": "2.1", "id": stix.wallet_id("0xdeadbeef"),
             "value": "0xdeadbeef"}]
    p = tmp_path / "opencti.json"
    p.write_text(json.dumps({"type": "bundle", "id": "bundle--1b2c3d4e-0000-4000-8000-000000000001",
                             "objects": objs}))
    r = share.import_file(ws, p)
    assert r["tags"] == 2 and r["rejected"] == 1 and r["producer"] == "Peer CERT"
    btc = intel.lookup(ws, ["bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"])[0]["tags"][0]
    assert btc["tlp"] == "amber" and btc["confidence"] == 80 and btc["category"] == "ransomware"
    eth = intel.lookup(ws, [RONIN])[0]["tags"][0]
    assert eth["tlp"] == "amber+strict" and eth["source"] == "Peer CERT (STIX)"
    # AMBER and AMBER+STRICT are not in the shareable registry; on request they are, with their marking and
    # their producer kept
    b, summary = share.build_bundle(ws)
    assert summary["held_back"] == {"TLP:AMBER": 1, "TLP:AMBER+STRICT": 1}
    b, _ = share.build_bundle(ws, include_restricted=True)
    ind = [o for o in by_type(b, "indicator") if RONIN in o["pattern"] and o["created_by_ref"] == ident["id"]]
    assert ind and ind[0]["object_marking_refs"] == [stix.TLP2_IDS["amber+strict"]]


def test_red_and_private_intel_is_held_back(ws, tmp_path):
    red = add_red_tag(ws, tmp_path)
    lic = tmp_path / "vendor.yaml"
    lic.write_text(RED_PACK.replace("0x1111111111111111111111111111111111111111",
                                    "0x7777777777777777777777777777777777777777"))
    intel.import_paths(ws, "tagpack", [lic], licence="vendor terms: no redistribution", restricted=True)
    b, summary = share.build_bundle(ws)
    assert summary["held_back"] == {"TLP:RED": 1, "licence forbids redistribution (vendor terms: no redistribution)": 1}
    assert not any(o.get("value") == "0x7777777777777777777777777777777777777777" for o in b["objects"])
    assert not any(red in o.get("pattern", "") or o.get("value") == red for o in b["objects"])
    b2, _ = share.build_bundle(ws, include_restricted=True)
    assert not any(o.get("value") == red for o in b2["objects"])  # RED never, even with --include-restricted


def test_bad_input_names_the_file_and_offset(ws, tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"type": "bundle", "objects": [\n{"id": }]}')
    with pytest.raises(UserError, match=r"broken.json: not JSON .*line 2, column 8"):
        share.import_file(ws, p)
    q = tmp_path / "other.json"
    q.write_text('{"hello": 1}')
    with pytest.raises(UserError, match="not a STIX bundle"):
        share.import_file(ws, q)


def test_signed_export_verify_and_refused_import(ofac_ws, tmp_path):
    runner = CliRunner()
    key = tmp_path / "me.key"
    res = runner.invoke(main, ["share", "keygen", str(key)])
    assert res.exit_code == 0, res.output
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    out = tmp_path / "signed.json"
    res = runner.invoke(main, ["--data", str(ofac_ws.path), "share", "export", "--incident", "ronin-2022",
                               "--out", str(out), "--sign", str(key)])
    assert res.exit_code == 0, res.output
    assert "signed:" in res.output
    res = runner.invoke(main, ["share", "verify", str(out), "--key", str(key) + ".pub", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.output)["valid"] is True
    other = tmp_path / "other.key"
    share.keygen(other)
    res = runner.invoke(main, ["share", "verify", str(out), "--key", str(other) + ".pub"])
    assert res.exit_code == 1 and "not by the trusted key" in res.output
    peer = institution(tmp_path / "peer")
    assert share.import_file(peer, out, verify_key=str(key) + ".pub")["tags"] > 0
    data = out.read_bytes().replace(b"Ronin", b"R0nin", 1)
    out.write_bytes(data)
    res = runner.invoke(main, ["share", "verify", str(out)])
    assert res.exit_code == 1 and "changed after signing" in res.output
    with pytest.raises(UserError, match="refusing to import"):
        share.import_file(institution(tmp_path / "peer2"), out, verify_key=str(key) + ".pub")


def test_screening_hits_become_sightings(ofac_ws, tmp_path):
    res = tmp_path / "screen.json"
    runner = CliRunner()
    out = runner.invoke(main, ["--data", str(ofac_ws.path), "screen", "address", RONIN,
                               "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "--format", "json"])
    assert out.exit_code == 0, out.output
    res.write_text(out.output)
    b, _ = share.build_bundle(ofac_ws, screening=res, producer="Exchange X")
    validate(b)
    (s,) = by_type(b, "sighting")  # the unflagged address is not a sighting
    ind = next(o for o in by_type(b, "indicator") if o["id"] == s["sighting_of_ref"])
    assert RONIN in ind["pattern"] and ind["name"].startswith("Screening hit")
    producer = next(o for o in by_type(b, "identity") if o["name"] == "Exchange X")
    assert s["where_sighted_refs"] == [producer["id"]] and s["count"] == 1


def test_export_format_option_and_tlp_choices(ofac_ws, tmp_path):
    """`share export --format stix|misp|misp-feed|tagpack` (the issue's flag): the file on stdout stays pure
    (the summary goes to stderr); `--as` is a deprecated alias; `--tlp` takes the five TLP 2.0 levels."""
    runner = CliRunner()
    base = ["--data", str(ofac_ws.path), "share", "export", "--incident", "ronin-2022"]
    res = runner.invoke(main, base + ["--format", "misp", "--tlp", "amber+strict"])
    assert res.exit_code == 0, res.output
    event = json.loads(res.stdout)["Event"]
    assert any(t["name"] == "tlp:amber+strict" for t in event["Tag"]) and "wrote stdout (misp)" in res.stderr
    res = runner.invoke(main, base + ["--format", "stix", "--tlp", "RED", "--quiet"])
    assert res.exit_code == 0 and res.stderr == "", res.output
    b = json.loads(res.stdout)
    assert all(stix.TLP2_IDS["red"] in o["object_marking_refs"] for o in by_type(b, "incident"))
    out = tmp_path / "r.misp.json"
    res = runner.invoke(main, base + ["--as", "misp", "--out", str(out), "--summary", "json"])
    assert res.exit_code == 0 and "deprecated" in res.stderr, res.output
    assert res.stdout == "" and json.loads(res.stderr[res.stderr.index("{"):])["format"] == "misp"
    assert json.loads(out.read_text())["Event"]["info"]
    res = runner.invoke(main, base + ["--format", "misp", "--as", "stix"])
    assert res.exit_code == 2 and "contradicts" in res.output
    for bad in (["--format", "json"], ["--tlp", "white"]):
        res = runner.invoke(main, base + bad)
        assert res.exit_code == 2 and "Invalid value" in res.output, res.output
    res = runner.invoke(main, ["share", "export", "--help"])
    assert "--format [stix|misp|misp-feed|tagpack]" in res.output and "amber+strict" in res.output
    assert "--as " not in res.output
