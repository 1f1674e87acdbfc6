"""News -> incident candidates (Arabic and English), with evidence for every field.

A regex grammar (money, dates) plus versioned gazetteers (actors, victims, attack types, sources, cue
words); see ``docs/intake.md`` and ``../shared/docs/news-extraction.md`` for the design. Every field carries
``evidence = {text, start, end}``: character offsets into the ORIGINAL text (HTML included) and the quoted
span.

>>> from chaintrace.intel.extract import extract_text
>>> c = extract_text("Hackers stole $81 million from Bangladesh Bank in February 2016.")[0]
>>> c["amount_usd"], c["victim"]["name"], c["date"]["start"]
(81000000, 'Bangladesh Bank', '2016-02')
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Sequence
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel.extract.gazetteer import load as load_gazetteer
from chaintrace.intel.extract.link import candidates as _candidates
from chaintrace.intel.extract.text import detect_lang, looks_like_html, prepare

KINDS = ("incident", "aggregate", "attempt", "ransom_demand", "reward")
LANGS = ("auto", "ar", "en")


def _date(s: str | _dt.date | None) -> _dt.date | None:
    if s is None or isinstance(s, _dt.date):
        return s
    try:
        return _dt.date.fromisoformat(s)
    except ValueError:
        raise UserError(f"--date {s!r} is not a date (YYYY-MM-DD)") from None


def extract_text(text: str, *, lang: str = "auto", date: str | _dt.date | None = None, doc_id: str = "",
                 html: bool | None = None, gazetteer: str | None = None) -> list[dict]:
    """Incident candidates of one article (plain text or HTML). ``date`` is the publication date: months
    without a year are resolved against it (never after it)."""
    if lang not in LANGS:
        raise UserError(f"--lang {lang!r} is not one of {', '.join(LANGS)}")
    p = prepare(text, html)
    found = detect_lang(p.norm) if lang == "auto" else lang
    return _candidates(p, load_gazetteer(gazetteer), doc_date=_date(date), lang=found, doc_id=doc_id)


def extract_files(paths: Sequence[str | Path], *, lang: str = "auto", date: str | None = None,
                  gazetteer: str | None = None) -> dict:
    """``{"candidates": [...], "documents": [...]}`` for article files (UTF-8 text or HTML)."""
    d = _date(date)
    gz = load_gazetteer(gazetteer)
    docs, cands = [], []
    for path in paths:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise UserError(f"{path}: cannot read ({e.strerror})") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: byte offset {e.start}: not UTF-8 text") from None
        is_html = path.suffix.lower() in (".html", ".htm") or looks_like_html(text)
        c = extract_text(text, lang=lang, date=d, doc_id=str(path), html=is_html, gazetteer=gazetteer)
        docs.append({"path": str(path), "sha256": hashlib.sha256(raw).hexdigest(), "html": is_html,
                     "lang": c[0]["lang"] if c else (lang if lang != "auto" else detect_lang(text)),
                     "candidates": len(c)})
        cands.extend(c)
    return {"candidates": cands, "documents": docs, "gazetteer_version": gz.version,
            "publication_date": d.isoformat() if d else None}


__all__ = ["KINDS", "LANGS", "extract_files", "extract_text"]
