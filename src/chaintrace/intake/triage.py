"""Triage: screen a tip's addresses against the intelligence registry on arrival and score it; turn a
tip into a case.

Score (0-100): 10 base; +50 when an address is sanctioned; +30 when an address is a seed of a catalogued
incident or tagged with an abuse category; +10 when an address is otherwise known (e.g. an exchange);
+5 per transaction id (at most 10); +5 for a narrative of 100+ characters."""
from __future__ import annotations

from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace

ABUSE = {"service_hack", "sanction", "ransomware", "scam", "phishing", "mixer", "darknet", "theft", "hack",
         "terrorism", "sextortion", "ponzi", "malware"}


def screen_tip(ws: Workspace | None, tip: dict) -> dict:
    from chaintrace import intel

    addrs = [a["address"] for a in tip.get("addresses", [])]
    hits = intel.lookup(ws, addrs) if addrs else []
    score, reasons = 10, []
    sanctioned = [h["address"] for h in hits if h["sanctioned"]]
    abuse = [h["address"] for h in hits if not h["sanctioned"] and (h["incidents"] or set(h["categories"]) & ABUSE)]
    known = [h["address"] for h in hits if h["known"] and h["address"] not in sanctioned + abuse]
    if sanctioned:
        score += 50
        reasons.append(f"{len(sanctioned)} sanctioned address(es)")
    if abuse:
        score += 30
        reasons.append(f"{len(abuse)} address(es) linked to incidents or abuse")
    if known:
        score += 10
        reasons.append(f"{len(known)} known address(es)")
    if tip.get("txids"):
        score += min(10, 5 * len(tip["txids"]))
        reasons.append(f"{len(tip['txids'])} transaction id(s)")
    if len(tip.get("narrative") or "") >= 100:
        score += 5
        reasons.append("detailed narrative")
    return {"score": min(score, 100), "reasons": reasons, "sanctioned": sanctioned, "abuse": abuse,
            "known": known, "hits": [{"address": h["address"], "sanctioned": h["sanctioned"],
                                      "categories": h["categories"], "actors": h["actors"],
                                      "sanctions": [{"list": s["list"], "entity": s["entity"]} for s in h["sanctions"]],
                                      "incidents": [i["incident_id"] for i in h["incidents"]]} for h in hits if h["known"]]}


def triage(ws: Workspace, tid: str, key_path: str, *, title: str | None = None, analyst: str | None = None) -> dict:
    """Open a case from a tip (its addresses, txids and screening; narrative and contact stay sealed in the
    tip store) and mark the tip triaged."""
    from chaintrace.intake.store import TipStore
    from chaintrace.report import cases

    store = TipStore(ws)
    t = store.get(tid, key_path)
    if t["case_id"]:
        raise UserError(f"{tid} is triaged already: case {t['case_id']}")
    tip = t["tip"]
    c = cases.new(ws, title or f"Tip {tid} ({t['received_day']})", origin={"tip": tid, "score": t["score"]},
                  addresses=tip["addresses"], txids=tip["txids"], analyst=analyst,
                  detail={"screening": {k: t["screening"].get(k) for k in ("score", "reasons", "sanctioned", "abuse")},
                          "amounts": tip["amounts"], "time": tip["time"]})
    store.set_case(tid, c["id"])
    return c
