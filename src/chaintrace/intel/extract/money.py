"""Money grammar (Arabic and English, one pass over the normalised text).

Forms: ``$316.4m``, ``US$2 billion``, ``USD 23 million``, ``23 million USD``, ``$81 million``, ``1,000 BTC``,
``five million dollars``, ``316,4 مليون دولار`` (decimal comma), ``٣١٦٫٤ مليون دولار`` (Arabic-Indic digits,
normalised before), ``ملياري دولار`` (dual), ``مليار دولار`` (bare scale), ``خمسة ملايين دولار``,
``ثلاثمئة وستة عشر مليون دولار`` (number words), ``و60 مليوناً`` (proclitic, accusative, currency inherited).
Values are exact ``Decimal``s (never floats). A bare year is never money.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

# ---------------------------------------------------------------------------------------- vocabularies
SCALES = {
    "thousand": 10**3, "thousands": 10**3, "k": 10**3, "million": 10**6, "millions": 10**6, "mln": 10**6,
    "mn": 10**6, "m": 10**6, "billion": 10**9, "billions": 10**9, "bln": 10**9, "bn": 10**9, "b": 10**9,
    "trillion": 10**12, "tn": 10**12,
    "الف": 10**3, "الاف": 10**3, "مليون": 10**6, "مليونا": 10**6, "ملايين": 10**6, "مليار": 10**9,
    "مليارا": 10**9, "مليارات": 10**9, "بليون": 10**9, "بلايين": 10**9, "تريليون": 10**12, "ترليون": 10**12,
}
SHORT_SCALES = {"k", "m", "mn", "b", "bn", "tn", "mln", "bln"}   # only right after a currency-prefixed number
DUALS = {"مليوني": 2 * 10**6, "مليونين": 2 * 10**6, "مليونان": 2 * 10**6, "ملياري": 2 * 10**9,
         "مليارين": 2 * 10**9, "ملياران": 2 * 10**9, "الفي": 2000, "الفين": 2000, "الفان": 2000}

BARE = {"مليار": 10**9, "مليون": 10**6, "بليون": 10**9, "الف": 10**3}   # "مليار دولار" = 1e9 (currency required)
# prefix currency symbols / codes -> currency
PREFIX = {"us$": "USD", "usd": "USD", "$": "USD", "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP",
          "¥": "JPY", "₩": "KRW", "krw": "KRW", "hk$": "HKD", "a$": "AUD", "c$": "CAD"}
SUFFIX = {
    "us dollars": "USD", "u.s. dollars": "USD", "dollars": "USD", "dollar": "USD", "usd": "USD",
    "euros": "EUR", "euro": "EUR", "eur": "EUR", "yen": "JPY", "won": "KRW", "pounds": "GBP",
    "دولار امريكي": "USD", "دولارات امريكية": "USD", "دولار": "USD", "دولارا": "USD", "دولارات": "USD",
    "يورو": "EUR", "ين": "JPY", "ين ياباني": "JPY", "وون": "KRW", "جنيه استرليني": "GBP",
    # crypto assets (kept as their own currency; USD conversion is a later step)
    "btc": "BTC", "bitcoins": "BTC", "bitcoin": "BTC", "eth": "ETH", "ether": "ETH", "ethereum": "ETH",
    "usdt": "USDT", "tether": "USDT", "usdc": "USDC", "dai": "DAI", "xrp": "XRP", "ltc": "LTC",
    "litecoin": "LTC", "bnb": "BNB", "trx": "TRX", "tron": "TRX", "sol": "SOL", "xmr": "XMR",
    "monero": "XMR", "bch": "BCH", "eos": "EOS", "doge": "DOGE", "atom": "ATOM", "matic": "MATIC",
    "بيتكوين": "BTC", "بتكوين": "BTC", "بيتكوينز": "BTC", "ايثر": "ETH", "ايثريوم": "ETH", "اثير": "ETH",
    "اثيريوم": "ETH", "تيثر": "USDT",
}
CRYPTO = {"BTC", "ETH", "USDT", "USDC", "DAI", "XRP", "LTC", "BNB", "TRX", "SOL", "XMR", "BCH", "EOS", "DOGE",
          "ATOM", "MATIC"}

AR_WORDS: dict[str, int | Decimal] = {
    "واحد": 1, "واحدة": 1, "احد": 1, "اثنان": 2, "اثنين": 2, "اثنتان": 2, "اثنتين": 2, "اثنا": 2, "اثني": 2,
    "ثلاث": 3, "ثلاثة": 3, "اربع": 4, "اربعة": 4, "خمس": 5, "خمسة": 5, "ست": 6, "ستة": 6, "سبع": 7,
    "سبعة": 7, "ثمان": 8, "ثماني": 8, "ثمانية": 8, "تسع": 9, "تسعة": 9, "عشر": 10, "عشرة": 10,
    "عشرون": 20, "عشرين": 20, "ثلاثون": 30, "ثلاثين": 30, "اربعون": 40, "اربعين": 40, "خمسون": 50,
    "خمسين": 50, "ستون": 60, "ستين": 60, "سبعون": 70, "سبعين": 70, "ثمانون": 80, "ثمانين": 80,
    "تسعون": 90, "تسعين": 90, "مئة": 100, "مائة": 100, "مئتان": 200, "مئتين": 200, "مائتان": 200,
    "مائتين": 200, "ثلاثمئة": 300, "ثلاثمائة": 300, "اربعمئة": 400, "اربعمائة": 400, "خمسمئة": 500,
    "خمسمائة": 500, "ستمئة": 600, "ستمائة": 600, "سبعمئة": 700, "سبعمائة": 700, "ثمانمئة": 800,
    "ثمانمائة": 800, "ثمانيمئة": 800, "تسعمئة": 900, "تسعمائة": 900, "نصف": Decimal("0.5"),
}
EN_WORDS: dict[str, int | Decimal] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "a": 1, "an": 1, "half": Decimal("0.5"),
}

QUALIFIERS = [
    ((r"(?:more than|over|in excess of|upwards of|exceeding|at least|no less than|اكثر من|ما يزيد (?:عن|علي)|"
     r"ما لا يقل عن|ازيد من|يزيد (?:عن|علي))\s*$"), "more_than"),
    (r"(?:up to|as much as|as high as|حتي|ما يصل (?:الي|ل)|يصل (?:الي|ل)|تصل (?:الي|ل))\s*$", "up_to"),
    ((r"(?:about|around|approximately|roughly|nearly|almost|some|close to|an estimated|estimated|nearly|"
     r"نحو|حوالي|قرابة|ما يقارب|ما يناهز|زهاء|تقريبا|قرابه)\s*$"), "about"),
    (r"(?:less than|under|below|اقل من)\s*$", "less_than"),
]


def _alt(words) -> str:
    return "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(words, key=len, reverse=True))


_NUM = r"\d+(?:[.,]\d+)*"
_ARW = _alt(AR_WORDS)
_ENW = _alt(k for k in EN_WORDS if k not in ("a", "an"))
_WORD1 = rf"(?:{_ARW}|{_ENW}|a|an)"
_WORDS = rf"{_WORD1}(?:(?:\s+|-)(?:و|and\s+)?(?:{_ARW}|{_ENW}))*"
_PROCLITIC = r"(?:وب|ول|و|ف|ب|ل)"
MONEY_RE = re.compile(
    rf"(?<![\w$.,\d])(?P<big>(?:مليار|مليارا|ملياري|مليارين)\s+(?=و(?!\s?نصف)))?(?P<pro>{_PROCLITIC})?(?:(?P<pre>{_alt(PREFIX)})\s?)?"
    rf"(?:(?P<num>{_NUM})|(?P<words>{_WORDS})|(?P<dual>{_alt(DUALS)})|(?P<bare>{_alt(BARE)}))"
    rf"(?:\s*-?\s*(?P<scale>{_alt(SCALES)})(?![\w]))?"
    rf"(?P<half>\s+(?:و\s?نصف|and\s+a\s+half)(?:\s+(?:ال)?(?:مليار|مليون|الف))?(?![\w]))?"
    rf"(?:\s*(?:of\s+|worth\s+of\s+|من\s+)?(?P<suf>{_alt(SUFFIX)})(?![\w]))?"
    rf"(?!\w)"
)
_FOLLOW_OK = re.compile(r"\s*(?:$|[.,;:)\"'،؛؟!-]|(?:in|from|and|to|at|on|was|were|worth|each|during|"
                        r"في|من|عام|خلال|بين|و)\b|و)")


@dataclass
class Money:
    start: int
    end: int
    value: Decimal
    currency: str | None
    currency_inferred: bool = False
    qualifier: str | None = None
    notes: list[str] = field(default_factory=list)


def parse_number(s: str, has_scale: bool) -> Decimal | None:
    """A digit string with , and . in any convention -> Decimal. One comma followed by a group whose length
    is not 3 is a decimal comma (316,4); 1,000,000 and 1.000.000 are thousands; with both, the last is the
    decimal separator."""
    if "," in s and "." in s:
        dec = "," if s.rfind(",") > s.rfind(".") else "."
        th = "." if dec == "," else ","
        s = s.replace(th, "").replace(dec, ".")
    elif "," in s:
        parts = s.split(",")
        if len(parts) == 2 and len(parts[1]) != 3:
            s = parts[0] + "." + parts[1]
        elif all(len(p) == 3 for p in parts[1:]):
            s = "".join(parts)
        else:
            return None
    elif s.count(".") > 1:
        parts = s.split(".")
        if not all(len(p) == 3 for p in parts[1:]):
            return None
        s = "".join(parts)
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def words_value(text: str) -> Decimal | None:
    """Number words (Arabic or English) -> value, additively (ثلاثمئة وستة عشر = 316; 'two hundred and
    eighty one' = 281)."""
    total = Decimal(0)
    cur = Decimal(0)
    for tok in re.split(r"[\s-]+", text):
        if not tok or tok in ("and",):
            continue
        if tok.startswith("و") and tok not in AR_WORDS and tok[1:] in AR_WORDS:
            tok = tok[1:]
        v = AR_WORDS.get(tok, EN_WORDS.get(tok))
        if v is None:
            return None
        if tok == "hundred":
            cur = (cur or Decimal(1)) * 100
        else:
            cur += Decimal(v)
    total += cur
    return total or None


def _qualifier(norm: str, start: int) -> str | None:
    before = norm[max(0, start - 30):start]
    for pat, q in QUALIFIERS:
        if re.search(pat, before):
            return q
    return None


def find_money(norm: str) -> list[Money]:
    """Every money mention in normalised text (currency inheritance is left to the caller: a mention with a
    scale word but no currency has ``currency=None``)."""
    out = []
    for m in MONEY_RE.finditer(norm):
        pre, num, words, dual, scale, suf = (m.group(k) for k in ("pre", "num", "words", "dual", "scale", "suf"))
        big = Decimal(2 * 10**9 if m.group("big").startswith(("ملياري", "مليارين")) else 10**9) \
            if m.group("big") else Decimal(0)          # "مليار و700 مليون دولار" = 1.7e9
        if m.group("bare"):
            if not suf or scale:
                continue
            c = SUFFIX[re.sub(r"\s+", " ", suf)]
            v = Decimal(BARE[m.group("bare")])
            v += v / 2 if m.group("half") else 0         # "مليار ونصف دولار"
            out.append(Money(m.start("big") if big else m.start("bare"), m.end(), big + v, c,
                             qualifier=_qualifier(norm, m.start())))
            continue
        scale_key = re.sub(r"\s+", " ", scale) if scale else None
        if scale_key in SHORT_SCALES and not pre and not suf:
            # "5 m" is not money; retry without the short scale only if a suffix currency is there (rare)
            continue
        currency = PREFIX[pre] if pre else (SUFFIX[re.sub(r"\s+", " ", suf)] if suf else None)
        if num is not None:
            value = parse_number(num, bool(scale))
            if value is None:
                continue
            if not scale and not currency:
                continue
            if not pre and not scale and re.fullmatch(r"(19|20)\d\d", num) and not suf:
                continue
        elif words is not None:
            if not scale and not currency:
                continue
            if words.strip() in ("a", "an") and not scale:
                continue
            value = words_value(words)
            if value is None:
                continue
        else:
            value = Decimal(DUALS[dual])
            if scale:           # "ملياري" is complete; a following scale word belongs to something else
                continue
        mult = SCALES[scale_key] if scale_key else 1
        value = value * mult
        if m.group("half") and scale_key:
            value += Decimal(mult) / 2                  # "1 مليار ونصف", "a billion and a half"
        if big and mult < 10**9:
            value += big
        start = m.start("big") if big else m.start("pre") if pre else (
            m.start("num") if num is not None else m.start("words") if words is not None else m.start("dual"))
        if currency is None and not _FOLLOW_OK.match(norm, m.end()):
            continue            # "5 million users"
        out.append(Money(start, m.end(), value, currency, qualifier=_qualifier(norm, m.start())))
    return out
