"""Arrow -> DuckDB type names, and the parquet scan expression used by views."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa


def duck_type(t: pa.DataType) -> str:
    if pa.types.is_int8(t):
        return "TINYINT"
    if pa.types.is_int16(t):
        return "SMALLINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_uint8(t):
        return "UTINYINT"
    if pa.types.is_uint32(t):
        return "UINTEGER"
    if pa.types.is_uint64(t):
        return "UBIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "VARCHAR"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BLOB"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_float64(t):
        return "DOUBLE"
    raise TypeError(f"no DuckDB type for {t}")


def scan(files: list[Path], schema: pa.Schema) -> str:
    """FROM-clause source for a table: its parquet files, or an empty typed relation."""
    if not files:
        from chaintrace.store.schema import empty_select

        return f"({empty_select(schema)})"
    quoted = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return f"read_parquet([{quoted}])"
