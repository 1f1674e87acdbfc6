"""The one seam between sharing and the intelligence registry (:mod:`chaintrace.intel`).

Reading: :func:`facts` gathers what an export may hold (sanctions periods, the incident catalogue and its
seeds, actors, imported tags). Writing: :func:`store_parsed` lands an import (a STIX bundle, a MISP event or
feed) as one versioned registry import. Everything else in :mod:`chaintrace.share` goes through here, so a
change of the registry's API touches one module.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg
from chaintrace.intel.model import Actor, Incident, Parsed, Seed
from chaintrace.model.tags import Tag
from chaintrace.store.workspace import Workspace

TLP_RANK = {"clear": 0, "white": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}


def norm_tlp(value: str | None) -> str | None:
    """'TLP:AMBER', 'amber', 'white' -> the TLP 2.0 level name (clear, green, amber, amber+strict, red)."""
    if value is None or str(value).strip() == "":
        return None
    v = str(value).strip().lower()
    v = v.removeprefix("tlp:")
    v = {"white": "clear", "amber strict": "amber+strict", "amber_strict": "amber+strict"}.get(v, v)
    return v if v in TLP_RANK else None


def shareable(tag: Tag) -> tuple[bool, str]:
    """Whether an imported tag may be exported with no filter, and why not.

    TLP:RED never leaves the organisation. CLEAR and GREEN are shareable; AMBER and AMBER+STRICT only on
    request (``include_restricted``; TAXII collections then apply their own TLP rules). A tag with no TLP
    that is not public (TagPack ``is_public: false``) or whose import recorded a licence that forbids
    redistribution stays home.
    """
    e = tag.extra or {}
    level = norm_tlp(tag.tlp)
    if level == "red":
        return False, "TLP:RED"
    if e.get("redistribution") is False or e.get("restricted") is True:
        return False, "licence forbids redistribution"
    if level in ("amber", "amber+strict"):
        return False, f"TLP:{level.upper()}"
    if level in ("clear", "green"):
        return True, ""
    if not tag.is_public:
        return False, "not public"
    return True, ""


@dataclass
class Facts:
    sanctions: list[Tag] = field(default_factory=list)
    incidents: list[dict] = field(default_factory=list)
    seeds: list[dict] = field(default_factory=list)
    actors: dict[str, dict] = field(default_factory=dict)
    tags: list[Tag] = field(default_factory=list)
    held_back: dict[str, int] = field(default_factory=dict)  # reason -> count of tags not shared
    generation: int | None = None


def facts(ws: Workspace | None, *, include_restricted: bool = False) -> Facts:
    """Everything the registry could share, with the count of imported tags held back (and why)."""
    from chaintrace.intel.actors import all_actors
    from chaintrace.intel.export import export_selection, export_tags
    from chaintrace.intel.incidents import all_incidents

    out = Facts()
    out.sanctions = export_tags(ws, include=("sanctions",))
    inc, seeds, _ = all_incidents(ws)
    for i in inc:  # shared incidents keep their producer's TLP: RED never leaves, AMBER only on request
        level = norm_tlp(i.get("tlp"))
        if level == "red" or (level in ("amber", "amber+strict") and not include_restricted):
            why = f"TLP:{level.upper()} incident"
            out.held_back[why] = out.held_back.get(why, 0) + 1
        else:
            out.incidents.append(i)
    kept = {i["incident_id"] for i in out.incidents}
    out.seeds = [s for s in seeds if s["incident_id"] in kept]
    out.actors = all_actors(ws)
    sel = export_selection(ws, include=("tags",), include_restricted=include_restricted)
    for lo in sel["left_out"]:  # the registry's licence rule: the import's terms forbid redistribution
        why = f"licence forbids redistribution ({lo.get('licence') or 'restricted import'})"
        out.held_back[why] = out.held_back.get(why, 0) + lo["tags"]
    for t in sel["tags"]:
        ok, why = shareable(t)
        if ok or (include_restricted and why != "TLP:RED"):
            out.tags.append(t)
        else:
            out.held_back[why] = out.held_back.get(why, 0) + 1
    out.generation = reg.generation(ws) if ws is not None else None
    return out


def addr_key(chain: str, address: str) -> str:
    return addr.key(chain, address)


def chain_of(symbol: str | None, address: str) -> str | None:
    return addr.detect(address) or addr.chain_of(symbol, address)


def chain_of_symbol(symbol: str | None) -> str | None:
    """The chain of a currency symbol (BTC -> btc, ETH -> eth...); None when unknown."""
    return addr.chain_of(symbol) if symbol else None


def address_error(chain: str, address: str) -> str | None:
    return addr.check(chain, address)


def is_evm(chain: str) -> bool:
    return addr.is_evm(chain)


def make_parsed(kind: str, path: str, tags: list[Tag], actors: list[Actor], meta: dict, rejects: list,
                duplicates: int = 0, incidents: list[Incident] | None = None,
                seeds: list[Seed] | None = None) -> Parsed:
    p = Parsed(kind=kind, path=path)
    p.tags, p.actors, p.meta, p.rejects, p.duplicates = tags, actors, meta, rejects, duplicates
    p.incidents, p.seeds = list(incidents or []), list(seeds or [])
    return p


def known_seeds(ws: Workspace | None) -> set[tuple]:
    """(incident id, chain, address key or txid) of every seed the registry (and built-in catalogue) holds."""
    from chaintrace.intel.incidents import all_incidents

    _, seeds, _ = all_incidents(ws)
    return {(s["incident_id"], s["chain"], s.get("addr_key") or s.get("txid")) for s in seeds}


def store_parsed(ws: Workspace, parsed: Parsed, content: bytes) -> dict:
    """Write one import (kind ``stix``, ``misp``...) into the registry; the same content again is skipped."""
    from chaintrace.intel.importer import _invalidate

    sha = hashlib.sha256(content).hexdigest()
    info = {"path": parsed.path, "sha256": sha,
            "options": {"producer": parsed.meta.get("creator"), "format": parsed.kind},
            "licence": f"shared by {parsed.meta.get('creator') or 'an unnamed producer'} ({parsed.kind}); "
                       f"redistribution follows each object's TLP marking", "restricted": False}
    done = reg.existing_import(ws, parsed.kind, sha)
    if done is not None:
        return {"import_id": None, "skipped_as": done, "tags": 0, "actors": 0, "incidents": 0, "rejected": 0}
    ids = reg.write_imports(ws, [(parsed, info)])
    _invalidate()
    if not ids:
        return {"import_id": None, "skipped_as": info.get("skipped_as"), "tags": 0, "actors": 0, "incidents": 0,
                "rejected": 0}
    return {"import_id": ids[0], "tags": len(parsed.tags), "actors": len(parsed.actors),
            "incidents": len(parsed.incidents), "seeds": len(parsed.seeds),
            "rejected": len(parsed.rejects), "duplicates": parsed.duplicates}


def lookup(ws: Workspace, addresses: list[str]) -> list[dict]:
    from chaintrace.intel.api import lookup as _lookup

    return _lookup(ws, addresses)


def resolve_actor(ws: Workspace | None, name: str) -> str | None:
    """The actor id a name (alias) resolves to, when exactly one; else None."""
    from chaintrace.intel.actors import alias_map, all_actors

    ids = alias_map(all_actors(ws)).get(reg.norm_alias(name), set())
    return next(iter(ids)) if len(ids) == 1 else None


def norm_alias(name: str) -> str:
    return reg.norm_alias(name)


def context_json(d: dict) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))
