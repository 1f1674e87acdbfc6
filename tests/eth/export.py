"""Write small hand-made ethereum-etl exports (JSON lines, ethereum-etl's field names) for tests."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from chaintrace.model.encoding import keccak256


def addr(name: str) -> str:
    """A deterministic address for a readable name."""
    return "0x" + keccak256(name.encode()).hex()[-40:]


def h(text: str) -> str:
    return "0x" + keccak256(text.encode()).hex()


def cut_export(src: Path, dst: Path, max_block: int) -> None:
    """The ethereum-etl CSV export `src` up to block `max_block` into `dst` (emptied first): every CSV file
    filtered on its block column (``number`` in blocks.csv, ``block_number`` elsewhere; rows without one kept)."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for p in src.glob("*.csv"):
        with p.open(newline="") as fi, (dst / p.name).open("w", newline="") as fo:
            r = csv.DictReader(fi)
            col = "number" if p.name == "blocks.csv" else "block_number"
            w = csv.DictWriter(fo, r.fieldnames or [])
            w.writeheader()
            w.writerows(row for row in r if col not in row or not row[col] or int(row[col]) <= max_block)


class Export:
    """Build blocks of transactions; each transaction may carry token transfers and internal calls."""

    def __init__(self, base_fee: int = 0, miner: str = "miner"):
        self.blocks, self.txs, self.tts, self.traces = [], [], [], []
        self.base_fee = base_fee
        self.miner = addr(miner)
        self._cur: list[dict] | None = None
        self.parent = h("genesis-parent")

    def block(self) -> "Export":
        self._cur = []
        n = len(self.blocks)
        bh = h(f"block{n}")
        self.blocks.append({"type": "block", "number": n, "hash": bh, "parent_hash": self.parent,
                            "miner": self.miner, "timestamp": 1_700_000_000 + 12 * n, "gas_limit": 30_000_000,
                            "gas_used": 0, "transaction_count": 0, "base_fee_per_gas": self.base_fee,
                            "difficulty": 0, "total_difficulty": 0, "size": 1000, "withdrawals": []})
        self.parent = bh
        return self

    def tx(self, frm: str, to: str | None, value: int = 0, *, tokens=(), calls=(), status: int = 1,
           gas_used: int = 0, gas_price: int | None = None) -> str:
        """Add a transaction to the current block. tokens: (token, from, to, value); calls: (from, to, value,
        trace_address, error). Returns the transaction hash."""
        b = self.blocks[-1]
        i = b["transaction_count"]
        th = h(f"tx{len(self.txs)}")
        price = self.base_fee if gas_price is None else gas_price
        self.txs.append({"type": "transaction", "hash": th, "nonce": len(self.txs), "block_hash": b["hash"],
                         "block_number": b["number"], "transaction_index": i, "from_address": addr(frm),
                         "to_address": addr(to) if to else None, "value": value, "gas": 100_000,
                         "gas_price": price, "input": "0x", "block_timestamp": b["timestamp"],
                         "transaction_type": 2, "max_fee_per_gas": price, "max_priority_fee_per_gas": 0,
                         "receipt_gas_used": gas_used, "receipt_cumulative_gas_used": gas_used,
                         "receipt_contract_address": None, "receipt_status": status,
                         "receipt_effective_gas_price": price})
        for li, (tok, f, t, v) in enumerate(tokens):
            self.tts.append({"type": "token_transfer", "token_address": addr(tok), "from_address": addr(f),
                             "to_address": addr(t), "value": v, "transaction_hash": th, "log_index": li,
                             "block_number": b["number"]})
        if calls or True:
            self.traces.append({"type": "trace", "block_number": b["number"], "transaction_hash": th,
                                "transaction_index": i, "from_address": addr(frm),
                                "to_address": addr(to) if to else None, "value": value, "trace_type": "call",
                                "call_type": "call", "trace_address": [], "error": None if status else "Reverted",
                                "status": status, "subtraces": len(calls)})
        for f, t, v, ta, err in calls:
            self.traces.append({"type": "trace", "block_number": b["number"], "transaction_hash": th,
                                "transaction_index": i, "from_address": addr(f), "to_address": addr(t),
                                "value": v, "trace_type": "call", "call_type": "call", "trace_address": list(ta),
                                "error": err, "status": None, "subtraces": 0})
        b["transaction_count"] += 1
        b["gas_used"] += gas_used
        return th

    def write(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in (("blocks", self.blocks), ("transactions", self.txs), ("token_transfers", self.tts),
                           ("traces", self.traces)):
            (out / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return out
