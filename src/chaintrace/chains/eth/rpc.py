"""Ethereum JSON-RPC: a batched client with retries, and blocks + receipts + call traces -> canonical records.

The client is :class:`chaintrace.chains.jsonrpc.JsonRpcClient` (shared with Bitcoin Core). Methods used:
``eth_chainId``, ``eth_blockNumber``, ``eth_getBlockByNumber`` (full transactions),
``eth_getBlockReceipts`` (falling back to ``eth_getTransactionReceipt`` per transaction), for internal
transfers ``debug_traceBlockByNumber`` with the ``callTracer`` (geth, reth, anvil, erigon) or ``trace_block``
(erigon, nethermind, reth, anvil), and ``eth_call`` for token ``symbol()``/``name()``/``decimals()``.

Transient failures (connection refused or reset, timeouts, HTTP 429/5xx, JSON-RPC -32005 "limit exceeded")
are retried with exponential backoff; other errors are raised with the method and block named.
"""
from __future__ import annotations

import pyarrow as pa

from chaintrace.chains.eth.ingest import ChainMismatch, EthIngestor, EthIngestReport
from chaintrace.chains.eth.records import (DEPOSIT_TOPIC, TRANSFER_TOPIC, WITHDRAWAL_TOPIC, ZERO_ADDRESS, EthBatch,
                                           KINDS, conform)
from chaintrace.chains.eth.tokens import SELECTORS, WETH_ADDRESSES, decode_string, decode_uint
from chaintrace.chains.jsonrpc import JsonRpcClient, RpcError
from chaintrace.errors import UserError
from chaintrace.progress import NULL, Progress
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace

TRANSIENT_CODES = frozenset({-32005, -32603})


class EthRpcError(RpcError):
    """An Ethereum node could not be reached or answered with an error."""


class EthRpcClient(JsonRpcClient):
    """JSON-RPC 2.0 (:class:`chaintrace.chains.jsonrpc.JsonRpcClient`): HTTP 429 and -32005/-32603 retried; a
    refused connection before any answer fails at once."""

    transient_codes = TRANSIENT_CODES
    retry_statuses = frozenset({429})
    fail_fast_refused = True
    error = EthRpcError
    default_timeout = 120.0


# ---------------------------------------------------------------- JSON-RPC answers -> canonical rows


def _int(x) -> int | None:
    if x is None:
        return None
    if isinstance(x, int):
        return x
    return int(x, 16) if isinstance(x, str) and x.startswith("0x") else int(x)


def _dec(x) -> str | None:
    v = _int(x)
    return None if v is None else str(v)


def _lo(x):
    return x.lower() if isinstance(x, str) else x


def block_rows(blocks: list[dict], src: str) -> tuple[dict, dict, dict]:
    """eth_getBlockByNumber(n, true) answers -> (block, transaction, withdrawal) column dicts."""
    b = {c: [] for c in KINDS["blocks"]}
    t = {c: [] for c in KINDS["transactions"]}
    w = {c: [] for c in KINDS["withdrawals"]}
    for blk in blocks:
        num = _int(blk["number"])
        b["number"].append(num)
        b["hash"].append(_lo(blk["hash"]))
        b["parent_hash"].append(_lo(blk["parentHash"]))
        b["nonce"].append(blk.get("nonce"))
        b["sha3_uncles"].append(blk.get("sha3Uncles"))
        b["transactions_root"].append(blk.get("transactionsRoot"))
        b["state_root"].append(blk.get("stateRoot"))
        b["receipts_root"].append(blk.get("receiptsRoot"))
        b["miner"].append(_lo(blk.get("miner")))
        b["difficulty"].append(_dec(blk.get("difficulty")))
        b["total_difficulty"].append(_dec(blk.get("totalDifficulty")))
        b["size"].append(_int(blk.get("size")))
        b["extra_data"].append(blk.get("extraData"))
        b["gas_limit"].append(_int(blk.get("gasLimit")))
        b["gas_used"].append(_int(blk.get("gasUsed")))
        b["timestamp"].append(_int(blk.get("timestamp")))
        txs = blk.get("transactions") or []
        b["transaction_count"].append(len(txs))
        b["base_fee_per_gas"].append(_dec(blk.get("baseFeePerGas")))
        b["withdrawals_root"].append(blk.get("withdrawalsRoot"))
        b["blob_gas_used"].append(_int(blk.get("blobGasUsed")))
        b["excess_blob_gas"].append(_int(blk.get("excessBlobGas")))
        for tx in txs:
            if not isinstance(tx, dict):
                raise EthRpcError(f"{src}: block {num} lists transaction hashes only (full transactions needed)")
            t["hash"].append(_lo(tx["hash"]))
            t["nonce"].append(_int(tx.get("nonce")))
            t["block_hash"].append(_lo(tx.get("blockHash")))
            t["block_number"].append(num)
            t["transaction_index"].append(_int(tx.get("transactionIndex")))
            t["from_address"].append(_lo(tx.get("from")))
            t["to_address"].append(_lo(tx.get("to")))
            t["value"].append(_dec(tx.get("value")))
            t["gas"].append(_int(tx.get("gas")))
            t["gas_price"].append(_dec(tx.get("gasPrice")))
            t["input"].append(tx.get("input"))
            t["block_timestamp"].append(_int(blk.get("timestamp")))
            t["max_fee_per_gas"].append(_dec(tx.get("maxFeePerGas")))
            t["max_priority_fee_per_gas"].append(_dec(tx.get("maxPriorityFeePerGas")))
            t["transaction_type"].append(_int(tx.get("type")))
            for c in ("receipt_cumulative_gas_used", "receipt_gas_used", "receipt_contract_address",
                      "receipt_status", "receipt_effective_gas_price", "receipt_blob_gas_used",
                      "receipt_blob_gas_price"):
                t[c].append(None)
        for wd in blk.get("withdrawals") or []:
            w["block_number"].append(num)
            w["index"].append(_int(wd.get("index")))
            w["validator_index"].append(_int(wd.get("validatorIndex")))
            w["address"].append(_lo(wd.get("address")))
            w["amount"].append(_dec(wd.get("amount")))
    return b, t, w


def apply_receipts(t: dict, receipts: dict[str, dict]) -> dict:
    """Fill the receipt_* columns; returns token-transfer columns decoded from the receipts' logs."""
    tt = {c: [] for c in KINDS["token_transfers"]}
    for i, h in enumerate(t["hash"]):
        r = receipts.get(h)
        if r is None:
            raise EthRpcError(f"no receipt for transaction {h}")
        t["receipt_cumulative_gas_used"][i] = _int(r.get("cumulativeGasUsed"))
        t["receipt_gas_used"][i] = _int(r.get("gasUsed"))
        t["receipt_contract_address"][i] = _lo(r.get("contractAddress"))
        t["receipt_status"][i] = _int(r.get("status"))
        t["receipt_effective_gas_price"][i] = _dec(r.get("effectiveGasPrice"))
        t["receipt_blob_gas_used"][i] = _int(r.get("blobGasUsed"))
        t["receipt_blob_gas_price"][i] = _dec(r.get("blobGasPrice"))
        for log in r.get("logs") or []:
            topics = [_lo(x) for x in log.get("topics") or []]
            data = (log.get("data") or "0x")[2:]
            addr = _lo(log.get("address"))
            if not topics:
                continue
            ev = None
            if topics[0] == TRANSFER_TOPIC and len(topics) == 3 and len(data) == 64:
                frm, to, ev = "0x" + topics[1][-40:], "0x" + topics[2][-40:], "transfer"
            elif addr in WETH_ADDRESSES and len(topics) == 2 and len(data) == 64 and topics[0] == DEPOSIT_TOPIC:
                frm, to, ev = ZERO_ADDRESS, "0x" + topics[1][-40:], "deposit"
            elif addr in WETH_ADDRESSES and len(topics) == 2 and len(data) == 64 and topics[0] == WITHDRAWAL_TOPIC:
                frm, to, ev = "0x" + topics[1][-40:], ZERO_ADDRESS, "withdrawal"
            if ev is None:
                continue
            tt["token_address"].append(addr)
            tt["from_address"].append(frm)
            tt["to_address"].append(to)
            tt["value"].append(str(int(data, 16)))
            tt["transaction_hash"].append(h)
            tt["log_index"].append(_int(log.get("logIndex")))
            tt["block_number"].append(t["block_number"][i])
            tt["event"].append(ev)
    return tt


_CALLTYPES = {"CALL": ("call", "call"), "STATICCALL": ("call", "staticcall"), "DELEGATECALL": ("call", "delegatecall"),
              "CALLCODE": ("call", "callcode"), "CREATE": ("create", None), "CREATE2": ("create2", None),
              "SELFDESTRUCT": ("suicide", None)}


def calltracer_rows(answer: list, block_number: int, tx_hashes: list[str]) -> dict:
    """``debug_traceBlockByNumber`` callTracer frames -> trace columns (pre-order, with trace addresses)."""
    tr = {c: [] for c in KINDS["traces"]}
    if len(answer) != len(tx_hashes):
        raise EthRpcError(f"debug_traceBlockByNumber({block_number}): {len(answer)} traces for "
                          f"{len(tx_hashes)} transactions")
    for i, item in enumerate(answer):
        frame = item.get("result", item) if isinstance(item, dict) else None
        h = _lo(item.get("txHash")) if isinstance(item, dict) and item.get("txHash") else tx_hashes[i]
        if frame is None or "type" not in frame:
            err = item.get("error") if isinstance(item, dict) else item
            raise EthRpcError(f"debug_traceBlockByNumber({block_number}) tx {h}: no call frame ({err})")
        stack = [(frame, [])]
        while stack:
            f, path = stack.pop()
            ttype, ctype = _CALLTYPES.get(str(f.get("type", "")).upper(), (str(f.get("type", "")).lower(), None))
            tr["block_number"].append(block_number)
            tr["transaction_hash"].append(h)
            tr["transaction_index"].append(i)
            tr["from_address"].append(_lo(f.get("from")))
            tr["to_address"].append(_lo(f.get("to")))
            tr["value"].append(_dec(f.get("value")) or "0")
            tr["trace_type"].append(ttype)
            tr["call_type"].append(ctype)
            tr["reward_type"].append(None)
            tr["trace_address"].append(",".join(map(str, path)))
            tr["error"].append(f.get("error") or None)
            tr["status"].append(None)
            subs = f.get("calls") or []
            tr["subtraces"].append(len(subs))
            for k in range(len(subs) - 1, -1, -1):
                stack.append((subs[k], path + [k]))
    return tr


def parity_trace_rows(answer: list, block_number: int) -> dict:
    """``trace_block`` (OpenEthereum/Erigon format) -> trace columns, as ethereum-etl maps them."""
    tr = {c: [] for c in KINDS["traces"]}
    for t in answer:
        a = t.get("action") or {}
        res = t.get("result") or {}
        typ = t.get("type")
        frm, to, value, ctype, rtype = None, None, None, None, None
        if typ == "call":
            frm, to, value, ctype = a.get("from"), a.get("to"), a.get("value"), a.get("callType")
        elif typ in ("create", "create2"):
            frm, to, value = a.get("from"), res.get("address"), a.get("value")
        elif typ == "suicide":
            frm, to, value = a.get("address"), a.get("refundAddress"), a.get("balance")
        elif typ == "reward":
            to, value, rtype = a.get("author"), a.get("value"), a.get("rewardType")
        tr["block_number"].append(_int(t.get("blockNumber")) if t.get("blockNumber") is not None else block_number)
        tr["transaction_hash"].append(_lo(t.get("transactionHash")))
        tr["transaction_index"].append(_int(t.get("transactionPosition")))
        tr["from_address"].append(_lo(frm))
        tr["to_address"].append(_lo(to))
        tr["value"].append(_dec(value) or "0")
        tr["trace_type"].append(typ)
        tr["call_type"].append(_lo(ctype))
        tr["reward_type"].append(rtype)
        tr["trace_address"].append(",".join(str(x) for x in t.get("traceAddress") or []))
        tr["error"].append(t.get("error") or None)
        tr["status"].append(None)
        tr["subtraces"].append(_int(t.get("subtraces")))
    return tr


def _table(kind: str, cols: dict, src: str) -> pa.Table:
    n = len(next(iter(cols.values()))) if cols else 0
    arrays = {c: pa.array(cols.get(c, [None] * n), t) for c, t in KINDS[kind].items()}
    arrays["_src"] = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array([src], pa.string()))
    arrays["_line"] = pa.array([0] * n, pa.int64())
    return pa.table(arrays)


class EthNode:
    """Reads whole blocks (with receipts and traces) from a node."""

    def __init__(self, client: EthRpcClient, traces: str = "auto"):
        if traces not in ("auto", "debug", "parity", "none"):
            raise UserError(f"--traces must be auto, debug, parity or none, not {traces!r}")
        self.rpc = client
        self.traces = traces
        self.block_receipts = True

    def chain_id(self) -> int | None:
        try:
            return _int(self.rpc.call("eth_chainId"))
        except EthRpcError:
            return None

    def head(self) -> int:
        return _int(self.rpc.call("eth_blockNumber"))

    def hashes(self, heights: list[int]) -> list[str | None]:
        res = self.rpc.batch([("eth_getBlockByNumber", [hex(h), False]) for h in heights], allow_errors=True)
        return [None if isinstance(r, Exception) or r is None else _lo(r["hash"]) for r in res]

    def _receipts(self, blocks: list[dict]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        if self.block_receipts:
            res = self.rpc.batch([("eth_getBlockReceipts", [b["number"]]) for b in blocks], allow_errors=True)
            if all(not isinstance(r, Exception) and r is not None for r in res):
                for r in res:
                    for x in r:
                        out[_lo(x["transactionHash"])] = x
                return out
            self.block_receipts = False
        hashes = [_lo(tx["hash"]) for b in blocks for tx in b.get("transactions") or []]
        for k in range(0, len(hashes), 200):
            res = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes[k:k + 200]])
            for h, r in zip(hashes[k:k + 200], res):
                if r is None:
                    raise EthRpcError(f"eth_getTransactionReceipt({h}): the node has no receipt")
                out[h] = r
        return out

    def _traces(self, blocks: list[dict]) -> dict | None:
        if self.traces == "none":
            return None
        modes = ["debug", "parity"] if self.traces == "auto" else [self.traces]
        for mode in modes:
            if mode == "debug":
                calls = [("debug_traceBlockByNumber", [b["number"], {"tracer": "callTracer"}]) for b in blocks]
            else:
                calls = [("trace_block", [b["number"]]) for b in blocks]
            res = self.rpc.batch(calls, allow_errors=True)
            bad = [r for r in res if isinstance(r, Exception)]
            if bad:
                if self.traces == "auto" and mode == "debug":
                    continue
                if self.traces == "auto":
                    self.traces = "none"
                    return None
                raise bad[0]
            self.traces = mode
            cols = {c: [] for c in KINDS["traces"]}
            for b, r in zip(blocks, res):
                num = _int(b["number"])
                if mode == "debug":
                    part = calltracer_rows(r, num, [_lo(t["hash"]) for t in b.get("transactions") or []])
                else:
                    part = parity_trace_rows(r, num)
                for c in cols:
                    cols[c].extend(part[c])
            return cols
        self.traces = "none"
        return None

    def fetch(self, lo: int, hi: int) -> EthBatch:
        """Blocks lo..hi with receipts, token transfers and (if available) traces."""
        src = f"{self.rpc.url}"
        blocks = self.rpc.batch([("eth_getBlockByNumber", [hex(h), True]) for h in range(lo, hi + 1)])
        for h, b in zip(range(lo, hi + 1), blocks):
            if b is None:
                raise EthRpcError(f"{src}: the node has no block {h}")
        b, t, w = block_rows(blocks, src)
        tt = apply_receipts(t, self._receipts(blocks))
        trc = self._traces(blocks)
        return EthBatch(blocks=_table("blocks", b, src), transactions=_table("transactions", t, src),
                        token_transfers=_table("token_transfers", tt, src),
                        traces=None if trc is None else _table("traces", trc, src),
                        withdrawals=_table("withdrawals", w, src))

    def token_info(self, addresses: list[str]) -> dict[str, tuple]:
        calls = [("eth_call", [{"to": a, "data": SELECTORS[f]}, "latest"]) for a in addresses
                 for f in ("symbol", "name", "decimals")]
        out = {}
        for k in range(0, len(calls), 300):
            res = self.rpc.batch(calls[k:k + 300], allow_errors=True)
            for j in range(0, len(res), 3):
                a = addresses[(k + j) // 3]
                sym, name, dec = (None if isinstance(x, Exception) else x for x in res[j:j + 3])
                out[a] = (decode_string(sym), decode_string(name), decode_uint(dec))
        return out


def find_fork(node: EthNode, ing: EthIngestor, window: int = 64) -> int:
    """Highest stored height whose block hash the node agrees with (start height - 1 if none)."""
    hi = ing.tip_height
    while hi is not None and hi >= ing.start_height:
        lo = max(ing.start_height, hi - window + 1)
        got = node.hashes(list(range(lo, hi + 1)))
        for x in range(hi, lo - 1, -1):
            if got[x - lo] is not None and got[x - lo] == ing.hash_at(x):
                return x
        hi = lo - 1
    return ing.start_height - 1


def ingest_rpc(workspace: Workspace, url: str, *, from_height: int | None = None, to_height: int | None = None,
               traces: str = "auto", fetch_batch: int = 20, commit_blocks: int = 500, progress: Progress = NULL,
               client: EthRpcClient | None = None) -> EthIngestReport:
    """Ingest blocks from an Ethereum node over JSON-RPC.

    Incremental: a store continues after its tip (`from_height` only applies to an empty store). Before
    continuing, the stored tip is compared with the node's block at that height; if they differ (a reorg),
    the store is rolled back to the highest block both agree on. A reorg while reading (a fetched block whose
    parent is not the stored tip) is handled the same way. Each commit is atomic: an interrupted run resumes
    where the last commit ended, without duplicates.
    """
    rpc = client or EthRpcClient(url)
    node = EthNode(rpc, traces)
    chain_id = node.chain_id()
    with EthIngestor(workspace, progress, source=rpc.url, chain_id=chain_id, token_info=node.token_info) as ing:
        end = to_height if to_height is not None else node.head()
        if ing.tip_height is not None and from_height is not None and from_height > ing.tip_height + 1:
            raise StoreError(f"--from {from_height} would leave a gap after the stored tip {ing.tip_height}")
        progress.start("ingest eth rpc", None, "blocks")
        attempts = 0
        while True:
            if ing.tip_height is not None:
                fork = find_fork(node, ing)
                if fork < ing.tip_height:
                    ing.rollback(fork)
            start = ing.tip_height + 1 if ing.tip_height is not None else (from_height or 0)
            if start > end:
                break
            hi = min(end, start + commit_blocks - 1)
            parts = []
            for lo in range(start, hi + 1, fetch_batch):
                parts.append(node.fetch(lo, min(hi, lo + fetch_batch - 1)))
            batch = _merge(parts)
            try:
                ing.add(batch)
                attempts = 0
            except ChainMismatch:
                attempts += 1  # the node reorganised while we read: find the fork again
                if attempts > 5:
                    raise
        ing.report.internal_transfers = ing.report.internal_transfers and node.traces != "none"
        if node.traces == "none" and traces != "none":
            ing.report.warnings.append("the node offers neither debug_traceBlockByNumber nor trace_block: "
                                       "internal ETH transfers are not in the store")
        progress.finish()
    return ing.report


def _merge(parts: list[EthBatch]) -> EthBatch:
    if len(parts) == 1:
        return parts[0]
    cat = lambda xs: pa.concat_tables(xs)  # noqa: E731
    traces = None if any(p.traces is None for p in parts) else cat([p.traces for p in parts])
    return EthBatch(blocks=cat([p.blocks for p in parts]), transactions=cat([p.transactions for p in parts]),
                    token_transfers=cat([conform("token_transfers", p.token_transfers) for p in parts]),
                    traces=traces, withdrawals=cat([p.withdrawals for p in parts]))
