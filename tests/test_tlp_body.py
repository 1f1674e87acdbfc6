"""TLP on the screening batch's way out: the body serialized first and scrubbed only where it mentions a
restricted string (chaintrace.api.tlp.scrubbed_body) is byte for byte the body of the full scrub walk."""
from __future__ import annotations

import random

import orjson

from chaintrace.api.tlp import mentions, scrub, scrubbed_body

# characters orjson escapes (quote, backslash, controls) or writes as multi-byte UTF-8, and plain ones
ALPHABET = ['"', "\\", "\n", "\t", "\x01", "\x1f", "/", "é", "€", "😀", "\u2028", "a", "b", "c", " ", ":", ","]


def _text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, n)))


def _value(rng: random.Random, depth: int = 0):
    k = rng.random()
    if depth < 3 and k < 0.2:
        return {_text(rng, 4): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 3 and k < 0.35:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if k < 0.45:
        return rng.choice([None, True, 7, 2**62, 0.25])
    return _text(rng, 12)


def test_scrubbed_body_is_the_full_scrub_byte_for_byte():
    rng = random.Random(13)
    hits = misses = 0
    for _ in range(4000):
        answer = {"results": [_value(rng) for _ in range(rng.randint(1, 6))], "data_version": {"v": _value(rng)}}
        if rng.random() < 0.2:
            answer = {"other": _value(rng)}  # not a screening answer: scrubbed whole
        strings = frozenset(_text(rng, 3) or "abc" for _ in range(rng.randint(0, 3)))
        want = scrub(answer, strings)
        got, body = scrubbed_body(answer, strings)
        assert got == want and body == orjson.dumps(want), (answer, strings)
        if strings and not mentions(orjson.dumps(answer), strings):
            misses += 1
            assert want == answer and got is answer  # nothing to withhold: the walk was skipped
        elif want != answer:
            hits += 1
    assert hits > 500 and misses > 500  # both paths exercised


def test_mentions_finds_escaped_and_multibyte_strings():
    body = orjson.dumps({"results": [{"entity": 'say "hi"\\ now\n', "actor": "Кобра 😀"}]})
    for s in ('"hi"', "\\ now\n", "Кобра", "😀"):
        assert mentions(body, frozenset({s}))
    assert not mentions(body, frozenset({"absent", "hi\"\""}))
    assert not mentions(body, frozenset())


def test_an_empty_restricted_string_withholds_every_string_as_the_walk_does():
    answer = {"results": [{"subject": "a", "risk": "none", "score": 0}], "data_version": {"index": "x"}}
    got, body = scrubbed_body(answer, frozenset({""}))
    assert got == scrub(answer, frozenset({""})) and body == orjson.dumps(got) and b'"a"' not in body
