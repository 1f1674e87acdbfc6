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
    """Addresses from a text file: one per line (first field of CSV/TSV lines); blank and # lines skipped, and
    a first line naming a column (``address``, ``banned_address``...) rather than holding an address."""
    path = Path(path)
    text = read_text(path)
    out: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        for sep in (",", "\t", ";", " "):
            if sep in s:
                s = s.split(sep, 1)[0].strip()
        if not out and "address" in s.lower() and addr.valid_for(s) is None:
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
            "origin": e.get("kind"), "file": e.get("file"), "line": e.get("line"), "import_id": e.get("import_id"),
            "trust": KIND_TRUST.get(e.get("kind") or "", "scraped")}


def rank_by_trust(tags: list[dict]) -> tuple[dict | None, list[dict]]:
    """Sort `tags` (dicts with trust, confidence, category) most trusted first; return (primary, conflicts):
    the primary tag and every tag whose category disagrees with it (shown, never hidden)."""
    tags.sort(key=lambda t: (-TRUST_LEVELS.get(t.get("trust") or "scraped", 0), -(t.get("confidence") or 0)))
    if not tags:
        return None, []
    top = tags[0]
    conflicts = [{"category": t["category"], "label": t["label"], "trust": t["trust"], "source": t["source"],
                  "overridden_by": f"{top['trust']} {top['category']} ({top['source']})"}
                 for t in tags[1:] if t.get("category") and t["category"] != top.get("category")]
    return top, conflicts


def sanction_lists(ws: RegistryLike, at: str | None = None) -> list[dict]:
    """The sanctions lists of the registry: name, its version at `at` (the latest snapshot on or before that
    date, default today; None when every snapshot is later), the latest snapshot and the snapshot count."""
    day = at or _dt.date.today().isoformat()
    with reg.reader(ws) as con:
        if con is None:
            return []
        rows = con.execute(f"SELECT list_name, list(as_of ORDER BY as_of) FROM {reg.SCHEMA}.imports WHERE "
                           f"kind = 'ofac-sdn' AND superseded_by IS NULL GROUP BY list_name ORDER BY list_name"
                           ).fetchall()
    out = []
    for name, dates in rows:
        ds = [str(_iso(d)) for d in dates]
        before = [d for d in ds if d <= day]
        out.append({"list": name, "version": before[-1] if before else None, "first": ds[0], "latest": ds[-1], "snapshots": len(ds)})
    return out


def answer_basis(ws: RegistryLike, at: str | None = None) -> dict:
    """What a lookup answer stands on: the registry (path, generation), the date answered, the sanctions
    lists with their version (latest snapshot) and age in days at that date, and warnings (e.g. no sanctions
    list imported: every "not sanctioned" would then mean nothing)."""
    r = reg.as_registry(ws)
    day = _dt.date.fromisoformat(at) if at else _dt.date.today()
    lists = sanction_lists(r, day.isoformat())
    for x in lists:
        x["age_days"] = (day - _dt.date.fromisoformat(x["version"])).days if x["version"] else None
    warnings = []
    if not lists:
        warnings.append("no sanctions list imported: sanctions answers are unknown "
                        "(chaintrace intel import ofac-sdn ...)")
    return {"registry": str(r.path) if r is not None else None, "generation": reg.generation(r),
            "at": day.isoformat(), "at_given": at is not None, "sanctions_lists": lists, "warnings": warnings}


def _sanction_dict(d: dict, day: _dt.date) -> dict:
    from chaintrace.intel.history import period_state

    state, why = period_state(d, day)
    return {"list": d["list_name"], "asset": d["asset"], "chain": d["chain"], "address": d["address"],
            "entity": d["entity"], "uid": d["uid"], "party_type": d["party_type"],
            "programs": list(d["programs"] or []), "listed_date": _iso(d["listed_date"]),
            "valid_from": _iso(d["valid_from"]), "valid_to": _iso(d["valid_to"]),
            "first_seen": _iso(d["first_seen"]), "last_seen": _iso(d["last_seen"]),
            "absent_before": _iso(d.get("absent_before")), "actor": d.get("actor"), "state": state, "reason": why}


def _incident_dict(d: dict) -> dict:
    return {"incident_id": d["incident_id"], "date": _iso(d.get("date")), "victim": d.get("victim"),
            "title": d.get("title"), "amount_usd": d.get("amount_usd"), "actor": d.get("actor"),
            "actor_detail": d.get("actor_detail"), "attribution": d.get("attribution"), "chain": d["chain"],
            "role": d.get("role"), "side": d.get("side"), "source": d.get("source")}


def lookup(ws: RegistryLike, addresses: Sequence[str], *, chain: str | None = None,
           at: str | None = None) -> list[dict]:
    """Everything the registry knows about each address: tags, sanctions history and status, linked
    incidents (with the seed's role), the actors involved.

    EVM, bech32 and CashAddr addresses match case-insensitively, base58 exactly. The sanctions answer is as
    of `at` (ISO date; default today) from the list history (:mod:`chaintrace.intel.history`):
    ``sanctioned`` is True, False, or None (unknown, with ``sanction_reason``) -- e.g. the Tornado Cash
    contracts are sanctioned at 2024-10-01, not after their removal, and unknown before the first snapshot
    that holds them. Tags and incidents are filtered by `at` when it is given. `chain` (aliases accepted)
    keeps only hits on that chain. A string that is no valid address (of `chain`, or of any supported
    chain) gets ``verdict: "invalid"`` with the reason in ``error``. One dict per input address, in order:
    ``{address, key, verdict, error, known, sanctioned, sanction_reason, chains, categories, actors, tags,
    sanctions, incidents, address_check, generation, at}``; :func:`answer_basis` says what they stand on.
    """
    from chaintrace.intel.actors import all_actors
    from chaintrace.intel.history import status_at
    from chaintrace.intel.index import KIND_SANCTION, KIND_SEED, KIND_TAG

    at = parse_date_arg(at)
    chain = addr.resolve_chain(chain)
    day = _dt.date.fromisoformat(at) if at else _dt.date.today()
    idx, hits = lookup_hits(ws, addresses)
    tag_rows = hits.row[hits.kind == KIND_TAG]
    if len(tag_rows):
        idx.tables["tag"].fetch(tag_rows.tolist())
    per: list[list[tuple[int, int]]] = [[] for _ in addresses]
    for q, k, r in zip(hits.query.tolist(), hits.kind.tolist(), hits.row.tolist()):
        per[q].append((k, r))
    actors = all_actors(ws) if len(hits) else {}
    have_lists = bool(sanction_lists(ws))
    out = []
    for a, hs in zip(addresses, per):
        tags, periods, incidents = [], [], []
        for k, r in hs:
            d = idx.detail(k, r)
            c = d.chain if k == KIND_TAG else d["chain"]
            if chain is not None and c != chain:
                continue
            if k == KIND_TAG:
                if d.valid_at(at):
                    tags.append(_tag_dict(d))
            elif k == KIND_SANCTION:
                periods.append(d)
            elif k == KIND_SEED:
                incidents.append(_incident_dict(d))
        error = addr.why_invalid(a, chain) if not hs else None
        sanctions = [_sanction_dict(p, day) for p in periods]
        status = status_at(periods, day)
        if not have_lists:
            status = {"sanctioned": None, "reason": "no sanctions list imported"}
        if error:
            status = {"sanctioned": None, "reason": f"invalid address: {error}"}
        current = [s for s in sanctions if s["state"] is not False]
        top, conflicts = rank_by_trust(tags)
        if status["sanctioned"] and top is not None and top.get("category") != "sanction":
            conflicts.insert(0, {"category": top["category"], "label": top["label"], "trust": top["trust"],
                                 "source": top["source"], "overridden_by": "authority sanction (" +
                                 status["reason"] + ")"})
        primary = ({"category": "sanction", "trust": "authority", "source": current[0]["list"],
                    "label": f"{current[0]['list']}: {current[0]['entity'] or 'listed address'}"}
                   if status["sanctioned"] and current else
                   ({k: top[k] for k in ("category", "trust", "source", "label")} if top else None))
        actor_ids = sorted({x["actor"] for x in tags + current + incidents if x.get("actor")
                            and not (x.get("side") or "").lower().startswith("victim")})
        guess = addr.chain_of(None, a)
        check = addr.check(guess, a.strip()) if guess else None
        out.append({
            "address": a, "key": addr.key_any(a), "verdict": "invalid" if error else (
                "known" if (tags or sanctions or incidents) else "unknown"), "error": error,
            "known": bool(tags or sanctions or incidents),
            "sanctioned": status["sanctioned"], "sanction_reason": status["reason"],
            "chains": sorted({x["chain"] for x in tags + sanctions + incidents}),
            "categories": sorted({x["category"] for x in tags if x.get("category")}
                                 | ({"sanction"} if status["sanctioned"] else set())
                                 | ({"service_hack"} if any(i.get("side") != "victim" for i in incidents) else set())),
            "actors": [{"id": x, "name": actors.get(x, {}).get("name", x)} for x in actor_ids],
            "primary": primary, "conflicts": conflicts,
            "tags": tags, "sanctions": sanctions, "incidents": incidents,
            "address_check": {"chain": guess, "error": check} if guess else None,
            "generation": idx.generation, "at": day.isoformat(),
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
            t["count"] = con.execute(f"SELECT count(*) FROM {reg.SCHEMA}.tags").fetchall()[0][0]
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
                                            f"WHERE TRUE" + vsql, vargs).fetchall()[0][0]
            s["entities_at"] = con.execute(f"SELECT count(DISTINCT uid) FROM {reg.SCHEMA}.sanction_periods "
                                           f"WHERE TRUE" + vsql, vargs).fetchall()[0][0]
            s["by_asset_at"] = dict(con.execute(f"SELECT asset, count(*) n FROM {reg.SCHEMA}.sanction_periods "
                                                f"WHERE TRUE{vsql} GROUP BY asset ORDER BY n DESC, asset",
                                                vargs).fetchall())
            out["rejected"] = con.execute(f"SELECT count(*) FROM {reg.SCHEMA}.rejects").fetchall()[0][0]
    inc, seeds, aggs = all_incidents(ws)
    out["incidents"] = {"count": len(inc), "built_in": sum(1 for i in inc if i["origin"] == "built-in"),
                        "seed_addresses": sum(1 for s in seeds if s.get("address")), "aggregates": len(aggs)}
    out["actors"] = len(all_actors(ws))
    return out


# ------------------------------------------------------------------------------------------ screening table

TRUST_LEVELS = {"authority": 3, "curated": 2, "scraped": 1}
# Import kind -> trust of its rows: sanctions lists are the authority, TagPacks/ActorPacks and incident
# catalogues are curated, explorer label scrapes and generic watch-lists are scraped unless told otherwise.
KIND_TRUST = {"ofac-sdn": "authority", "tagpack": "curated", "actorpack": "curated", "incidents": "curated",
              "misp-galaxy": "curated", "labels": "scraped", "list": "scraped", "built-in": "curated"}
ILLICIT = frozenset({
    "sanction", "service_hack", "hacker", "exploit", "ransomware", "scam", "phishing", "malware", "darkweb",
    "terrorism", "terrorism_financing", "child_sexual_abuse_material", "child_sexual_abuse", "perpetrator",
    "black_list", "gov_black_list", "extremism", "sextortion", "extortion", "ponzi_scheme", "pyramid_scheme",
    "investment_fraud", "money_laundering", "account_hack", "data_breach", "hacking", "financial_crime", "drugs",
    "weapons", "human_trafficking", "bridge_exploit", "mixing_service", "coinjoin", "mixing"})

ILLICIT_COLUMNS = ("chain", "addr_key", "address", "origin", "label", "category", "abuse", "entity", "actor",
                   "source", "trust", "confidence", "illicit", "sanctioned", "sanction_reason", "valid_from",
                   "valid_to", "import_id")


def illicit_table(ws: RegistryLike, chain: str | None = None, at: str | None = None, *,
                  illicit_only: bool = True):
    """Every labelled address of the registry for `chain` (all chains when None), as one Arrow table for
    screening: one row per (address, source row), columns :data:`ILLICIT_COLUMNS`.

    ``origin`` is tag / sanction / incident; ``trust`` authority / curated / scraped (:data:`KIND_TRUST`);
    ``illicit`` whether the category or abuse is in :data:`ILLICIT`; ``sanctioned`` the sanctions status at
    `at` (default today) for sanction rows -- True, or None (unknown, ``sanction_reason`` says why); rows
    whose period is known not to cover the date are left out, as are tags not valid at `at` (when given).
    With `illicit_only` (default) only illicit rows. EVM keys are lower-case (match with
    :func:`chaintrace.intel.addresses.key_any`). The table's schema metadata names the registry, its
    ``generation``, the date answered and the sanctions lists with their version: keep the generation with
    whatever you derive from the table.

    >>> t = illicit_table(Registry("/tmp/registry"), "eth", at="2024-10-01")   # doctest: +SKIP
    >>> t.schema.metadata[b"generation"]                                        # doctest: +SKIP
    b'3'
    """
    import json

    import pyarrow as pa

    from chaintrace.intel.history import period_state
    from chaintrace.intel.tags import _TAG_SQL, _periods, _tag_from_row, incident_seed_rows

    at = parse_date_arg(at)
    chain = addr.resolve_chain(chain)
    day = _dt.date.fromisoformat(at) if at else _dt.date.today()
    r = reg.as_registry(ws)
    gen = reg.generation(r)
    cols: dict[str, list] = {c: [] for c in ILLICIT_COLUMNS}

    def add(**row):
        for c in ILLICIT_COLUMNS:
            cols[c].append(row.get(c))

    with reg.reader(r, gen) as con:
        if con is not None:
            sql, args = _TAG_SQL + " WHERE TRUE", []
            if chain:
                sql, args = sql + " AND chain = ?", [chain]
            vsql, vargs = _validity_sql(at)
            for row in con.execute(sql + vsql, args + vargs).fetchall():
                t = _tag_from_row(row)
                e = t.extra or {}
                bad = bool({t.category, t.abuse, e.get("entity_category")} & ILLICIT)
                if illicit_only and not bad:
                    continue
                add(chain=t.chain, addr_key=addr.key(t.chain, t.address), address=e.get("address_as_written"),
                    origin="tag", label=t.label, category=t.category, abuse=t.abuse, actor=t.actor,
                    source=t.source, trust=e.get("trust") or KIND_TRUST.get(e.get("kind") or "", "scraped"),
                    confidence=t.confidence, illicit=bad, valid_from=t.valid_from, valid_to=t.valid_to,
                    import_id=e.get("import_id"))
            for p in _periods(con, chain=chain):
                state, why = period_state(p, day)
                if state is False:
                    continue
                add(chain=p["chain"], addr_key=p["addr_key"], address=p["address"], origin="sanction",
                    label=f"{p['list_name']}: {p['entity'] or 'listed address'}", category="sanction",
                    abuse="sanction", entity=p["entity"], actor=p.get("actor"), source=f"{p['list_name']} ({p['asset']})",
                    trust="authority", confidence=60, illicit=True, sanctioned=state, sanction_reason=why,
                    valid_from=_iso(p["valid_from"]), valid_to=_iso(p["valid_to"]))
    for s in incident_seed_rows(r, chain=chain):
        victim = (s.get("side") or "").lower().startswith("victim")
        if victim and illicit_only:
            continue
        add(chain=s["chain"], addr_key=s["addr_key"], address=s["address"], origin="incident",
            label=(s.get("title") or s.get("victim") or s["incident_id"]) + (f": {s['role']}" if s.get("role") else ""),
            category="victim" if victim else "service_hack", abuse=None if victim else "service_hack",
            entity=s.get("victim"), actor=None if victim else s.get("actor"), source=s.get("source"),
            trust="curated", confidence=60 if s.get("attribution") == "confirmed" else 50, illicit=not victim,
            valid_from=None if victim else _iso(s.get("date")))
    types = {"confidence": pa.int32(), "illicit": pa.bool_(), "sanctioned": pa.bool_(), "import_id": pa.int32()}
    table = pa.table({c: pa.array(v, type=types.get(c, pa.string())) for c, v in cols.items()})
    basis = answer_basis(r, at)
    meta = {"registry": basis["registry"] or "", "generation": str(gen), "at": day.isoformat(),
            "sanctions_lists": json.dumps(basis["sanctions_lists"]), "warnings": json.dumps(basis["warnings"])}
    return table.replace_schema_metadata(meta)
