"""TLP 2.0 rules, object by object (chaintrace.share.tlp): what may be stored, served, pushed, and hidden."""
from __future__ import annotations

import pytest

from chaintrace.share import stix, tlp
from chaintrace.share.taxii_client import pushable
from chaintrace.share.tlp import Collection

BANK_A, BANK_B = "bank-a", "bank-b"
SHARED = Collection(id="c1", title="ISAC", readers=frozenset({BANK_A, BANK_B}), writers=frozenset({BANK_A, BANK_B}),
                    max_tlp="green")
SHARED_AMBER = Collection(id="c2", title="ISAC amber", readers=frozenset({BANK_A, BANK_B}),
                          writers=frozenset({BANK_A}), max_tlp="amber")
INTERNAL = Collection(id="c3", title="Bank A only", readers=frozenset({BANK_A}), writers=frozenset({BANK_A}),
                      max_tlp="red")
EVERYONE = Collection(id="c4", title="all key holders", readers=frozenset({tlp.ANY}), max_tlp="green")


@pytest.mark.parametrize("level,collection,reader,allowed", [
    ("clear", SHARED, BANK_B, True),
    ("green", SHARED, BANK_B, True),
    ("green", EVERYONE, "bank-z", True),
    ("amber", SHARED, BANK_B, False),          # collection's members not permitted AMBER
    ("amber", SHARED_AMBER, BANK_B, True),     # declared: members permitted AMBER
    ("amber+strict", SHARED_AMBER, BANK_B, False),
    ("amber+strict", SHARED_AMBER, BANK_A, False),  # other members in the collection
    ("amber+strict", INTERNAL, BANK_A, True),
    ("red", SHARED, BANK_B, False),
    ("red", SHARED_AMBER, BANK_A, False),      # even to its own org, not from a shared collection
    ("red", INTERNAL, BANK_A, True),
    ("red", INTERNAL, BANK_B, False),
    ("clear", INTERNAL, BANK_B, False),        # not a reader at all
    (None, SHARED, BANK_B, True),              # unmarked = CLEAR
])
def test_may_serve(level, collection, reader, allowed):
    d = tlp.may_serve(level, BANK_A, collection, reader)
    assert d.allowed is allowed, d.reason
    if not allowed:
        assert d.reason


@pytest.mark.parametrize("level,collection,writer,allowed", [
    ("green", SHARED, BANK_B, True),
    ("amber", SHARED, BANK_B, False),
    ("amber", SHARED_AMBER, BANK_A, True),
    ("red", SHARED_AMBER, BANK_A, False),
    ("red", INTERNAL, BANK_A, True),
    ("amber+strict", INTERNAL, BANK_A, True),
    ("red", INTERNAL, BANK_B, False),  # B's RED would be readable by A only
])
def test_may_store(level, collection, writer, allowed):
    assert tlp.may_store(level, writer, collection).allowed is allowed


def test_push_never_sends_red_or_amber_strict():
    objs = [{"type": "indicator", "id": f"indicator--{i}", "object_marking_refs": [stix.TLP2_IDS[lv]]}
            for i, lv in enumerate(stix.TLP_LEVELS)]
    objs.append({"type": "indicator", "id": "indicator--tlp1-red", "object_marking_refs": [stix.TLP1_IDS["red"]]})
    ok, held = pushable(objs, "green")
    assert [o["id"] for o in ok] == ["indicator--0", "indicator--1"]
    assert sum(held.values()) == 4
    ok, _ = pushable(objs, "amber")
    assert [o["id"] for o in ok] == ["indicator--0", "indicator--1", "indicator--2"]
    ok, _ = pushable(objs, "red")  # asking for more does not let RED leave
    assert "indicator--4" not in {o["id"] for o in ok} and "indicator--tlp1-red" not in {o["id"] for o in ok}


def test_hidden_properties_removed_at_any_depth_but_never_ids_or_values():
    report = {"type": "report", "id": "report--1", "description": "case notes", "created": "x",
              "extensions": {"ext": {"cash_outs": [{"address": "0xab", "amount": "70", "label": "Binance"}],
                                     "totals": {"ETH": {"seeded": "100"}}}}}
    out = tlp.redact(report, tlp.hidden_names({"amounts"}))
    assert out["extensions"]["ext"]["cash_outs"] == [{"address": "0xab", "label": "Binance"}]
    assert "totals" not in out["extensions"]["ext"] and out["description"] == "case notes"
    out = tlp.redact(report, tlp.hidden_names({"notes", "value", "id"}))
    assert "description" not in out and out["id"] == "report--1"
    wallet = {"type": "cryptocurrency-wallet", "id": "w", "value": "0xab"}
    assert tlp.redact(wallet, tlp.hidden_names({"value"})) == wallet
    assert report["description"] == "case notes"  # the stored object is untouched


def test_tlp_of_reads_every_marking_id_family():
    assert tlp.tlp_of({"object_marking_refs": [stix.TLP1_IDS["clear"]]}) == "clear"
    assert tlp.tlp_of({"object_marking_refs": [stix.OPENCTI_AMBER_STRICT]}) == "amber+strict"
    assert tlp.tlp_of({"object_marking_refs": [stix.TLP2_IDS["green"], stix.TLP1_IDS["red"]]}) == "red"
    assert tlp.tlp_of({}) is None
