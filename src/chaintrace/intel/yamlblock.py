"""A fast reader for the flat block-YAML layout of large TagPacks.

PyYAML builds a node object (with position marks) for every scalar before constructing Python values: a
90 MB TagPack of 400,000 tags takes about a minute to compose, even with libyaml. TagPacks written by tools
(GraphSense exports, ``chaintrace simulate``, ``chaintrace intel export``) use a narrow layout::

    title: "..."            # header: one `key: scalar` per line
    lastmod: 2024-02-02
    tags:                   # one list key
    - address: "bc1q..."    # items: flat mappings of scalars
      label: ...

:func:`read_flat` reads exactly that layout line by line, resolving plain scalars with PyYAML's own
resolver and constructor (so ``2024-02-02`` is a date, ``true`` a bool, as with PyYAML). Anything outside
it (nested collections, flow collections, block or multi-line scalars, anchors, aliases, tags, comments
after a value, escapes other than JSON's simple ones, tabs) returns ``None``, and the caller parses the
file with PyYAML. The tests check that both readers agree on every TagPack in the shared datasets.
"""
from __future__ import annotations

import json
import re

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

_STR = "tag:yaml.org,2002:str"
_KEY = r"[A-Za-z_][A-Za-z0-9_.-]*"
_HEADER = re.compile(rf"({_KEY}):(?: (.*))?")
_ITEM = re.compile(rf"( *)- ({_KEY}):(?: (.*))?")
_DQ_OK = re.compile(r'"(?:[^"\\]|\\["\\nrt])*"')  # double-quoted, only escapes JSON and YAML read alike
_PLAIN_BAD = re.compile(r"^[-?:,\[\]{}#&*!|>'\"%@`]|: |:$| #|\t")

# PyYAML's non-printable set (it refuses them), plus NEL and the Unicode line and paragraph separators
_NOT_PLAIN_TEXT = re.compile("[^\x09\x0A\x0D\x20-\x7E\xA0-\u2027\u202A-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]")
_resolver = Resolver()
_constructor = SafeConstructor()
_str_keys: set[str] = set()  # keys known to resolve to plain strings (not `yes:`, `null:`...)
_plain: dict = {}  # plain scalar text -> its value (labels, categories and actors repeat across tags)


class _Outside(Exception):
    """The text is not in the flat layout."""


def _key(k: str) -> str:
    if k not in _str_keys:
        if _resolver.resolve(yaml.ScalarNode, k, (True, False)) != _STR:
            raise _Outside
        _str_keys.add(k)
    return k


def _scalar(text: str | None):
    if text is None:
        raise _Outside  # `key:` opens a nested collection (or is an explicit null): leave it to PyYAML
    text = text.strip(" ")
    if not text:
        raise _Outside
    c = text[0]
    if c == '"':
        if "\\" not in text:
            if text[-1] != '"' or len(text) < 2 or '"' in text[1:-1]:
                raise _Outside
            return text[1:-1]
        if not _DQ_OK.fullmatch(text):
            raise _Outside
        return json.loads(text)
    if c == "'":
        inner = text[1:-1]
        if len(text) < 2 or text[-1] != "'" or "'" in inner.replace("''", ""):
            raise _Outside
        return inner.replace("''", "'")
    got = _plain.get(text, _plain)
    if got is not _plain:
        return got
    if _PLAIN_BAD.search(text):
        raise _Outside
    tag = _resolver.resolve(yaml.ScalarNode, text, (True, False))
    value = text if tag == _STR else _constructor.construct_object(yaml.ScalarNode(tag, text), deep=True)
    if len(_plain) < 100_000:
        _plain[text] = value  # immutable values only: str, int, float, bool, None, date, datetime
    return value


def read_flat(text: str, list_key: str) -> tuple[dict, list[int]] | None:
    """(document, 1-based line of each item of `list_key`) when `text` is in the flat layout, else None."""
    try:
        return _read(text, list_key)
    except (_Outside, ValueError, yaml.YAMLError):
        return None


def _read(text: str, list_key: str) -> tuple[dict, list[int]]:
    if _NOT_PLAIN_TEXT.search(text):
        raise _Outside  # characters PyYAML rejects, or line breaks other than \n and \r\n
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            raise _Outside  # a lone carriage return is a line break to YAML
    lines = text.split("\n")
    doc: dict = {}
    item_lines: list[int] = []
    items: list[dict] = []
    in_list = False  # after the `list_key:` header line, before any other header line
    item: dict | None = None
    dash = -1  # column of the items' "- " (their keys are 2 columns further)
    started = False
    for no, line in enumerate(lines, 1):
        s = line.lstrip(" ")
        if not s or s.startswith("#"):
            continue
        if not started:
            started = True
            if s.startswith("%YAML"):
                started = False
                continue
            if line == "---":
                continue
        if line[0] != " " and line[0] != "-":  # a header line
            m = _HEADER.fullmatch(line)
            if m is None or _key(m.group(1)) in doc:
                raise _Outside
            item = None
            in_list = m.group(1) == list_key and m.group(2) is None
            doc[m.group(1)] = items if in_list else _scalar(m.group(2))
            continue
        if not in_list:
            raise _Outside  # indented or list content that does not belong to the list key
        m = _ITEM.fullmatch(line)
        if m is not None:
            col = len(m.group(1))
            if dash < 0:
                dash = col
            elif col != dash:
                raise _Outside
            item = {_key(m.group(2)): _scalar(m.group(3))}
            items.append(item)
            item_lines.append(no)
            continue
        if item is None or len(line) - len(s) != dash + 2:
            raise _Outside
        m = _HEADER.fullmatch(s)
        if m is None or _key(m.group(1)) in item:
            raise _Outside
        item[m.group(1)] = _scalar(m.group(2))
    if not doc or list_key in doc and not doc[list_key]:
        raise _Outside  # an empty document, or `tags:` with nothing under it (a null in YAML)
    return doc, item_lines
