"""STIX 2.1 objects as plain dicts: fixed ids (TLP markings, MITRE ATT&CK intrusion sets, extension
definitions) and deterministic ids, so the same fact exported twice is the same object.

Objects are built directly as JSON-ready dicts (no ``stix2`` library objects: building 100,000 indicators
that way takes minutes; see ``bench/bench_share.py``). Every bundle this module builds passes the OASIS
``stix2-validator`` (version 2.1).

Conventions (see ``../shared/docs/intel-formats.md``):

* addresses are the OpenCTI ``cryptocurrency-wallet`` SCO (``value``; id = UUIDv5 over ``{"value": ...}`` in
  the STIX SCO namespace) plus our property extension ``{chain, symbol}``, and an ``indicator`` with the
  pattern ``[cryptocurrency-wallet:value = '...']``;
* transactions are ``cryptocurrency-transaction`` in the muchdogesec shape (``symbol``, ``value`` = hash);
* TLP markings are the OASIS TLP 2.0 marking-definitions (fixed ids); TLP 1.0, misp-stix and OpenCTI ids are
  accepted on import (:data:`TLP_BY_ID`).
"""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

# STIX 2.1 namespace for deterministic SCO ids (spec 2.9), also OpenCTI's.
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
# chaintrace's namespace for SDO/SRO ids derived from facts (uuid5 of "type|fact key").
CHAINTRACE_NAMESPACE = uuid.UUID("5b0c3a52-1e55-5c8a-9d0e-7c3f2b1a0e11")

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
TLP2_IDS = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
TLP1_IDS = {
    "clear": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",  # TLP:WHITE
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
OPENCTI_AMBER_STRICT = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"
# Every marking id we understand -> TLP level (2.0 names: clear, green, amber, amber+strict, red).
TLP_BY_ID = {**{v: k for k, v in TLP2_IDS.items()}, **{v: k for k, v in TLP1_IDS.items()},
             OPENCTI_AMBER_STRICT: "amber+strict"}

OCTI_SCO_EXTENSION = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
TX_EXTENSION = "extension-definition--151d042d-4dcf-5e44-843f-1024440318e5"  # muchdogesec cryptocurrency-transaction
OLD_WALLET_EXTENSIONS = ("extension-definition--be78509e-6958-51b1-8b26-d17ee0eba2d7",
                         "extension-definition--532ae28d-137b-4b89-afb7-9cf9b504191b")

# MITRE ATT&CK groups: stable STIX ids (mitre/cti; mirrored by the MISP mitre-intrusion-set galaxy).
ATTACK_GROUPS = {
    "lazarusgroup": ("G0032", "intrusion-set--c93fccb1-e8e8-42cf-ae33-2ad1d183913a"),
    "apt38": ("G0082", "intrusion-set--00f67a77-86a4-4adf-be26-1a54fc713340"),
    "andariel": ("G0138", "intrusion-set--39d6890e-7f23-4474-b8ef-e7b0343c5fc8"),
    "kimsuky": ("G0094", "intrusion-set--0ec2f388-bf0f-4b5c-97b1-fc736d26c25f"),
    "moonstonesleet": ("G1036", "intrusion-set--e6db1e55-b199-4b6b-8633-989345ee45e0"),
    "apt37": ("G0067", "intrusion-set--4a2ce82e-1a74-468a-a6fb-bbead541383c"),
}

CHAINTRACE_IDENTITY = "identity--" + str(uuid.uuid5(CHAINTRACE_NAMESPACE, "identity|chaintrace"))
EPOCH = "2026-01-01T00:00:00.000Z"  # created/modified of chaintrace's own definitions


_SHA1 = hashlib.sha1


def uuid5(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``, three times faster (RFC 4122 section 4.3: SHA-1, version 5)."""
    h = bytearray(_SHA1(namespace.bytes + name.encode("utf-8")).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def sdo_id(stix_type: str, *key: object) -> str:
    """Deterministic id of an SDO/SRO: UUIDv5 (chaintrace namespace) over the type and the fact's key."""
    return f"{stix_type}--{uuid5(CHAINTRACE_NAMESPACE, '|'.join([stix_type, *map(str, key)]))}"


def sco_id(stix_type: str, contrib: dict) -> str:
    """Deterministic id of an SCO: UUIDv5 (STIX namespace) over the canonical JSON of its id-contributing
    properties (STIX 2.1 section 2.9; what the stix2 library and OpenCTI compute)."""
    canon = json.dumps(contrib, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{stix_type}--{uuid5(SCO_NAMESPACE, canon)}"


_encode_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


def wallet_id(value: str) -> str:
    """The id of ``cryptocurrency-wallet{value}`` (canonical JSON ``{"value":"..."}``)."""
    return "cryptocurrency-wallet--" + uuid5(SCO_NAMESPACE, '{"value":' + _encode_str(value) + "}")


def tx_id(symbol: str, value: str) -> str:
    return sco_id("cryptocurrency-transaction", {"symbol": symbol, "value": value})


WALLET_EXTENSION = sdo_id("extension-definition", "chaintrace-wallet-chain")
INCIDENT_EXTENSION = sdo_id("extension-definition", "chaintrace-incident")
REPORT_EXTENSION = sdo_id("extension-definition", "chaintrace-trace-findings")
RGB_ACTOR = sdo_id("threat-actor", "reconnaissance-general-bureau")
KP_LOCATION = sdo_id("location", "country", "KP")


def ts(date: object | None, default: str = EPOCH) -> str:
    """A STIX timestamp (millisecond precision, UTC 'Z') from an ISO date/datetime string or date."""
    if date is None or date == "":
        return default
    s = date.isoformat() if hasattr(date, "isoformat") else str(date)
    if len(s) == 10:
        return s + "T00:00:00.000Z"
    s = s.replace(" ", "T").replace("+00:00", "")
    s = s.removesuffix("Z")
    if "." in s:
        head, frac = s.split(".", 1)
        return f"{head}.{(frac + '000')[:3]}Z"
    return s + ".000Z"


def marking_definition(level: str) -> dict:
    name = "TLP:" + level.upper()
    return {"type": "marking-definition", "spec_version": "2.1", "id": TLP2_IDS[level],
            "created": "2022-10-01T00:00:00.000Z", "name": name,
            "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}}}


def identity(name: str, *, identity_class: str = "organization", key: str | None = None,
             created: str = EPOCH, sectors: list[str] | None = None, created_by: str | None = None) -> dict:
    o: dict[str, Any] = {"type": "identity", "spec_version": "2.1", "id": sdo_id("identity", key or name.lower()),
         "created": created, "modified": created, "name": name, "identity_class": identity_class}
    if sectors:
        o["sectors"] = sectors
    if created_by:
        o["created_by_ref"] = created_by
    return o


def extension_definitions(producer: str) -> list[dict]:
    """The extension-definitions chaintrace's objects use (ours, and the community ones we follow)."""
    base = {"type": "extension-definition", "spec_version": "2.1", "created_by_ref": producer,
            "created": EPOCH, "modified": EPOCH, "version": "1.0.0"}
    return [
        {**base, "id": WALLET_EXTENSION, "name": "chaintrace cryptocurrency-wallet chain",
         "description": "Property extension on cryptocurrency-wallet: the chain (btc, eth, trx...) and ticker "
                        "the address belongs to (one address can exist on several EVM chains).",
         "schema": "https://chaintrace.invalid/schemas/cryptocurrency-wallet-chain.json",
         "extension_types": ["property-extension"]},
        {**base, "id": INCIDENT_EXTENSION, "name": "chaintrace incident facts",
         "description": "Property extension on incident: date, kind, stolen amount (exact decimal strings), "
                        "attribution and the sources that state them.",
         "schema": "https://chaintrace.invalid/schemas/incident-facts.json",
         "extension_types": ["property-extension"]},
        {**base, "id": REPORT_EXTENSION, "name": "chaintrace trace findings",
         "description": "Property extension on report: the cash-out addresses a trace found, with amounts in "
                        "integer base units (strings) and the transaction path that carried the value.",
         "schema": "https://chaintrace.invalid/schemas/trace-findings.json",
         "extension_types": ["property-extension"]},
        {**base, "id": TX_EXTENSION, "name": "cryptocurrency-transaction",
         "description": "New SCO for a cryptocurrency transaction (muchdogesec/stix2extensions shape).",
         "schema": "https://raw.githubusercontent.com/muchdogesec/stix2extensions/main/schemas/sco/"
                   "cryptocurrency-transaction.json",
         "extension_types": ["new-sco"]},
    ]


def relationship(rel: str, source: str, target: str, *, producer: str, markings: list[str],
                 created: str = EPOCH, description: str | None = None) -> dict:
    o: dict[str, Any] = {"type": "relationship", "spec_version": "2.1", "id": sdo_id("relationship", rel, source, target),
         "created": created, "modified": created, "relationship_type": rel, "source_ref": source,
         "target_ref": target, "created_by_ref": producer, "object_marking_refs": markings}
    if description:
        o["description"] = description
    return o


def wallet(value: str, chain: str, symbol: str | None, *, markings: list[str], producer: str,
           labels: list[str] | None = None, description: str | None = None) -> dict:
    o: dict[str, Any] = {"type": "cryptocurrency-wallet", "spec_version": "2.1", "id": wallet_id(value), "value": value,
         "object_marking_refs": markings,
         "extensions": {OCTI_SCO_EXTENSION: {"extension_type": "new-sco"},
                        WALLET_EXTENSION: {"extension_type": "property-extension", "chain": chain,
                                           "symbol": (symbol or chain).upper()}}}
    if labels:
        o["labels"] = labels
    if description:
        o["description"] = description
    return o


def pattern_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def indicator(key: tuple, value: str, *, name: str, description: str | None, markings: list[str],
              producer: str, created: str, valid_from: str, valid_until: str | None = None,
              indicator_types: tuple[str, ...] = ("malicious-activity",), confidence: int | None = None,
              labels: list[str] | None = None, external_references: list[dict] | None = None) -> dict:
    o: dict[str, Any] = {"type": "indicator", "spec_version": "2.1", "id": sdo_id("indicator", *key), "created": created,
         "modified": created, "name": name, "indicator_types": list(indicator_types),
         "pattern": f"[cryptocurrency-wallet:value = {pattern_literal(value)}]", "pattern_type": "stix",
         "pattern_version": "2.1", "valid_from": valid_from, "created_by_ref": producer,
         "object_marking_refs": markings}
    if description:
        o["description"] = description
    if valid_until and valid_until > valid_from:
        o["valid_until"] = valid_until
    if confidence is not None:
        o["confidence"] = int(confidence)
    if labels:
        o["labels"] = labels
    if external_references:
        o["external_references"] = external_references
    return o


def transaction(symbol: str, value: str, *, markings: list[str]) -> dict:
    return {"type": "cryptocurrency-transaction", "spec_version": "2.1", "id": tx_id(symbol.upper(), value),
            "symbol": symbol.upper(), "value": value, "object_marking_refs": markings,
            "extensions": {TX_EXTENSION: {"extension_type": "new-sco"}}}


def bundle(objects: list[dict], key: str) -> dict:
    """A bundle whose id is derived from `key` (e.g. the digest of its objects' ids and versions)."""
    return {"type": "bundle", "id": "bundle--" + uuid5(CHAINTRACE_NAMESPACE, "bundle|" + key),
            "objects": objects}
