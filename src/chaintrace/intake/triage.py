"""Triage: screen a tip's addresses on arrival (the screening library, chaintrace.screen) and score it;
turn a tip into a case.

Score (0-100): 10 base; +50 when an address is sanctioned; +30 when an address has severe or high exposure
(a catalogued incident's address, abuse tags, funds traced from them); +10 when an address is otherwise
known or exposed; +5 per transaction id (at most 10); +5 for a narrative of 100+ characters."""
from __future__ import annotations

from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace


def screen_tip(ws: Workspace | None, tip: dict, screener=None) -> dict:
    """Screen a tip's addresses on arrival with the screening library (:mod:`chaintrace.screen`; pass the
    service's ``Screener`` to reuse its snapshot) and score the tip."""
    addrs = [a["address"] for a in tip.get("addresses", [])]
    results = []
    if addrs:
        if screener is None:
            from chaintrace.screen import Screener

            screener = Screener(ws if isinstance(ws, Workspace) else Workspace(ws))
        results = screener.addresses(addrs)["results"]
    score, reasons = 10, []
    sanctioned = [r["subject"] for r in results if r.get("sanctions")]
    abuse = [r["subject"] for r in results if r["subject"] not in sanctioned and r.get("risk") in ("severe", "high")]
    known = [r["subject"] for r in results if r["subject"] not in sanctioned + abuse and
             (r.get("labels") or r.get("risk") not in (None, "none"))]
    if sanctioned:
        score += 50
        reasons.append(f"{len(sanctioned)} sanctioned address(es)")
    if abuse:
        score += 30
        reasons.append(f"{len(abuse)} address(es) with severe or high exposure (incidents, abuse)")
    if known:
        score += 10
        reasons.append(f"{len(known)} otherwise known or exposed address(es)")
    if tip.get("txids"):
        score += min(10, 5 * len(tip["txids"]))
        reasons.append(f"{len(tip['txids'])} transaction id(s)")
    if len(tip.get("narrative") or "") >= 100:
        score += 5
        reasons.append("detailed narrative")
    return {"score": min(score, 100), "reasons": reasons, "sanctioned": sanctioned, "abuse": abuse,
            "known": known, "results": [{k: r.get(k) for k in ("subject", "chain", "risk", "score", "rules",
                                                                "sanctions", "labels", "warnings")} for r in results]}


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
