"""Any watch-list: an exchange's own blacklist, Forta's labelled CSVs, a list of addresses in plain text.

``chaintrace intel import list FILE --address-column COL [--address-column COL2] [--label-column COL]
[--chain C | --chain-column COL] [--category C] [--abuse A] [--source URL] [--confidence C] [--tlp T]``

Formats, told by the file name (and content for JSON): CSV (``.csv``), TSV (``.tsv``/``.tab``), JSON (an
array of objects, an object of objects keyed by address, or an object holding one such array), JSON lines
(``.jsonl``/``.ndjson``) and plain text (any other name: one address per line, ``#`` comments; no columns).
Every address is validated for its chain (``--chain``, the ``--chain-column`` value, or what the address form
says); rows that fail are rejected with file, line and reason, never imported silently. Several address
columns may be given (a contract and its creator): each makes its own tag, labelled with the row's label
and, for the second and later columns, the column's name.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr
from chaintrace.intel.files import parse_json, read_text
from chaintrace.intel.model import CONFIDENCE_LEVELS, LEVEL_IDS, Parsed, Reject
from chaintrace.model.tags import Tag

SUFFIXES = (".csv", ".tsv", ".tab", ".json", ".jsonl", ".ndjson", ".txt", ".list")


def _rows(path: Path, text: str) -> tuple[list[str] | None, list[tuple[int, dict | list]]]:
    """(header, [(line, row)]) of a watch-list; header None for plain text (row = [address])."""
    name = path.name.lower()
    if name.endswith((".csv", ".tsv", ".tab")):
        dialect = "excel-tab" if name.endswith((".tsv", ".tab")) else "excel"
        rdr = csv.reader(io.StringIO(text), dialect=dialect)
        try:
            header = [h.strip().lstrip("\ufeff") for h in next(rdr)]
        except StopIteration:
            raise UserError(f"{path}: empty file") from None
        except csv.Error as e:
            raise UserError(f"{path}: line 1: malformed CSV ({e})") from None
        rows: list[tuple[int, dict | list]] = []
        try:
            for fields in rdr:
                if not fields or all(not f.strip() for f in fields):
                    continue
                rows.append((rdr.line_num, fields if len(fields) != len(header) else dict(zip(header, fields))))
        except csv.Error as e:
            raise UserError(f"{path}: line {rdr.line_num}: malformed CSV ({e})") from None
        return header, rows
    if name.endswith((".jsonl", ".ndjson")):
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                rows.append((i, parse_json(line, f"{path}: line {i}")))
        return _header(rows), rows
    if name.endswith(".json"):
        data = parse_json(text, path)
        if isinstance(data, dict):
            arrays = [v for v in data.values() if isinstance(v, list)]
            if len(arrays) == 1 and all(isinstance(x, dict) for x in arrays[0]):
                data = arrays[0]
            else:
                data = [{"address": k, **(v if isinstance(v, dict) else {"label": v})} for k, v in data.items()]
        if not isinstance(data, list):
            raise UserError(f"{path}: expected a JSON array of objects, or an object of objects keyed by address")
        rows = [(i, x) for i, x in enumerate(data, 1)]  # JSON arrays: the item number stands for the line
        return _header(rows), rows
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#"):
            rows.append((i, [s]))
    return None, rows


def _header(rows) -> list[str]:
    seen: dict[str, None] = {}
    for _, r in rows:
        if isinstance(r, dict):
            seen.update(dict.fromkeys(r))
    return list(seen)


def _confidence(value: str | None) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    v = value.strip().lower()
    if v in CONFIDENCE_LEVELS:
        return CONFIDENCE_LEVELS[v], v
    if v.isdigit() and int(v) in LEVEL_IDS:
        return int(v), LEVEL_IDS[int(v)]
    raise UserError(f"--confidence: {value!r} is no GraphSense confidence (one of {', '.join(sorted(CONFIDENCE_LEVELS))}"
                    f", or a level {', '.join(map(str, sorted(LEVEL_IDS)))})")


def parse_list(path: str | Path, *, address_columns: tuple[str, ...] = (), label_column: str | None = None,
               chain: str | None = None, chain_column: str | None = None, category: str | None = None,
               abuse: str | None = None, source: str | None = None, confidence: str | None = None,
               tlp: str | None = None) -> Parsed:
    """Tags from one watch-list file (see the module text). Raises UserError for a malformed file or a
    column that is not in its header; rows with a bad address are rejects."""
    path = Path(path)
    if chain is not None and chain_column is not None:
        raise UserError("give --chain or --chain-column, not both")
    chain = addr.resolve_chain(chain)
    level, conf_id = _confidence(confidence)
    header, rows = _rows(path, read_text(path))
    if header is None:
        if label_column or chain_column or (address_columns and address_columns != ("address",)):
            raise UserError(f"{path}: a plain-text list has no columns (one address per line); "
                            f"use a .csv/.tsv/.json name for a file with columns")
        cols: tuple[str, ...] = ("address",)
    else:
        cols = address_columns or tuple(h for h in header if h.lower() in ("address", "addr", "wallet"))[:1]
        if not cols:
            raise UserError(f"{path}: which column holds the addresses? (--address-column; columns: "
                            f"{', '.join(header)})")
        missing = [c for c in (*cols, label_column, chain_column) if c and c not in header]
        if missing:
            raise UserError(f"{path}: no column {', '.join(map(repr, missing))} (columns: {', '.join(header)})")
    out = Parsed(kind="list", path=str(path))
    out.meta = {"title": f"watch-list {path.name}", "description": source}
    base = category or abuse or "black_list"
    seen: set = set()
    for line, row in rows:
        if header is None:
            row = {"address": row[0]}
        if not isinstance(row, dict):
            n = len(row)
            out.rejects.append(Reject(str(path), line, None, chain, f"{n} fields, the header has {len(header or [])}"))
            continue
        label = str(row.get(label_column) or "").strip() if label_column else ""
        for j, col in enumerate(cols):
            a = row.get(col)
            if a is None or (isinstance(a, str) and not a.strip()):
                if j == 0:
                    out.rejects.append(Reject(str(path), line, None, chain, f"no address in column {col!r}"))
                continue
            if not isinstance(a, str):
                out.rejects.append(Reject(str(path), line, repr(a)[:60], chain, f"{col}: address is not a string"))
                continue
            a = a.strip()
            c = chain
            if chain_column:
                c = addr.chain_of(str(row.get(chain_column) or ""), a)
            c = c or addr.valid_for(a)
            if c is None:
                out.rejects.append(Reject(str(path), line, a, None, addr.why_invalid(a) or "chain unknown"))
                continue
            why = addr.check(c, a)
            if why:
                out.rejects.append(Reject(str(path), line, a, c, why))
                continue
            text = label or base
            if j > 0:
                text = f"{text} ({col})"
            key = (c, addr.key(c, a), text)
            if key in seen:
                out.duplicates += 1
                continue
            seen.add(key)
            out.tags.append(Tag(chain=c, address=a.lower() if addr.is_evm(c) else a, label=text,
                                category=category or abuse or "black_list", abuse=abuse, source=source or str(path),
                                confidence=level, tlp=tlp,
                                is_public=tlp is None or tlp.lower() in ("clear", "white", "tlp:clear", "tlp:white"),
                                extra={"line": line, "confidence_id": conf_id, "address_as_written": a,
                                       "context": json.dumps({"column": col}) if j else None}))
    return out
