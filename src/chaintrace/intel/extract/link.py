"""Linking mentions into incident candidates (one per money mention, plus dated theft/attack events with no
amount), choosing kind, attribution, confidence and notes. Pure functions over a prepared text."""
from __future__ import annotations

import datetime as _dt
import hashlib
import re
from decimal import Decimal

from chaintrace.intel.extract.dates import DateMention, find_dates
from chaintrace.intel.extract.gazetteer import Gazetteer, Hit, tokenize
from chaintrace.intel.extract.money import CRYPTO, Money, find_money
from chaintrace.intel.extract.text import Prepared, clauses, sentences

TYPES = ("actor", "victim", "victim_type", "attack_type", "source", "trigger", "hedge", "confirmed",
         "aggregate_cue", "aggregate_weak_cue", "attempt_cue", "ransom_cue", "reward_cue")
_SAME_AMOUNT = re.compile(r"^\s*[,(\[،]?\s*(?:(?:then\s+|at\s+the\s+time\s+)?(?:worth|valued\s+at|equivalent\s+to)|or|"
                          r"بقيمة|ما\s+قيمته|اي|ما\s+يعادل|تعادل|يعادل|تقدر\s+ب|تبلغ\s+قيمتها)?\s*"
                          r"(?:about|around|approximately|roughly|some|nearly|almost|over|more\s+than|حوالي|نحو|قرابة|"
                          r"اكثر\s+من)?\s*$")
_CONNECT = re.compile(r"\s(?:and|but|while|whereas|of which|as well as|plus|لكن|بينما|و)\s?|,\s|\)\s")
_HACK_BY_VICTIM = {"exchange": "exchange_hack", "bridge": "bridge_hack", "wallet": "wallet_hack",
                   "defi": "defi_exploit", "bank": "bank_hack", "payment_processor": "payment_processor_hack"}
# English named victims: "crypto exchange Bybit", "Japan's DMM Bitcoin exchange"
_EN_TYPE = r"(?:exchange|platform|bridge|bank|protocol|wallet|company|firm|processor)"
_EN_NAME = r"([A-Z][\w.&'-]*(?:\s+(?:[A-Z][\w.&'-]*|of|de|del))*)"
_EN_VICTIM_AFTER = re.compile(rf"\b{_EN_TYPE}\s+{_EN_NAME}")
_EN_VICTIM_BEFORE = re.compile(rf"\b{_EN_NAME}\s+(?:crypto(?:currency)?\s+)?{_EN_TYPE}\b")
_AR_VICTIM = re.compile(r"(?<!\w)(?:و|ب|ل|ال|بال|لل)?(شركة|منصة|بورصة|مصرف|بنك|جسر|محفظة)\s+\"([^\"\n]{1,40})\"")
_EN_STOP = {"The", "A", "An", "In", "On", "North", "South", "This", "That", "Its", "It", "Korean", "Lazarus",
            "FBI", "UN", "U.N.", "US", "U.S.", "Treasury", "DPRK", "Pyongyang", "Group"}


def _near(hits: list[Hit], a: int, b: int, anchor: int) -> Hit | None:
    inside = [h for h in hits if h.start >= a and h.end <= b]
    if not inside:
        return None
    return min(inside, key=lambda h: min(abs(h.start - anchor), abs(h.end - anchor)))


def _dyn_victims(p: Prepared, gz_victims: list[Hit]) -> list[Hit]:
    out: list[Hit] = []
    for rx, grp in ((_EN_VICTIM_AFTER, 1), (_EN_VICTIM_BEFORE, 1)):
        for m in rx.finditer(p.cased):
            name = m.group(grp).strip()
            words = [w for w in name.split() if not re.search(r"-(based|listed|registered|linked|owned)$", w)]
            while words and words[0] in _EN_STOP:
                words.pop(0)
            while words and words[-1] in ("of", "de", "del"):
                words.pop()
            if not words:
                continue
            name = " ".join(words)
            s = m.start(grp) + m.group(grp).find(words[0])
            e = s + len(name)
            if any(h.start < e and s < h.end for h in gz_victims):
                continue
            tm = re.search(_EN_TYPE, m.group(0))
            t = tm.group(0) if tm else "company"
            out.append(Hit(s, e, {"id": None, "canonical_en": name, "meta": {"victim_type": _vtype(t)},
                                  "dynamic": True}, "victim"))
    for m in _AR_VICTIM.finditer(p.norm):
        s, e = m.start(2), m.end(2)
        if any(h.start < e and s < h.end for h in gz_victims):
            continue
        out.append(Hit(s, e, {"id": None, "canonical_en": p.cased[s:e], "meta": {
            "victim_type": _vtype(m.group(1))}, "dynamic": True}, "victim"))
    return out


def _vtype(word: str) -> str:
    return {"exchange": "exchange", "platform": "exchange", "منصة": "exchange", "بورصة": "exchange",
            "bridge": "bridge", "جسر": "bridge", "bank": "bank", "مصرف": "bank", "بنك": "bank",
            "wallet": "wallet", "محفظة": "wallet", "protocol": "defi", "processor": "payment_processor"}.get(
        word, "company")


def _ev(p: Prepared, h) -> dict:
    return p.span(h.start, h.end)


def _money_dict(p: Prepared, m: Money) -> dict:
    v = m.value
    return {"value": str(v.normalize() if v != v.to_integral_value() else int(v)), "currency": m.currency,
            "currency_inferred": m.currency_inferred, "qualifier": m.qualifier, "evidence": p.span(m.start, m.end)}


def _usd(v: Decimal):
    return int(v) if v == v.to_integral_value() else str(v)


def _inherit_currency(money: list[Money], sents) -> list[Money]:
    out: list[Money] = []
    for m in money:
        if m.currency is None:
            si = next((i for i, (s, e) in enumerate(sents) if s <= m.start < e), None)
            prev = [x for x in out if x.currency and si is not None and
                    any(s <= x.start < e for s, e in sents[max(0, si - 1):si + 1])]
            if not prev:
                continue
            m.currency = prev[-1].currency
            m.currency_inferred = True
            m.notes.append(f"currency inferred from the previous amount ({prev[-1].currency})")
        out.append(m)
    return out


def candidates(p: Prepared, gz: Gazetteer, *, doc_date: _dt.date | None = None, lang: str = "en",
               doc_id: str = "") -> list[dict]:
    norm = p.norm
    sents = sentences(norm)
    money = _inherit_currency(find_money(norm), sents)
    dates = find_dates(norm, sents, [(m.start, m.end) for m in money], doc_date)
    found = gz.find_all(norm, tokenize(norm))
    hits = {t: found.get(t, []) for t in TYPES}
    named = hits["victim"]
    hits["victim"] = named + _dyn_victims(p, named)
    hits["victim_type"] = [h for h in hits["victim_type"]
                           if not any(v.start < h.end and h.start < v.end for v in hits["victim"])]
    blocked_words = hits["victim"] + hits["actor"] + hits["source"]
    for t in ("attack_type", "trigger", "victim_type"):
        hits[t] = [h for h in hits[t] if not any(v.start <= h.start and h.end <= v.end for v in blocked_words)]
    doc_actor = next(iter(hits["actor"]), None)
    srcs = hits["source"]
    doc_source = next((h for h in srcs if "(media)" not in h.entry["canonical_en"]), None) or next(iter(srcs), None)
    out: list[dict] = []
    for ss, se in sents:
        ms = [m for m in money if ss <= m.start < se]
        # a crypto amount and its USD value side by side are one amount ("1,000 BTC ($40 million)")
        groups: list[list[Money]] = []
        for m in ms:
            if groups and _SAME_AMOUNT.match(norm[groups[-1][-1].end:m.start]) and \
                    {x.currency in CRYPTO for x in groups[-1]} != {m.currency in CRYPTO}:
                groups[-1].append(m)
            else:
                groups.append([m])
        cls = clauses(norm, ss, se)
        sd = [d for d in dates if ss <= d.start < se]
        for gi, g in enumerate(groups):
            out.append(_money_candidate(p, g, groups, gi, cls, (ss, se), sd, hits, doc_actor, doc_source,
                                        lang, doc_id))
        if not ms:
            ev = _event_candidate(p, (ss, se), sd, hits, doc_actor, doc_source, lang, doc_id)
            if ev:
                out.append(ev)
    return _dedupe(out)


def _segment(norm: str, groups: list[list[Money]], gi: int, clause: tuple[int, int]) -> tuple[int, int]:
    """The part of a clause that belongs to one amount: from the connector before it to the connector before
    the next amount of the same clause."""
    ca, cb = clause
    same = [i for i, g in enumerate(groups) if ca <= g[0].start < cb]
    k = same.index(gi)

    def cut(prev_end: int, nxt_start: int) -> int:
        last = None
        for m in _CONNECT.finditer(norm, prev_end, nxt_start):
            last = m
        return last.start() if last else nxt_start

    a = ca if k == 0 else cut(groups[same[k - 1]][-1].end, groups[gi][0].start)
    b = cb if k == len(same) - 1 else cut(groups[gi][-1].end, groups[same[k + 1]][0].start)
    return a, b


def _pick(hits: list[Hit], seg, clause, sent, anchor, single: bool, first_seg_start: int | None) -> Hit | None:
    h = _near(hits, seg[0], seg[1], anchor)
    if h is None and first_seg_start is not None and first_seg_start > clause[0]:
        h = _near(hits, clause[0], first_seg_start, anchor)      # shared context before the first amount
    if h is None and single:
        h = _near(hits, sent[0], sent[1], anchor)
    return h


def _money_candidate(p, g, groups, gi, cls, sent, sd, hits, doc_actor, doc_source, lang, doc_id) -> dict:
    norm = p.norm
    usd = next((m for m in g if m.currency == "USD"), None)
    anchor = g[0].start
    clause = next(((a, b) for a, b in cls if a <= anchor < b), sent)
    seg = _segment(norm, groups, gi, clause)
    same = [x for x in groups if clause[0] <= x[0].start < clause[1]]
    first_seg_start = _segment(norm, groups, groups.index(same[0]), clause)[0] if len(same) > 1 else None
    single = sum(1 for x in groups if sent[0] <= x[0].start < sent[1]) == 1
    notes: list[str] = [n for m in g for n in m.notes]

    def pick(t):
        return _pick(hits[t], seg, clause, sent, anchor, single, first_seg_start)

    date = _pick_date(sd, seg, clause, sent, anchor, single, first_seg_start)
    victim = _pick([h for h in hits["victim"] if not h.entry.get("dynamic")], seg, clause, sent, anchor, single,
                   first_seg_start) or pick("victim")
    vtype = pick("victim_type") if victim is None else None
    attack = pick("attack_type") or _near(hits["attack_type"], sent[0], sent[1], anchor)
    trigger = _near(hits["trigger"], sent[0], sent[1], anchor)
    kind = _kind(hits, seg, clause, sent, victim, date, notes, vtype)
    c = _base(p, lang, doc_id, anchor, sent, kind, notes)
    if usd is not None:
        c["amount_usd"] = _usd(usd.value)
        c["amount"] = _money_dict(p, usd)
    else:
        c["amount_usd"] = None
        c["amount"] = _money_dict(p, g[0])
        notes.append(f"amount in {g[0].currency}; no USD value stated")
    c["crypto_amounts"] = [{"value": _money_dict(p, m)["value"], "asset": m.currency, "evidence": p.span(m.start, m.end)}
                           for m in g if m.currency in CRYPTO]
    _fill(c, p, date, victim, vtype, attack, hits, sent, anchor, doc_actor, doc_source, notes)
    conf = 0.30 + (0.20 if (trigger or attack) else 0) + (0.15 if victim else 0.05 if vtype else 0)
    conf += (0.10 if date and not date.year_inferred and not date.derived_from else 0.03 if date else 0)
    conf += 0.15 if c["actor"] and not c["actor"]["inherited"] else 0.05 if c["actor"] else 0
    conf -= 0.05 if any(m.currency_inferred for m in g) else 0
    c["confidence"] = round(min(conf, 0.95), 2)
    return c


def _pick_date(sd: list[DateMention], seg, clause, sent, anchor, single, first_seg_start):
    def near(a, b):
        inside = [d for d in sd if d.start >= a and d.end <= b]
        return min(inside, key=lambda d: min(abs(d.start - anchor), abs(d.end - anchor))) if inside else None
    d = near(*seg)
    if d is None and first_seg_start is not None and first_seg_start > clause[0]:
        d = near(clause[0], first_seg_start)
    if d is None and single:
        d = near(*sent)
    return d


def _kind(hits, seg, clause, sent, victim, date, notes, vtype=None) -> str:
    def has(t, a, b):
        return any(h.start >= a and h.end <= b for h in hits[t])
    if has("reward_cue", *sent):
        notes.append("reward or bounty: not a theft")
        return "reward"
    if has("ransom_cue", *clause):
        return "ransom_demand"
    if has("attempt_cue", *seg) or has("attempt_cue", *clause):
        return "attempt"
    if has("aggregate_cue", *clause):
        notes.append("aggregate cue: a total over several incidents")
        return "aggregate"
    if has("aggregate_weak_cue", *clause) and (victim is None or victim.entry.get("dynamic")) and \
            (date is None or date.granularity in ("year", "range", "part-of-year")):
        notes.append("plural thefts/hacks with no named victim: read as a total")
        return "aggregate"
    if victim is None and not vtype and date is not None and date.granularity in ("year", "range"):
        notes.append("no victim and a whole year or a range: read as a total over the period")
        return "aggregate"
    return "incident"


def _base(p, lang, doc_id, anchor, sent, kind, notes) -> dict:
    # the id depends on the article's text and the offset, not on its file name: the same article queued twice
    # is the same candidate
    doc = hashlib.sha256(p.original.encode()).hexdigest()
    h = hashlib.sha256(f"{doc}\0{p.idx[anchor] if anchor < len(p.idx) else anchor}".encode()).hexdigest()[:12]
    return {"id": f"cand-{h}", "kind": kind, "lang": lang, "document": doc_id,
            "sentence": p.span(*sent) | {"text": p.original[p.idx[sent[0]]:p.idx[sent[1] - 1] + 1]},
            "notes": notes}


def _fill(c, p, date, victim, vtype, attack, hits, sent, anchor, doc_actor, doc_source, notes) -> None:
    c["date"] = None if date is None else date.as_dict() | {"evidence": _ev(p, date)}
    if date is not None:
        notes.extend(date.notes)
    if victim is not None:
        e = victim.entry
        c["victim"] = {"name": e["canonical_en"], "id": e.get("id"), "type": (e.get("meta") or {}).get("victim_type"),
                       "evidence": _ev(p, victim)}
        if e.get("dynamic"):
            notes.append("victim name read from the text (not in the gazetteer)")
    elif vtype is not None:
        c["victim"] = {"name": None, "id": None, "type": vtype.entry["id"], "evidence": _ev(p, vtype)}
    else:
        c["victim"] = None
    if attack is not None:
        t = attack.entry["id"]
        if t == "hack":
            vt = (c["victim"] or {}).get("type")
            t = _HACK_BY_VICTIM.get(vt or "", "exchange_hack" if vt is None else "hack")
        c["attack_type"] = {"type": t, "evidence": _ev(p, attack)}
    else:
        c["attack_type"] = None
    actor = _actor(hits["actor"], sent, anchor)
    hedge = _near(hits["hedge"], sent[0], sent[1], anchor)
    confirmed = _near(hits["confirmed"], sent[0], sent[1], anchor)
    if actor is not None:
        att = "suspected" if hedge else "confirmed" if confirmed else "attributed"
        c["actor"] = {"name": actor.entry["canonical_en"], "id": actor.entry["id"], "attribution": att,
                      "inherited": False, "evidence": _ev(p, actor),
                      "attribution_evidence": _ev(p, hedge or confirmed) if (hedge or confirmed) else None}
    elif doc_actor is not None:
        c["actor"] = {"name": doc_actor.entry["canonical_en"], "id": doc_actor.entry["id"],
                      "attribution": "suspected", "inherited": True, "evidence": _ev(p, doc_actor),
                      "attribution_evidence": None}
        notes.append("actor inherited from the document (not named in this sentence): attribution suspected")
    else:
        c["actor"] = None
    src = _near(hits["source"], sent[0], sent[1], anchor) or doc_source
    c["source"] = None if src is None else {"name": src.entry["canonical_en"], "id": src.entry["id"],
                                            "evidence": _ev(p, src),
                                            "inherited": not (sent[0] <= src.start < sent[1])}


def _actor(hits: list[Hit], sent, anchor: int) -> Hit | None:
    """The sentence's actor: the most specific one named before the amount (a group over its state: "North
    Korea's Lazarus Group" -> Lazarus Group), else the nearest."""
    inside = [h for h in hits if sent[0] <= h.start < sent[1]]
    before = [h for h in inside if h.start < anchor]
    groups = [h for h in before if h.entry["id"] != "dprk"]
    if groups:
        return groups[0]
    if before:
        return before[0]
    return _near(inside, sent[0], sent[1], anchor)


def _event_candidate(p, sent, sd, hits, doc_actor, doc_source, lang, doc_id) -> dict | None:
    """A dated theft/attack with no amount (low confidence)."""
    trig = [h for h in hits["trigger"] + hits["attack_type"] if sent[0] <= h.start < sent[1]]
    if not trig or not sd:
        return None
    anchor = min(trig, key=lambda h: h.start).start
    date = min(sd, key=lambda d: abs(d.start - anchor))
    victim = _near(hits["victim"], sent[0], sent[1], anchor)
    vtype = _near(hits["victim_type"], sent[0], sent[1], anchor) if victim is None else None
    attack = _near(hits["attack_type"], sent[0], sent[1], anchor)
    notes = ["no amount in the sentence: a dated event"]
    kind = "attempt" if any(sent[0] <= h.start < sent[1] for h in hits["attempt_cue"]) else "incident"
    c = _base(p, lang, doc_id, anchor, sent, kind, notes)
    c["amount_usd"] = None
    c["amount"] = None
    c["crypto_amounts"] = []
    _fill(c, p, date, victim, vtype, attack, hits, sent, anchor, doc_actor, doc_source, notes)
    conf = 0.30 + (0.15 if victim else 0.05 if vtype else 0) + (0.10 if not date.year_inferred else 0.03)
    conf += 0.15 if c["actor"] and not c["actor"]["inherited"] else 0.05 if c["actor"] else 0
    c["confidence"] = round(min(conf, 0.6) - 0.2, 2)
    return c


def _dedupe(cands: list[dict]) -> list[dict]:
    """One candidate per (amount, date, victim) within a document: later mentions add their evidence."""
    out: list[dict] = []
    for c in cands:
        twin = None
        if c["amount_usd"] is not None:
            for o in out:
                if o["amount_usd"] == c["amount_usd"] and _compatible(o.get("date"), c.get("date")) and \
                        _compatible(o.get("victim"), c.get("victim")):
                    twin = o
                    break
        if twin is None:
            out.append(c)
            continue
        twin.setdefault("also_mentioned", []).append({"sentence": c["sentence"], "amount_evidence": c["amount"]["evidence"]})
        if twin["kind"] == "incident" and c["kind"] == "aggregate":
            twin["kind"] = c["kind"]
        for k in ("date", "victim", "attack_type", "actor", "source"):
            if twin.get(k) is None and c.get(k) is not None or k == "actor" and twin[k] and twin[k]["inherited"] and c[k] and not c[k]["inherited"]:
                twin[k] = c[k]
        twin["confidence"] = max(twin["confidence"], c["confidence"])
        twin["notes"] = list(dict.fromkeys(twin["notes"] + c["notes"] + ["mentioned more than once; merged"]))
    return out


def _compatible(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return True
    if "start" in a:
        return a["start"] == b["start"] and a["end"] == b["end"]
    return a.get("name") == b.get("name") and a.get("type") == b.get("type")
