"""Transfer lists (Dune / Etherscan / spreadsheet exports: time, from, to, amount[, tx hash]) -> the store.

Investigators often hold only such a list, not blocks. :func:`ingest_transfer_list` turns one into ETH
transfers in a workspace of its own: rows are ordered by time, each distinct time becomes a block whose hash
is synthetic (derived from the file, flagged in the store's metadata as ``synthetic_blocks``), each row a
successful transaction (its hash from the list, else synthesised and marked: see :mod:`chaintrace.model.ids`;
the count is the store's ``synthetic_txids`` metadata) with its value and no gas. Amounts in ether (``total_eth``, ``amount_eth``, ``eth``,
``amount``, ``value_eth``) are converted to wei exactly from their decimal text (``1e-05`` is 10**13 wei; a
value with more than 18 decimals is refused, not rounded); ``value``/``value_wei`` columns are wei. Postgres
``\\x`` hex addresses (Dune) are read as ``0x``.

A workspace whose eth store holds real blocks refuses a transfer list (synthetic heights would collide).
"""
from __future__ import annotations

import csv
import json
import tempfile
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.model.encoding import keccak256
from chaintrace.model.ids import is_synthetic_txid, synthetic_tx_hash
from chaintrace.progress import NULL, Progress
from chaintrace.store.workspace import Workspace

TIME_COLS = ("block_time", "timestamp", "time", "date", "datetime", "block_timestamp")
FROM_COLS = ("from", "from_address", "sender")
TO_COLS = ("to", "to_address", "receiver", "recipient")
ETH_COLS = ("total_eth", "amount_eth", "value_eth", "eth", "amount")
WEI_COLS = ("value_wei", "value", "wei")
HASH_COLS = ("hash", "tx_hash", "transaction_hash", "txid")


def _pick(header: list[str], names) -> str | None:
    low = {h.strip().lower(): h for h in header}
    return next((low[n] for n in names if n in low), None)


def _addr(text: str, where: str) -> str:
    s = (text or "").strip().lower()
    if s.startswith("\\x"):
        s = "0x" + s[2:]
    if len(s) != 42 or not s.startswith("0x") or any(c not in "0123456789abcdef" for c in s[2:]):
        raise UserError(f"{where}: not an address: {text!r}")
    return s


def _time(text: str, where: str) -> int:
    s = (text or "").strip()
    if s.isdigit():
        return int(s)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        raise UserError(f"{where}: not a time: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


def read_transfer_list(path: str | Path) -> list[dict]:
    """Rows ``{time, from, to, value (wei), hash, line}`` of a CSV transfer list, in file order."""
    path = Path(path)
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise UserError(f"{path}: {e.strerror}") from None
    with fh:
        rd = csv.reader(fh)
        header = next(rd, None)
        if not header:
            raise UserError(f"{path}: empty file")
        ct, cf, cto = _pick(header, TIME_COLS), _pick(header, FROM_COLS), _pick(header, TO_COLS)
        ce, cw, ch = _pick(header, ETH_COLS), _pick(header, WEI_COLS), _pick(header, HASH_COLS)
        missing = [n for n, c in (("time", ct), ("from", cf), ("to", cto)) if c is None]
        if missing or (ce is None and cw is None):
            raise UserError(f"{path}:1: need columns for time, from, to and an amount (ether: {', '.join(ETH_COLS)}; "
                            f"wei: {', '.join(WEI_COLS)}); missing {', '.join(missing) or 'amount'}")
        idx = {h: i for i, h in enumerate(header)}
        out = []
        for line, row in enumerate(rd, 2):
            if not row or not any(x.strip() for x in row):
                continue
            where = f"{path}:{line}"
            if len(row) != len(header):
                raise UserError(f"{where}: {len(row)} fields, the header has {len(header)}")
            raw = row[idx[ce]] if ce else row[idx[cw]]
            try:
                d = Decimal(raw.strip())
            except InvalidOperation:
                raise UserError(f"{where}: not an amount: {raw!r}") from None
            wei = d * 10**18 if ce else d
            if wei < 0 or wei != wei.to_integral_value():
                raise UserError(f"{where}: {raw!r} is not a whole number of wei")
            h = row[idx[ch]].strip().lower().replace("\\x", "0x") if ch else None
            out.append({"time": _time(row[idx[ct]], where), "from": _addr(row[idx[cf]], where),
                        "to": _addr(row[idx[cto]], where), "value": int(wei), "hash": h or None, "line": line})
    return out


def transfer_list_to_etl(path: str | Path, out: str | Path) -> dict:
    """Write the transfer list at `path` as an ethereum-etl JSON export (synthetic blocks) into `out`."""
    rows = read_transfer_list(path)
    rows.sort(key=lambda r: (r["time"], r["line"]))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tag = keccak256(Path(path).read_bytes()).hex()[:16]
    blocks, txs = [], []
    parent = "0x" + keccak256(f"transfer-list:{tag}:genesis".encode()).hex()
    seen = set()
    synthesised = 0
    for r in rows:
        if not blocks or blocks[-1]["timestamp"] != r["time"]:
            n = len(blocks)
            bh = "0x" + keccak256(f"transfer-list:{tag}:{n}".encode()).hex()
            blocks.append({"number": n, "hash": bh, "parent_hash": parent, "timestamp": r["time"], "miner": None,
                           "gas_limit": 0, "gas_used": 0, "transaction_count": 0, "base_fee_per_gas": None,
                           "difficulty": 0, "total_difficulty": 0, "size": 0})
            parent = bh
        b = blocks[-1]
        h = r["hash"] or synthetic_tx_hash(keccak256(f"transfer-list:{tag}:line{r['line']}".encode()).hex())
        if h in seen:  # the same transaction listed twice (e.g. two transfers of one tx): keep rows distinct
            h = synthetic_tx_hash(keccak256(f"{h}:line{r['line']}".encode()).hex())
        seen.add(h)
        synthesised += is_synthetic_txid(h)
        txs.append({"hash": h, "nonce": 0, "block_hash": b["hash"], "block_number": b["number"],
                    "transaction_index": b["transaction_count"], "from_address": r["from"], "to_address": r["to"],
                    "value": r["value"], "gas": 0, "gas_price": 0, "input": "0x", "transaction_type": 0,
                    "receipt_gas_used": 0, "receipt_cumulative_gas_used": 0, "receipt_status": 1,
                    "receipt_effective_gas_price": 0})
        b["transaction_count"] += 1
    (out / "blocks.json").write_text("".join(json.dumps(b) + "\n" for b in blocks))
    (out / "transactions.json").write_text("".join(json.dumps(t) + "\n" for t in txs))
    return {"rows": len(rows), "blocks": len(blocks), "total_wei": sum(r["value"] for r in rows),
            "synthetic_txids": synthesised}


def ingest_transfer_list(workspace: Workspace, path: str | Path, progress: Progress = NULL):
    """Load a transfer list into the workspace's eth store (synthetic blocks; see the module doc)."""
    from chaintrace.chains.eth import ingest_etl

    store = workspace.chain("eth")
    if store.exists and not store.meta.get("synthetic_blocks"):
        raise UserError(f"workspace {workspace.path} holds real Ethereum blocks; load transfer lists into a "
                        f"workspace of their own (--data DIR)")
    if store.exists and store.meta.get("source_file") not in (None, str(Path(path).resolve())):
        raise UserError(f"workspace {workspace.path} already holds the transfer list {store.meta['source_file']}; "
                        f"use another --data directory")
    with tempfile.TemporaryDirectory() as tmp:
        info = transfer_list_to_etl(path, tmp)
        rep = ingest_etl(workspace, tmp, progress=progress,
                         extra_meta={"synthetic_blocks": True, "source_file": str(Path(path).resolve()),
                                     "synthetic_txids": info["synthetic_txids"]})
    rep.source = str(path)
    rep.warnings = [w for w in rep.warnings if "no token_transfers" not in w and "no traces" not in w]
    rep.warnings.append(f"{info['rows']} rows of a transfer list: block hashes are synthetic, no gas, no "
                        f"internal or token transfers")
    if info["synthetic_txids"]:
        rep.warnings.append(f"{info['synthetic_txids']} transaction hashes synthesised (the list has none for those "
                            f"rows); they start with 0x{'0' * 16} and are not on-chain ids")
    return rep
