"""MISP galaxy clusters (threat actors): names, synonyms, country, references, relations.

Format: the misp-galaxy ``clusters/*.json`` files: ``{"type", "name", "uuid", "version", "values": [{"value",
"uuid", "description", "meta": {"synonyms", "country", "refs", ...}, "related": [{"dest-uuid", "type"}]}]}``.
Each cluster becomes an actor whose id is its name in GraphSense form (lower-case letters and digits:
"Lazarus Group" -> ``lazarusgroup``), so GraphSense ActorPacks and MISP agree on ids. Relations to
clusters of the same file are kept with their type (similar, part-of, linked-to...).
"""
from __future__ import annotations

from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel.files import read_json
from chaintrace.intel.model import Actor, Parsed, Reject
from chaintrace.intel.registry import norm_alias


def parse_galaxy(path: str | Path) -> Parsed:
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("values"), list):
        raise UserError(f"{path}: not a MISP galaxy cluster file (expected an object with a 'values' list)")
    out = Parsed(kind="misp-galaxy", path=str(path))
    out.meta = {"title": f"MISP galaxy {data.get('name') or data.get('type')} v{data.get('version')}",
                "creator": ", ".join(data.get("authors") or []) or data.get("source"),
                "description": f"type={data.get('type')} uuid={data.get('uuid')}"}
    ids: dict[str, str] = {}
    for v in data["values"]:
        if isinstance(v, dict) and v.get("uuid") and v.get("value"):
            ids[v["uuid"]] = norm_alias(v["value"])
    seen = set()
    for i, v in enumerate(data["values"]):
        if not isinstance(v, dict) or not v.get("value"):
            out.rejects.append(Reject(str(path), None, None, None, f"values[{i}]: cluster without a value"))
            continue
        aid = norm_alias(v["value"])
        if not aid:
            out.rejects.append(Reject(str(path), None, None, None, f"values[{i}]: name {v['value']!r} has no letters"))
            continue
        if aid in seen:
            out.duplicates += 1
            continue
        seen.add(aid)
        meta = v.get("meta") or {}
        syn = meta.get("synonyms") or []
        refs = meta.get("refs") or []
        country = meta.get("country")
        related = [(ids[r["dest-uuid"]], str(r.get("type") or "related")) for r in v.get("related") or []
                   if isinstance(r, dict) and r.get("dest-uuid") in ids and ids[r["dest-uuid"]] != aid]
        out.actors.append(Actor(id=aid, name=str(v["value"]), aliases=[str(s) for s in syn if s],
                                country=str(country).upper() if isinstance(country, str) else None,
                                references=[str(r) for r in refs if r], related=related,
                                source_ref=v.get("uuid"), categories=["threat_actor"]))
    return out
