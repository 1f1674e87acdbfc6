"""Ethereum ingestion into the store: canonical batches -> validated, id-assigned Arrow tables -> one atomic
commit per batch.

Work is columnar end to end: hex strings, decimal amounts and addresses are read straight from the Arrow
string buffers by numba kernels (:mod:`chaintrace.chains.eth.columns`), amounts stay in 128-bit limbs until
the Decimal columns are written, transfers are ordered with one integer sort, and address ids come from a
hash table kept by the ingestor. Python loops run only over things that are rare (blocks, new token
contracts, amounts of 10**38 and more, the first bad row of a failing batch). A batch is validated
completely before its commit — block linkage (parent hashes), transaction counts and positions, receipts,
amounts, addresses, references from transfers to transactions — so the store only ever holds whole blocks.

The ingestor keeps the stored block hashes, the address dictionary and the token index in memory; a batch
that starts at or below the stored tip is matched against the stored hashes: identical blocks are skipped (a
re-run after a crash, an overlapping export), a different block rolls the store back to the fork first (a
reorg), and a gap is refused.

The stages of one batch are the modules of :mod:`chaintrace.chains.eth.stages` (read, validate, traces, token
transfers, fees, transfer order, ids, tables); this module holds the store state and commits.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import columns as C
from chaintrace.chains.eth.records import EthBatch
from chaintrace.chains.eth.stages import validate as V
from chaintrace.chains.eth.stages.fees import fee_parts, fees
from chaintrace.chains.eth.stages.ids import address_ids
from chaintrace.chains.eth.stages.read import ChainMismatch, EthDataError, _Addr, _fail, _hash_col
from chaintrace.chains.eth.stages.tables import block_table, transaction_table, transfer_table
from chaintrace.chains.eth.stages.token_transfers import token_part
from chaintrace.chains.eth.stages.traces import traces_part
from chaintrace.chains.eth.stages.transfers import KINDS, Ordered, order_transfers, value_part, withdrawal_part
from chaintrace.chains.eth.tokens import KNOWN_TOKENS
from chaintrace.progress import NULL, Progress
from chaintrace.store.ingestor import ChainIngestor
from chaintrace.store.schema import eth as schema
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace

__all__ = ["CHAIN_NAMES", "NATIVE", "ChainMismatch", "EthDataError", "EthIngestReport", "EthIngestor"]

NATIVE = {"asset_id": 0, "address": None, "symbol": "ETH", "name": "Ether", "decimals": 18, "standard": "native",
          "height": -1}
CHAIN_NAMES = {1: "mainnet", 11155111: "sepolia", 17000: "holesky", 560048: "hoodi", 31337: "anvil"}


@dataclass
class EthIngestReport:
    """What an ingest run did."""

    chain: str = "eth"
    network: str = ""
    source: str = ""
    blocks: int = 0
    transactions: int = 0
    failed_transactions: int = 0
    transfers: int = 0
    transfers_by_kind: dict = field(default_factory=dict)
    new_addresses: int = 0
    new_assets: int = 0
    commits: int = 0
    seconds: float = 0.0
    tip_height: int | None = None
    tip_hash: str | None = None
    rolled_back_to: int | None = None
    already_stored: int = 0
    internal_transfers: bool = True
    receipts: bool = True
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class EthIngestor(ChainIngestor):
    """Append blocks to a workspace's Ethereum store (a context manager: it holds the write lock). Every
    :meth:`add` is validated, then committed in the background while the caller reads the next batch (see
    :meth:`ChainIngestor.commit`)."""

    chain = "eth"

    def __init__(self, workspace: Workspace, progress: Progress = NULL, source: str = "",
                 chain_id: int | None = None, token_info=None, extra_meta: dict | None = None):
        super().__init__(workspace, progress)
        self.report = EthIngestReport(source=source)
        self.chain_id = chain_id
        self.token_info = token_info  # callable(list[address]) -> {address: (symbol, name, decimals)}
        self.extra_meta = extra_meta or {}

    def _open(self) -> None:
        self._load()
        stored = self.store.meta.get("chain_id")
        if self.chain_id is not None and stored is not None and stored != self.chain_id:
            raise StoreError(f"the store holds chain id {stored} ({CHAIN_NAMES.get(stored, '?')}); refusing "
                             f"blocks of chain id {self.chain_id}")
        if self.chain_id is None:
            self.chain_id = stored
        self.report.network = self._network_name()

    def _network_name(self) -> str:
        if self.chain_id is None:
            return self.store.meta.get("network") or "unknown"
        return CHAIN_NAMES.get(self.chain_id, f"chain-{self.chain_id}")

    def _load(self) -> None:
        st = self.store
        b = st.read("blocks", ["height", "hash"])
        self.start_height = int(b["height"][0].as_py()) if len(b) else None
        self.hashes: list[str] = b["hash"].to_pylist()
        a = st.read("addresses", ["address_id", "address"])
        if len(a) and not np.array_equal(a["address_id"].to_numpy(), np.arange(len(a))):
            raise StoreError(f"{st.root}: address ids are not dense 0..{len(a) - 1} (store damaged)")
        words, _, bad = C.hex_words(a["address"], 20, False)
        if bad >= 0:
            raise StoreError(f"{st.root}: stored address {a['address'][bad].as_py()!r} is malformed (store damaged)")
        self.book = C.KeyIndex(3, words)  # the address dictionary: address -> address_id
        if self.book.duplicate >= 0:
            raise StoreError(f"{st.root}: address {a['address'][self.book.duplicate].as_py()} is stored twice "
                             f"(store damaged)")
        assets = st.read("assets", ["asset_id", "address"])
        self.assets: dict[str, int] = {ad: i for i, ad in zip(assets["asset_id"].to_pylist(),
                                                               assets["address"].to_pylist()) if ad is not None}
        self.n_assets = len(assets)
        self.n_tx = st.row_count("transactions")
        self.n_transfers = st.row_count("transfers")

    # ------------------------------------------------------------------ adding blocks

    def add(self, batch: EthBatch) -> None:
        """Validate a batch and commit it. Blocks already stored (same hash) are skipped; a batch whose
        first new block forks below the tip rolls the store back to the fork first."""
        blocks = batch.blocks
        if not len(blocks):
            return
        nums = blocks["number"].to_numpy()
        if np.any(nums[1:] < nums[:-1]):
            blocks = blocks.take(pc.sort_indices(blocks, [("number", "ascending")]))
            nums = blocks["number"].to_numpy()
        hashes = _hash_col(blocks, "hash")[0].to_pylist()
        keep_from = 0
        if self.tip_height is not None:
            first = int(nums[0])
            if first > self.tip_height + 1:
                _fail(blocks, 0, f"block {first} leaves a gap after the stored tip {self.tip_height}")
            if first < self.start_height:
                _fail(blocks, 0, f"block {first} is below the first stored block {self.start_height}")
            fork = None
            for i, (n, h) in enumerate(zip(nums.tolist(), hashes)):
                if n > self.tip_height:
                    break
                if self.hash_at(n) == h:
                    keep_from = i + 1
                    continue
                fork = n - 1
                break
            self.report.already_stored += keep_from
            if fork is not None:
                self.rollback(fork)
        if keep_from >= len(blocks):
            return
        if keep_from:
            cut = int(nums[keep_from - 1])
            batch = EthBatch(
                blocks=blocks.slice(keep_from),
                transactions=batch.transactions.filter(pc.greater(batch.transactions["block_number"], cut)),
                token_transfers=batch.token_transfers.filter(pc.greater(batch.token_transfers["block_number"], cut)),
                traces=None if batch.traces is None else batch.traces.filter(
                    pc.greater(batch.traces["block_number"], cut)),
                withdrawals=batch.withdrawals.filter(pc.greater(batch.withdrawals["block_number"], cut)),
                tokens=batch.tokens, has_receipts=batch.has_receipts)
        else:
            batch.blocks = blocks
        try:
            rows, stats = self._build(batch)
        except BaseException:
            self._wait_quietly()
            self._load()
            raise
        self.wait()  # the previous batch's commit (written while this one was built)
        last = rows["blocks"]
        tip = {"height": int(last["height"][-1].as_py()), "hash": last["hash"][-1].as_py()}
        meta = {"network": self._network_name(), "chain_id": self.chain_id, **self.extra_meta}
        prev_internal = self.store.meta.get("internal_transfers")
        internal = batch.traces is not None
        meta["internal_transfers"] = ("complete" if internal and prev_internal in (None, "complete")
                                      else "none" if not internal and prev_internal in (None, "none")
                                      else "partial")
        meta["receipts"] = ("complete" if batch.has_receipts and self.store.meta.get("receipts") in (None, "complete")
                            else "partial")
        self.commit(rows, tip, background=True, meta=meta, counters={
            "transactions": self.n_tx, "transfers": self.n_transfers, "addresses": self.book.n, "assets": self.n_assets})
        self.hashes.extend(rows["blocks"]["hash"].to_pylist())
        if self.start_height is None:
            self.start_height = int(rows["blocks"]["height"][0].as_py())
        r = self.report
        r.blocks += len(rows["blocks"])
        r.transactions += len(rows["transactions"])
        r.failed_transactions += stats["failed"]
        r.transfers += len(rows["transfers"])
        for k, v in stats["kinds"].items():
            r.transfers_by_kind[k] = r.transfers_by_kind.get(k, 0) + v
        r.new_addresses += len(rows["addresses"])
        r.new_assets += len(rows["assets"])
        r.internal_transfers = r.internal_transfers and internal
        r.receipts = r.receipts and batch.has_receipts
        self.progress.advance(len(rows["blocks"]), height=tip["height"])

    # ------------------------------------------------------------------ batch -> tables

    def _build(self, batch: EthBatch) -> tuple[dict[str, pa.Table], dict]:
        """Validate a batch and turn it into the rows of one commit (:mod:`chaintrace.chains.eth.stages`)."""
        blocks = batch.blocks
        bk = V.check_blocks(blocks, self.tip_hash if self.tip_height is not None else None)
        nb_, h0 = bk.nb_, bk.h0
        tx = V.check_transactions(batch.transactions, blocks, bk)
        txs, nt, tblk = tx.txs, tx.nt, tx.tblk
        tc = V.tx_columns(txs)

        # traces -> internal transfers (and status of receipt-less transactions)
        traces = batch.traces
        trace_part, create_to, status = None, None, tc.status
        if traces is not None and len(traces):
            trace_part, create_to, status = traces_part(traces, tx.thash, tx.tx_index, tblk, h0, nb_,
                                                        tx.first_in_block, tx.counts, status)
        tc.status = status
        unknown_status = status == -1
        if nt and unknown_status.any() and traces is None:
            self.report.warnings.append(f"{int(unknown_status.sum())} transactions without receipt status or "
                                        f"traces were taken as successful")
        status_known = np.where(status == -1, 1, status)
        ok_tx = status_known == 1

        f = fees(txs, tblk, tc, bk)

        # transfer rows from every source (as columns), then one chronological sort
        parts = []
        if nt:
            parts += fee_parts(blocks, tblk, tc.has_gas, f, bk.miners)
            parts.append(value_part(txs, tblk, tc.tvalue, ok_tx, tc.tto, tc.tcontract, create_to))
        if trace_part is not None:
            parts.append(trace_part)
        if len(batch.token_transfers):
            parts.append(token_part(batch.token_transfers, tx.thash, tx.tx_index, tblk, h0, ok_tx))
        wd = batch.withdrawals
        if len(wd):  # block-level issuance, after the block's transactions
            parts.append(withdrawal_part(wd, h0, nb_))
        o = order_transfers(parts, tx.first_in_block, tx.counts)

        ids = address_ids(self.book, o, bk, tx, tc)
        asset_id, asset_rows = self._asset_ids(o, h0, batch.tokens)
        rows = {"blocks": block_table(blocks, bk, tx, o, ids, wd, self.n_tx, self.n_transfers),
                "transactions": transaction_table(tx, tc, f, bk, o, ids, self.n_tx, self.n_transfers),
                "transfers": transfer_table(tx, o, ids, asset_id, trace_part, h0, self.n_tx, self.n_transfers),
                "addresses": ids.new_addr, "assets": asset_rows}
        self.n_tx += nt
        self.n_transfers += o.ntr
        t_kind, ntr = o.t_kind, o.ntr
        kc = np.bincount(t_kind, minlength=len(KINDS)) if ntr else np.zeros(len(KINDS), np.int64)
        firsts = np.unique(t_kind, return_index=True)[1] if ntr else []
        kinds = {KINDS[int(t_kind[i])]: int(kc[t_kind[i]]) for i in sorted(firsts)}
        return rows, {"failed": int((status_known == 0).sum()), "kinds": kinds}

    def _asset_ids(self, o: Ordered, h0: int, tokens: pa.Table) -> tuple[np.ndarray, pa.Table]:
        """Asset id of every transfer row (chronological order) and the ``assets`` rows of new ones: native ETH
        is asset 0 of every store, token contracts are numbered in order of first appearance."""
        parts, rank, order, t_blk, ntr = o.parts, o.rank, o.order, o.t_blk, o.ntr
        add_native = self.n_assets == 0
        if add_native:
            self.n_assets = 1
        asset_id = np.zeros(ntr, np.int32)
        new_assets = []
        tok_rows = [(k, p) for k, p in zip(np.cumsum([0] + [len(p["blk"]) for p in parts]), parts)
                    if p["token"] is not None]
        if tok_rows:
            # token contracts of the batch, numbered in order of first appearance
            tok = _Addr.concat(p["token"] for _, p in tok_rows)
            rows_ = np.concatenate([k + np.arange(len(p["blk"])) for k, p in tok_rows])
            codes, first = C.KeyIndex(3).assign(tok.words, tok.valid, rank[rows_])
            lut = np.zeros(len(first), np.int32)
            for c, (a, r) in enumerate(zip(C.words_to_strings(tok.words[first], 20).to_pylist(),
                                           rank[rows_[first]].tolist())):
                aid = self.assets.get(a)
                if aid is None:
                    aid = self.n_assets + len(new_assets)
                    self.assets[a] = aid
                    new_assets.append((a, int(t_blk[r] + h0)))
                lut[c] = aid
            asset_id[rows_] = lut[codes]
        asset_id = asset_id[order]
        asset_rows = self._asset_rows(new_assets, tokens, add_native)
        self.n_assets += len(new_assets)
        return asset_id, asset_rows

    def _asset_rows(self, new_assets: list[tuple[str, int]], tokens: pa.Table, add_native: bool) -> pa.Table:
        rows = [dict(NATIVE)] if add_native else []
        meta = {}
        if len(tokens):
            for r in tokens.to_pylist():
                if r.get("address"):
                    meta[r["address"].lower()] = (r.get("symbol"), r.get("name"), r.get("decimals"))
        need = [a for a, _ in new_assets if a not in meta and a not in KNOWN_TOKENS]
        if need and self.token_info is not None:
            try:
                meta.update(self.token_info(need))
            except Exception as e:  # metadata is nice to have; never lose a batch over it
                self.report.warnings.append(f"token metadata lookup failed: {e}")
        for k, (a, h) in enumerate(new_assets):
            sym, name, dec = meta.get(a) or KNOWN_TOKENS.get(a) or (None, None, None)
            rows.append({"asset_id": self.n_assets + k, "address": a, "symbol": sym, "name": name,
                         "decimals": dec if dec is None or 0 <= int(dec) <= 255 else None, "standard": "erc20",
                         "height": h})
        return pa.Table.from_pylist(rows, schema=schema.ASSETS) if rows else pa.Table.from_pylist([], schema=schema.ASSETS)
