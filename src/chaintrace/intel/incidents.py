"""Incidents (hacks and thefts), their seed addresses, and sourced aggregate figures.

CSV layouts (UTF-8, header row; the importer tells them apart by their columns):

incidents   ``id, date, victim`` required; optional ``date_end, title, kind, chains (;-separated), asset,
            amount_asset, amount_usd (exact decimal), actor, actor_detail, attribution (confirmed |
            suspected), attributed_by, sources (|-separated), notes``
seeds       ``incident, chain, address`` (or ``txid``); optional ``role, side (attacker | victim),
            source``. Also read: ``role_as_labeled`` for role and ``source_path``/``source_repo`` for source
            (the layout of ``dprk-hacks-tayvano/dprk_incident_addresses.csv``). ``incident`` is an incident
            id, or its victim/title (matched ignoring case and punctuation, narrowed by ``incident_date``).
aggregates  ``id, period_start, period_end, scope, amount_usd``; optional ``actor, sources``

The package ships a DPRK catalogue in these layouts (``chaintrace/data/intel/``); it is always part of
the answers, and imported CSVs add to it (an imported incident with the same id replaces the built-in
row).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr
from chaintrace.intel import registry as reg
from chaintrace.intel.registry import RegistryLike
from chaintrace.intel.files import read_text
from chaintrace.intel.model import Aggregate, Incident, Parsed, Reject, Seed, iso_date, usd

ATTRIBUTIONS = ("confirmed", "suspected")
_DATA = "data/intel"


def _reader(text: str, path: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and (line, row) pairs of a CSV text; ragged rows are an error naming the line."""
    rdr = csv.reader(io.StringIO(text))
    try:
        header = next(rdr)
    except StopIteration:
        raise UserError(f"{path}: empty CSV file") from None
    except csv.Error as e:
        raise UserError(f"{path}: line 1: malformed CSV ({e})") from None
    header = [h.strip().lstrip("\ufeff").lower() for h in header]
    rows = []
    try:
        for fields in rdr:
            line = rdr.line_num
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise UserError(f"{path}: line {line}: {len(fields)} fields, the header has {len(header)}")
            rows.append((line, {h: f.strip() for h, f in zip(header, fields)}))
    except csv.Error as e:
        raise UserError(f"{path}: line {rdr.line_num}: malformed CSV ({e})") from None
    return header, rows


def layout(header: list[str]) -> str:
    h = set(header)
    if {"date", "victim"} <= h:
        return "incidents"  # without an id column (an index such as tayvano's), ids are synthesised
    if "incident" in h and ("address" in h or "txid" in h) and "chain" in h:
        return "seeds"
    if {"id", "period_start", "period_end", "amount_usd"} <= h:
        return "aggregates"
    raise UserError("unrecognised incidents CSV header " + ", ".join(header) +
                    " (expected [id,]date,victim,... or incident,chain,address,... or id,period_start,period_end,...)")


def _split(v: str, sep: str) -> list[str]:
    return [x.strip() for x in v.split(sep) if x.strip()] if v else []


def _same_incident(date: str, victim: str, known: list[dict]) -> str | None:
    """The id of a known incident on the same date whose victim names the same party (loosely)."""
    v = "".join(c for c in victim.lower() if c.isalnum())
    for k in known:
        kv = "".join(c for c in (k.get("victim") or "").lower() if c.isalnum())
        if str(k.get("date"))[:10] == date and v and kv and (v in kv or kv in v):
            return k["incident_id"]
    return None


def _incidents(path: str, rows, known: list[dict] | None = None) -> Parsed:
    out = Parsed(kind="incidents", path=path)
    same: list[str] = []
    seen = set()
    synthesise = bool(rows) and "id" not in rows[0][1]
    if synthesise:
        out.notes.append("no id column: incident ids synthesised as idx-<date>-<victim> (marked in notes)")
    for line, r in rows:
        where = f"{path}: line {line}"
        iid = r.get("id", "")
        if synthesise:
            d = iso_date(r.get("date"), f"{where}: date") or "undated"
            slug = "-".join("".join(c if c.isalnum() else " " for c in (r.get("victim") or "").lower()).split())
            iid = f"idx-{d}-{slug[:40]}"
            n = 2
            while iid in seen:
                iid, n = f"idx-{d}-{slug[:40]}-{n}", n + 1
            dup = _same_incident(d, r.get("victim") or "", known or [])
            if dup is not None:  # already catalogued: counting it twice would double the totals
                out.duplicates += 1
                same.append(dup)
                continue
            src = " ".join(x for x in (r.get("source_repo"), r.get("source_path")) if x)
            r = {**r, "notes": "; ".join(x for x in (r.get("notes"), "id synthesised by chaintrace") if x),
                 "sources": r.get("sources") or src}
        if not iid:
            raise UserError(f"{where}: empty id")
        if iid in seen:
            raise UserError(f"{where}: duplicate incident id {iid!r}")
        seen.add(iid)
        if not r.get("victim"):
            raise UserError(f"{where}: empty victim")
        date = iso_date(r.get("date"), f"{where}: date")
        if date is None:
            raise UserError(f"{where}: empty date")
        att = (r.get("attribution") or "").lower() or None
        if att is not None and att not in ATTRIBUTIONS:
            raise UserError(f"{where}: attribution {att!r} is not one of {', '.join(ATTRIBUTIONS)}")
        amount_asset = r.get("amount_asset") or None
        if amount_asset is not None:
            try:
                Decimal(amount_asset.replace(",", ""))
            except ArithmeticError:
                raise UserError(f"{where}: amount_asset {amount_asset!r} is not a number") from None
            amount_asset = amount_asset.replace(",", "")
        out.incidents.append(Incident(
            id=iid, date=date, victim=r["victim"], date_end=iso_date(r.get("date_end"), f"{where}: date_end"),
            title=r.get("title") or None, kind=r.get("kind") or None,
            chains=[addr.chain_of(c) or c.lower() for c in _split(r.get("chains", ""), ";")],
            asset=r.get("asset") or None, amount_asset=amount_asset,
            amount_usd=usd(r.get("amount_usd"), f"{where}: amount_usd"), actor=r.get("actor") or None,
            actor_detail=r.get("actor_detail") or None, attribution=att,
            attributed_by=r.get("attributed_by") or None, sources=_split(r.get("sources", ""), "|"),
            notes=r.get("notes") or None, line=line))
    if same:
        out.notes.append(f"{len(same)} rows are incidents already known (same date and victim), not imported "
                         f"twice: {', '.join(same[:12])}" + (" ..." if len(same) > 12 else ""))
    return out


def _aggregates(path: str, rows) -> Parsed:
    out = Parsed(kind="incidents", path=path)
    for line, r in rows:
        where = f"{path}: line {line}"
        start = iso_date(r.get("period_start"), f"{where}: period_start")
        end = iso_date(r.get("period_end"), f"{where}: period_end")
        amount = usd(r.get("amount_usd"), f"{where}: amount_usd")
        if not r.get("id") or start is None or end is None or amount is None:
            raise UserError(f"{where}: id, period_start, period_end and amount_usd are required")
        out.aggregates.append(Aggregate(id=r["id"], period_start=start, period_end=end, scope=r.get("scope", ""),
                                        amount_usd=amount, actor=r.get("actor") or None,
                                        sources=_split(r.get("sources", ""), "|"), line=line))
    return out


def _match_incident(ref: str, date: str | None, known: list[dict]) -> str | None:
    ids = {i["incident_id"] for i in known}
    if ref in ids:
        return ref
    q = reg.norm_alias(ref)
    if not q:
        return None
    cands = []
    for i in known:
        names = [reg.norm_alias(x) for x in (i["incident_id"], i.get("victim") or "", i.get("title") or "") if x]
        if any(q == n or (len(q) >= 4 and q in n) or (len(n) >= 4 and n in q) for n in names):
            cands.append(i)
    if date and len(cands) > 1:
        year = date[:4]
        cands = [i for i in cands if str(i.get("date"))[:4] == year] or cands
    return cands[0]["incident_id"] if len(cands) == 1 else None


def _seeds(path: str, rows, known: list[dict]) -> Parsed:
    out = Parsed(kind="incidents", path=path)
    cache: dict[tuple, str | None] = {}
    seen = set()
    for line, r in rows:
        ref = r.get("incident", "")
        date = r.get("incident_date") or None
        if (ref, date) not in cache:
            cache[(ref, date)] = _match_incident(ref, date, known)
        iid = cache[(ref, date)]
        a = r.get("address") or None
        chain = addr.chain_of(r.get("chain"), a)
        if iid is None:
            out.rejects.append(Reject(path, line, a, chain, f"unknown incident {ref!r} (import it first, or use "
                                                             f"an incident id from `chaintrace intel incidents`)"))
            continue
        if chain is None:
            out.rejects.append(Reject(path, line, a, None, f"unknown chain {r.get('chain')!r}"))
            continue
        if a is None and not r.get("txid"):
            out.rejects.append(Reject(path, line, None, chain, "row has neither address nor txid"))
            continue
        if a is not None:
            why = addr.check(chain, a)
            if why:
                out.rejects.append(Reject(path, line, a, chain, why))
                continue
        ident = (iid, chain, addr.key(chain, a) if a else None, r.get("txid"))
        if ident in seen:
            out.duplicates += 1
            continue
        seen.add(ident)
        source = r.get("source") or " ".join(x for x in (r.get("source_repo"), r.get("source_path")) if x) or None
        out.seeds.append(Seed(incident=iid, chain=chain, address=a, txid=r.get("txid") or None,
                              role=r.get("role") or r.get("role_as_labeled") or None, side=r.get("side") or None,
                              source=source, line=line))
    return out


def parse_incidents_text(text: str, path: str, known: list[dict] | None = None) -> Parsed:
    header, rows = _reader(text, path)
    try:
        kind = layout(header)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    if kind == "incidents":
        return _incidents(path, rows, known)
    if kind == "aggregates":
        return _aggregates(path, rows)
    return _seeds(path, rows, known if known is not None else [])


def parse_incidents_csv(path: str | Path, ws: RegistryLike = None) -> Parsed:
    """Read an incidents, seeds or aggregates CSV (see the module docstring)."""
    path = Path(path)
    text = read_text(path)
    known = all_incidents(ws)[0] if ws is not None else [_row(i) for i in builtin().incidents]
    return parse_incidents_text(text, str(path), known)


# ------------------------------------------------------------------------------------------- built-in


@lru_cache(maxsize=1)
def builtin() -> Parsed:
    """The packaged DPRK catalogue: incidents, seed addresses and aggregates (each row with sources)."""
    out = Parsed(kind="builtin", path="chaintrace/data/intel")
    base = resources.files("chaintrace").joinpath(_DATA)
    inc = parse_incidents_text(base.joinpath("dprk_incidents.csv").read_text(encoding="utf-8"),
                               "dprk_incidents.csv")
    out.incidents = inc.incidents
    known = [_row(i) for i in out.incidents]
    seeds = parse_incidents_text(base.joinpath("dprk_seeds.csv").read_text(encoding="utf-8"), "dprk_seeds.csv",
                                 known)
    if seeds.rejects:
        raise AssertionError(f"built-in seeds rejected: {seeds.rejects[:3]}")
    out.seeds = seeds.seeds
    out.aggregates = parse_incidents_text(base.joinpath("dprk_aggregates.csv").read_text(encoding="utf-8"),
                                          "dprk_aggregates.csv").aggregates
    return out


def _row(i: Incident, import_id=None) -> dict:
    return {"incident_id": i.id, "date": i.date, "date_end": i.date_end, "victim": i.victim, "title": i.title,
            "kind": i.kind, "chains": i.chains, "asset": i.asset, "amount_asset": i.amount_asset,
            "amount_usd": i.amount_usd, "actor": i.actor, "actor_detail": i.actor_detail,
            "attribution": i.attribution, "attributed_by": i.attributed_by, "sources": i.sources,
            "notes": i.notes, "origin": "built-in" if import_id is None else f"import #{import_id}"}


def _iso(v):
    return v.isoformat() if isinstance(v, (_dt.date, _dt.datetime)) else v


def all_incidents(ws: RegistryLike) -> tuple[list[dict], list[dict], list[dict]]:
    """(incidents, seeds, aggregates) as dicts: the built-in catalogue plus the workspace's imports."""
    b = builtin()
    inc = {i.id: _row(i) for i in b.incidents}
    seeds = [{"incident_id": s.incident, "chain": s.chain, "address": s.address,
              "addr_key": addr.key(s.chain, s.address) if s.address else None, "txid": s.txid, "role": s.role,
              "side": s.side, "source": s.source, "origin": "built-in"} for s in b.seeds]
    aggs = {g.id: {"aggregate_id": g.id, "period_start": g.period_start, "period_end": g.period_end,
                   "scope": g.scope, "amount_usd": g.amount_usd, "actor": g.actor, "sources": g.sources,
                   "origin": "built-in"} for g in b.aggregates}
    with reg.reader(ws) as con:
        if con is not None:
            cur = con.execute(f"SELECT * FROM {reg.SCHEMA}.incidents ORDER BY import_id")
            cols = [d[0] for d in cur.description]
            for r in cur.fetchall():
                d = dict(zip(cols, r))
                d = {k: _iso(v) for k, v in d.items()}
                d["origin"] = f"import #{d.pop('import_id')}"
                d.pop("line", None)
                inc[d["incident_id"]] = d
            cur = con.execute(f"SELECT * FROM {reg.SCHEMA}.incident_seeds ORDER BY import_id")
            cols = [d[0] for d in cur.description]
            for r in cur.fetchall():
                d = dict(zip(cols, r))
                d["origin"] = f"import #{d.pop('import_id')}"
                d.pop("line", None)
                seeds.append(d)
            cur = con.execute(f"SELECT * FROM {reg.SCHEMA}.aggregates ORDER BY import_id")
            cols = [d[0] for d in cur.description]
            for r in cur.fetchall():
                d = {k: _iso(v) for k, v in zip(cols, r)}
                d["origin"] = f"import #{d.pop('import_id')}"
                d.pop("line", None)
                aggs[d["aggregate_id"]] = d
    return sorted(inc.values(), key=lambda d: (str(d["date"]), d["incident_id"])), seeds, \
        sorted(aggs.values(), key=lambda d: (str(d["period_start"]), d["aggregate_id"]))


def timeline(ws: RegistryLike, *, actor: str | None = None, since: int | str | None = None,
             until: int | str | None = None, attribution: str | None = None) -> dict:
    """The incident timeline with amounts, filtered by actor (any alias, e.g. "lazarus", "APT38"), first
    year `since` and last year `until`; plus the sourced aggregates of the same span and exact USD totals.

    Returns ``{"incidents": [...], "aggregates": [...], "total_usd": Decimal, "counted": n, "actors": [ids]}``
    where each incident carries ``seeds`` (its number of seed addresses/transactions).
    """
    from chaintrace.intel.actors import all_actors, resolve

    inc, seeds, aggs = all_incidents(ws)
    ids = None
    if actor:
        actors = all_actors(ws)
        ids = resolve(ws, actor, actors=actors)
        if not ids:
            raise UserError(f"--actor {actor!r} names no known actor (see `chaintrace intel actors`)")
        names = {reg.norm_alias(n) for aid in ids for n in (aid, actors[aid]["name"], *actors[aid]["aliases"])}
    lo = str(since) if since is not None else None
    hi = str(until) if until is not None else None
    if lo is not None and not (len(lo) == 4 and lo.isdigit()):
        raise UserError(f"--since {since!r}: expected a year (e.g. 2020)")
    if hi is not None and not (len(hi) == 4 and hi.isdigit()):
        raise UserError(f"--until {until!r}: expected a year (e.g. 2024)")
    if attribution is not None and attribution not in ATTRIBUTIONS:
        raise UserError(f"--attribution {attribution!r}: expected one of {', '.join(ATTRIBUTIONS)}")
    n_seeds: dict[str, int] = {}
    for s in seeds:
        n_seeds[s["incident_id"]] = n_seeds.get(s["incident_id"], 0) + 1
    out = []
    for i in inc:
        year = str(i["date"])[:4]
        if lo and year < lo or hi and year > hi:
            continue
        if attribution and i.get("attribution") != attribution:
            continue
        if ids is not None:
            a = i.get("actor")
            detail = reg.norm_alias(i.get("actor_detail") or "")
            if a not in ids and not (detail and any(len(n) >= 4 and n in detail for n in names)):
                continue
        out.append({**i, "seeds": n_seeds.get(i["incident_id"], 0)})
    agg = []
    for g in aggs:
        if lo and str(g["period_end"])[:4] < lo or hi and str(g["period_start"])[:4] > hi:
            continue
        if ids is not None and g.get("actor") and g["actor"] not in ids:
            continue
        agg.append(g)
    total = sum((i["amount_usd"] for i in out if i.get("amount_usd") is not None), Decimal(0))
    return {"incidents": out, "aggregates": agg, "total_usd": total,
            "counted": sum(1 for i in out if i.get("amount_usd") is not None),
            "actors": sorted(ids) if ids is not None else None}
