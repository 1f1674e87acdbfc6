"""Looking addresses up in the intelligence registry: one address, a batch, the screening table, statistics."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Sequence

from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg
from chaintrace.intel.registry import RegistryLike
from chaintrace.intel.files import read_text
from chaintrace.intel.model import parse_date_arg
from chaintrace.intel.tags import _iso, _validity_sql
from chaintrace.model.tags import Tag

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


def lookup_hits(ws: RegistryLike, addresses: Sequence[str], at: str | None = None):
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


def lookup(ws: RegistryLike, addresses: Sequence[str], *, chain: str | None = None,
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


def stats(ws: RegistryLike, at: str | None = None) -> dict:
    """Counts of the registry: imports per kind, tags per chain/category/source, sanctions per list and
    asset (sanctioned addresses at `at`, default today), actors, incidents (built-in and imported),
    aggregates, rejected rows, and the lookup index size."""
    from chaintrace.intel.actors import all_actors
    from chaintrace.intel.incidents import all_incidents

    at = parse_date_arg(at) or _dt.date.today().isoformat()
    r = reg.as_registry(ws)
    out: dict = {"registry": str(r.path) if r is not None else None, "at": at, "generation": reg.generation(r),
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
