"""Threat actors and services: ids, names, aliases, relations; resolving a name to actor ids.

Actor ids follow the GraphSense ActorPack convention (lower-case letters and digits: ``lazarusgroup``).
Actors come from the built-in DPRK actor list (package data derived from the MISP threat-actor galaxy,
CC0) and from imported ActorPacks and MISP galaxies. :func:`resolve` turns what a user types ("lazarus",
"APT38", "BlueNoroff", "TraderTraitor") into the actor ids it names, following aliases and, optionally,
the relations between actors (TraderTraitor is "similar" to Lazarus Group in the MISP galaxy).
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from chaintrace.intel import registry as reg
from chaintrace.intel.registry import RegistryLike
from chaintrace.intel.model import Actor


@lru_cache(maxsize=1)
def builtin_actors() -> tuple[Actor, ...]:
    """The packaged DPRK actor list (see ``chaintrace/data/intel/README.md`` for its source)."""
    text = resources.files("chaintrace").joinpath("data/intel/dprk_actors.json").read_text(encoding="utf-8")
    out = []
    for a in json.loads(text)["actors"]:
        out.append(Actor(id=a["id"], name=a["name"], aliases=a.get("aliases", []), country=a.get("country"),
                         categories=a.get("categories", []), uri=a.get("uri"), references=a.get("refs", []),
                         related=[tuple(x) for x in a.get("related", [])], source_ref=a.get("misp_uuid")))
    return tuple(out)


def all_actors(ws: RegistryLike) -> dict[str, dict]:
    """Every actor by id: name, country, aliases (set), related (set of (id, relation)), sources."""
    out: dict[str, dict] = {}

    def add(aid, name, country, aliases, related, source, refs=(), categories=(), uri=None):
        a = out.setdefault(aid, {"id": aid, "name": name, "country": country, "aliases": set(), "related": set(),
                                 "sources": [], "refs": [], "categories": [], "uri": uri})
        a["name"] = a["name"] or name
        a["country"] = a["country"] or country
        a["uri"] = a["uri"] or uri
        a["aliases"].update(x for x in aliases if x)
        a["related"].update(related)
        a["sources"].append(source)
        a["refs"] += [r for r in refs if r not in a["refs"]]
        a["categories"] += [c for c in categories if c not in a["categories"]]

    for a in builtin_actors():
        add(a.id, a.name, a.country, [a.name, *a.aliases], a.related, "built-in (MISP galaxy)", a.references,
            a.categories, a.uri)
    with reg.reader(ws) as con:
        if con is not None:
            rows = con.execute(f"SELECT a.actor_id, a.name, a.country, a.refs, a.categories, a.uri, i.kind, i.path "
                               f"FROM {reg.SCHEMA}.actors a JOIN {reg.SCHEMA}.imports i USING (import_id)").fetchall()
            aliases: dict[str, list] = {}
            for aid, alias in con.execute(f"SELECT actor_id, alias FROM {reg.SCHEMA}.actor_aliases").fetchall():
                aliases.setdefault(aid, []).append(alias)
            rel: dict[str, list] = {}
            for aid, rid, relation in con.execute(
                    f"SELECT actor_id, related_id, relation FROM {reg.SCHEMA}.actor_relations").fetchall():
                rel.setdefault(aid, []).append((rid, relation))
            for aid, name, country, refs, cats, uri, kind, path in rows:
                add(aid, name, country, aliases.get(aid, []), rel.get(aid, []), f"{kind}: {path}", refs or [],
                    cats or [], uri)
    return out


def alias_map(ws_or_actors) -> dict[str, set[str]]:
    """Normalised alias -> actor ids."""
    actors = ws_or_actors if isinstance(ws_or_actors, dict) else all_actors(ws_or_actors)
    m: dict[str, set[str]] = {}
    for aid, a in actors.items():
        for n in {aid, a["name"], *a["aliases"]}:
            if n:
                m.setdefault(reg.norm_alias(n), set()).add(aid)
    return m


EXPAND_RELATIONS = frozenset({"similar", "part-of", "subgroup-of", "subgroup", "successor-of"})


def resolve(ws: RegistryLike, query: str, *, related: bool = False, actors: dict | None = None) -> set[str]:
    """Actor ids named by `query`: exact alias matches first, else every actor one of whose names contains
    it; with `related`, actors linked to those by a close relation (similar, part-of...) are added."""
    actors = actors if actors is not None else all_actors(ws)
    amap = alias_map(actors)
    q = reg.norm_alias(query)
    if not q:
        return set()
    ids = set(amap.get(q, set()))
    if not ids:
        for k, v in amap.items():
            if q in k:
                ids |= v
    if related and ids:
        extra = set()
        for aid in ids:
            extra |= {rid for rid, rel in actors.get(aid, {}).get("related", ()) if rel in EXPAND_RELATIONS}
        for aid, a in actors.items():
            if any(rid in ids and rel in EXPAND_RELATIONS for rid, rel in a.get("related", ())):
                extra.add(aid)
        ids |= {x for x in extra if x in actors}
    return ids


def resolve_entity_map(con) -> dict[str, str]:
    """Normalised alias -> one actor id, for linking sanctions entities to actors (exact names only)."""
    m: dict[str, str] = {}
    for a in builtin_actors():
        for n in (a.id, a.name, *a.aliases):
            m.setdefault(reg.norm_alias(n), a.id)
    if con is not None:
        try:
            for aid, k in con.execute(f"SELECT actor_id, alias_norm FROM {reg.SCHEMA}.actor_aliases").fetchall():
                m.setdefault(k, aid)
        except Exception:  # noqa: BLE001 - an old catalog without the table
            pass
    return m


def actor_list(ws: RegistryLike, query: str | None = None) -> list[dict]:
    """Actors (all, or those `query` resolves to) with their aliases, country, relations and sources."""
    actors = all_actors(ws)
    ids = resolve(ws, query, actors=actors) if query else set(actors)
    out = []
    for aid in sorted(ids):
        a = actors[aid]
        out.append({"id": aid, "name": a["name"], "country": a["country"],
                    "aliases": sorted(a["aliases"] - {a["name"]}, key=str.lower),
                    "related": sorted(f"{rid} ({rel})" for rid, rel in a["related"]),
                    "categories": a["categories"], "uri": a["uri"], "refs": a["refs"][:20],
                    "sources": a["sources"]})
    return out
