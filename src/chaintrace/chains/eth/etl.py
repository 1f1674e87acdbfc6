"""Read ethereum-etl exports: CSV (``ethereumetl export_all`` / ``export_*``) or JSON lines (``ethereumetl
stream``, the ``expected_*.json`` test fixtures), as :class:`~chaintrace.chains.eth.records.EthBatch` batches.

A directory (searched recursively, so ``export_all``'s ``start_block=.../end_block=...`` partitions work) is
scanned for files whose name contains ``blocks``, ``transactions``, ``token_transfers``, ``traces``,
``receipts``, ``logs`` or ``tokens`` (``.csv`` or ``.json``/``.jsonl``, optionally prefixed as in
``expected_blocks.json``). Blocks are required; the rest are optional:

* receipts come either as ``receipt_*`` columns of the transactions (the streaming form) or as a separate
  ``receipts`` file (the batch form), joined on the transaction hash;
* without traces, internal (contract-to-account) ETH transfers are unknown and the store says so;
* ``logs`` are read only for WETH ``Deposit``/``Withdrawal`` events (wrapping ETH mints WETH without a
  ``Transfer`` log).

Files of each kind are streamed in block order (an export is written that way); a file that goes back in
block number is rejected with its line, so memory stays bounded by the batch size. CSV files are read with
Arrow's reader (integer columns typed as they are read), the files of one batch in parallel, one batch ahead
of the ingestor.
"""
from __future__ import annotations

import ast
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from chaintrace.chains.eth.records import (DEPOSIT_TOPIC, KINDS, WITHDRAWAL_TOPIC, EthBatch, conform, empty)
from chaintrace.errors import UserError

_KIND_RE = [
    ("token_transfers", re.compile(r"(^|[_\-.])token_transfers($|[_\-.])")),
    ("transactions", re.compile(r"(^|[_\-.])transactions($|[_\-.])")),
    ("blocks", re.compile(r"(^|[_\-.])blocks($|[_\-.])")),
    ("traces", re.compile(r"(^|[_\-.])traces($|[_\-.])")),
    ("receipts", re.compile(r"(^|[_\-.])receipts($|[_\-.])")),
    ("logs", re.compile(r"(^|[_\-.])logs($|[_\-.])")),
    ("tokens", re.compile(r"(^|[_\-.])tokens($|[_\-.])")),
]
_SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}


class EtlError(UserError):
    def __init__(self, src: str, line: int | None, message: str):
        where = f"{src}:{line}" if line else src
        super().__init__(f"{where}: {message}")
        self.src, self.line = src, line


def find_files(path: str | Path) -> dict[str, list[Path]]:
    """Export files by kind (paths sorted, so partitions come in block order)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UserError(f"{root}: no such file or directory")
    candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    out: dict[str, list[Path]] = {}
    for p in candidates:
        if p.suffix.lower() not in _SUFFIXES:
            continue
        stem = p.stem.lower()
        for kind, rx in _KIND_RE:
            if rx.search(stem):
                if p.stat().st_size > 0:
                    out.setdefault(kind, []).append(p)
                break
    return out


# ---------------------------------------------------------------- one file -> canonical Arrow chunks


def _json_value(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    return v


def _json_chunks(path: Path, kind: str, rows_per_chunk: int) -> Iterator[pa.Table]:
    cols = KINDS[kind]
    names = list(cols)
    src = str(path)
    buf: dict[str, list] = {c: [] for c in names}
    lines: list[int] = []
    wbuf: dict[str, list] = {c: [] for c in KINDS["withdrawals"]}
    wlines: list[int] = []

    def flush():
        table = {}
        for c, t in cols.items():
            vals = buf[c]
            if t == pa.string():
                vals = [None if v is None else str(v) for v in vals]
            else:
                bad = next((i for i, v in enumerate(vals) if v is not None and not isinstance(v, int)), None)
                if bad is not None:
                    raise EtlError(src, lines[bad], f"{c}: expected an integer, got {vals[bad]!r}")
            table[c] = pa.array(vals, t)
        table["_src"] = _src_column(src, len(lines))
        table["_line"] = pa.array(lines, pa.int64())
        out = pa.table(table)
        if kind == "blocks":
            w = {c: pa.array([None if v is None else (str(v) if t == pa.string() else v) for v in wbuf[c]], t)
                 for c, t in KINDS["withdrawals"].items()}
            w["_src"] = _src_column(src, len(wlines))
            w["_line"] = pa.array(wlines, pa.int64())
            return out, pa.table(w)
        return out, None

    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError as e:
                raise EtlError(src, lineno, f"not valid JSON ({e})") from None
            if not isinstance(rec, dict):
                raise EtlError(src, lineno, "expected one JSON object per line")
            for c in names:
                buf[c].append(_json_value(rec.get(c)))
            lines.append(lineno)
            if kind == "blocks":
                for w in rec.get("withdrawals") or []:
                    for c in KINDS["withdrawals"]:
                        wbuf[c].append(rec.get("number") if c == "block_number" else w.get(c))
                    wlines.append(lineno)
            if len(lines) >= rows_per_chunk:
                yield flush()
                buf = {c: [] for c in names}
                lines = []
                wbuf = {c: [] for c in KINDS["withdrawals"]}
                wlines = []
    if lines:
        yield flush()


def _parse_withdrawals_cell(text: str, src: str, line: int) -> list[dict]:
    text = text.strip()
    if not text or text == "[]":
        return []
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise EtlError(src, line, f"withdrawals: cannot parse {text[:60]!r}") from None
    if not isinstance(value, list):
        raise EtlError(src, line, "withdrawals: expected a list")
    return value


def _csv_header(path: Path) -> list[str]:
    import csv as _csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        return next(_csv.reader(fh), [])


def _src_column(src: str, n: int) -> pa.Array:
    """The ``_src`` bookkeeping column: one dictionary entry for the whole file (not n copies of the path)."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([src], pa.string()))


def _csv_reader(path: Path, header: list[str], kind: str, block_size: int, typed: bool):
    wanted = set(KINDS[kind]) | ({"withdrawals"} if kind == "blocks" else set())
    types = {c: pa.string() for c in header}
    if typed:  # integer columns straight to int64 (a bad cell makes the reader fail: see _csv_bad_cell)
        types.update({c: t for c, t in KINDS[kind].items() if c in types and t == pa.int64()})
    opts = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                include_columns=[c for c in header if c in wanted])
    return pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=block_size), convert_options=opts)


def _csv_bad_cell(path: Path, header: list[str], kind: str, block_size: int, err: Exception) -> EtlError:
    """The typed reader failed: find the first cell that is not an integer (reading everything as text)."""
    src = str(path)
    line = 2
    try:
        reader = _csv_reader(path, header, kind, block_size, typed=False)
        for batch in reader:
            for c, typ in KINDS[kind].items():
                if typ != pa.int64() or c not in batch.schema.names:
                    continue
                col = batch.column(c)
                ok = pc.fill_null(pc.match_substring_regex(col, r"^-?[0-9]+$"), True).to_numpy(zero_copy_only=False)
                if not ok.all():
                    i = int(np.flatnonzero(~ok)[0])
                    return EtlError(src, line + i, f"{c}: expected an integer, got {col[i].as_py()!r}")
                big = pc.fill_null(pc.greater(pc.utf8_length(col), 18), False).to_numpy(zero_copy_only=False)
                if big.any():
                    i = int(np.flatnonzero(big)[0])
                    try:
                        int(col[i].as_py()).to_bytes(8, "little", signed=True)
                    except OverflowError:
                        return EtlError(src, line + i, f"{c}: integer out of range: {col[i].as_py()!r}")
            line += batch.num_rows
    except (pa.ArrowInvalid, OSError) as e:
        return EtlError(src, None, f"malformed CSV ({e})")
    return EtlError(src, None, f"malformed CSV ({err})")


def _csv_chunks(path: Path, kind: str, block_size: int) -> Iterator[tuple[pa.Table, pa.Table | None]]:
    src = str(path)
    header = _csv_header(path)
    if not header or not header[0]:
        return
    try:
        reader = _csv_reader(path, header, kind, block_size, typed=True)
    except (pa.ArrowInvalid, OSError) as e:
        if isinstance(e, pa.ArrowInvalid) and "conversion error" in str(e):
            raise _csv_bad_cell(path, header, kind, block_size, e) from None
        raise EtlError(src, None, f"not a readable CSV file ({e})") from None
    first_line = 2
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as e:
            if "conversion error" in str(e):
                raise _csv_bad_cell(path, header, kind, block_size, e) from None
            raise EtlError(src, None, f"malformed CSV ({e})") from None
        t = pa.Table.from_batches([batch])
        n = len(t)
        lines = np.arange(first_line, first_line + n, dtype=np.int64)
        first_line += n
        cols = {c: (t[c] if c in t.column_names else pa.nulls(n, typ)) for c, typ in KINDS[kind].items()}
        cols["_src"] = _src_column(src, n)
        cols["_line"] = pa.array(lines)
        out = pa.table(cols)
        wd = None
        if kind == "blocks" and "withdrawals" in t.column_names:
            wrows = {c: [] for c in KINDS["withdrawals"]}
            wl = []
            for i, (num, cell) in enumerate(zip(out["number"].to_pylist(), t["withdrawals"].to_pylist())):
                if not cell:
                    continue
                for w in _parse_withdrawals_cell(cell, src, int(lines[i])):
                    for c in KINDS["withdrawals"]:
                        v = num if c == "block_number" else w.get(c)
                        wrows[c].append(None if v is None else (str(v) if KINDS["withdrawals"][c] == pa.string()
                                                                else int(v)))
                    wl.append(int(lines[i]))
            wd = pa.table({**{c: pa.array(v, KINDS["withdrawals"][c]) for c, v in wrows.items()},
                           "_src": _src_column(src, len(wl)), "_line": pa.array(wl, pa.int64())})
        yield out, wd


def _chunks(path: Path, kind: str, chunk_bytes: int, rows_per_chunk: int):
    fmt = _SUFFIXES[path.suffix.lower()]
    if fmt == "csv":
        yield from _csv_chunks(path, kind, chunk_bytes)
    else:
        yield from _json_chunks(path, kind, rows_per_chunk)


class _Stream:
    """Rows of one kind across its files, handed out by block range (files must be in block order)."""

    def __init__(self, kind: str, files: list[Path], chunk_bytes: int = 16 << 20, rows_per_chunk: int = 100_000):
        self.kind = kind
        self.files = files
        self._gen = (c for f in files for c in _chunks(f, kind, chunk_bytes, rows_per_chunk))
        self._buf: list[pa.Table] = []
        self._wbuf: list[pa.Table] = []
        self._last = -1
        self._done = False
        self.bcol = "number" if kind == "blocks" else "block_number"

    def _pull(self) -> bool:
        if self._done:
            return False
        try:
            t, w = next(self._gen)
        except StopIteration:
            self._done = True
            return False
        b = t[self.bcol]
        if b.null_count and self.kind != "tokens":
            i = int(np.flatnonzero(~b.is_valid().to_numpy(zero_copy_only=False))[0])
            raise EtlError(t["_src"][i].as_py(), t["_line"][i].as_py(), f"{self.bcol} is missing")
        if self.kind != "tokens" and len(t):
            arr = b.to_numpy()
            prev = np.concatenate([[self._last], arr[:-1]])
            back = np.flatnonzero(arr < prev)
            if len(back):
                i = int(back[0])
                raise EtlError(t["_src"][i].as_py(), t["_line"][i].as_py(),
                               f"{self.bcol} {int(arr[i])} comes after {int(prev[i])}: the file is not in block "
                               f"order (sort it by {self.bcol})")
            self._last = int(arr[-1])
        self._buf.append(t)
        if w is not None:
            self._wbuf.append(w)
        return True

    def take(self, hi: int | None) -> tuple[pa.Table, pa.Table | None]:
        """Rows with block number <= hi (all remaining rows if hi is None). Rows come in block order, so
        this is a split of the buffered rows (zero-copy slices)."""
        while not self._done and (hi is None or self._last <= hi):
            if not self._pull():
                break
        t = pa.concat_tables(self._buf).combine_chunks() if self._buf else empty(self.kind)
        w = pa.concat_tables(self._wbuf).combine_chunks() if self._wbuf else None
        if hi is None:
            self._buf, self._wbuf = [], []
            return t, w
        k = int(np.searchsorted(t[self.bcol].to_numpy(), hi, side="right")) if len(t) else 0
        out, rest = t.slice(0, k), t.slice(k)
        self._buf = [rest] if len(rest) else []
        wout = None
        if w is not None:
            kw = int(np.searchsorted(w["block_number"].to_numpy(), hi, side="right")) if len(w) else 0
            wout, wrest = w.slice(0, kw), w.slice(kw)
            self._wbuf = [wrest] if len(wrest) else []
        return out, wout

    def peek_blocks(self, n: int) -> pa.Table:
        """At least n rows buffered (or all that remain), without consuming them."""
        while not self._done and sum(len(t) for t in self._buf) < n:
            if not self._pull():
                break
        return pa.concat_tables(self._buf) if self._buf else empty(self.kind)


def _decode_weth_logs(logs: pa.Table, weth: set[str]) -> pa.Table:
    """WETH Deposit/Withdrawal events -> token-transfer rows (mint to dst / burn from src)."""
    if not len(logs):
        return empty("token_transfers")
    addr = pc.utf8_lower(logs["address"])
    keep = pc.is_in(addr, value_set=pa.array(sorted(weth), pa.string()))
    sel = logs.filter(keep)
    rows = {c: [] for c in ("token_address", "from_address", "to_address", "value", "transaction_hash",
                            "log_index", "block_number", "event", "_src", "_line")}
    for rec in sel.to_pylist():
        topics = [x.strip() for x in (rec["topics"] or "").split(",") if x.strip()]
        if len(topics) != 2 or topics[0] not in (DEPOSIT_TOPIC, WITHDRAWAL_TOPIC):
            continue
        data = (rec["data"] or "0x")[2:]
        if len(data) != 64:
            continue
        who = "0x" + topics[1][-40:]
        dep = topics[0] == DEPOSIT_TOPIC
        rows["token_address"].append(rec["address"].lower())
        rows["from_address"].append("0x" + "0" * 40 if dep else who)
        rows["to_address"].append(who if dep else "0x" + "0" * 40)
        rows["value"].append(str(int(data, 16)))
        rows["transaction_hash"].append(rec["transaction_hash"])
        rows["log_index"].append(rec["log_index"])
        rows["block_number"].append(rec["block_number"])
        rows["event"].append("deposit" if dep else "withdrawal")
        rows["_src"].append(rec["_src"])
        rows["_line"].append(rec["_line"])
    return conform("token_transfers", pa.table({k: pa.array(v, pa.int64() if k in ("log_index", "block_number",
                                                                                     "_line") else pa.string())
                                                 for k, v in rows.items()}))


def _join_receipts(txs: pa.Table, receipts: pa.Table) -> pa.Table:
    if not len(receipts):
        return txs
    idx = {h: i for i, h in enumerate(receipts["transaction_hash"].to_pylist())}
    pos = [idx.get(h) for h in txs["hash"].to_pylist()]
    missing = [i for i, p in enumerate(pos) if p is None]
    if missing:
        i = missing[0]
        raise EtlError(txs["_src"][i].as_py(), txs["_line"][i].as_py(),
                       f"transaction {txs['hash'][i].as_py()} has no receipt in the receipts file")
    take = pa.array(pos, pa.int64())
    out = txs
    for rc, tc in (("cumulative_gas_used", "receipt_cumulative_gas_used"), ("gas_used", "receipt_gas_used"),
                   ("contract_address", "receipt_contract_address"), ("status", "receipt_status"),
                   ("effective_gas_price", "receipt_effective_gas_price"),
                   ("blob_gas_used", "receipt_blob_gas_used"), ("blob_gas_price", "receipt_blob_gas_price")):
        col = receipts[rc].take(take)
        out = out.set_column(out.column_names.index(tc), tc, col)
    return out


def read_export(path: str | Path, *, batch_blocks: int = 2000, weth: set[str] | None = None
                ) -> tuple[dict[str, list[Path]], Iterator[EthBatch]]:
    """Scan `path` and return (files by kind, iterator of batches of up to `batch_blocks` blocks)."""
    from chaintrace.chains.eth.tokens import WETH_ADDRESSES

    files = find_files(path)
    if "blocks" not in files:
        raise UserError(f"{path}: no ethereum-etl blocks file (blocks.csv, blocks.json, expected_blocks.json...); "
                        f"export them with `ethereumetl export_blocks_and_transactions`")
    weth = weth or WETH_ADDRESSES
    streams = {k: _Stream(k, v) for k, v in files.items() if k != "tokens"}
    tokens = empty("tokens")
    if "tokens" in files:
        parts = [t for f in files["tokens"] for t, _ in _chunks(f, "tokens", 16 << 20, 100_000)]
        tokens = pa.concat_tables(parts) if parts else tokens

    def batches() -> Iterator[EthBatch]:
        bs = streams["blocks"]
        others = [k for k in ("transactions", "receipts", "token_transfers", "logs", "traces") if k in streams]
        # the files of one block range are read in parallel (Arrow's CSV reader releases the GIL); results are
        # taken in this order, so the first file with an error is the one reported
        with ThreadPoolExecutor(max_workers=max(len(others), 1), thread_name_prefix="eth-etl-read") as pool:
            while True:
                head = bs.peek_blocks(batch_blocks)
                if not len(head):
                    return
                nums = head["number"].to_numpy()
                hi = int(nums[min(batch_blocks, len(nums)) - 1])
                blocks, wd = bs.take(hi)
                futures = {k: pool.submit(streams[k].take, hi) for k in others}
                got = {k: futures[k].result()[0] for k in others}
                txs = got.get("transactions", empty("transactions"))
                has_receipts = True
                if "receipts" in got:
                    txs = _join_receipts(txs, got["receipts"])
                elif len(txs) and txs["receipt_gas_used"].null_count == len(txs):
                    has_receipts = False
                tt = got.get("token_transfers", empty("token_transfers"))
                if "logs" in got:
                    wl = _decode_weth_logs(got["logs"], weth)
                    if len(wl):
                        tt = pa.concat_tables([conform("token_transfers", tt), wl])
                yield EthBatch(blocks=blocks, transactions=txs, token_transfers=tt, traces=got.get("traces"),
                               withdrawals=wd if wd is not None else empty("withdrawals"), tokens=tokens,
                               has_receipts=has_receipts)

    return files, _prefetch(batches())


def _prefetch(gen: Iterator, depth: int = 1) -> Iterator:
    """Items of `gen`, produced by a background thread up to `depth` items ahead: Arrow's CSV reader releases
    the GIL, so the next batch is read while the ingestor builds and commits this one. Errors are raised
    where the item would have been; closing the iterator stops the thread."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for x in gen:
                if not put(("item", x)):
                    return
            put(("end", None))
        except BaseException as e:  # handed to the consumer
            put(("error", e))

    th = threading.Thread(target=run, name="eth-etl-reader", daemon=True)
    th.start()
    try:
        while True:
            kind, x = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise x
            yield x
    finally:
        stop.set()
        th.join(timeout=5)
