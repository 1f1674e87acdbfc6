"""Table schemas (Arrow) and catalog views (DuckDB SQL) of every chain. Documented in docs/schema.md."""
from __future__ import annotations

import pyarrow as pa

from chaintrace.store.schema import btc

CHAINS = {"btc": btc}


def register(name: str, module) -> None:
    """Register a chain's schema module (must define SCHEMAS and views(files))."""
    CHAINS[name] = module


def schemas(chain: str) -> dict[str, pa.Schema]:
    _load_optional()
    try:
        return CHAINS[chain].SCHEMAS
    except KeyError:
        raise ValueError(f"unknown chain {chain!r}; known: {', '.join(sorted(CHAINS))}") from None


def _load_optional() -> None:
    if "eth" not in CHAINS:
        try:
            from chaintrace.store.schema import eth
        except ImportError:
            return
        CHAINS["eth"] = eth


def empty_select(schema: pa.Schema) -> str:
    """A SELECT with the schema's columns and no rows (for views over tables without segments)."""
    from chaintrace.store.schema._sql import duck_type

    cols = ", ".join(f"CAST(NULL AS {duck_type(f.type)}) AS {f.name}" for f in schema)
    return f"SELECT {cols} WHERE false"
