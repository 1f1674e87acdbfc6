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

_AR_PRE = r"(?:وبال|وال|بال|فال|لل|ال|و|ف|ب|ل|ك)?"
_AR_SUF = r"(?:ه|ها|هم|ات|ين|ون|ا|ي)?"


@dataclass
class Hit:
    start: int
    end: int
    entry: dict
    type: str


def _is_arabic(s: str) -> bool:
    return any("\u0600" <= c <= "\u06ff" for c in s)


def _pattern(alias: str) -> str:
    body = re.escape(alias).replace(r"\ ", r"\s+")
    if _is_arabic(alias):
        return rf"(?<![\w]){_AR_PRE}{body}{_AR_SUF}(?![\w])"
    return rf"(?<![\w$]){body}(?![\w])"


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


@dataclass
class Gazetteer:
    version: str
    entries: list[dict]
    regexes: dict[str, re.Pattern]
    by_alias: dict[str, dict[str, dict]]

    def find(self, norm: str, type_: str) -> list[Hit]:
        rx = self.regexes.get(type_)
        if rx is None:
            return []
        out = []
        table = self.by_alias[type_]
        for m in rx.finditer(norm):
            key = next(k for k, v in m.groupdict().items() if v is not None)
            out.append(Hit(m.start(), m.end(), table[key], type_))
        return out


@lru_cache(maxsize=4)
def load(path: str | None = None) -> Gazetteer:
    from pathlib import Path

    text = Path(path).read_text("utf-8") if path else \
        resources.files("chaintrace.intel.extract").joinpath("gazetteer.json").read_text("utf-8")
    data = json.loads(text)
    entries = data["entries"]
    extra = _catalogue_actor_aliases()
    by_type: dict[str, list[tuple[str, dict]]] = {}
    for e in entries:
        aliases = list(e.get("aliases_ar", [])) + list(e.get("aliases_en", []))
        if e["type"] == "actor":
            aliases += extra.get(e["id"], [])
        seen = set()
        for a in aliases:
            n = norm_alias(a)
            if n and n not in seen:
                seen.add(n)
                by_type.setdefault(e["type"], []).append((n, e))
    regexes, by_alias = {}, {}
    for t, pairs in by_type.items():
        # one alias -> first entry that claims it; longest aliases first so the longest match wins
        uniq: dict[str, dict] = {}
        for n, e in pairs:
            uniq.setdefault(n, e)
        order = sorted(uniq, key=len, reverse=True)
        names = {f"a{i}": n for i, n in enumerate(order)}
        regexes[t] = re.compile("|".join(f"(?P<{k}>{_pattern(n)})" for k, n in names.items()))
        by_alias[t] = {k: uniq[n] for k, n in names.items()}
    return Gazetteer(data.get("version", "?"), entries, regexes, by_alias)
