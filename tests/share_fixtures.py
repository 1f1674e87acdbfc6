"""Shared set-up of the sharing tests: a workspace holding the real OFAC SDN address list, a TagPack
with restricted rows, and the stix2-validator check."""
from __future__ import annotations

import json
from pathlib import Path

from chaintrace import intel
from chaintrace.intel.registry import bind
from chaintrace.store.workspace import Workspace
from tests.conftest import dataset

RONIN = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
LAZARUS = "intrusion-set--c93fccb1-e8e8-42cf-ae33-2ad1d183913a"

RED_PACK = """title: Internal case notes (not for sharing)
creator: Bank A FIU
lastmod: 2026-11-01
source: internal case 2026-117
confidence: forensic_investigation
currency: ETH
network: ETH
category: perpetrator
label: suspected mule
tags:
- address: '0x1111111111111111111111111111111111111111'
"""


def institution(path: Path) -> Workspace:
    """A workspace with its own intelligence registry (``path/registry``): another institution, not the
    registry every workspace of this user shares."""
    ws = Workspace(path / "data")
    bind(ws, path / "registry")
    return ws


def ofac_workspace(ws):
    csv = dataset("ofac-sdn", "ofac_sdn_digital_currency_addresses_2025-11-19.csv")
    intel.import_paths(ws, "ofac-sdn", [csv])
    return ws


def add_red_tag(ws, tmp_path: Path) -> str:
    p = tmp_path / "internal.yaml"
    p.write_text(RED_PACK, encoding="utf-8")
    intel.import_paths(ws, "tagpack", [p], tlp="red")
    return "0x1111111111111111111111111111111111111111"


def sample(bundle: dict, per_type: int = 60) -> dict:
    """The bundle with at most `per_type` objects of each type (the validator takes ~25 ms per object;
    every object of a type is built by the same code)."""
    seen: dict[str, int] = {}
    objs = []
    for o in bundle["objects"]:
        seen[o["type"]] = seen.get(o["type"], 0) + 1
        if seen[o["type"]] <= per_type:
            objs.append(o)
    return {**bundle, "objects": objs}


def validate(bundle: dict, per_type: int | None = None):
    """The OASIS stix2-validator (STIX 2.1) result; errors listed in the assertion message."""
    from stix2validator import ValidationOptions, validate_instance

    if per_type is not None:
        bundle = sample(bundle, per_type)
    r = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert r.is_valid, [str(e) for e in r.errors][:10]
    return r


def by_type(bundle: dict, t: str) -> list[dict]:
    return [o for o in bundle["objects"] if o["type"] == t]


def load(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
