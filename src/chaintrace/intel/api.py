"""Library functions of the intelligence registry (the ``chaintrace intel`` commands call these)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Iterable, Sequence

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg
from chaintrace.intel.files import read_text
from chaintrace.intel.model import Parsed, parse_date_arg
from chaintrace.model.tags import Tag
from chaintrace.progress import NULL, Progress
from chaintrace.store.workspace import Workspace

KINDS = ("ofac-sdn", "tagpack", "actorpack", "labels", "misp-galaxy", "incidents")

_SUFFIXES = {
    "tagpack": (".yaml", ".yml"), "actorpack": (".yaml", ".yml"), "labels": (".json",),
    "misp-galaxy": (".json",), "incidents": (".csv",), "ofac-sdn": (".xml", ".bz2", ".csv"),
}


# ------------------------------------------------------------------------------------------------ import


def _files(kind: str, paths: Sequence[str | Path]) -> list[Path]:
    """Files to import: each path, or the matching files under a directory (sorted). A directory of plain
    OFAC address lists (sanctioned_addresses_*.txt) is one snapshot and stays a directory."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise UserError(f"{p}: no such file or directory")
        if p.is_dir():
            if kind == "ofac-sdn":
                from chaintrace.intel.ofac import is_plain_list_dir

                if is_plain_list_dir(p):
                    out.append(p)
                    continue
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(_SUFFIXES[kind]))
            if kind == "labels":  # brianleect: combinedAll = combinedAccount + combinedToken; take All only
                alls = {f.parent for f in found if f.name == "combinedAllLabels.json"}
                found = [f for f in found if not (f.parent in alls and f.name in (
                    "combinedAccountLabels.json", "combinedTokenLabels.json"))]
            if not found:
                raise UserError(f"{p}: no {kind} files ({', '.join(_SUFFIXES[kind])}) in this directory")
            out += found
        else:
            out.append(p)
    return out


def _parse(ws: Workspace, kind: str, path: Path, *, chain: str | None, as_of: str | None, tlp: str | None,
           label: str | None, progress: Progress) -> tuple[Parsed, dict]:
    info: dict = {"path": str(path.resolve())}
    if path.is_dir():
        from chaintrace.intel.ofac import dir_digest

        info["sha256"] = dir_digest(path)
    else:
        info["sha256"] = reg.sha256_file(path)
    if kind == "tagpack":
        from chaintrace.intel.tagpack import parse_tagpack

        p = parse_tagpack(path, tlp=tlp, default_chain=chain)
    elif kind == "actorpack":
        from chaintrace.intel.tagpack import parse_actorpack

        p = parse_actorpack(path)
    elif kind == "ofac-sdn":
        from chaintrace.intel.ofac import parse_ofac

        p = parse_ofac(path, as_of=as_of, progress=progress)
        info["content_sha256"] = p.meta.pop("content_sha256", None)
    elif kind == "labels":
        from chaintrace.intel.labels import parse_labels

        p = parse_labels(path, chain=chain, label=label, tlp=tlp)
    elif kind == "misp-galaxy":
        from chaintrace.intel.misp import parse_galaxy

        p = parse_galaxy(path)
    elif kind == "incidents":
        from chaintrace.intel.incidents import parse_incidents_csv

        p = parse_incidents_csv(path, ws)
    else:
        raise UserError(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    info["options"] = {k: v for k, v in (("chain", chain), ("as_of", as_of), ("tlp", tlp), ("label", label),
                                         ("notes", p.notes)) if v}
    return p, info


def import_paths(ws: Workspace, kind: str, paths: Sequence[str | Path], *, chain: str | None = None,
                 as_of: str | None = None, tlp: str | None = None, label: str | None = None,
                 progress: Progress = NULL) -> dict:
    """Import intelligence files of one `kind` (see :data:`KINDS`) into the workspace registry.

    Directories are searched for matching files. Every file is parsed first; a malformed file (bad XML,
    YAML, JSON or CSV) raises :class:`~chaintrace.errors.UserError` naming the file and line, and nothing is
    imported. Then all files are written in one transaction. Files whose bytes are already imported are
    skipped (idempotent); a changed file replaces its previous version. Rows that cannot be taken (bad
    address checksum, no chain...) are *rejected* and reported with file, line and reason.

    Returns ``{"kind", "files": [{path, import_id | skipped_as, tags, sanctions, actors, incidents, seeds,
    aggregates, rejected, duplicates, replaced}], "totals": {...}, "rejects": [first 1000 as dicts]}``.
    """
    if kind not in KINDS:
        raise UserError(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    as_of = parse_date_arg(as_of, "--as-of")
    files = _files(kind, paths)
    todo: list[tuple[Parsed, dict]] = []
    report = []
    progress.start(f"reading {kind}", total=len(files), unit="files")
    for f in files:
        sha = reg.sha256_file(f) if f.is_file() else None
        done = reg.existing_import(ws, kind, sha) if sha else None
        if done is not None:
            report.append({"path": str(f), "skipped_as": done})
            progress.advance(1)
            continue
        p, info = _parse(ws, kind, f, chain=chain, as_of=as_of, tlp=tlp, label=label, progress=progress)
        if f.is_dir():
            done = reg.existing_import(ws, kind, info["sha256"])
            if done is not None:
                report.append({"path": str(f), "skipped_as": done})
                progress.advance(1)
                continue
        todo.append((p, info))
        progress.advance(1)
    progress.finish()
    ids = reg.write_imports(ws, todo) if todo else []
    it = iter(ids)
    rejects = []
    for p, info in todo:
        if "skipped_as" in info:
            report.append({"path": p.path, "skipped_as": info["skipped_as"]})
            continue
        report.append({"path": p.path, "import_id": next(it), "tags": len(p.tags), "sanctions": len(p.sanctions),
                       "actors": len(p.actors), "incidents": len(p.incidents), "seeds": len(p.seeds),
                       "aggregates": len(p.aggregates), "rejected": len(p.rejects), "duplicates": p.duplicates,
                       "replaced": info.get("replaced", []), "as_of": p.meta.get("as_of"), "notes": p.notes})
        rejects += [r.__dict__ for r in p.rejects]
    keys = ("tags", "sanctions", "actors", "incidents", "seeds", "aggregates", "rejected", "duplicates")
    totals = {k: sum(r.get(k, 0) for r in report) for k in keys}
    totals["files"] = len(report)
    totals["imported"] = sum(1 for r in report if "import_id" in r)
    totals["skipped"] = sum(1 for r in report if "skipped_as" in r)
    _invalidate()
    return {"kind": kind, "files": report, "totals": totals, "rejects": rejects[:1000],
            "rejects_total": len(rejects)}


def remove_import(ws: Workspace, import_id: int) -> dict:
    """Remove the rows of one import from the registry (see :func:`imports` for ids)."""
    out = reg.remove_import(ws, import_id)
    _invalidate()
    return out


def imports(ws: Workspace) -> list[dict]:
    """Every import: id, kind, path, sha256, when, as-of, row counts, superseded_by."""
    with reg.reader(ws) as con:
        if con is None:
            return []
        cur = con.execute(f"SELECT * FROM {reg.SCHEMA}.imports ORDER BY import_id")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]


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


def load_tags(ws: Workspace | None, chain: str, tagpack_paths: Iterable[str | Path] = (),
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
            for r in _periods(con, chain=chain, at=at):
                out.append(sanction_tag(r))
    for r in incident_seed_rows(ws, chain=chain):
        t = seed_tag(r)
        if t.valid_at(at):
            out.append(t)
    for p in tagpack_paths:
        from chaintrace.intel.tagpack import parse_tagpack

        for path in _files("tagpack", [p]):
            for t in parse_tagpack(path).tags:
                if t.chain == chain and t.valid_at(at):
                    out.append(t)
    return out


def actor_names(ws: Workspace | None, actorpack_paths: Iterable[str | Path] = ()) -> dict[str, str]:
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


def incident_seed_rows(ws: Workspace | None, chain: str | None = None) -> list[dict]:
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


def _invalidate() -> None:
    from chaintrace.intel import index

    index.clear_cache()


# ----------------------------------------------------------------------------------------------- lookup


def read_address_file(path: str | Path) -> list[str]:
    """Addresses from a text file: one per line (first field of CSV/TSV lines); blank and # lines skipped."""
    path = Path(path)
    text = read_text(path)
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        for sep in (",", "\t", ";", " "):
            if sep in s:
                s = s.split(sep, 1)[0].strip()
        if s.lower() == "address":
            continue
        out.append(s)
    return out


def lookup_hits(ws: Workspace | None, addresses: Sequence[str], at: str | None = None):
    """Batch lookup for screening: (index, :class:`~chaintrace.intel.index.Hits`) for `addresses`.

    Vectorised (numpy) and cached per registry generation; use ``index.detail(kind, row)`` for the rows
    of the few addresses that hit. 1 million addresses take about a second."""
    from chaintrace.intel.index import get_index

    idx = get_index(ws)
    return idx, idx.lookup(list(addresses), at=parse_date_arg(at))


def _tag_dict(t: Tag) -> dict:
    e = t.extra or {}
    return {"chain": t.chain, "label": t.label, "category": t.category, "abuse": t.abuse, "actor": t.actor,
            "source": t.source, "confidence": t.confidence, "confidence_id": e.get("confidence_id"),
            "tlp": t.tlp, "lastmod": t.lastmod, "valid_from": t.valid_from, "valid_to": t.valid_to,
            "origin": e.get("kind"), "file": e.get("file"), "line": e.get("line"), "import_id": e.get("import_id")}


def lookup(ws: Workspace | None, addresses: Sequence[str], *, chain: str | None = None,
           at: str | None = None) -> list[dict]:
    """Everything the registry knows about each address: tags, sanctions hits (list, entity, programs,
    listing date, validity), linked incidents (with the seed's role), the actors involved.

    EVM, bech32 and CashAddr addresses match case-insensitively, base58 exactly. With `at` (ISO date) only
    what held on that date is returned (e.g. the Tornado Cash contracts are sanctioned at 2024-09-27 and
    not at 2025-11-19). `chain` keeps only hits on that chain. One dict per input address, in order:
    ``{address, key, known, sanctioned, chains, categories, actors, tags, sanctions, incidents,
    address_check}``.
    """
    from chaintrace.intel.actors import all_actors
    from chaintrace.intel.index import KIND_SANCTION, KIND_SEED, KIND_TAG

    at = parse_date_arg(at)
    chain = chain.lower() if chain else None
    idx, hits = lookup_hits(ws, addresses, at=at)
    tag_rows = hits.row[hits.kind == KIND_TAG]
    if len(tag_rows):
        idx.tables["tag"].fetch(tag_rows.tolist())
    per: list[list[tuple[int, int]]] = [[] for _ in addresses]
    for q, k, r in zip(hits.query.tolist(), hits.kind.tolist(), hits.row.tolist()):
        per[q].append((k, r))
    actors = all_actors(ws) if len(hits) else {}
    out = []
    for a, hs in zip(addresses, per):
        tags, sanctions, incidents = [], [], []
        for k, r in hs:
            d = idx.detail(k, r)
            if k == KIND_TAG:
                if chain is None or d.chain == chain:
                    tags.append(_tag_dict(d))
            elif k == KIND_SANCTION:
                if chain is None or d["chain"] == chain:
                    sanctions.append({"list": d["list_name"], "asset": d["asset"], "chain": d["chain"],
                                      "address": d["address"], "entity": d["entity"], "uid": d["uid"],
                                      "party_type": d["party_type"], "programs": list(d["programs"] or []),
                                      "listed_date": _iso(d["listed_date"]), "valid_from": _iso(d["valid_from"]),
                                      "valid_to": _iso(d["valid_to"]), "first_seen": _iso(d["first_seen"]),
                                      "last_seen": _iso(d["last_seen"]), "actor": d.get("actor")})
            elif k == KIND_SEED:
                if chain is None or d["chain"] == chain:
                    incidents.append({"incident_id": d["incident_id"], "date": _iso(d.get("date")),
                                      "victim": d.get("victim"), "title": d.get("title"),
                                      "amount_usd": d.get("amount_usd"), "actor": d.get("actor"),
                                      "actor_detail": d.get("actor_detail"), "attribution": d.get("attribution"),
                                      "chain": d["chain"], "role": d.get("role"), "side": d.get("side"),
                                      "source": d.get("source")})
        actor_ids = sorted({x["actor"] for x in tags + sanctions + incidents if x.get("actor")
                            and not (x.get("side") or "").lower().startswith("victim")})
        guess = addr.chain_of(None, a)
        check = addr.check(guess, a.strip()) if guess else None
        out.append({
            "address": a, "key": addr.key_any(a), "known": bool(tags or sanctions or incidents),
            "sanctioned": bool(sanctions),
            "chains": sorted({x["chain"] for x in tags + sanctions + incidents}),
            "categories": sorted({x["category"] for x in tags if x.get("category")}
                                 | ({"sanction"} if sanctions else set())
                                 | ({"service_hack"} if any(i.get("side") != "victim" for i in incidents) else set())),
            "actors": [{"id": x, "name": actors.get(x, {}).get("name", x)} for x in actor_ids],
            "tags": tags, "sanctions": sanctions, "incidents": incidents,
            "address_check": {"chain": guess, "error": check} if guess else None,
        })
    return out


# ------------------------------------------------------------------------------------------------ stats


def stats(ws: Workspace | None, at: str | None = None) -> dict:
    """Counts of the registry: imports per kind, tags per chain/category/source, sanctions per list and
    asset (sanctioned addresses at `at`, default today), actors, incidents (built-in and imported),
    aggregates, rejected rows, and the lookup index size."""
    from chaintrace.intel.actors import all_actors
    from chaintrace.intel.incidents import all_incidents

    at = parse_date_arg(at) or _dt.date.today().isoformat()
    out: dict = {"workspace": str(ws.path) if ws is not None else None, "at": at, "generation": reg.generation(ws),
                 "imports": {}, "tags": {"count": 0, "by_chain": {}, "by_category": {}, "by_source": []},
                 "sanctions": {"snapshots": [], "addresses_at": 0, "by_asset_at": {}, "entities_at": 0},
                 "rejected": 0}
    with reg.reader(ws) as con:
        if con is not None:
            for kind, n, cur in con.execute(
                    f"SELECT kind, count(*), count(*) FILTER (WHERE superseded_by IS NULL) FROM {reg.SCHEMA}.imports "
                    f"GROUP BY kind ORDER BY kind").fetchall():
                out["imports"][kind] = {"files": n, "current": cur}
            t = out["tags"]
            t["count"] = con.execute(f"SELECT count(*) FROM {reg.SCHEMA}.tags").fetchone()[0]
            t["by_chain"] = dict(con.execute(f"SELECT chain, count(*) n FROM {reg.SCHEMA}.tags GROUP BY chain "
                                             f"ORDER BY n DESC, chain").fetchall())
            t["by_category"] = dict(con.execute(
                f"SELECT coalesce(category, '(none)'), count(*) n FROM {reg.SCHEMA}.tags GROUP BY 1 "
                f"ORDER BY n DESC, 1").fetchall())
            t["by_source"] = [{"import_id": i, "kind": k, "file": Path(p).name, "title": ti, "tags": n, "rejected": rj}
                              for i, k, p, ti, n, rj in con.execute(
                                  f"SELECT import_id, kind, path, title, n_tags, n_rejected FROM {reg.SCHEMA}.imports "
                                  f"WHERE superseded_by IS NULL AND n_tags > 0 ORDER BY n_tags DESC").fetchall()]
            s = out["sanctions"]
            s["snapshots"] = [{"import_id": i, "list": ln, "as_of": _iso(a), "addresses": n, "file": Path(p).name}
                              for i, ln, a, n, p in con.execute(
                                  f"SELECT import_id, list_name, as_of, n_sanctions, path FROM {reg.SCHEMA}.imports "
                                  f"WHERE kind = 'ofac-sdn' AND superseded_by IS NULL ORDER BY as_of").fetchall()]
            vsql, vargs = _validity_sql(at)
            s["addresses_at"] = con.execute(f"SELECT count(DISTINCT addr_key) FROM {reg.SCHEMA}.sanction_periods "
                                            f"WHERE TRUE" + vsql, vargs).fetchone()[0]
            s["entities_at"] = con.execute(f"SELECT count(DISTINCT uid) FROM {reg.SCHEMA}.sanction_periods "
                                           f"WHERE TRUE" + vsql, vargs).fetchone()[0]
            s["by_asset_at"] = dict(con.execute(f"SELECT asset, count(*) n FROM {reg.SCHEMA}.sanction_periods "
                                                f"WHERE TRUE{vsql} GROUP BY asset ORDER BY n DESC, asset",
                                                vargs).fetchall())
            out["rejected"] = con.execute(f"SELECT count(*) FROM {reg.SCHEMA}.rejects").fetchone()[0]
    inc, seeds, aggs = all_incidents(ws)
    out["incidents"] = {"count": len(inc), "built_in": sum(1 for i in inc if i["origin"] == "built-in"),
                        "seed_addresses": sum(1 for s in seeds if s.get("address")), "aggregates": len(aggs)}
    out["actors"] = len(all_actors(ws))
    return out


# ----------------------------------------------------------------------------------------------- export


def export_tags(ws: Workspace | None, *, chain: str | None = None, at: str | None = None,
                category: str | None = None, import_id: int | None = None, public_only: bool = False,
                include: Sequence[str] = ("tags",)) -> list[Tag]:
    """Tags selected for export: imported tags, plus sanctions periods and incident seeds when `include`
    names "sanctions" / "incidents"."""
    at = parse_date_arg(at)
    out: list[Tag] = []
    bad = set(include) - {"tags", "sanctions", "incidents"}
    if bad:
        raise UserError(f"--include: unknown part(s) {', '.join(sorted(bad))}; expected tags, sanctions, incidents")
    with reg.reader(ws) as con:
        if con is not None:
            if "tags" in include:
                sql = _TAG_SQL + " WHERE TRUE"
                args: list = []
                if chain:
                    sql += " AND chain = ?"
                    args.append(chain.lower())
                if category:
                    sql += " AND (category = ? OR abuse = ? OR entity_category = ?)"
                    args += [category] * 3
                if import_id is not None:
                    sql += " AND t.import_id = ?"
                    args.append(import_id)
                if public_only:
                    sql += " AND is_public"
                vsql, vargs = _validity_sql(at)
                out += [_tag_from_row(r) for r in con.execute(sql + vsql + " ORDER BY t.rowid", args + vargs).fetchall()]
            if "sanctions" in include:
                out += [sanction_tag(r) for r in _periods(con, chain=chain.lower() if chain else None, at=at)
                        if category in (None, "sanction")]
    if "incidents" in include:
        for r in incident_seed_rows(ws, chain=chain.lower() if chain else None):
            t = seed_tag(r)
            if t.valid_at(at) and category in (None, t.category):
                out.append(t)
    return out


def export_tagpack(ws: Workspace | None, out: str | Path, *, title: str = "chaintrace export",
                   creator: str = "chaintrace", **select) -> dict:
    """Write the selected tags (see :func:`export_tags`) as a GraphSense TagPack YAML file; importing it
    again yields the same tags (round trip)."""
    from chaintrace.intel.tagpack import write_tagpack

    tags = export_tags(ws, **select)
    n = write_tagpack(tags, out, title=title, creator=creator,
                      description=f"Exported by chaintrace on {_dt.date.today().isoformat()}")
    return {"path": str(out), "tags": n, "format": "tagpack"}


CSV_COLUMNS = ("chain", "address", "label", "category", "abuse", "actor", "source", "confidence",
               "confidence_id", "tlp", "valid_from", "valid_to", "lastmod", "origin", "detail")


def export_csv(ws: Workspace | None, out: str | Path, **select) -> dict:
    """Write the selected tags as CSV (columns :data:`CSV_COLUMNS`; sanctions and incident seeds carry
    entity/programs or incident/role in ``detail``)."""
    import csv
    import json

    select.setdefault("include", ("tags", "sanctions", "incidents"))
    tags = export_tags(ws, **select)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for t in tags:
            e = t.extra or {}
            detail = {k: e[k] for k in ("entity", "uid", "programs", "asset", "listed_date", "incident_id", "role",
                                        "side") if e.get(k)}
            w.writerow([t.chain, e.get("address_as_written") or t.address, t.label, t.category or "", t.abuse or "",
                        t.actor or "", t.source or "", "" if t.confidence is None else t.confidence,
                        e.get("confidence_id") or "", t.tlp or "", t.valid_from or "", t.valid_to or "",
                        t.lastmod or "", e.get("kind") or "", json.dumps(detail, sort_keys=True) if detail else ""])
    tmp.replace(out)
    return {"path": str(out), "tags": len(tags), "format": "csv"}
