"""Gazetteers: versioned JSON entries (actors, victims, victim types, attack types, sources, cue words) in
Arabic and English, compiled into one regex per entry type over the normalised text.

Arabic aliases take an optional proclitic prefix (و ف ب ل ك ال وال بال لل) and a short suffix; English
aliases match on word boundaries; the longest alias wins. The DPRK actor aliases of the built-in intel
catalogue (``chaintrace/data/intel/dprk_actors.json``) are added to the actor entries.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from chaintrace.intel.extract.text import norm_alias


@dataclass
class Hit:
    start: int
    end: int
    entry: dict
    type: str


def _is_arabic(s: str) -> bool:
    return any("\u0600" <= c <= "\u06ff" for c in s)


def _catalogue_actor_aliases() -> dict[str, list[str]]:
    try:
        data = json.loads(resources.files("chaintrace").joinpath("data/intel/dprk_actors.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for a in data.get("actors", []):
        names = [a.get("name", "")] + list(a.get("aliases", []))
        names = [re.sub(r"^(Subgroup|Operation):\s*", "", n).strip() for n in names]
        # short or lower-case aliases ("GOP", "Zinc") are too ambiguous for running text
        out[a["id"]] = [n for n in names if len(n) >= 5 and any(c.isupper() for c in n) and " " not in n[:1]]
    return out


_TOKEN = re.compile(r"[^\s\"'()\[\]«»,،؛;:!?؟]+")
_PREFIXES = ("وبال", "وال", "بال", "فال", "لل", "ال", "و", "ف", "ب", "ل", "ك")
_SUFFIXES = frozenset({"ه", "ها", "هم", "ات", "ين", "ون", "ا", "ي"})


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]


@dataclass
class Gazetteer:
    """Alias matching over tokens (a dict from an alias's first token to the aliases that start with it):
    linear in the text, whatever the number of aliases."""

    version: str
    entries: list[dict]
    by_first: dict[str, list[tuple[tuple[str, ...], dict, bool, str]]]   # first token -> (alias, entry, arabic, type)

    def find(self, norm: str, type_: str, pre: tuple[list, list] | None = None) -> list[Hit]:
        """Hits of one entry type (see :meth:`find_all`)."""
        return self.find_all(norm, pre).get(type_, [])

    def find_all(self, norm: str, pre: tuple[list, list] | None = None) -> dict[str, list[Hit]]:
        """Hits of every entry type in one pass over the tokens: per type, left to right, the longest alias
        at each position, non-overlapping."""
        toks, variants = tokenize(norm) if pre is None else pre
        out: dict[str, list[Hit]] = {}
        nxt: dict[str, int] = {}
        n = len(toks)
        for i in range(n):
            s0 = toks[i][0]
            best: dict[str, tuple] = {}
            for pre_len, first in variants[i]:
                for alias, entry, arabic, type_ in self.by_first.get(first, ()):
                    k = len(alias)
                    if i + k > n or (pre_len and not arabic) or nxt.get(type_, 0) > i:
                        continue
                    end = _match_rest(alias, toks, i, arabic, first_tok=first)
                    if end is None:
                        continue
                    span = (k, end - s0)
                    b = best.get(type_)
                    if b is None or span > b[0]:
                        best[type_] = (span, Hit(s0 + pre_len, end, entry, type_), k)
            for type_, (_, hit, k) in best.items():
                out.setdefault(type_, []).append(hit)
                nxt[type_] = i + k
        return out


def tokenize(norm: str) -> tuple[list[tuple[int, int, str]], list[list[tuple[int, str]]]]:
    toks = _tokens(norm)
    return toks, [list(dict.fromkeys(_variants(t))) for _, _, t in toks]


def _variants(tok: str):
    """(prefix length, token) readings of a text token: as is, without a final period, without an Arabic
    proclitic."""
    yield 0, tok
    if tok.endswith(".") and len(tok) > 1:
        yield 0, tok[:-1]
    if "\u0600" <= tok[:1] <= "\u06ff":
        cores = [(0, tok)] + [(len(p), tok[len(p):]) for p in _PREFIXES if tok.startswith(p) and len(tok) - len(p) >= 2]
        for pre, core in cores:
            if pre:
                yield pre, core
            for suf in _SUFFIXES:
                if core.endswith(suf) and len(core) - len(suf) >= 2:
                    yield pre, core[:-len(suf)]


def _same(alias_tok: str, tok: str, arabic: bool, last: bool) -> int | None:
    """Length of `tok` consumed when it reads as `alias_tok` (suffixes and a final period allowed on the
    last token), else None."""
    if tok == alias_tok:
        return len(tok)
    if last and tok.endswith(".") and tok[:-1] == alias_tok:
        return len(tok) - 1
    if last and arabic and tok.startswith(alias_tok) and tok[len(alias_tok):] in _SUFFIXES:
        return len(tok)
    return None


def _match_rest(alias: tuple[str, ...], toks, i: int, arabic: bool, first_tok: str) -> int | None:
    k = len(alias)
    s, e, t = toks[i]
    if k == 1:
        # the first (and only) token was looked up through a variant; check the suffix/period reading
        for pre in (0,) + tuple(len(p) for p in _PREFIXES if t.startswith(p)):
            used = _same(alias[0], t[pre:], arabic, True)
            if used is not None and pre + used in (len(t), len(t) - (1 if t.endswith(".") else 0)):
                return s + pre + used
        return None
    for j in range(1, k):
        s2, _e2, t2 = toks[i + j]
        used = _same(alias[j], t2, arabic, j == k - 1)
        if used is None:
            return None
        e = s2 + used
    return e


@lru_cache(maxsize=4)
def load(path: str | None = None) -> Gazetteer:
    from pathlib import Path

    text = Path(path).read_text("utf-8") if path else \
        resources.files("chaintrace.intel.extract").joinpath("gazetteer.json").read_text("utf-8")
    data = json.loads(text)
    entries = data["entries"]
    extra = _catalogue_actor_aliases()
    index: dict[str, dict[str, list]] = {}
    by_first: dict[str, list] = {}
    for e in entries:
        aliases = list(e.get("aliases_ar", [])) + list(e.get("aliases_en", []))
        if e["type"] == "actor":
            aliases += extra.get(e["id"], [])
        table = index.setdefault(e["type"], {})
        for a in aliases:
            toks = tuple(t for _, _, t in _tokens(norm_alias(a)))
            if not toks:
                continue
            bucket = table.setdefault(toks[0], [])
            if not any(x[0] == toks for x in bucket):    # one alias -> the first entry that claims it
                bucket.append((toks, e, _is_arabic(a)))
                by_first.setdefault(toks[0], []).append((toks, e, _is_arabic(a), e["type"]))
    return Gazetteer(data.get("version", "?"), entries, by_first)
