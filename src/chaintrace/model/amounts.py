"""Exact amounts.

Every amount in chaintrace is an integer number of base units (satoshi, wei, token units). Bitcoin values
fit in a signed 64-bit integer. Ether and token amounts may reach 2**256 - 1, so account-chain tables store
them in two columns:

* ``value``: ``DECIMAL(38,0)``, exact, set whenever the amount is below 10**38 (every realistic ETH amount:
  the whole ether supply is about 1.2e26 wei);
* ``value_big``: the exact decimal string, set only when the amount does not fit ``DECIMAL(38,0)``
  (``value`` is then NULL).

SQL sums over ``value`` are exact (DuckDB and Spark both raise on DECIMAL overflow instead of wrapping);
Python code reads both columns with :func:`join_amount` and sums Python ints, which are unbounded. Reports
write amounts as decimal strings of base units.
"""
from __future__ import annotations

from decimal import Decimal

DECIMAL38_LIMIT = 10**38
UINT256_LIMIT = 2**256


def split_amount(value: int) -> tuple[int | None, str | None]:
    """Split an exact amount into the (``value``, ``value_big``) column pair."""
    if value < 0 or value >= UINT256_LIMIT:
        raise ValueError(f"amount out of range for a uint256: {value}")
    if value < DECIMAL38_LIMIT:
        return value, None
    return None, str(value)


def join_amount(value, value_big) -> int:
    """Inverse of :func:`split_amount` (accepts int, Decimal or str for ``value``)."""
    if value is not None:
        if isinstance(value, Decimal):
            if value != value.to_integral_value():
                raise ValueError(f"amount is not integral: {value}")
        return int(value)
    if value_big is None:
        raise ValueError("amount has neither value nor value_big")
    return int(value_big)


def fmt_units(value: int, decimals: int, symbol: str = "") -> str:
    """Human form of an integer amount with `decimals` decimal places, exact (no float)."""
    sign = "-" if value < 0 else ""
    q, r = divmod(abs(value), 10**decimals) if decimals else (abs(value), 0)
    frac = f"{r:0{decimals}d}".rstrip("0") if decimals else ""
    text = f"{sign}{q:,}" + (f".{frac}" if frac else "")
    return f"{text} {symbol}".rstrip()
