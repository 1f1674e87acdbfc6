"""Reading intelligence input files, with errors that name the file and the offending line or byte."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaintrace.errors import UserError


def read_bytes(path: str | Path) -> bytes:
    """The bytes of `path`; a :class:`UserError` naming the file when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None


def read_text(path: str | Path) -> str:
    """The UTF-8 text of `path`; a :class:`UserError` naming the file (and byte offset) when it cannot be read."""
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte offset {e.start})") from None


def parse_json(text: str, path: str | Path) -> Any:
    """`text` (read from `path`) parsed as JSON; a :class:`UserError` naming line and column when malformed."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: line {e.lineno}, column {e.colno}: malformed JSON ({e.msg})") from None


def read_json(path: str | Path) -> Any:
    """The JSON document in `path` (see :func:`read_text` and :func:`parse_json` for the errors)."""
    return parse_json(read_text(path), path)
