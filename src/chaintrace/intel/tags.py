"""Registry rows as :class:`~chaintrace.model.tags.Tag` objects: the tag SQL, sanctions periods and incident
seeds as tags, and :func:`load_tags` (what tracing and clustering read)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Iterable, Sequence

from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg
from chaintrace.intel.registry import RegistryLike
from chaintrace.intel.importer import _files
from chaintrace.intel.model import parse_date_arg
from chaintrace.model.tags import Tag

# ------------------------------------------------------------------------------------------------- tags


def _iso(d) -> str | None:
    return d.isoformat() if isinstance(d, (_dt.date, _dt.datetime)) else d


_TAG_SQL = f"""SELECT chain, address, addr_key, label, category, entity_category, abuse, actor, source, currency,
    network, confidence, confidence_id, tlp, is_public, is_cluster_definer, valid_from, valid_to, lastmod,
    context, concepts, tag_type, line, t.import_id, t.kind, i.path
  FROM {reg.SCHEMA}.tags t JOIN {reg.SCHEMA}.imports i USING (import_id)"""


def _tag_from_row(r) -> Tag:
    (chain, address, k, label, category, entity_category, abuse, actor, source, currency, network, confidence,
     confidence_id, tlp, is_public, cluster_def, valid_from, valid_to, lastmod, context, concepts, tag_type,
     line, import_id, kind, path) = r
    extra = {"import_id": import_id, "kind": kind, "file": path, "line": line, "currency": currency,
             "network": network, "confidence_id": confidence_id, "address_as_written": address}
    if entity_category is not None:
        extra["entity_category"] = entity_category
    if cluster_def is not None:
        extra["is_cluster_definer"] = cluster_def
    if context is not None:
        extra["context"] = context
    if concepts:
        extra["concepts"] = list(concepts)
    if tag_type:
        extra["tag_type"] = tag_type
    return Tag(chain=chain, address=k if addr.is_evm(chain) else address, label=label, category=category,
               actor=actor, source=source, confidence=confidence, tlp=tlp, is_public=bool(is_public),
               valid_from=_iso(valid_from), valid_to=_iso(valid_to), lastmod=_iso(lastmod), abuse=abuse,
               extra=extra)


def _validity_sql(at: str | None, prefix: str = "") -> tuple[str, list]:
    if at is None:
        return "", []
    return (f" AND ({prefix}valid_from IS NULL OR {prefix}valid_from <= ?::DATE) AND ({prefix}valid_to IS NULL "
            f"OR {prefix}valid_to > ?::DATE)", [at, at])


def sanction_tag(r: dict) -> Tag:
    """A sanctions period as a Tag (category ``sanction``, confidence 60 = authority_data)."""
    programs = list(r.get("programs") or [])
    entity = r.get("entity")
    label = f"{r['list_name']}: {entity}" if entity else f"{r['list_name']} listed address"
    return Tag(chain=r["chain"], address=r["addr_key"] if addr.is_evm(r["chain"]) else r["address"], label=label,
               category="sanction", actor=r.get("actor"), source=f"{r['list_name']} ({r['asset']})",
               confidence=60, valid_from=_iso(r.get("valid_from")), valid_to=_iso(r.get("valid_to")),
               abuse="sanction",
               extra={"kind": "sanction", "uid": r.get("uid"), "entity": entity, "programs": programs,
                      "asset": r["asset"], "listed_date": _iso(r.get("listed_date")),
                      "first_seen": _iso(r.get("first_seen")), "last_seen": _iso(r.get("last_seen")),
                      "confidence_id": "authority_data", "currency": r["asset"],
                      "address_as_written": r["address"]})


def seed_tag(r: dict) -> Tag:
    """An incident seed address as a Tag: attacker side -> ``service_hack``, victim side -> ``victim``."""
    victim = (r.get("side") or "").lower().startswith("victim")
    title = r.get("title") or r.get("victim") or r["incident_id"]
    label = f"{title}: {r['role']}" if r.get("role") else title
    return Tag(chain=r["chain"], address=r["addr_key"] if addr.is_evm(r["chain"]) else r["address"], label=label,
               category="victim" if victim else "service_hack", actor=None if victim else r.get("actor"),
               source=r.get("source") or "; ".join(r.get("sources") or []) or None,
               confidence=60 if r.get("attribution") == "confirmed" else 50,
               valid_from=None if victim else _iso(r.get("date")), abuse=None if victim else "service_hack",
               extra={"kind": "incident", "incident_id": r["incident_id"], "role": r.get("role"),
                      "side": r.get("side"), "address_as_written": r["address"]})


def load_tags(ws: RegistryLike, chain: str, tagpack_paths: Iterable[str | Path] = (),
              at: str | None = None) -> list[Tag]:
    """Every tag for `chain` ("btc", "eth", ...) that the registry knows, valid at ISO date `at` if given.

    Sources: the workspace registry when `ws` has one (imported TagPacks and labels, sanctions periods as
    ``sanction`` tags, incident seed addresses as ``service_hack``/``victim`` tags), the built-in DPRK
    incident catalogue's seed addresses, and the GraphSense TagPack YAML files in `tagpack_paths`, parsed
    directly without importing (their rejected tags are skipped). EVM addresses are lower-case.

    >>> tags = load_tags(None, "btc", ["packs/lazarus.yaml"])           # doctest: +SKIP
    >>> [t.label for t in tags if t.category == "sanction"][:1]          # doctest: +SKIP
    ['Lazarus group']
    """
    chain = chain.lower()
    at = parse_date_arg(at)
    out: list[Tag] = []
    with reg.reader(ws) as con:
        if con is not None:
            vsql, vargs = _validity_sql(at)
            for r in con.execute(_TAG_SQL + " WHERE chain = ?" + vsql, [chain] + vargs).fetchall():
                out.append(_tag_from_row(r))
            for per in _periods(con, chain=chain, at=at):
                out.append(sanction_tag(per))
    for s in incident_seed_rows(ws, chain=chain):
        t = seed_tag(s)
        if t.valid_at(at):
            out.append(t)
    for p in tagpack_paths:
        from chaintrace.intel.tagpack import parse_tagpack

        for path in _files("tagpack", [p]):
            for t in parse_tagpack(path).tags:
                if t.chain == chain and t.valid_at(at):
                    out.append(t)
    return out


def actor_names(ws: RegistryLike, actorpack_paths: Iterable[str | Path] = ()) -> dict[str, str]:
    """Actor id -> label: the built-in actors, the workspace registry's (imported ActorPacks and MISP
    galaxies) and those of the ActorPack YAML files in `actorpack_paths`, parsed directly without importing
    (a file's label wins over the registry's)."""
    from chaintrace.intel.actors import all_actors

    out = {aid: a["name"] for aid, a in all_actors(ws).items() if a.get("name")}
    for p in actorpack_paths:
        from chaintrace.intel.tagpack import parse_actorpack

        for path in _files("actorpack", [p]):
            for a in parse_actorpack(path).actors:
                out[a.id] = a.name
    return out


def _periods(con, *, chain: str | None = None, keys: Sequence[str] | None = None, at: str | None = None) -> list[dict]:
    sql = f"SELECT * FROM {reg.SCHEMA}.sanction_periods WHERE TRUE"
    args: list = []
    if chain is not None:
        sql += " AND chain = ?"
        args.append(chain)
    if keys is not None:
        sql += " AND addr_key IN (SELECT unnest(?::VARCHAR[]))"
        args.append(list(keys))
    vsql, vargs = _validity_sql(at)
    cur = con.execute(sql + vsql + " ORDER BY chain, addr_key, valid_from", args + vargs)
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    if rows:
        from chaintrace.intel.actors import resolve_entity_map

        names = resolve_entity_map(con)
        for r in rows:
            r["actor"] = names.get(reg.norm_alias(r["entity"])) if r.get("entity") else None
    return rows


def incident_seed_rows(ws: RegistryLike, chain: str | None = None) -> list[dict]:
    """Seed addresses of every incident (built-in catalogue + imported), joined with their incident."""
    from chaintrace.intel.incidents import all_incidents

    inc, seeds, _ = all_incidents(ws)
    by_id = {i["incident_id"]: i for i in inc}
    out = []
    for s in seeds:
        if s.get("address") is None or (chain is not None and s["chain"] != chain):
            continue
        i = by_id.get(s["incident_id"], {})
        out.append({**i, **s})
    return out
