"""Date grammar (Arabic and English): months of three families (Egyptian/Gulf, Levantine, Maghrebi) and
English full/abbreviated names, days, years, qualifiers (late/early/mid, أواخر/مطلع/منتصف), quarters and
halves, ranges (between X and Y, بين 2019 ونوفمبر 2020, from X to Y, since X), and relative expressions
(a month later, بعد شهر من ذلك, the following year) resolved against the previous date of the document.

A month without a year takes a year from the same sentence (a coordinated "October and November 2020", or an
earlier year), else the document date (never after the publication month: news describes the past), else the
previous date of the document; ``year_inferred`` says so.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import re
from dataclasses import dataclass, field

from chaintrace.intel.extract.money import AR_WORDS, EN_WORDS

MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4,
    "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
    "يناير": 1, "فبراير": 2, "مارس": 3, "ابريل": 4, "مايو": 5, "يونيو": 6, "يونيه": 6,
    "يوليو": 7, "يوليه": 7, "اغسطس": 8, "اغسطوس": 8, "سبتمبر": 9, "اكتوبر": 10, "نوفمبر": 11, "ديسمبر": 12,
    "كانون الثاني": 1, "شباط": 2, "اذار": 3, "نيسان": 4, "ايار": 5, "حزيران": 6, "تموز": 7, "اب": 8,
    "ايلول": 9, "تشرين الاول": 10, "تشرين الثاني": 11, "كانون الاول": 12,
    "جانفي": 1, "فيفري": 2, "افريل": 4, "ماي": 5, "جوان": 6, "جويلية": 7, "جويليه": 7, "اوت": 8,
}
# names that are also ordinary words: only dates when a day or a year is next to them
AMBIGUOUS = {"may", "mar", "jan", "jun", "jul", "aug", "sep", "oct", "nov", "dec", "feb", "apr", "sept", "اب", "ماي"}

# qualifier -> (months of a year, days of a month)
QUALS = {
    "late": ((10, 12), (21, 31)), "end": ((10, 12), (21, 31)), "early": ((1, 3), (1, 10)),
    "mid": ((5, 8), (11, 20)),
}
_QUAL_WORDS = {
    "late": "late", "late-": "late", "the end of": "end", "end of": "end", "the close of": "end",
    "early": "early", "early-": "early", "the beginning of": "early", "beginning of": "early",
    "the start of": "early", "start of": "early", "mid": "mid", "mid-": "mid", "the middle of": "mid",
    "middle of": "mid", "اواخر": "late", "نهاية": "end", "نهايه": "end", "اخر": "late", "اوائل": "early",
    "مطلع": "early", "بداية": "early", "بدايه": "early", "مستهل": "early", "منتصف": "mid", "اواسط": "mid",
}
_PARTS = {  # quarter / half -> months
    "q1": (1, 3), "q2": (4, 6), "q3": (7, 9), "q4": (10, 12), "h1": (1, 6), "h2": (7, 12),
    "first quarter of": (1, 3), "second quarter of": (4, 6), "third quarter of": (7, 9),
    "fourth quarter of": (10, 12), "first half of": (1, 6), "second half of": (7, 12),
    "the first quarter of": (1, 3), "the second quarter of": (4, 6), "the third quarter of": (7, 9),
    "the fourth quarter of": (10, 12), "the first half of": (1, 6), "the second half of": (7, 12),
    "الربع الاول من": (1, 3), "الربع الثاني من": (4, 6), "الربع الثالث من": (7, 9), "الربع الرابع من": (10, 12),
    "النصف الاول من": (1, 6), "النصف الثاني من": (7, 12),
}


def _alt(words) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


_Y = r"(?:19|20)\d\d(?![\d])"
_PRO = r"(?:و|ب|ف|ل)?"
ATOM_RE = re.compile(
    rf"(?<![\w\d.,$])(?:[وبف]?(?P<qual>{_alt(_QUAL_WORDS)})(?:\s+of\s+|\s+عام\s+|\s*))?"
    rf"(?:"
    rf"(?P<iso>{_Y}-[01]\d-[0-3]\d)"
    rf"|(?:(?P<part>{_alt(_PARTS)})\s*(?:عام\s+|سنة\s+)?(?P<pyear>{_Y}))"
    rf"|(?:(?P<day1>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?)?{_PRO}(?P<month>{_alt(MONTHS)})\.?(?![\w])\)?"
    rf"(?:\s+(?P<day2>[0-3]?\d)(?:st|nd|rd|th)?(?!\d))?(?:\s*,?\s*(?:(?:عام|سنة|of)\s+)?(?P<year>{_Y}))?"
    rf"|(?:(?:عام|سنة|العام|year)\s+)?(?P<yonly>{_Y})(?!\s*(?:[.,]\d|%))"
    rf")"
)
_COUNT = {"a": 1, "an": 1, "one": 1, "several": 3, "a few": 3, "few": 3, **{k: v for k, v in EN_WORDS.items()
                                                                        if isinstance(v, int)},
          **{k: v for k, v in AR_WORDS.items() if isinstance(v, int) and v < 13}}
_SMALL_AR = [k for k, v in AR_WORDS.items() if isinstance(v, int) and v < 13]
_UNIT_AR = {"شهر": ("month", 1), "شهرين": ("month", 2), "اشهر": ("month", 0), "شهور": ("month", 0),
            "عام": ("year", 1), "عامين": ("year", 2), "اعوام": ("year", 0), "سنة": ("year", 1),
            "سنتين": ("year", 2), "سنوات": ("year", 0), "اسبوع": ("week", 1), "اسبوعين": ("week", 2),
            "اسابيع": ("week", 0), "يوم": ("day", 1), "يومين": ("day", 2), "ايام": ("day", 0)}
REL_RE = re.compile(
    rf"(?<!\w)(?:"
    rf"(?P<en>(?P<encount>\d+|{_alt(_COUNT)})\s+(?P<enunit>day|week|month|year)s?\s+(?P<endir>later|after|afterwards|"
    rf"earlier|before))"
    rf"|(?P<ar>(?:و|ف)?(?P<ardir>بعد|قبل)\s+(?:(?P<arcount>\d+|{_alt(_SMALL_AR)})\s+)?"
    rf"(?P<arunit>{_alt(_UNIT_AR)})(?:\s+(?:من\s+ذلك|علي\s+ذلك|من\s+ذلك\s+التاريخ|لاحقا|تقريبا))?)"
    rf"|(?P<next>(?:the\s+)?(?:following|next)\s+(?P<nextunit>month|year)|(?:في\s+)?(?:ال)?(?P<nextar>شهر|عام|سنة)\s+"
    rf"(?:التالي|التالية|الذي\s+تلاه|اللاحق|التالي\s+له))"
    rf"|(?P<docrel>(?P<drwhen>last|this|past|earlier\s+this|later\s+this|previous)\s+(?P<drunit>year|month)|"
    rf"(?:ال)?(?P<drar>عام|شهر|سنة)\s+(?P<drarwhen>الماضي|الماضية|الحالي|الحالية|الجاري|الجارية)|"
    rf"(?:هذا|هذه)\s+(?P<drar2>العام|الشهر|السنة))"
    rf"|(?P<wday>(?:on\s+|last\s+)?(?P<wden>monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    rf"(?:يوم\s+)?(?P<wdar>الاثنين|الثلاثاء|الاربعاء|الخميس|الجمعة|السبت|الاحد)(?:\s+الماضي)?)"
    rf"|(?P<same>(?:the\s+)?same\s+(?P<sameunit>month|year)|later\s+that\s+(?P<lunit>month|year)|"
    rf"earlier\s+that\s+(?P<eunit>month|year)|(?:في\s+)?(?:نفس\s+(?P<samear1>الشهر|العام|السنة)|"
    rf"(?P<samear2>الشهر|العام|السنة)\s+(?:نفسه|نفسها|ذاته|ذاتها)))"
    rf")(?!\w)"
)
_RANGE_OPEN = re.compile(r"(?:between|from|بين|من|منذ|since|starting)\s*$")
_RANGE_MID = re.compile(r"^\s*(?:-|to|until|till|through|thru|and|الي|حتي|لغاية|و)\s*$")
_RANGE_STRONG = re.compile(r"^\s*(?:-|to|until|till|through|thru|الي|حتي|لغاية)\s*$")
_COORD = re.compile(r"^\s*(?:and|or|,|و|او|،)\s*$")


@dataclass
class Point:
    y: int | None
    m: int | None = None
    d: int | None = None

    def fmt(self) -> str | None:
        if self.y is None:
            return None
        if self.m is None:
            return f"{self.y:04d}"
        if self.d is None:
            return f"{self.y:04d}-{self.m:02d}"
        return f"{self.y:04d}-{self.m:02d}-{self.d:02d}"

    def first_day(self) -> str | None:
        return None if self.y is None else _dt.date(self.y, self.m or 1, self.d or 1).isoformat()

    def last_day(self) -> str | None:
        if self.y is None:
            return None
        m = self.m or 12
        return _dt.date(self.y, m, self.d or calendar.monthrange(self.y, m)[1]).isoformat()


@dataclass
class DateMention:
    start: int
    end: int
    lo: Point
    hi: Point
    granularity: str             # day | month | part-of-month | part-of-year | year | range | relative
    qualifier: str | None = None
    year_inferred: bool = False
    derived_from: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"start": self.lo.fmt(), "end": self.hi.fmt(), "start_date": self.lo.first_day(),
                "end_date": self.hi.last_day(), "granularity": self.granularity, "qualifier": self.qualifier,
                "year_inferred": self.year_inferred, "derived_from": self.derived_from}


def _add_months(p: Point, n: int) -> Point:
    if p.y is None or p.m is None:
        return Point(p.y + (n // 12 if p.y is not None else 0) if p.y is not None else None)
    k = p.y * 12 + (p.m - 1) + n
    return Point(k // 12, k % 12 + 1)


@dataclass
class _Atom:
    start: int
    end: int
    y: int | None
    m: int | None
    d: int | None
    qual: str | None
    part: tuple[int, int] | None
    relative: tuple[str, int] | None = None   # (unit, signed count) or ("same", 0)
    amb: bool = False


def _atoms(norm: str, blocked: list[tuple[int, int]]) -> list[_Atom]:
    out: list[_Atom] = []
    for m in ATOM_RE.finditer(norm):
        s, e = m.start(), m.end()
        if any(a < e and s < b for a, b in blocked):
            continue
        qual = _QUAL_WORDS.get(re.sub(r"\s+", " ", m.group("qual"))) if m.group("qual") else None
        if m.group("iso"):
            iy, im, iday = (int(x) for x in m.group("iso").split("-"))
            if not 1 <= im <= 12:
                continue
            out.append(_Atom(s, e, iy, im, iday, qual, None))
        elif m.group("part"):
            out.append(_Atom(s, e, int(m.group("pyear")), None, None, None,
                             _PARTS[re.sub(r"\s+", " ", m.group("part"))]))
        elif m.group("month"):
            name = re.sub(r"\s+", " ", m.group("month"))
            day = m.group("day1") or m.group("day2")
            year = m.group("year")
            if name in AMBIGUOUS and not (day or year):
                continue
            d: int | None = int(day) if day and 1 <= int(day) <= 31 else None
            if not qual and not m.group("day1"):
                s = m.start("month")        # a glued proclitic (ونوفمبر) is the range connector, not the date
            out.append(_Atom(s, e, int(year) if year else None, MONTHS[name], d, qual, None))
        else:
            out.append(_Atom(s, e, int(m.group("yonly")), None, None, qual, None))
    for m in REL_RE.finditer(norm):
        s, e = m.start(), m.end()
        if any(a < e and s < b for a, b in blocked) or any(a.start < e and s < a.end for a in out):
            continue
        if m.group("docrel"):
            unit = m.group("drunit") or ("month" if (m.group("drar") or m.group("drar2") or "") in ("شهر", "الشهر")
                                         else "year")
            back = (m.group("drwhen") or "") in ("last", "past", "previous") or \
                (m.group("drarwhen") or "") in ("الماضي", "الماضية")
            out.append(_Atom(s, e, None, None, None, None, None, relative=("doc-" + unit, -1 if back else 0)))
            continue
        if m.group("wday"):
            days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
            ar = ["الاثنين", "الثلاثاء", "الاربعاء", "الخميس", "الجمعة", "السبت", "الاحد"]
            wd = days.index(m.group("wden")) if m.group("wden") else ar.index(m.group("wdar"))
            out.append(_Atom(s, e, None, None, None, None, None, relative=("doc-weekday", wd)))
            continue
        if m.group("en"):
            c = m.group("encount")
            n = int(c) if c.isdigit() else _COUNT.get(re.sub(r"\s+", " ", c), 1)
            sign = 1 if m.group("endir") in ("later", "after", "afterwards") else -1
            rel = (m.group("enunit"), sign * n)
        elif m.group("ar"):
            unit, n = _UNIT_AR[m.group("arunit")]
            c = m.group("arcount")
            if c:
                n = int(c) if c.isdigit() else int(AR_WORDS.get(c, 1))
            n = n or 1
            rel = (unit, n if m.group("ardir") == "بعد" else -n)
        elif m.group("next"):
            u = m.group("nextunit") or {"شهر": "month"}.get(m.group("nextar") or "", "year")
            rel = (u, 1)
        else:
            u = m.group("sameunit") or m.group("lunit") or m.group("eunit") or \
                {"الشهر": "month"}.get(m.group("samear1") or m.group("samear2") or "", "year")
            rel = (u, 0)
        out.append(_Atom(s, e, None, None, None, None, None, relative=rel))
    out.sort(key=lambda a: a.start)
    merged: list[_Atom] = []
    for a in out:
        p = merged[-1] if merged else None
        if p is not None and p.m is not None and p.m == a.m and p.y is None and not p.relative and \
                norm[p.end:a.start].strip() in ("/", "(", "-", "او"):
            a.start = p.start          # تموز/يوليو 2024: two names of one month
            a.d = a.d if a.d is not None else p.d
            a.qual = a.qual or p.qual
            merged[-1] = a
            continue
        merged.append(a)
    return merged


def _point_bounds(a: _Atom) -> tuple[Point, Point, str, str | None]:
    if a.part:
        return Point(a.y, a.part[0]), Point(a.y, a.part[1]), "part-of-year", None
    if a.m is None:
        if a.qual:
            (m0, m1), _ = QUALS[a.qual]
            return Point(a.y, m0), Point(a.y, m1), "part-of-year", a.qual
        return Point(a.y), Point(a.y), "year", None
    if a.d is not None:
        return Point(a.y, a.m, a.d), Point(a.y, a.m, a.d), "day", None
    if a.qual and a.y is not None:
        _, (d0, d1) = QUALS[a.qual]
        d1 = min(d1, calendar.monthrange(a.y, a.m)[1])
        return Point(a.y, a.m, d0), Point(a.y, a.m, d1), "part-of-month", a.qual
    return Point(a.y, a.m), Point(a.y, a.m), "month", a.qual


def find_dates(norm: str, sents: list[tuple[int, int]], blocked: list[tuple[int, int]],
               doc_date: _dt.date | None = None) -> list[DateMention]:
    """Resolved date mentions in document order."""
    atoms = _atoms(norm, blocked)
    out: list[DateMention] = []

    def sent_of(pos: int) -> tuple[int, int]:
        for s, e in sents:
            if s <= pos < e:
                return s, e
        return 0, len(norm)

    used = set()
    for i, a in enumerate(atoms):
        if i in used:
            continue
        if a.relative and a.relative[0].startswith("doc-"):
            if doc_date is None:
                continue               # "last year" needs the publication date
            kind, n = a.relative
            if kind == "doc-weekday":
                d = doc_date - _dt.timedelta(days=(doc_date.weekday() - n) % 7)
                lo, g = Point(d.year, d.month, d.day), "day"
            elif kind == "doc-month":
                lo, g = _add_months(Point(doc_date.year, doc_date.month), n), "month"
            else:
                lo, g = Point(doc_date.year + n), "year"
            out.append(DateMention(a.start, a.end, lo, lo, g, None, False, "publication-date",
                                   [f"resolved against the publication date {doc_date.isoformat()}"]))
            continue
        if a.relative:
            prev = out[-1] if out else None
            if prev is None or prev.hi.y is None:
                continue
            unit, n = a.relative
            base = prev.hi if n >= 0 or prev.lo.y is None else prev.lo
            assert base.y is not None
            g = "month" if base.m is not None else "year"
            if unit == "year":
                lo = Point(base.y + n, base.m) if base.m else Point(base.y + n)
            elif unit == "month" and base.m is not None:
                lo = _add_months(base, n)
            elif unit in ("week", "day") and base.m is not None:
                months = (n * 7 if unit == "week" else n) // 28
                lo = _add_months(base, months)
            else:
                lo = Point(base.y)
                g = "year"
            mention = DateMention(a.start, a.end, lo, lo, g, None, prev.year_inferred, "relative",
                                  [f"resolved against the previous date ({prev.lo.fmt()}..{prev.hi.fmt()})"])
            out.append(mention)
            continue
        ss, se = sent_of(a.start)
        y_inf = False
        if a.y is None:
            y: int | None = None
            nxt = atoms[i + 1] if i + 1 < len(atoms) else None
            if nxt is not None and nxt.y is not None and nxt.start < se and \
                    (_COORD.match(norm[a.end:nxt.start]) or _RANGE_MID.match(norm[a.end:nxt.start])):
                y = nxt.y
            else:
                for b in reversed(atoms[:i]):
                    if b.start < ss:
                        break
                    if b.y is not None and not b.relative:
                        y = b.y
                        break
            if y is None and doc_date is not None:
                y = doc_date.year if a.m is None or a.m <= doc_date.month else doc_date.year - 1
            if y is None:
                for dm in reversed(out):
                    if dm.hi.y is not None:
                        y = dm.hi.y
                        break
            if y is None:
                continue
            a.y = y
            y_inf = True
        lo, hi, gran, qual = _point_bounds(a)
        start, end = a.start, a.end
        # ranges: between X and Y / from X to Y / X - Y / since X
        opener = _RANGE_OPEN.search(norm[max(ss, a.start - 12):a.start])
        nxt = atoms[i + 1] if i + 1 < len(atoms) else None
        notes = []
        if nxt is not None and not nxt.relative and nxt.start < se and nxt.y is not None and \
                (_RANGE_STRONG.match(norm[a.end:nxt.start]) or
                 (opener and _RANGE_MID.match(norm[a.end:nxt.start]))):
            _lo2, hi2, _, _ = _point_bounds(nxt)
            hi = hi2
            gran, qual = "range", (qual or ("between" if opener else None))
            end = nxt.end
            used.add(i + 1)
        elif opener and opener.group(0).strip() in ("since", "منذ", "starting"):
            hi = Point(doc_date.year, doc_date.month, doc_date.day) if doc_date else Point(None)
            gran, qual = "range", "since"
            if doc_date is None:
                notes.append("open-ended period (since ...): no end date known")
        if y_inf:
            notes.append("year inferred (no year next to the month)")
        out.append(DateMention(start, end, lo, hi, gran, qual, y_inf, None, notes))
    return out
