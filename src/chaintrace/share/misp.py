"""MISP: event JSON and feed directories (``manifest.json``, ``hashes.csv``, ``<uuid>.json``), both ways.

Export: one event per incident (its attacker addresses and transactions, the actor as a galaxy cluster),
one for the sanctions list addresses and one for other shareable tags. Bitcoin addresses are ``btc``
attributes (MISP correlates them); every other chain goes into a ``coin-address`` object (MISP has no eth/trx
type), transactions into ``cryptocurrency-transaction`` objects. TLP travels as a ``tlp:*`` tag.

Import: ``btc``/``xmr``/``dash`` attributes, ``coin-address`` and ``btc-wallet`` objects (addresses) and
``cryptocurrency-transaction`` objects (their address), the event's ``tlp:*`` tag (attribute tags win) and
threat-actor galaxy tags/clusters, with the creator organisation as provenance.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

from chaintrace.errors import UserError
from chaintrace.intel.model import Reject
from chaintrace.model.tags import Tag
from chaintrace.share import source, stix

COIN_ADDRESS = ("d0e6997e-78da-4815-a6a1-cfc1c1cb8a46", "7")
CRYPTO_TX = ("a4aab70f-fd38-4bbb-9c4a-e4a4c3ae1f86", "3")
LAZARUS_GALAXY = "68391641-859f-4a9a-9a1e-3e5cf71ec376"
_SYMBOL = {"btc": "BTC", "eth": "ETH", "trx": "TRX", "bsc": "BNB", "ltc": "LTC", "xmr": "XMR"}


def _uuid(*key: object) -> str:
    return str(uuid.uuid5(stix.CHAINTRACE_NAMESPACE, "misp|" + "|".join(map(str, key))))


def _ts(date: str | None) -> str:
    import datetime as dt

    if not date:
        return "1767225600"  # 2026-01-01
    d = dt.date.fromisoformat(str(date)[:10])
    return str(int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()))


def _address_entry(ev: dict, chain: str, address: str, comment: str, key: tuple) -> None:
    if chain == "btc":
        ev["Attribute"].append({"uuid": _uuid("attr", *key), "type": "btc", "category": "Financial fraud",
                                "to_ids": True, "value": address, "comment": comment,
                                "timestamp": ev["timestamp"], "distribution": "5"})
        return
    sym = _SYMBOL.get(chain, chain.upper())
    ev["Object"].append({"uuid": _uuid("obj", *key), "name": "coin-address", "meta-category": "financial",
                         "template_uuid": COIN_ADDRESS[0], "template_version": COIN_ADDRESS[1],
                         "description": "An address used in a cryptocurrency", "comment": comment,
                         "timestamp": ev["timestamp"], "distribution": "5",
                         "Attribute": [
                             {"uuid": _uuid("attr", *key, "a"), "object_relation": "address-crypto", "type": "text",
                              "category": "Financial fraud", "to_ids": True, "value": address,
                              "timestamp": ev["timestamp"], "distribution": "5"},
                             {"uuid": _uuid("attr", *key, "s"), "object_relation": "symbol", "type": "text",
                              "category": "Other", "to_ids": False, "value": sym, "timestamp": ev["timestamp"],
                              "distribution": "5"}]})


def _event(key: str, info: str, date: str | None, org: str, tlp: str, actor_name: str | None = None) -> dict:
    ev: dict[str, Any] = {"uuid": _uuid("event", key), "info": info, "date": str(date or "2026-01-01")[:10],
          "threat_level_id": "2", "analysis": "2", "distribution": "1", "published": True,
          "timestamp": _ts(date), "Orgc": {"name": org, "uuid": _uuid("org", org)},
          "Org": {"name": org, "uuid": _uuid("org", org)},
          "Tag": [{"name": f"tlp:{tlp}", "colour": "#ffffff", "local": False}], "Attribute": [], "Object": []}
    if actor_name:
        ev["Tag"].append({"name": f'misp-galaxy:threat-actor="{actor_name}"', "colour": "#0088cc", "local": False})
    return ev


def build_events(ws, *, tlp: str | None = None, incident: str | None = None, producer: str = "chaintrace",
                 include_restricted: bool = False) -> list[dict]:
    """MISP events (``{"Event": {...}}``) for the shareable registry or one incident."""
    level = source.norm_tlp(tlp) or "clear"
    f = source.facts(ws, include_restricted=include_restricted)
    names = {aid: a.get("name") for aid, a in f.actors.items()}
    events = []
    by_inc: dict[str, list[dict]] = {}
    for s in f.seeds:
        by_inc.setdefault(s["incident_id"], []).append(s)
    for i in f.incidents:
        if incident and i["incident_id"] != incident:
            continue
        seeds = [s for s in by_inc.get(i["incident_id"], []) if not (s.get("side") or "").startswith("victim")]
        if not seeds and not incident:
            continue
        actor = names.get(i["actor"]) if i.get("actor") else None
        own = source.norm_tlp(i.get("tlp")) or "clear"  # a shared incident keeps its producer's TLP
        ev = _event("incident|" + i["incident_id"], i.get("title") or i["incident_id"], i.get("date"), producer,
                    max(level, own, key=source.TLP_RANK.__getitem__), actor)
        if actor == "Lazarus Group":
            ev["Galaxy"] = [{"type": "threat-actor", "name": "Threat Actor",
                             "GalaxyCluster": [{"uuid": LAZARUS_GALAXY, "value": "Lazarus Group",
                                                "type": "threat-actor"}]}]
        for s in seeds:
            if s.get("address"):
                _address_entry(ev, s["chain"], s["address"], s.get("role") or "attacker address",
                               (i["incident_id"], s["chain"], s["address"]))
            elif s.get("txid"):
                ev["Object"].append({
                    "uuid": _uuid("tx", i["incident_id"], s["txid"]), "name": "cryptocurrency-transaction",
                    "meta-category": "financial", "template_uuid": CRYPTO_TX[0], "template_version": CRYPTO_TX[1],
                    "comment": s.get("role") or "", "timestamp": ev["timestamp"], "distribution": "5",
                    "Attribute": [{"uuid": _uuid("tx", i["incident_id"], s["txid"], "n"),
                                   "object_relation": "transaction-number", "type": "text", "category": "Other",
                                   "to_ids": False, "value": s["txid"], "timestamp": ev["timestamp"],
                                   "distribution": "5"},
                                  {"uuid": _uuid("tx", i["incident_id"], s["txid"], "s"), "object_relation": "symbol",
                                   "type": "text", "category": "Other", "to_ids": False,
                                   "value": _SYMBOL.get(s["chain"], s["chain"].upper()),
                                   "timestamp": ev["timestamp"], "distribution": "5"}]})
        events.append({"Event": ev})
    if not incident:
        if f.sanctions:
            ev = _event("sanctions", "Sanctioned cryptocurrency addresses", max(
                (t.valid_from or "" for t in f.sanctions), default=None), producer, level)
            for t in f.sanctions:
                e = t.extra or {}
                _address_entry(ev, t.chain, e.get("address_as_written") or t.address, t.label,
                               ("sanction", t.source, t.chain, t.address))
            events.append({"Event": ev})
        for lv in sorted({source.norm_tlp(t.tlp) or "clear" for t in f.tags}, key=source.TLP_RANK.__getitem__):
            tags = [t for t in f.tags if (source.norm_tlp(t.tlp) or "clear") == lv]
            top = max(lv, level, key=source.TLP_RANK.__getitem__)
            ev = _event("tags|" + lv, f"Attributed addresses ({len(tags)}, TLP:{lv.upper()})", None, producer, top)
            for t in tags:
                e = t.extra or {}
                _address_entry(ev, t.chain, e.get("address_as_written") or t.address,
                               f"{t.label} ({t.category or 'unknown'}; source {t.source})",
                               ("tag", t.chain, t.address, t.label))
            events.append({"Event": ev})
    return events


def write_feed(events: list[dict], out: str | Path) -> dict:
    """A MISP feed directory: ``<uuid>.json`` per event, ``manifest.json``, ``hashes.csv``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {}
    hashes = io.StringIO()
    w = csv.writer(hashes, lineterminator="\n")
    for doc in events:
        ev = doc["Event"]
        (out / f"{ev['uuid']}.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
        manifest[ev["uuid"]] = {"Orgc": ev["Orgc"], "Tag": ev["Tag"], "info": ev["info"], "date": ev["date"],
                                "analysis": int(ev["analysis"]), "threat_level_id": int(ev["threat_level_id"]),
                                "timestamp": int(ev["timestamp"])}
        for a in _all_attributes(ev):
            w.writerow([hashlib.md5(a["value"].encode()).hexdigest(), ev["uuid"]])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    (out / "hashes.csv").write_text(hashes.getvalue(), encoding="utf-8")
    return {"path": str(out), "events": len(events), "format": "misp-feed"}


def _all_attributes(ev: dict):
    yield from ev.get("Attribute") or ()
    for o in ev.get("Object") or ():
        yield from o.get("Attribute") or ()


# ---------------------------------------------------------------------------------------------- import


def read_events(path: Path) -> list[tuple[dict, str]]:
    """(event, where) pairs from an event JSON file (``{"Event":...}``, ``{"response":[...]}``, a list) or
    a feed directory (its manifest names the event files)."""
    if path.is_dir():
        man = path / "manifest.json"
        if not man.exists():
            raise UserError(f"{path}: not a MISP feed directory (no manifest.json)")
        try:
            uuids = list(json.loads(man.read_text(encoding="utf-8")))
        except ValueError as e:
            raise UserError(f"{man}: not JSON ({e})") from None
        out = []
        for u in uuids:
            f = path / f"{u}.json"
            if not f.exists():
                raise UserError(f"{man}: lists event {u} but {f.name} is missing")
            out += read_events(f)
        return out
    try:
        doc = json.loads(path.read_bytes())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    docs = doc.get("response", [doc]) if isinstance(doc, dict) else doc
    out = []
    for i, d in enumerate(docs):
        ev = d.get("Event", d) if isinstance(d, dict) else None
        if not isinstance(ev, dict) or "info" not in ev and "Attribute" not in ev:
            raise UserError(f"{path}: item {i} is not a MISP event (no Event/info)")
        out.append((ev, str(path)))
    return out


def _tlp(tags) -> str | None:
    for t in tags or ():
        n = (t.get("name") or "").lower()
        if n.startswith("tlp:"):
            return source.norm_tlp(n)
    return None


def _actors(ev: dict) -> list[str]:
    names = []
    for t in ev.get("Tag") or ():
        n = t.get("name") or ""
        if n.startswith(("misp-galaxy:threat-actor=", "misp-galaxy:mitre-intrusion-set=")):
            names.append(n.split("=", 1)[1].strip('"').split(" - G")[0])
    for g in ev.get("Galaxy") or ():
        if g.get("type") in ("threat-actor", "mitre-intrusion-set"):
            names += [c.get("value", "").split(" - G")[0] for c in g.get("GalaxyCluster") or ()]
    return [n for n in names if n]


def parse_events(events: list[tuple[dict, str]], where: str, ws=None):
    tags: list[Tag] = []
    rejects: list[Reject] = []
    orgs: set[str] = set()
    seen: set[tuple] = set()
    dups = 0
    for ev, fname in events:
        org = (ev.get("Orgc") or ev.get("Org") or {}).get("name") or "unknown organisation"
        orgs.add(org)
        ev_tlp = _tlp(ev.get("Tag"))
        actor = next((a for a in (source.resolve_actor(ws, n) for n in _actors(ev)) if a), None)
        entries = []  # (value, symbol, comment, tlp, kind)
        for a in ev.get("Attribute") or ():
            if a.get("type") in ("btc", "xmr", "dash"):
                entries.append((a.get("value"), a["type"], a.get("comment"), _tlp(a.get("Tag")) or ev_tlp,
                                a.get("uuid")))
        for o in ev.get("Object") or ():
            attrs: dict[str, Any] = {}
            for a in o.get("Attribute") or ():
                attrs.setdefault(a.get("object_relation"), a.get("value"))
            name = o.get("name")
            if name == "coin-address":
                v = attrs.get("address") or attrs.get("address-xmr") or attrs.get("address-crypto")
                sym = attrs.get("symbol") or ("xmr" if attrs.get("address-xmr") else None)
            elif name == "btc-wallet":
                v, sym = attrs.get("wallet-address"), "btc"
            elif name in ("cryptocurrency-transaction", "btc-transaction"):
                v = attrs.get("address") or attrs.get("btc-address")
                sym = attrs.get("symbol") or "btc"
                if not v:
                    continue  # a transaction without an address: nothing to screen for
            else:
                continue
            if not v:
                rejects.append(Reject(fname, None, None, None, f"object {o.get('uuid')} ({name}) has no address"))
                continue
            entries.append((v, sym, o.get("comment") or attrs.get("text"), ev_tlp, o.get("uuid")))
        for value, sym, comment, tlp, uid in entries:
            value = (value or "").strip()
            chain = source.chain_of(sym, value)
            if chain is None:
                rejects.append(Reject(fname, None, value, None, f"{uid}: cannot tell the chain ({sym})"))
                continue
            err = source.address_error(chain, value)
            if err:
                rejects.append(Reject(fname, None, value, chain, f"{uid}: {err}"))
                continue
            k = (chain, source.addr_key(chain, value), ev.get("uuid"))
            if k in seen:
                dups += 1
                continue
            seen.add(k)
            ctx = {"chaintrace_share": {"misp_event": ev.get("uuid"), "misp_uuid": uid, "producer_name": org}}
            label = f"{ev.get('info') or 'MISP event'}" + (f": {comment}" if comment else "")
            tags.append(Tag(chain=chain, address=value, label=label[:300], category="perpetrator" if actor else None,
                            actor=actor, source=f"{org} (MISP event {ev.get('uuid')})", confidence=50, tlp=tlp,
                            is_public=tlp in (None, "clear"), lastmod=ev.get("date"),
                            extra={"context": source.context_json(ctx)}))
    meta = {"title": f"MISP {len(events)} event(s)", "creator": "; ".join(sorted(orgs)) or None}
    return source.make_parsed("misp", where, tags, [], meta, rejects, dups)
