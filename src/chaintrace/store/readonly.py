"""What `chaintrace sql` may run: exactly one statement that only reads.

Statements are counted and classified by DuckDB's own parser (``duckdb.extract_statements``), never by
string matching. Allowed: queries (``SELECT``, ``WITH``, ``FROM ...``, ``DESCRIBE``, ``SHOW``,
``SUMMARIZE``, ``UNPIVOT``), ``EXPLAIN`` of a query (``EXPLAIN ANALYZE`` runs it, so the inner statement is
checked the same way), the listing ``PRAGMA`` s in :data:`READ_PRAGMAS` and ``CALL`` of the ``duckdb_*`` /
``pragma_*`` listing functions. Everything that writes, loads or changes settings is refused: ``COPY``,
``ATTACH``/``DETACH``, ``INSTALL``/``LOAD``, ``CREATE``, ``INSERT``/``UPDATE``/``DELETE``/``MERGE``,
``DROP``, ``ALTER``, ``SET``/``RESET``/``USE``, a ``PRAGMA`` that sets, ``EXPORT``/``IMPORT DATABASE``,
``PREPARE``/``EXECUTE``, transactions, ``VACUUM``/``ANALYZE``/``CHECKPOINT``.

This is one of two locks: the connection the statement runs on also has external file access disabled
(only the workspace's chain stores are readable) and its configuration locked
(:meth:`chaintrace.store.workspace.Workspace.connect` with ``sandbox=True``).
"""
from __future__ import annotations

import re

import duckdb

from chaintrace.errors import UserError

#: PRAGMAs that only list or describe.
READ_PRAGMAS = frozenset({
    "show_tables", "show_tables_expanded", "table_info", "show", "database_list", "database_size",
    "storage_info", "version", "platform", "functions", "collations", "metadata_info", "user_agent",
})

_WHAT = {
    "COPY": "COPY writes or reads files", "COPY_DATABASE": "COPY FROM DATABASE writes a database",
    "ATTACH": "ATTACH opens another database", "DETACH": "DETACH changes the attached databases",
    "LOAD": "INSTALL/LOAD adds extensions", "EXTENSION": "extension statements load code",
    "CREATE": "CREATE writes", "CREATE_FUNC": "CREATE MACRO/FUNCTION writes", "INSERT": "INSERT writes",
    "UPDATE": "UPDATE writes", "DELETE": "DELETE writes", "MERGE_INTO": "MERGE writes", "DROP": "DROP writes",
    "ALTER": "ALTER writes", "SET": "SET/RESET/USE change settings", "VARIABLE_SET": "SET VARIABLE writes",
    "EXPORT": "EXPORT DATABASE writes files", "PREPARE": "PREPARE stores a statement",
    "EXECUTE": "EXECUTE runs a stored statement", "TRANSACTION": "transaction statements",
    "VACUUM": "VACUUM/ANALYZE write", "ANALYZE": "ANALYZE writes statistics",
    "MULTI": "statements that expand to several (e.g. PIVOT ... ON without SELECT) create types",
}

_EXPLAIN_RE = re.compile(r"^\s*EXPLAIN\s+(?:ANALY[SZ]E\s+|\([^)]*\)\s*)?(?P<inner>.*)$", re.I | re.S)
_PRAGMA_RE = re.compile(r"^\s*PRAGMA\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)", re.I)
_CALL_RE = re.compile(r"^\s*CALL\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\(", re.I)

ALLOWED = ("one read-only statement: SELECT/WITH/FROM, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, a listing PRAGMA "
           "(show_tables, table_info...)")


def _statements(text: str) -> list:
    try:
        return duckdb.extract_statements(text)
    except duckdb.Error as e:
        raise UserError(f"SQL error: {e}") from None


def read_only_statement(text: str) -> tuple[str, bool]:
    """Check that `text` holds exactly one statement that only reads.

    Returns ``(statement, is_query)``: the statement without trailing semicolons and comments, and whether it
    is a query that can be wrapped as a subquery (so a LIMIT can be pushed into it). Raises
    :class:`UserError` (exit 2) naming what was refused and why.
    """
    stmts = _statements(text or "")
    if not stmts:
        raise UserError("empty query: give one SQL statement, e.g. "
                        "\"SELECT height, hash FROM btc.blocks ORDER BY height DESC LIMIT 5\"")
    if len(stmts) > 1:
        kinds = ", ".join(s.type.name for s in stmts)
        raise UserError(f"one statement per call: got {len(stmts)} ({kinds}); sql runs {ALLOWED}")
    st = stmts[0]
    body = strip_tail(st.query)
    kind = st.type.name
    if kind == "SELECT":
        return body, True
    if kind == "EXPLAIN":
        m = _EXPLAIN_RE.match(body)
        inner = _statements(m.group("inner")) if m else []
        if len(inner) == 1 and inner[0].type.name == "SELECT":
            return body, False
        what = inner[0].type.name if len(inner) == 1 else "this statement"
        raise UserError(f"refused: EXPLAIN of {what} (EXPLAIN ANALYZE runs it); sql runs {ALLOWED}")
    if kind == "PRAGMA":
        m = _PRAGMA_RE.match(body)
        if m and m.group("name").lower() in READ_PRAGMAS:
            return body, False
        first = body.split(None, 2)
        name = m.group("name") if m else " ".join(first[:2])
        raise UserError(f"refused: {name} is not a listing PRAGMA (it may set, import or write); sql runs {ALLOWED}")
    if kind == "CALL":
        m = _CALL_RE.match(body)
        if m and m.group("name").lower().startswith(("duckdb_", "pragma_")):
            return body, False
        name = m.group("name") if m else body.split(None, 2)[1] if len(body.split()) > 1 else body
        raise UserError(f"refused: CALL {name} (only the duckdb_*/pragma_* listing functions; "
                        f"use SELECT * FROM fn(...)); sql runs {ALLOWED}")
    why = _WHAT.get(kind, f"{kind} statements are not queries")
    raise UserError(f"refused: {kind} statement ({why}); the store is read-only here and sql runs {ALLOWED}")


def strip_tail(text: str) -> str:
    """`text` without trailing semicolons and comments (found with DuckDB's tokenizer)."""
    raw = text.encode()  # the tokenizer's positions are UTF-8 byte offsets
    cut = len(raw)
    for pos, kind in reversed(duckdb.tokenize(text)):
        name = getattr(kind, "name", str(kind))
        if name == "comment" or (name == "operator" and raw[pos:pos + 1] == b";"):
            cut = pos
            continue
        break
    return raw[:cut].decode().rstrip()


def limited(statement: str, limit: int) -> str:
    """A query returning at most `limit` rows of the query `statement` (pushed into the plan)."""
    return f"SELECT * FROM (\n{statement}\n) AS _chaintrace_q LIMIT {int(limit)}"
