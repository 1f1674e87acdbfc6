"""Import of STIX 2.1 bundles (ours, OpenCTI exports, TAXII envelopes) into the registry, with provenance.

Addresses come from ``cryptocurrency-wallet`` SCOs (``value``, or the older ``address``; also OpenCTI's
``x-opencti-cryptocurrency-wallet``) and from indicators whose pattern compares ``cryptocurrency-wallet``
values. ``incident`` objects become registry incidents (:mod:`chaintrace.share.stix_incidents`). Each address
becomes a registry tag carrying who produced it (the ``created_by_ref`` identity), its TLP
level (TLP 2.0, TLP 1.0, misp-stix and OpenCTI marking ids all understood) and its confidence; the STIX
ids travel in the tag's context so a re-export gives the same objects (round trip).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel.model import Actor, Reject
from chaintrace.model.tags import CATEGORIES, Tag
from chaintrace.share import source, stix

WALLET_TYPES = ("cryptocurrency-wallet", "x-opencti-cryptocurrency-wallet")
_PATTERN_EQ = re.compile(r"(?:x-opencti-)?cryptocurrency-wallet:(?:value|address)\s*=\s*'((?:[^'\\]|\\.)*)'")
_PATTERN_IN = re.compile(r"(?:x-opencti-)?cryptocurrency-wallet:(?:value|address)\s+IN\s*\(([^)]*)\)")
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")


def load_objects(data: bytes, where: str) -> tuple[list[dict], str | None]:
    """The objects of a bundle, a TAXII envelope or a list of objects; UserError naming the file and offset."""
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: not JSON ({e.msg} at line {e.lineno}, column {e.colno}, offset {e.pos})") \
            from None
    if isinstance(doc, list):
        return doc, None
    if isinstance(doc, dict) and isinstance(doc.get("objects"), list):
        return doc["objects"], doc.get("id")
    if isinstance(doc, dict) and doc.get("type") and doc.get("id"):
        return [doc], None
    raise UserError(f"{where}: not a STIX bundle (expected an object with 'objects': [...])")


def tlp_of(obj: dict, markings: dict[str, str]) -> str | None:
    levels = [markings[m] for m in obj.get("object_marking_refs") or () if m in markings]
    return max(levels, key=lambda lv: source.TLP_RANK[lv]) if levels else None


def _marking_levels(objects: list[dict]) -> dict[str, str]:
    out = dict(stix.TLP_BY_ID)
    for o in objects:
        if o.get("type") != "marking-definition":
            continue
        lv = None
        ext = (o.get("extensions") or {}).get(stix.TLP2_EXTENSION)
        if ext:
            lv = source.norm_tlp(ext.get("tlp_2_0"))
        elif o.get("definition_type") == "tlp":
            lv = source.norm_tlp((o.get("definition") or {}).get("tlp"))
        elif o.get("name", "").upper().startswith("TLP:"):
            lv = source.norm_tlp(o["name"])
        if lv:
            out[o["id"]] = lv
    return out


def _pattern_values(pattern: str) -> list[str]:
    vals = [m.group(1) for m in _PATTERN_EQ.finditer(pattern)]
    for m in _PATTERN_IN.finditer(pattern):
        vals += [x.group(1) for x in _LITERAL.finditer(m.group(1))]
    return [v.replace("\\'", "'").replace("\\\\", "\\") for v in vals]


def _day(value: str | None) -> str | None:
    return value[:10] if value else None


def parse_bundle(data: bytes, where: str, ws=None) -> source.Parsed:
    objects, bundle_id = load_objects(data, where)
    by_id = {o.get("id"): o for o in objects if isinstance(o, dict)}
    markings = _marking_levels(objects)
    names = {o["id"]: o.get("name") for o in objects if o.get("type") == "identity"}
    based_on: dict[str, list[str]] = {}
    indicates: dict[str, list[str]] = {}
    for o in objects:
        if o.get("type") == "relationship":
            if o.get("relationship_type") == "based-on":
                based_on.setdefault(str(o.get("source_ref")), []).append(str(o.get("target_ref")))
            elif o.get("relationship_type") == "indicates":
                indicates.setdefault(str(o.get("source_ref")), []).append(str(o.get("target_ref")))
    actors: list[Actor] = []
    actor_of: dict[str, str] = {}
    targets = {t for ts in indicates.values() for t in ts}
    for o in objects:
        if o.get("type") == "intrusion-set" or (o.get("type") == "threat-actor" and o.get("id") in targets):
            if not o.get("name"):
                continue
            ext = [r.get("external_id") for r in o.get("external_references") or ()
                   if r.get("source_name") == "chaintrace-actor"]
            aid = ext[0] if ext else (source.resolve_actor(ws, o["name"]) or source.norm_alias(o["name"]))
            actor_of[o["id"]] = aid
            if not ext:
                actors.append(Actor(id=aid, name=o["name"], aliases=list(o.get("aliases") or []),
                                    source_ref=o["id"],
                                    references=[r["url"] for r in o.get("external_references") or () if r.get("url")]))
    tags: list[Tag] = []
    rejects: list[Reject] = []
    seen: set[tuple] = set()
    covered: set[str] = set()
    producers: set[str] = set()

    def add(value: str, chain_hint: str | None, *, label: str, o: dict, wallet_sid: str | None,
            indicator_sid: str | None, extra_labels=()):
        chain = chain_hint or source.chain_of(None, value)
        if chain is None:
            rejects.append(Reject(where, None, value, None, f"{o['id']}: cannot tell the chain of this address"))
            return
        err = source.address_error(chain, value)
        if err:
            rejects.append(Reject(where, None, value, chain, f"{o['id']}: {err}"))
            return
        key = (chain, source.addr_key(chain, value), indicator_sid or wallet_sid)
        if key in seen:
            return
        seen.add(key)
        tlp = tlp_of(o, markings)
        prod = o.get("created_by_ref")
        if prod:
            producers.add(names.get(prod) or prod)
        labels = [x for x in list(o.get("labels") or []) + list(extra_labels) if x in CATEGORIES]
        actor = next((actor_of[t] for t in indicates.get(o["id"], ()) if t in actor_of), None)
        ctx = {"chaintrace_share": {k: v for k, v in (
            ("indicator", indicator_sid), ("wallet", wallet_sid or stix.wallet_id(value)), ("producer", prod),
            ("producer_name", names.get(prod)), ("bundle", bundle_id), ("markings", o.get("object_marking_refs")))
            if v}}
        conf = o.get("confidence", o.get("x_opencti_score", o.get("score")))
        tags.append(Tag(chain=chain, address=value, label=label, category=labels[0] if labels else None,
                        actor=actor, source=f"{names.get(prod) or prod or 'unknown producer'} (STIX)",
                        confidence=int(conf) if isinstance(conf, (int, float)) else None, tlp=tlp,
                        is_public=tlp in (None, "clear"), valid_from=_day(o.get("valid_from")),
                        valid_to=_day(o.get("valid_until")), lastmod=_day(o.get("modified")),
                        abuse=labels[1] if len(labels) > 1 else None,
                        extra={"context": source.context_json(ctx)}))

    for o in objects:
        if o.get("type") != "indicator" or "cryptocurrency-wallet" not in str(o.get("pattern", "")):
            continue
        wallets = [by_id[w] for w in based_on.get(o["id"], ()) if w in by_id and by_id[w].get("type") in WALLET_TYPES]
        for value in _pattern_values(o["pattern"]):
            w = next((x for x in wallets if (x.get("value") or x.get("address")) == value), None)
            hint = ((w or {}).get("extensions") or {}).get(stix.WALLET_EXTENSION, {}).get("chain")
            add(value, hint, label=o.get("name") or "shared indicator", o=o, wallet_sid=w["id"] if w else None,
                indicator_sid=o["id"], extra_labels=(w or {}).get("labels") or ())
            if w:
                covered.add(w["id"])
    for o in objects:
        if o.get("type") in WALLET_TYPES and o["id"] not in covered:
            wvalue = o.get("value") or o.get("address")
            if not wvalue:
                rejects.append(Reject(where, None, None, None, f"{o['id']}: wallet without value"))
                continue
            hint = (o.get("extensions") or {}).get(stix.WALLET_EXTENSION, {}).get("chain")
            add(str(wvalue), hint, label=o.get("description") or ", ".join(o.get("labels") or []) or "shared address",
                o=o, wallet_sid=o["id"], indicator_sid=None)
    from chaintrace.share.stix_incidents import parse_incidents

    incidents, seeds = parse_incidents(objects, where=where, bundle_id=bundle_id, markings=markings, names=names,
                                       actor_of=actor_of, known_seeds=source.known_seeds(ws), rejects=rejects)
    producers |= {i.producer for i in incidents if i.producer}
    meta = {"title": f"STIX bundle {bundle_id or Path(where).name}", "creator": "; ".join(sorted(producers)) or None,
            "description": f"{len(objects)} STIX objects"}
    return source.make_parsed("stix", where, tags, actors, meta, rejects, incidents=incidents, seeds=seeds)
