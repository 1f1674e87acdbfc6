"""Text preparation with an offset map back to the original: HTML tag stripping, Arabic/Latin
normalisation, language detection, sentence and clause splitting.

Every prepared string comes with ``idx`` where ``idx[i]`` is the offset in the ORIGINAL text of
character ``i``; evidence spans are reported in original offsets.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

_TASHKEEL = {chr(c) for c in range(0x064B, 0x0653)} | {"\u0670", "\u0640"}
_INVISIBLE = {"\u200e", "\u200f", "\u200b", "\u200c", "\u200d", "\u061c", "\ufeff", "\u202a", "\u202b",
              "\u202c", "\u202d", "\u202e"}
_MAP = {**{chr(0x0660 + d): str(d) for d in range(10)}, **{chr(0x06F0 + d): str(d) for d in range(10)},
        "\u066b": ".", "\u066c": ",", "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "\u00a0": " ",
        "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'", "–": "-", "—": "-",
        "\u2009": " ", "\u202f": " ", "ـ": ""}

_BLOCK = re.compile(r"(?i)^</?(p|br|div|h[1-6]|li|ul|ol|tr|td|th|table|section|article|header|footer|title|"
                    r"blockquote|pre|hr)\b")
_HTML_TOKEN = re.compile(r"(?is)<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[a-z/!][^>]*>|&(?:#\d+|#x[0-9a-f]+|[a-z]+);")


def looks_like_html(text: str) -> bool:
    return bool(re.search(r"(?i)<(html|body|p|div|article|br|span|h[1-6])\b[^>]*>", text[:5000]))


def strip_html(raw: str) -> tuple[str, list[int]]:
    """Visible text of an HTML document and the original offset of each of its characters. Tags become
    nothing (inline) or a blank line (block tags); entities are decoded; script/style/comments vanish."""
    out: list[str] = []
    idx: list[int] = []
    pos = 0
    for m in _HTML_TOKEN.finditer(raw):
        s = m.start()
        out.append(raw[pos:s])
        idx.extend(range(pos, s))
        tok = m.group(0)
        if tok.startswith("&"):
            dec = html.unescape(tok)
            out.append(dec)
            idx.extend([s] * len(dec))
        elif _BLOCK.match(tok):
            out.append("\n\n")
            idx.extend([s, s])
        pos = m.end()
    out.append(raw[pos:])
    idx.extend(range(pos, len(raw)))
    return "".join(out), idx


@dataclass
class Prepared:
    original: str          # the text as given (HTML included)
    cased: str             # normalised, case kept
    norm: str              # normalised and lower-cased (same length as cased)
    idx: list[int]         # idx[i]: original offset of norm[i]

    def span(self, s: int, e: int) -> dict:
        """Evidence for norm[s:e]: the original text between the mapped offsets."""
        if e <= s:
            return {"text": "", "start": self.idx[s] if s < len(self.idx) else len(self.original), "end": None}
        a, b = self.idx[s], self.idx[e - 1] + 1
        while b < len(self.original) and self.original[b] in _TASHKEEL:   # keep the word's diacritics (مليوناً)
            b += 1
        return {"text": self.original[a:b], "start": a, "end": b}


_TABLE = str.maketrans({**{c: None for c in _TASHKEEL | _INVISIBLE}, **{k: (v or None) for k, v in _MAP.items()}})
_DROP = frozenset(c for c, v in _TABLE.items() if v is None)     # code points


def prepare(raw: str, is_html: bool | None = None) -> Prepared:
    if is_html is None:
        is_html = looks_like_html(raw)
    text, base = strip_html(raw) if is_html else (raw, None)
    cased = text.translate(_TABLE)            # 1:1 mappings and deletions only
    if len(cased) == len(text):
        idx = base if base is not None else list(range(len(text)))
    else:
        keep = [i for i, c in enumerate(text) if ord(c) not in _DROP]
        idx = [base[i] for i in keep] if base is not None else keep
    norm = cased.lower()
    if len(norm) != len(cased):               # a few characters lower-case to two (İ): keep them as they are
        norm = "".join(c.lower() if len(c.lower()) == 1 else c for c in cased)
    return Prepared(raw, cased, norm, idx)


def norm_alias(s: str) -> str:
    """A gazetteer alias in the matching form (same normaliser as the text)."""
    return prepare(s, is_html=False).norm.strip()


def detect_lang(text: str) -> str:
    """'ar' when at least 30% of the letters are Arabic script, else 'en'."""
    ar = sum(1 for c in text if "\u0600" <= c <= "\u06ff")
    letters = sum(1 for c in text if c.isalpha())
    return "ar" if letters and ar / letters >= 0.3 else "en"


_ABBREV = {"mr", "mrs", "ms", "dr", "prof", "inc", "ltd", "corp", "co", "st", "vs", "no", "jan", "feb", "mar",
           "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "gen", "col", "sen", "rep", "gov",
           "approx", "est", "e.g", "i.e", "u.s", "u.k", "u.n", "d"}
_SENT_END = re.compile(r"[.!?؟]+[\"')\]]*[,،]?(?=\s)|\n\s*\n|\n(?=\s*[-*•])")


def sentences(norm: str) -> list[tuple[int, int]]:
    """Sentence spans: split after . ! ? ؟ followed by space (not after abbreviations or single initials) and at
    blank lines; never at the Arabic comma."""
    out = []
    start = 0
    for m in _SENT_END.finditer(norm):
        if m.group(0)[0] == ".":
            w = re.search(r"([\w.]+)$", norm[start:m.start()])
            word = w.group(1).lower() if w else ""
            if word in _ABBREV or (len(word) == 1 and word.isalpha() and word.isascii()) or \
                    re.fullmatch(r"(\w\.)+\w", word):
                continue
        end = m.end()
        if norm[start:end].strip():
            out.append((start, end))
        start = end
    if norm[start:].strip():
        out.append((start, len(norm)))
    return [_trim(norm, s, e) for s, e in out]


def _trim(norm: str, s: int, e: int) -> tuple[int, int]:
    while s < e and norm[s].isspace():
        s += 1
    while e > s and norm[e - 1].isspace():
        e -= 1
    return s, e


_CLAUSE = re.compile(r"[،؛;]|,\s+(?=and\b|while\b|but\b|whereas\b)|\s+-\s+")


def clauses(norm: str, s: int, e: int) -> list[tuple[int, int]]:
    """Clause spans of a sentence: split at ، ؛ ; and ', and' (what separates two amounts' details)."""
    out = []
    pos = s
    for m in _CLAUSE.finditer(norm, s, e):
        out.append((pos, m.start()))
        pos = m.end()
    out.append((pos, e))
    return [c for c in out if c[1] > c[0]]
