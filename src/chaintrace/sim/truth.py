"""Reading a simulation's ground truth (schema: docs/simulator.md).

Amounts are written as decimal strings in truth.json (exact in every JSON reader, and wei exceed 2**53);
:func:`load_truth` turns the amount fields back into Python ints.
"""
from __future__ import annotations

import json
from pathlib import Path

from chaintrace.errors import UserError

AMOUNT_FIELDS = frozenset({
    "value", "stolen", "mixed", "amount", "total", "stolen_total", "cashed_out", "mixer_deposited", "coordinator_fees",
    "other_payments", "fees", "dormant", "received", "fees_total", "subsidy_total", "bridged", "swapped", "burned",
    "gas", "miner", "coinjoin", "denomination_value", "held", "pool_deposited", "relayer_fees", "tip", "issued",
    "tips", "supply", "total_supply", "balance", "amount_in", "stolen_in", "eth_out", "stolen_out", "from_swaps",
})


def _ints(obj, key=None):
    if isinstance(obj, dict):
        return {k: _ints(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_ints(v, key) for v in obj]
    if isinstance(obj, str) and key in AMOUNT_FIELDS and obj.lstrip("-").isdigit():
        return int(obj)
    return obj


def load_truth(path) -> dict:
    """truth.json of a simulation directory (or the file itself), with amounts as ints."""
    p = Path(path)
    if p.is_dir():
        p = p / "truth.json"
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"{p}: no truth.json (is this a `chaintrace simulate` output directory?)") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{p}: not valid JSON ({e})") from None
    if data.get("format") != "chaintrace-sim-truth":
        raise UserError(f"{p}: not a chaintrace simulation truth file")
    data = _ints(data)
    data["_dir"] = str(p.parent)
    return data


def address_entities(path):
    """The true entity of every address of a simulation, as an Arrow table (address, address_id, entity,
    role, script_type, customer); join it on ``address`` with the store's address table."""
    import pyarrow.parquet as pq

    p = Path(path)
    if p.is_file():
        p = p.parent
    truth = json.loads((p / "truth.json").read_text())
    return pq.read_table(p / truth["addresses"]["file"])
