"""TLP on the way out of `chaintrace serve`: which intelligence a key may see.

Tags marked TLP:RED / AMBER+STRICT / AMBER are shown only to keys of the server's own organisation
(``CHAINTRACE_ORG``, default ``local``), by the pure rules of :mod:`chaintrace.share.tlp`. Answers for keys of
other organisations (the web UI's and the screening endpoints' alike) have every value naming a hidden tag's
label or actor replaced by ``"restricted"``.
"""
from __future__ import annotations

import os
from bisect import bisect_right
from itertools import accumulate
from typing import Any

import orjson
from fastapi import Request

from chaintrace.api.auth import Principal
from chaintrace.api.keys import DEFAULT_ORG

ENV_ORG = "CHAINTRACE_ORG"


def home_org() -> str:
    """The organisation that runs this server (owner of its registry's restricted intelligence)."""
    return os.environ.get(ENV_ORG) or DEFAULT_ORG


def tlp_visible(tlp: str | None, who: Principal) -> bool:
    """May `who` see an intelligence record marked `tlp` held by this server (see module doc)?"""
    from chaintrace.share.tlp import Collection, may_serve

    own = who.org == home_org()
    coll = Collection(id="ui", title="web UI", readers=frozenset({who.org}), max_tlp="red" if own else "green")
    return may_serve(tlp, home_org(), coll, who.org).allowed


def restricted_strings(request: Request, who: Principal) -> frozenset[str]:
    """Labels and actor ids of the registry's tags `who` may not see (and no visible tag shares): any answer
    value containing one is withheld. Cached per registry generation and organisation."""
    from chaintrace.intel import load_tags
    from chaintrace.intel.registry import generation

    if who.org == home_org():
        return frozenset()
    ws = request.app.state.ws
    gen = generation(ws)
    cache = getattr(request.app.state, "ui_restricted", None)
    if cache is None or cache[0] != gen:
        tags = [t for c in ("btc", "eth") for t in load_tags(ws, c) if t.tlp]
        cache = request.app.state.ui_restricted = (gen, tags, {})
    per_org: dict[str, frozenset[str]] = cache[2]  # the answer depends only on the caller's organisation: computed once per generation
    if who.org not in per_org:
        hidden: set[str] = set()
        shown: set[str] = set()
        for t in cache[1]:
            (shown if tlp_visible(t.tlp, who) else hidden).update(x for x in (t.label, t.actor) if x)
        per_org[who.org] = frozenset(x for x in hidden - shown if len(x) >= 4)
    return per_org[who.org]


def scrub(obj, strings: frozenset[str]):
    """`obj` with every string value that contains one of `strings` replaced by ``"restricted"``."""
    if not strings:
        return obj
    if isinstance(obj, dict):
        return {k: scrub(v, strings) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub(v, strings) for v in obj]
    if isinstance(obj, str) and any(s in obj for s in strings):
        return "restricted"
    return obj


def _needles(strings: frozenset[str]) -> list[bytes]:
    return [orjson.dumps(s)[1:-1] for s in strings]


def _mentioning(results: list, needles: list[bytes]) -> set[int]:
    """Indices of the `results` whose orjson text contains a needle: one byte search per needle over the
    texts joined by a raw newline (which orjson never writes and no needle holds: no match spans two)."""
    parts = [orjson.dumps(r) for r in results]
    starts = list(accumulate((len(p) + 1 for p in parts), initial=0))
    text = b"\n".join(parts)
    hit: set[int] = set()
    for n in needles:
        at = text.find(n)
        while at >= 0:
            i = bisect_right(starts, at) - 1
            hit.add(i)
            at = text.find(n, starts[i + 1])  # on from the next result
    return hit


def mentions(body: bytes, strings: frozenset[str]) -> bool:
    """May the orjson text `body` hold a value that :func:`scrub` would replace? orjson escapes each character
    on its own (``"``, ``\\``, control characters; the rest as UTF-8), so a string value containing `s` is
    written with the escaped form of `s` inside it: False proves that scrubbing changes nothing (True may be a
    match in a key or across values: then scrub)."""
    return any(n in body for n in _needles(strings))


def scrubbed_body(answer: Any, strings: frozenset[str]) -> tuple[Any, bytes]:
    """(`answer` scrubbed of `strings`, its orjson body), equal to ``scrub`` then ``orjson.dumps``: serialized
    first and walked only where the body mentions a restricted string (a partner's key whose batch touches no
    restricted intelligence, the common case, costs a byte search instead of a walk over every value); of a
    ``{"results": [...], ...}`` answer that does, only the results whose own text mentions one are walked."""
    body = orjson.dumps(answer)
    if not strings or not mentions(body, strings):
        return answer, body
    if isinstance(answer, dict) and isinstance(answer.get("results"), list) and "" not in strings:
        hit = _mentioning(answer["results"], _needles(strings))
        answer = {k: [scrub(r, strings) if i in hit else r for i, r in enumerate(v)] if k == "results"
                  else scrub(v, strings) for k, v in answer.items()}
    else:
        answer = scrub(answer, strings)
    return answer, orjson.dumps(answer)
