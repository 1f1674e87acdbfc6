"""STIX 2.1 export of the registry: incidents, actors, addresses, transactions, trace findings.

:func:`build_bundle` returns a bundle dict; the same registry state always gives the same objects (ids,
timestamps and order), so a fact exported twice is the same object and a receiver deduplicates it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.share import source, stix
from chaintrace.share.source import TLP_RANK, norm_tlp

_SYMBOL = {"btc": "BTC", "eth": "ETH", "trx": "TRX", "bsc": "BNB", "ltc": "LTC", "xmr": "XMR", "polygon": "MATIC"}


class _Builder:
    def __init__(self, producer_name: str, tlp: str | None):
        self.objects: dict[str, dict] = {}
        self.floor = norm_tlp(tlp) if tlp else None
        if tlp and self.floor is None:
            raise UserError(f"--tlp: {tlp!r} is not a TLP level (clear, green, amber, amber+strict, red)")
        self.producer = stix.identity(producer_name, key="producer|" + producer_name.lower())
        self.producer["sectors"] = ["financial-services"]
        self.used_levels: set[str] = set()
        self._marks: dict[str | None, list[str]] = {}

    def level(self, own: str | None) -> str:
        lv = norm_tlp(own) or "clear"
        if self.floor and TLP_RANK[self.floor] > TLP_RANK[lv]:
            lv = self.floor
        self.used_levels.add(lv)
        return lv

    def marks(self, own: str | None = None) -> list[str]:
        m = self._marks.get(own)
        if m is None:
            m = self._marks[own] = [stix.TLP2_IDS[self.level(own)]]
        return list(m)

    def add(self, obj: dict) -> str:
        old = self.objects.get(obj["id"])
        if old is not None and old.get("object_marking_refs") and obj.get("object_marking_refs"):
            # one object, several facts: keep the most restrictive marking of them
            a, b = old["object_marking_refs"][0], obj["object_marking_refs"][0]
            if TLP_RANK[stix.TLP_BY_ID[b]] > TLP_RANK[stix.TLP_BY_ID[a]]:
                old["object_marking_refs"] = obj["object_marking_refs"]
            return obj["id"]
        if old is None:
            self.objects[obj["id"]] = obj
        return obj["id"]

    def rel(self, kind: str, src: str, dst: str, own: str | None = None, created: str = stix.EPOCH,
            description: str | None = None, producer: str | None = None) -> None:
        self.add(stix.relationship(kind, src, dst, producer=producer or self.producer["id"],
                                   markings=self.marks(own), created=created, description=description))

    def wallet(self, chain: str, address: str, own: str | None, labels=None, description=None) -> str:
        return self.add(stix.wallet(address, chain, _SYMBOL.get(chain, chain.upper()), markings=self.marks(own),
                                    producer=self.producer["id"], labels=labels, description=description))


# --------------------------------------------------------------------------------------------- pieces


def _actor_ids(b: _Builder, actors: dict) -> dict[str, str]:
    """intrusion-set per actor (MITRE ATT&CK ids where the group has one); DPRK actors attributed to the
    Reconnaissance General Bureau (threat-actor, nation-state) located in KP."""
    out: dict[str, str] = {}
    need_rgb = False
    for aid in sorted(actors):
        a = actors[aid]
        mitre = stix.ATTACK_GROUPS.get(aid)
        sid = mitre[1] if mitre else stix.sdo_id("intrusion-set", aid)
        refs = []
        if mitre:
            refs.append({"source_name": "mitre-attack", "external_id": mitre[0],
                         "url": f"https://attack.mitre.org/groups/{mitre[0]}"})
        o = {"type": "intrusion-set", "spec_version": "2.1", "id": sid, "created": stix.EPOCH,
             "modified": stix.EPOCH, "name": a.get("name") or aid, "created_by_ref": b.producer["id"],
             "object_marking_refs": b.marks(None)}
        aliases = sorted({x for x in a.get("aliases", ()) if x and x != o["name"]}, key=str.lower)
        if aliases:
            o["aliases"] = aliases
        refs += [{"source_name": "chaintrace-actor", "external_id": aid}]
        refs += [{"source_name": "reference", "url": u} for u in (a.get("refs") or [])[:10] if u.startswith("http")]
        o["external_references"] = refs
        b.add(o)
        out[aid] = sid
        if (a.get("country") or "").upper() == "KP":
            b.rel("attributed-to", sid, stix.RGB_ACTOR)
            need_rgb = True
    if need_rgb:
        b.add({"type": "threat-actor", "spec_version": "2.1", "id": stix.RGB_ACTOR, "created": stix.EPOCH,
               "modified": stix.EPOCH, "name": "Reconnaissance General Bureau (DPRK)",
               "threat_actor_types": ["nation-state"], "primary_motivation": "organizational-gain",
               "created_by_ref": b.producer["id"], "object_marking_refs": b.marks(None)})
        b.add({"type": "location", "spec_version": "2.1", "id": stix.KP_LOCATION, "created": stix.EPOCH,
               "modified": stix.EPOCH, "name": "North Korea", "country": "KP",
               "created_by_ref": b.producer["id"], "object_marking_refs": b.marks(None)})
        b.rel("located-at", stix.RGB_ACTOR, stix.KP_LOCATION)
    return out


def _sanctions(b: _Builder, tags, actor_sid: dict[str, str]) -> None:
    for t in tags:
        e = t.extra or {}
        value = e.get("address_as_written") or t.address
        w = b.wallet(t.chain, value, t.tlp, labels=["sanction"])
        created = stix.ts(t.valid_from or e.get("listed_date"))
        name = f"{t.label} ({e.get('asset') or t.chain.upper()})"
        refs = [{"source_name": (t.source or "sanctions list").split(" (")[0], "external_id": str(e["uid"]),
                 "description": "sanctions list entity id (SDN FixedRef)"}] if e.get("uid") else None
        desc = "Sanctioned address" + (f"; programs {', '.join(e['programs'])}" if e.get("programs") else "") + \
            (f"; listed {e['listed_date']}" if e.get("listed_date") else "")
        ind = b.add(stix.indicator(("sanction", t.source, t.chain, t.address, t.valid_from), value, name=name,
                                   description=desc, markings=b.marks(t.tlp), producer=b.producer["id"],
                                   created=created, valid_from=created,
                                   valid_until=stix.ts(t.valid_to) if t.valid_to else None,
                                   indicator_types=("attribution",), confidence=t.confidence,
                                   labels=["sanction"], external_references=refs))
        b.rel("based-on", ind, w, created=created)
        if t.actor in actor_sid:
            b.rel("indicates", ind, actor_sid[t.actor], created=created)


def _incidents(b: _Builder, incidents, seeds, actor_sid, only: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    made_by: dict[str, str] = {}  # incident id -> the STIX id of its producer (ours, or the peer that shared it)
    for i in incidents:
        if only and i["incident_id"] != only:
            continue
        created = stix.ts(i.get("date"))
        ctx = _share_context(i.get("context"))  # a shared incident keeps its producer's ids
        iid = ctx.get("incident") or stix.sdo_id("incident", i["incident_id"])
        producer = b.producer["id"]
        if ctx.get("producer") and ctx.get("producer_name"):
            producer = b.add({**stix.identity(ctx["producer_name"]), "id": ctx["producer"],
                              "object_marking_refs": [stix.TLP2_IDS["clear"]]})
        own = i.get("tlp")
        facts = {k: (_usd(v) if v is not None and k == "amount_usd" else v) for k, v in (
            ("incident_id", i["incident_id"]), ("date", i.get("date")), ("date_end", i.get("date_end")),
            ("kind", i.get("kind")), ("chains", list(i.get("chains") or []) or None), ("asset", i.get("asset")),
            ("amount_asset", i.get("amount_asset")), ("amount_usd", i.get("amount_usd")),
            ("actor_detail", i.get("actor_detail")), ("attribution", i.get("attribution")),
            ("attributed_by", i.get("attributed_by")), ("notes", i.get("notes"))) if v not in (None, "", [])}
        o = {"type": "incident", "spec_version": "2.1", "id": iid, "created": created, "modified": created,
             "name": i.get("title") or i.get("victim") or i["incident_id"],
             "description": f"Victim: {i.get('victim')}." + (f" {i['notes']}" if i.get("notes") else ""),
             "created_by_ref": producer, "object_marking_refs": b.marks(own),
             "extensions": {stix.INCIDENT_EXTENSION: {"extension_type": "property-extension", **facts}}}
        if i.get("confidence") is not None:
            o["confidence"] = int(i["confidence"])
        refs = [{"source_name": "source", "url": u} for u in (i.get("sources") or []) if str(u).startswith("http")]
        if refs:
            o["external_references"] = refs
        b.add(o)
        out[i["incident_id"]] = iid
        made_by[i["incident_id"]] = producer
        if i.get("victim"):
            vo = stix.identity(i["victim"], key="victim|" + i["victim"].lower(), created=created, created_by=producer)
            if ctx.get("victim"):
                vo["id"] = ctx["victim"]
            victim = b.add(vo)
            b.objects[victim].setdefault("object_marking_refs", b.marks(own))
            b.rel("related-to", iid, victim, own, created=created, description="victim", producer=producer)
        if i.get("actor") in actor_sid:
            b.rel("attributed-to", iid, actor_sid[i["actor"]], own, created=created, producer=producer)
    by_id = {i["incident_id"]: i for i in incidents}
    for s in seeds:
        if s["incident_id"] not in out:
            continue
        i = by_id[s["incident_id"]]
        created = stix.ts(i.get("date"))
        chain, own, by = s["chain"], i.get("tlp"), made_by[s["incident_id"]]
        if s.get("address"):
            is_victim = (s.get("side") or "").lower().startswith("victim")
            w = b.wallet(chain, s["address"], own, labels=["victim" if is_victim else "service_hack"])
            if is_victim:
                b.rel("related-to", w, out[s["incident_id"]], own, created=created, description="victim address",
                      producer=by)
                continue
            title = i.get("title") or i["incident_id"]
            ind = b.add(stix.indicator(("seed", s["incident_id"], chain, source.addr_key(chain, s["address"])),
                                       s["address"], name=f"{title}: {s.get('role') or 'attacker address'}",
                                       description=s.get("source"), markings=b.marks(own),
                                       producer=by, created=created, valid_from=created,
                                       indicator_types=("malicious-activity", "attribution"),
                                       confidence=60 if i.get("attribution") == "confirmed" else 50,
                                       labels=["service_hack"]))
            b.rel("based-on", ind, w, own, created=created, producer=by)
            b.rel("related-to", ind, out[s["incident_id"]], own, created=created, producer=by)
            if i.get("actor") in actor_sid:
                b.rel("indicates", ind, actor_sid[i["actor"]], own, created=created, producer=by)
        if s.get("txid"):
            tx = b.add(stix.transaction(_SYMBOL.get(chain, chain.upper()), s["txid"], markings=b.marks(own)))
            b.rel("related-to", tx, out[s["incident_id"]], own, created=created, description=s.get("role"),
                  producer=by)
    return out


def _usd(v) -> str:
    """An exact USD amount as a canonical decimal string: 625000000.00 (the registry's DECIMAL(18,2)) and
    625000000 (the catalogue) are the same fact, so they give the same bytes."""
    from decimal import Decimal

    txt = format(Decimal(str(v)), "f")
    return txt.rstrip("0").rstrip(".") if "." in txt else txt


def _share_context(raw) -> dict:
    """The ``chaintrace_share`` part of a registry row's context JSON (STIX ids it was imported with)."""
    import json

    if not raw:
        return {}
    try:
        return json.loads(raw).get("chaintrace_share") or {}
    except (ValueError, AttributeError):
        return {}


def _tags(b: _Builder, tags, actor_sid) -> None:
    import json

    for t in tags:
        e = t.extra or {}
        value = e.get("address_as_written") or t.address
        ctx: dict = {}
        if e.get("context"):
            try:
                ctx = json.loads(e["context"]).get("chaintrace_share") or {}
            except (ValueError, AttributeError):
                ctx = {}
        producer = b.producer["id"]
        if ctx.get("producer") and ctx.get("producer_name"):
            producer = b.add({**stix.identity(ctx["producer_name"]), "id": ctx["producer"]})
        labels = sorted({x for x in (t.category, t.abuse) if x})
        w = b.wallet(t.chain, value, t.tlp, labels=labels or None)
        created = stix.ts(t.lastmod or t.valid_from)
        o = stix.indicator(("tag", t.chain, t.address, t.label, t.source), value, name=t.label,
                           description=t.source and f"Source: {t.source}", markings=b.marks(t.tlp),
                           producer=producer, created=created, valid_from=stix.ts(t.valid_from or t.lastmod),
                           valid_until=stix.ts(t.valid_to) if t.valid_to else None,
                           indicator_types=("malicious-activity",) if t.category not in (None, "exchange")
                           else ("attribution",), confidence=t.confidence, labels=labels or None)
        if ctx.get("indicator"):
            o["id"] = ctx["indicator"]
        ind = b.add(o)
        b.rel("based-on", ind, w, created=created)
        if t.actor in actor_sid:
            b.rel("indicates", ind, actor_sid[t.actor], created=created)


def _trace(b: _Builder, path: str | Path, incident_sid: dict[str, str], seeds: list[dict]) -> None:
    from chaintrace.trace.report import TraceReport

    try:
        rep = TraceReport.read_json(path)
    except Exception as e:  # noqa: BLE001 - any unreadable report is the user's file
        raise UserError(f"{path}: not a chaintrace trace report ({e})") from None
    sym = _SYMBOL.get(rep.chain, rep.chain.upper())
    refs: list[str] = []
    seed_specs = {s.spec.lower() for s in rep.seeds}
    for s in seeds:  # the incident whose seed addresses or transactions started this trace
        for v in (s.get("address"), s.get("txid")):
            if v and v.lower() in seed_specs and s["incident_id"] in incident_sid:
                refs.append(incident_sid[s["incident_id"]])
    cash_outs = []
    for sink in rep.sinks:
        w = b.wallet(rep.chain, sink.address, None, labels=[sink.category] if sink.category else None,
                     description=sink.label)
        refs.append(w)
        tx = b.add(stix.transaction(sym, sink.txid, markings=b.marks(None)))
        refs.append(tx)
        cash_outs.append({"address": sink.address, "wallet_ref": w, "label": sink.label, "category": sink.category,
                          "actor": sink.actor, "amount": str(sink.amount), "asset": sink.asset, "hops": sink.hops,
                          "txid": sink.txid, "transaction_ref": tx, "ref": sink.ref, "time": sink.time})
    paths = [{"to": p.to, "kind": p.kind, "amount": str(p.amount), "asset": p.asset,
              "steps": [{"hop": st.hop, "txid": st.txid, "ref": st.ref, "address": st.address,
                         "amount": str(st.amount)} for st in p.steps]} for p in rep.paths]
    totals = {a: {k: str(v) for k, v in rep.totals(a).items()} for a in rep.total_seeded}
    times = [s.time for s in rep.sinks if s.time]
    from chaintrace.trace.report import iso

    published = stix.ts(iso(max(times))) if times else stix.EPOCH
    seeds_txt = ", ".join(s.spec for s in rep.seeds)
    digest = hashlib.sha256(rep.to_json(None).encode()).hexdigest()
    b.add({"type": "report", "spec_version": "2.1", "id": stix.sdo_id("report", "trace", digest),
           "created": published, "modified": published, "published": published,
           "name": f"Trace findings: {rep.chain} from {seeds_txt}"[:250],
           "description": f"Where traced value went ({rep.policy.get('name')} policy): {len(rep.sinks)} cash-out "
                          f"transfers" + (" (partial trace)" if rep.partial else "") + ".",
           "report_types": ["threat-report"], "object_refs": list(dict.fromkeys(refs)) or [b.producer["id"]],
           "created_by_ref": b.producer["id"], "object_marking_refs": b.marks(None),
           "extensions": {stix.REPORT_EXTENSION: {
               "extension_type": "property-extension", "chain": rep.chain, "network": rep.network,
               "policy": rep.policy.get("name"), "partial": rep.partial,
               "seeds": [{"spec": s.spec, "amount": str(s.amount), "asset": s.asset} for s in rep.seeds],
               "totals": totals, "cash_outs": cash_outs, "paths": paths, "report_sha256": digest}}})


def _screening(b: _Builder, path: str | Path, actor_sid: dict[str, str]) -> int:
    """Screening hits (``chaintrace screen address ... --format json``) as sightings: the producer saw each
    flagged address (an indicator based on its wallet) when the result file was written."""
    import datetime as dt
    import json

    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        results = doc["results"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not a screening result (`chaintrace screen address ... --format json`): {e}") \
            from None
    seen = stix.ts(dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"))
    n = 0
    for r in results:
        if r.get("invalid") or r.get("risk") in (None, "none", "unknown") or not r.get("chain"):
            continue
        chain, subject = r["chain"], r["subject"]
        exps = r.get("exposures") or []
        cats = sorted({e.get("category") for e in exps if e.get("category")})
        w = b.wallet(chain, subject, None, labels=cats or None)
        ind = b.add(stix.indicator(("screen-hit", chain, source.addr_key(chain, subject)), subject,
                                   name=f"Screening hit: {subject} ({r['risk']})",
                                   description=f"risk {r['risk']} (score {r.get('score')}): "
                                               f"{', '.join(cats) or 'no category'}; "
                                               f"{len(exps)} exposure(s)", markings=b.marks(None),
                                   producer=b.producer["id"], created=seen, valid_from=seen,
                                   labels=cats or None))
        b.rel("based-on", ind, w, created=seen)
        for actor in sorted({e.get("actor") for e in exps if e.get("actor") in actor_sid}):
            b.rel("indicates", ind, actor_sid[actor], created=seen)
        b.add({"type": "sighting", "spec_version": "2.1",
               "id": stix.sdo_id("sighting", chain, source.addr_key(chain, subject), seen),
               "created": seen, "modified": seen, "first_seen": seen, "last_seen": seen, "count": 1,
               "sighting_of_ref": ind, "where_sighted_refs": [b.producer["id"]],
               "description": f"{subject} screened {r['risk']} (score {r.get('score')}) by {b.producer['name']}",
               "created_by_ref": b.producer["id"], "object_marking_refs": b.marks(None)})
        n += 1
    return n


# ----------------------------------------------------------------------------------------------- API


def build_bundle(ws, *, tlp: str | None = None, incident: str | None = None, trace: str | Path | None = None,
                 producer: str = "chaintrace", include_restricted: bool = False,
                 screening: str | Path | None = None) -> tuple[dict, dict]:
    """The STIX 2.1 bundle of a selection of the registry, and a summary (counts per type, what was held back).

    No filter: the shareable registry (sanctions, the incident catalogue with its actors, imported intel that
    may be redistributed). `incident`: that incident, its victim, actor and seed addresses. `trace`: a trace
    report JSON as a ``report`` of its cash-out addresses (plus the incident it started from, when known).
    `screening`: a screening result JSON whose flagged addresses become ``sighting``s by the producer.
    `tlp`: the lowest marking of every object (an object already marked higher keeps its own marking).
    """
    b = _Builder(producer, tlp)
    f = source.facts(ws, include_restricted=include_restricted)
    if incident and incident not in {i["incident_id"] for i in f.incidents}:
        held = [why for why in f.held_back if why.endswith("incident")]
        if held:
            raise UserError(f"--incident: no shareable incident {incident!r} (held back: {', '.join(held)}; "
                            f"AMBER needs --include-restricted, RED never leaves)")
        raise UserError(f"--incident: no incident {incident!r} (see `chaintrace intel timeline`)")
    actor_sid = _actor_ids(b, f.actors)
    selective = incident is not None or trace is not None or screening is not None
    if not selective:
        _sanctions(b, f.sanctions, actor_sid)
        _tags(b, f.tags, actor_sid)
    inc_sid = _incidents(b, f.incidents, f.seeds, actor_sid, incident) if (incident or not selective) else {}
    if trace is not None:
        if not inc_sid:
            for k in sorted(_trace_incidents(trace, f.seeds)):
                inc_sid.update(_incidents(b, f.incidents, f.seeds, actor_sid, k))
        _trace(b, trace, inc_sid, f.seeds)
    if screening is not None:
        _screening(b, screening, actor_sid)
    head = [b.producer] + [stix.marking_definition(lv) for lv in stix.TLP_LEVELS] + \
        stix.extension_definitions(b.producer["id"])
    b.producer["object_marking_refs"] = [stix.TLP2_IDS["clear"]]
    objs = head + [o for o in b.objects.values() if o["id"] != b.producer["id"]]
    if selective:
        objs = _prune_actors(objs)
    key = hashlib.sha256("\n".join(sorted(o["id"] + (o.get("modified") or "") for o in objs)).encode()).hexdigest()
    counts: dict[str, int] = {}
    for o in objs:
        counts[o["type"]] = counts.get(o["type"], 0) + 1
    return stix.bundle(objs, key), {"objects": len(objs), "by_type": counts, "held_back": f.held_back,
                                    "registry_generation": f.generation, "tlp_floor": b.floor}


def _trace_incidents(trace, seeds) -> set[str]:
    import json

    try:
        d = json.loads(Path(trace).read_text(encoding="utf-8"))
        specs = {str(s.get("spec", "")).lower() for s in d.get("seeds", [])}
    except (OSError, ValueError, AttributeError):
        return set()
    return {s["incident_id"] for s in seeds for v in (s.get("address"), s.get("txid")) if v and v.lower() in specs}


def _prune_actors(objs: list[dict]) -> list[dict]:
    """In a filtered export keep only the actors (and their relationships) something else refers to."""
    actor_types = {"intrusion-set", "threat-actor", "location"}
    referenced: set[str] = set()
    for o in objs:
        if o["type"] == "relationship" and o["source_ref"].split("--")[0] not in actor_types:
            referenced.add(o["target_ref"])
    changed = True
    while changed:
        changed = False
        for o in objs:
            if o["type"] == "relationship" and o["source_ref"] in referenced and o["target_ref"] not in referenced:
                referenced.add(o["target_ref"])
                changed = True
    keep = []
    for o in objs:
        if o["type"] in actor_types and o["id"] not in referenced:
            continue
        if o["type"] == "relationship" and o["source_ref"].split("--")[0] in actor_types \
                and o["source_ref"] not in referenced:
            continue
        keep.append(o)
    return keep
