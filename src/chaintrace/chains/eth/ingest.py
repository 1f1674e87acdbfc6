"""Ethereum ingestion into the store: canonical batches -> validated, id-assigned Arrow tables -> one atomic
commit per batch.

Work is columnar (Arrow compute and numpy over whole batches); Python loops run only over things that are
rare (new token contracts, failed call frames, amounts of 10**38 and more). A batch is validated completely
before its commit — block linkage (parent hashes), transaction counts and positions, receipts, amounts,
addresses, references from transfers to transactions — so the store only ever holds whole blocks.

The ingestor keeps the stored block hashes, the address index (sorted keys + ids, searched with
``np.searchsorted``) and the token index in memory; a batch that starts at or below the stored tip is matched
against the stored hashes: identical blocks are skipped (a re-run after a crash, an overlapping export), a
different block rolls the store back to the fork first (a reorg), and a gap is refused.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import u128 as U
from chaintrace.chains.eth.records import ZERO_ADDRESS, EthBatch, conform, empty
from chaintrace.chains.eth.tokens import KNOWN_TOKENS
from chaintrace.errors import UserError
from chaintrace.progress import NULL, Progress
from chaintrace.store.schema import eth as schema
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace

ADDR_RE = r"^0x[0-9a-f]{40}$"
HASH_RE = r"^0x[0-9a-f]{64}$"
KIND_ORDER = {"fee_burn": 0, "fee_tip": 1, "call": 2, "create": 2, "internal": 3, "selfdestruct": 3,
              "token": 4, "wrap": 4, "unwrap": 4, "withdrawal": 5, "reward": 6, "genesis": 7}
NATIVE = {"asset_id": 0, "address": None, "symbol": "ETH", "name": "Ether", "decimals": 18, "standard": "native",
          "height": -1}
CHAIN_NAMES = {1: "mainnet", 11155111: "sepolia", 17000: "holesky", 560048: "hoodi", 31337: "anvil"}


class EthDataError(UserError):
    pass


class ChainMismatch(EthDataError):
    """A block does not extend the block before it (a reorg happened between reads, or the input is broken)."""


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


def _where(t: pa.Table, i: int) -> tuple[str, int]:
    return t["_src"][i].as_py(), t["_line"][i].as_py()


def _fail(t: pa.Table, i: int, msg: str):
    src, line = _where(t, i)
    raise EthDataError(f"{src}:{line}: {msg}" if line else f"{src}: {msg}")


def _lower(col) -> pa.Array:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    return pc.utf8_lower(col)


def _check_re(t: pa.Table, col: str, rx: str, what: str, nullable: bool) -> pa.Array:
    v = _lower(t[col])
    ok = pc.match_substring_regex(v, rx)
    ok = pc.fill_null(ok, nullable).to_numpy(zero_copy_only=False)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        _fail(t, i, f"{col}: not {what}: {t[col][i].as_py()!r}")
    return v


def _amounts(t: pa.Table, col: str, default: str | None = None) -> tuple[pa.Array, pa.Array]:
    c = t[col]
    if default is not None:
        c = pc.fill_null(c, default)
    value, big, bad = U.parse_amounts(c)
    if len(bad):
        i = int(bad[0])
        _fail(t, i, f"{col}: not an amount in base units (0 .. 2**256-1): {t[col][i].as_py()!r}")
    return value, big


def _u64(t: pa.Table, col: str, values: pa.Array) -> np.ndarray:
    lo, hi = U.from_decimal(values)
    if np.any(hi):
        i = int(np.flatnonzero(hi)[0])
        _fail(t, i, f"{col}: {t[col][i].as_py()} exceeds 2**64")
    return lo


class EthIngestor:
    """Append blocks to a workspace's Ethereum store (a context manager: it holds the write lock)."""

    def __init__(self, workspace: Workspace, progress: Progress = NULL, source: str = "",
                 chain_id: int | None = None, token_info=None, extra_meta: dict | None = None):
        self.ws = workspace
        self.store = workspace.chain("eth")
        self.progress = progress
        self.report = EthIngestReport(source=source)
        self.chain_id = chain_id
        self.token_info = token_info  # callable(list[address]) -> {address: (symbol, name, decimals)}
        self.extra_meta = extra_meta or {}
        self._cm = None
        self._t0 = 0.0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "EthIngestor":
        self._t0 = time.perf_counter()
        self._cm = self.store.writer()
        self._cm.__enter__()
        try:
            self._load()
            stored = self.store.meta.get("chain_id")
            if self.chain_id is not None and stored is not None and stored != self.chain_id:
                raise StoreError(f"the store holds chain id {stored} ({CHAIN_NAMES.get(stored, '?')}); refusing "
                                 f"blocks of chain id {self.chain_id}")
            if self.chain_id is None:
                self.chain_id = stored
            self.report.network = self._network_name()
        except BaseException:
            self._cm.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._cm.__exit__(exc_type, exc, tb)
        finally:
            self.report.seconds = time.perf_counter() - self._t0
        if exc_type is None and self.report.commits:
            self.ws.refresh_catalog_views()

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
        self.addr_known = a["address"].combine_chunks() if len(a) else pa.array([], pa.string())
        self.n_addr = len(a)
        assets = st.read("assets", ["asset_id", "address"])
        self.assets: dict[str, int] = {ad: i for i, ad in zip(assets["asset_id"].to_pylist(),
                                                               assets["address"].to_pylist()) if ad is not None}
        self.n_assets = len(assets)
        self.n_tx = st.row_count("transactions")
        self.n_transfers = st.row_count("transfers")

    # ------------------------------------------------------------------ chain position

    @property
    def tip_height(self) -> int | None:
        return None if self.start_height is None else self.start_height + len(self.hashes) - 1

    @property
    def tip_hash(self) -> str | None:
        return self.hashes[-1] if self.hashes else None

    def hash_at(self, height: int) -> str | None:
        if self.start_height is None or not self.start_height <= height <= self.tip_height:
            return None
        return self.hashes[height - self.start_height]

    def rollback(self, height: int) -> None:
        """Remove every block above `height` (one atomic commit), then reload the indexes."""
        if self.tip_height is None or height >= self.tip_height:
            return
        if height < self.start_height - 1:
            raise StoreError(f"cannot roll back below the first stored block ({self.start_height})")
        tip = {"height": height, "hash": self.hash_at(height)} if height >= self.start_height else None
        self.store.commit({}, tip=tip, truncate_above=height)
        self.report.commits += 1
        self.report.rolled_back_to = height
        self._load()

    # ------------------------------------------------------------------ adding blocks

    def add(self, batch: EthBatch) -> None:
        """Validate a batch and commit it. Blocks already stored (same hash) are skipped; a batch whose
        first new block forks below the tip rolls the store back to the fork first."""
        blocks = batch.blocks
        if not len(blocks):
            return
        order = pc.sort_indices(blocks, [("number", "ascending")])
        blocks = blocks.take(order)
        nums = blocks["number"].to_numpy()
        hashes = _check_re(blocks, "hash", HASH_RE, "a 32-byte hex hash", False).to_pylist()
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
            self._load()
            raise
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
        self.store.commit(rows, tip=tip, meta=meta,
                          counters={"transactions": self.n_tx, "transfers": self.n_transfers,
                                    "addresses": self.n_addr, "assets": self.n_assets})
        self.hashes.extend(rows["blocks"]["hash"].to_pylist())
        if self.start_height is None:
            self.start_height = int(rows["blocks"]["height"][0].as_py())
        r = self.report
        r.commits += 1
        r.blocks += len(rows["blocks"])
        r.transactions += len(rows["transactions"])
        r.failed_transactions += stats["failed"]
        r.transfers += len(rows["transfers"])
        for k, v in stats["kinds"].items():
            r.transfers_by_kind[k] = r.transfers_by_kind.get(k, 0) + v
        r.new_addresses += len(rows["addresses"])
        r.new_assets += len(rows["assets"])
        r.tip_height, r.tip_hash = tip["height"], tip["hash"]
        r.internal_transfers = r.internal_transfers and internal
        r.receipts = r.receipts and batch.has_receipts
        self.progress.advance(len(rows["blocks"]), height=tip["height"])

    # ------------------------------------------------------------------ batch -> tables

    def _address_ids(self, addrs: pa.Array, heights: np.ndarray, order_key: np.ndarray) -> tuple[np.ndarray, pa.Table]:
        """Ids for an array of address strings (NULL -> -1); new addresses get ids by first appearance.

        Hash-based (Arrow ``unique``/``index_in``): the known addresses are one string array in id order, so
        an address's position in it is its id."""
        n = len(addrs)
        uniq = pc.unique(addrs.drop_null()) if n else pa.array([], pa.string())
        inv = pc.index_in(addrs, value_set=uniq).fill_null(-1).to_numpy().astype(np.int64) if n else \
            np.zeros(0, np.int64)
        known = pc.index_in(uniq, value_set=self.addr_known).fill_null(-1).to_numpy().astype(np.int64) \
            if len(self.addr_known) and len(uniq) else np.full(len(uniq), -1, np.int64)
        ids_u = known.copy()
        new = np.flatnonzero(ids_u < 0)
        new_rows = pa.Table.from_pylist([], schema=schema.ADDRESSES)
        if len(new):
            valid = inv >= 0
            first_key = np.full(len(uniq), np.iinfo(np.int64).max, np.int64)
            np.minimum.at(first_key, inv[valid], order_key[valid])
            first_h = np.full(len(uniq), np.iinfo(np.int64).max, np.int64)
            np.minimum.at(first_h, inv[valid], heights[valid])  # block of first appearance (ids follow it, so a
            # rollback removes a suffix of the ids)
            new = new[np.argsort(first_key[new], kind="stable")]
            ids_new = self.n_addr + np.arange(len(new), dtype=np.int64)
            ids_u[new] = ids_new
            new_strs = uniq.take(pa.array(new))
            new_rows = pa.table({"address_id": ids_new, "address": new_strs, "height": first_h[new]},
                                schema=schema.ADDRESSES)
            self.n_addr += len(new)
            self.addr_known = pa.concat_arrays([self.addr_known, new_strs])
        out = np.where(inv >= 0, ids_u[np.maximum(inv, 0)] if len(ids_u) else -1, -1).astype(np.int64)
        return out, new_rows

    def _build(self, batch: EthBatch) -> tuple[dict[str, pa.Table], dict]:
        blocks = batch.blocks
        nb_ = len(blocks)
        nums = blocks["number"].to_numpy().astype(np.int64)
        h0 = int(nums[0])
        if not np.array_equal(nums, h0 + np.arange(nb_)):
            i = int(np.flatnonzero(nums != h0 + np.arange(nb_))[0])
            _fail(blocks, i, f"block {int(nums[i])} is not the next block (expected {h0 + i}): blocks must be "
                             f"contiguous")
        hashes = _lower(blocks["hash"])
        parents = _check_re(blocks, "parent_hash", HASH_RE, "a 32-byte hex hash", False)
        hl, pl = hashes.to_pylist(), parents.to_pylist()
        expect_parent = self.tip_hash if self.tip_height is not None else None
        for i in range(nb_):
            if expect_parent is not None and pl[i] != expect_parent:
                src, line = _where(blocks, i)
                raise ChainMismatch(f"{src}:{line}: block {h0 + i} has parent {pl[i]}, expected {expect_parent} "
                                    f"(not on the same chain as the block before it)" if line else
                                    f"{src}: block {h0 + i} has parent {pl[i]}, expected {expect_parent} "
                                    f"(not on the same chain as the block before it)")
            expect_parent = hl[i]
        if len(set(hl)) != nb_:
            _fail(blocks, 0, "duplicate block hashes")
        for c in ("timestamp", "gas_used", "gas_limit"):
            if blocks[c].null_count:
                i = int(np.flatnonzero(~blocks[c].is_valid().to_numpy(zero_copy_only=False))[0])
                _fail(blocks, i, f"{c} is missing")
        base_fee, base_big = _amounts(blocks, "base_fee_per_gas", None) if blocks["base_fee_per_gas"].null_count < nb_ \
            else (pa.nulls(nb_, U.D38), None)
        base_fee_null = blocks["base_fee_per_gas"].is_null().to_numpy(zero_copy_only=False)
        base_fee = pc.if_else(pa.array(base_fee_null), pa.scalar(None, U.D38), base_fee)
        base_lo = _u64(blocks, "base_fee_per_gas", pc.fill_null(base_fee, pa.scalar(0, U.D38)))
        miners = _check_re(blocks, "miner", ADDR_RE, "an address", True)
        btime = blocks["timestamp"].to_numpy().astype(np.int64)
        n_tx_decl = blocks["transaction_count"]

        # ---------------- transactions
        txs = batch.transactions
        if len(txs):
            txs = txs.take(pc.sort_indices(txs, [("block_number", "ascending"), ("transaction_index", "ascending")]))
        nt = len(txs)
        for c in ("block_number", "transaction_index", "hash", "from_address"):
            if txs[c].null_count:
                i = int(np.flatnonzero(~txs[c].is_valid().to_numpy(zero_copy_only=False))[0])
                _fail(txs, i, f"{c} is missing")
        tblk = txs["block_number"].to_numpy().astype(np.int64) - h0 if nt else np.zeros(0, np.int64)
        if nt and (tblk.min() < 0 or tblk.max() >= nb_):
            i = int(np.flatnonzero((tblk < 0) | (tblk >= nb_))[0])
            _fail(txs, i, f"transaction of block {int(tblk[i]) + h0}, which is not in this batch's blocks file range")
        tidx = txs["transaction_index"].to_numpy().astype(np.int64) if nt else np.zeros(0, np.int64)
        counts = np.bincount(tblk, minlength=nb_) if nt else np.zeros(nb_, np.int64)
        first_in_block = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if nt:
            expected_idx = np.arange(nt) - first_in_block[tblk]
            bad = np.flatnonzero(tidx != expected_idx)
            if len(bad):
                i = int(bad[0])
                _fail(txs, i, f"transaction index {int(tidx[i])} in block {int(tblk[i]) + h0}: expected "
                              f"{int(expected_idx[i])} (missing or duplicate transactions)")
        decl = n_tx_decl.fill_null(-1).to_numpy()
        badc = np.flatnonzero((decl >= 0) & (decl != counts))
        if len(badc):
            i = int(badc[0])
            _fail(blocks, i, f"block {h0 + i} declares {int(decl[i])} transactions, the export has {int(counts[i])}")
        thash = _check_re(txs, "hash", HASH_RE, "a 32-byte hex hash", False)
        thash_l = thash.to_pylist()
        if len(set(thash_l)) != nt:
            seen = set()
            for i, h in enumerate(thash_l):
                if h in seen:
                    _fail(txs, i, f"duplicate transaction {h}")
                seen.add(h)
        if nt and txs["block_hash"].null_count < nt:
            bh = _lower(txs["block_hash"]).to_pylist()
            for i, (b, k) in enumerate(zip(bh, tblk.tolist())):
                if b is not None and b != hl[k]:
                    _fail(txs, i, f"block_hash {b} differs from block {h0 + k}'s hash {hl[k]}")
        tfrom = _check_re(txs, "from_address", ADDR_RE, "an address", False)
        tto = _check_re(txs, "to_address", ADDR_RE, "an address", True)
        tcontract = _check_re(txs, "receipt_contract_address", ADDR_RE, "an address", True)
        tvalue, tvalue_big = _amounts(txs, "value", "0")
        gas_price, _ = _amounts(txs, "gas_price", "0")
        maxfee, _ = _amounts(txs, "max_fee_per_gas", "0")
        maxprio, _ = _amounts(txs, "max_priority_fee_per_gas", "0")
        maxfee = pc.if_else(txs["max_fee_per_gas"].is_null(), pa.scalar(None, U.D38), maxfee)
        maxprio = pc.if_else(txs["max_priority_fee_per_gas"].is_null(), pa.scalar(None, U.D38), maxprio)
        eff = pc.coalesce(txs["receipt_effective_gas_price"], txs["gas_price"])
        eff_t = txs.set_column(txs.column_names.index("receipt_effective_gas_price"), "receipt_effective_gas_price", eff)
        eff_dec, _ = _amounts(eff_t, "receipt_effective_gas_price", "0")
        eff_lo = _u64(eff_t, "receipt_effective_gas_price", eff_dec)
        gas_used = txs["receipt_gas_used"]
        has_gas = gas_used.is_valid().to_numpy(zero_copy_only=False) if nt else np.zeros(0, bool)
        gu = gas_used.fill_null(0).to_numpy().astype(np.uint64) if nt else np.zeros(0, np.uint64)

        # status: receipt, else the top-level call frame, else assumed successful
        status = txs["receipt_status"].to_numpy(zero_copy_only=False) if nt else np.zeros(0)
        status = np.where(np.isnan(status.astype(float)), -1, status).astype(np.int64) if nt else np.zeros(0, np.int64)
        if nt and np.any((status != -1) & (status != 0) & (status != 1)):
            i = int(np.flatnonzero((status != -1) & (status != 0) & (status != 1))[0])
            _fail(txs, i, f"receipt_status must be 0 or 1, got {int(status[i])}")

        # ---------------- traces -> internal transfers (and status of receipt-less transactions)
        traces = batch.traces
        tr_rows = None
        if traces is not None and len(traces):
            tr_rows, status = self._traces(traces, txs, thash_l, tblk, tidx, h0, nb_, first_in_block, status)
        unknown_status = status == -1
        if nt and unknown_status.any() and traces is None:
            self.report.warnings.append(f"{int(unknown_status.sum())} transactions without receipt status or "
                                        f"traces were taken as successful")
        status_known = np.where(status == -1, 1, status)
        ok_tx = status_known == 1

        # ---------------- fees
        fee_lo, fee_hi = U.mul64(gu, eff_lo)
        tx_base = base_lo[tblk] if nt else np.zeros(0, np.uint64)
        tx_base_null = base_fee_null[tblk] if nt else np.zeros(0, bool)
        burn_lo, burn_hi = U.mul64(gu, np.where(tx_base_null, np.uint64(0), tx_base))
        below = (eff_lo < tx_base) & ~tx_base_null & has_gas
        if below.any():
            i = int(np.flatnonzero(below)[0])
            _fail(txs, i, f"effective gas price {int(eff_lo[i])} is below the block's base fee {int(tx_base[i])}")
        blob_used = txs["receipt_blob_gas_used"].fill_null(0).to_numpy().astype(np.uint64) if nt else np.zeros(0, np.uint64)
        if nt and blob_used.any():
            bp_dec, _ = _amounts(txs, "receipt_blob_gas_price", "0")
            blo, bhi = U.mul64(blob_used, _u64(txs, "receipt_blob_gas_price", bp_dec))
            fee_lo, fee_hi = U.add(fee_lo, fee_hi, blo, bhi)
            burn_lo, burn_hi = U.add(burn_lo, burn_hi, blo, bhi)
        tip_lo, tip_hi = U.sub(fee_lo, fee_hi, burn_lo, burn_hi)
        nofee = ~has_gas
        fee_col = U.to_decimal(fee_lo, fee_hi, nofee)
        burn_col = U.to_decimal(burn_lo, burn_hi, nofee)
        tip_col = U.to_decimal(tip_lo, tip_hi, nofee)

        # ---------------- transfer rows from every source (as columns), then one chronological sort
        parts = []
        tx_pos = np.arange(nt, dtype=np.int64)
        burn_nz = has_gas & ~((burn_lo == 0) & (burn_hi == 0))
        tip_nz = has_gas & ~((tip_lo == 0) & (tip_hi == 0))
        mblk = miners
        tx_miner = mblk.take(pa.array(tblk)) if nt else pa.array([], pa.string())
        if nt:
            sel = np.flatnonzero(burn_nz)
            parts.append(self._part("fee_burn", tblk[sel], tx_pos[sel], np.zeros(len(sel), np.int64),
                                    tfrom.take(pa.array(sel)), pa.nulls(len(sel), pa.string()),
                                    pa.nulls(len(sel), pa.string()),
                                    U.to_decimal(burn_lo[sel], burn_hi[sel]), pa.nulls(len(sel), pa.string())))
            sel = np.flatnonzero(tip_nz)
            tip_to = tx_miner.take(pa.array(sel))
            if tip_to.null_count:
                i = int(sel[np.flatnonzero(~tip_to.is_valid().to_numpy(zero_copy_only=False))[0]])
                _fail(blocks, int(tblk[i]), "miner (fee recipient) is missing")
            parts.append(self._part("fee_tip", tblk[sel], tx_pos[sel], np.zeros(len(sel), np.int64),
                                    tfrom.take(pa.array(sel)), tip_to, pa.nulls(len(sel), pa.string()),
                                    U.to_decimal(tip_lo[sel], tip_hi[sel]), pa.nulls(len(sel), pa.string())))
            # top-level value
            vlo, vhi = U.from_decimal(tvalue)
            nonzero = ~((vlo == 0) & (vhi == 0)) | tvalue_big.is_valid().to_numpy(zero_copy_only=False)
            dest = pc.coalesce(tto, tcontract)
            if tr_rows is not None and "create_to" in tr_rows:
                dest = pc.coalesce(dest, tr_rows["create_to"])
            sel = np.flatnonzero(nonzero & ok_tx)
            d = dest.take(pa.array(sel))
            if d.null_count:
                i = int(sel[np.flatnonzero(~d.is_valid().to_numpy(zero_copy_only=False))[0]])
                _fail(txs, i, "contract creation with value but no receipt_contract_address")
            kinds = np.where(tto.is_null().to_numpy(zero_copy_only=False)[sel], "create", "call")
            parts.append(self._part(kinds, tblk[sel], tx_pos[sel], np.zeros(len(sel), np.int64),
                                    tfrom.take(pa.array(sel)), d, pa.nulls(len(sel), pa.string()),
                                    tvalue.take(pa.array(sel)), tvalue_big.take(pa.array(sel))))
        if tr_rows is not None:
            parts.extend(tr_rows["parts"])
        # token transfers
        tt = batch.token_transfers
        if len(tt):
            parts.append(self._tokens(tt, thash_l, tblk, h0, nb_, ok_tx, txs))
        # withdrawals (block-level issuance, after the block's transactions)
        wd = batch.withdrawals
        if len(wd):
            wb = wd["block_number"].to_numpy().astype(np.int64) - h0
            if wb.min() < 0 or wb.max() >= nb_:
                _fail(wd, int(np.flatnonzero((wb < 0) | (wb >= nb_))[0]), "withdrawal outside the batch's blocks")
            waddr = _check_re(wd, "address", ADDR_RE, "an address", False)
            gwei, _ = _amounts(wd, "amount", None)
            glo = _u64(wd, "amount", gwei)
            wlo, whi = U.mul64(glo, np.full(len(glo), 10**9, np.uint64))
            widx = wd["index"].fill_null(0).to_numpy().astype(np.int64)
            parts.append(self._part("withdrawal", wb, np.full(len(wb), -1, np.int64), widx,
                                    pa.nulls(len(wb), pa.string()), waddr, pa.nulls(len(wb), pa.string()),
                                    U.to_decimal(wlo, whi), pa.nulls(len(wb), pa.string())))
        parts = [p for p in parts if p is not None and len(p["blk"])]
        if parts:
            cat = {k: (np.concatenate([p[k] for p in parts]) if isinstance(parts[0][k], np.ndarray)
                       else pa.concat_arrays([p[k] if isinstance(p[k], pa.Array) else p[k].combine_chunks()
                                              for p in parts]))
                   for k in parts[0]}
        else:
            cat = {k: np.zeros(0, np.int64) for k in ("blk", "txpos", "sub", "korder")}
            cat.update({k: pa.array([], pa.string()) for k in ("kind", "from", "to", "token", "value_big",
                                                                 "trace_address")})
            cat["value"] = pa.array([], U.D38)
            cat["log_index"] = np.zeros(0, np.int64)
        txpos_key = np.where(cat["txpos"] < 0, np.iinfo(np.int64).max, cat["txpos"])
        order = np.lexsort((cat["sub"], cat["korder"], txpos_key, cat["blk"]))
        ntr = len(order)
        take = pa.array(order)
        t_blk = cat["blk"][order]
        t_txpos = cat["txpos"][order]
        t_kind = cat["kind"].take(take)
        # seq: position inside the transaction (or inside the block's issuance group)
        grp = np.where(t_txpos < 0, -1 - t_blk, t_txpos)
        starts = np.r_[0, np.flatnonzero(grp[1:] != grp[:-1]) + 1] if ntr else np.zeros(0, np.int64)
        run = np.zeros(ntr, np.int64)
        if ntr:
            run[starts] = starts
            run = np.maximum.accumulate(run)
        seq = (np.arange(ntr) - run).astype(np.int32)

        # ---------------- ids
        heights = h0 + np.arange(nb_, dtype=np.int64)
        tx_ids = self.n_tx + np.arange(nt, dtype=np.int64)
        tr_ids = self.n_transfers + np.arange(ntr, dtype=np.int64)
        # address occurrences in chronological order: per block, miner, then txs (from, to, contract), then
        # transfers; the order key is (height, position)
        occ = [
            (miners, heights, heights * 0),
            (tfrom, tblk + h0, (tx_pos + 1) * 4),
            (tto, tblk + h0, (tx_pos + 1) * 4 + 1),
            (tcontract, tblk + h0, (tx_pos + 1) * 4 + 2),
            (cat["from"].take(take), t_blk + h0, (nt + 1) * 4 + 2 * np.arange(ntr)),
            (cat["to"].take(take), t_blk + h0, (nt + 1) * 4 + 2 * np.arange(ntr) + 1),
        ]
        all_addr = pa.concat_arrays([o[0] if isinstance(o[0], pa.Array) else o[0].combine_chunks() for o in occ])
        all_h = np.concatenate([o[1] for o in occ]).astype(np.int64)
        all_pos = np.concatenate([o[2] for o in occ]).astype(np.int64)
        key = all_h * (1 << 40) + all_pos
        ids, new_addr = self._address_ids(all_addr, all_h, key)
        splits = np.cumsum([len(o[0]) for o in occ])[:-1]
        miner_id, from_id, to_id, contract_id, trf_id, trt_id = np.split(ids, splits)

        # assets (native ETH is asset 0 of every store)
        add_native = self.n_assets == 0
        if add_native:
            self.n_assets = 1
        tok = cat["token"].take(take)
        asset_id = np.zeros(ntr, np.int32)
        new_assets = []
        if tok.null_count < ntr:
            tl = tok.to_pylist()
            for i, a in enumerate(tl):
                if a is None:
                    continue
                aid = self.assets.get(a)
                if aid is None:
                    aid = self.n_assets + len(new_assets)
                    self.assets[a] = aid
                    new_assets.append((a, int(t_blk[i] + h0)))
                asset_id[i] = aid
        asset_rows = self._asset_rows(new_assets, batch.tokens, add_native)
        self.n_assets += len(new_assets)

        def nz(a):
            return pa.array(a, mask=a < 0)

        # per-tx transfer ranges
        big_k = np.int64(1 << 32)
        tr_key = t_blk * big_k + np.where(t_txpos < 0, big_k - 1, t_txpos - (first_in_block[t_blk] if nt else 0))
        tx_key = tblk * big_k + (tx_pos - first_in_block[tblk]) if nt else np.zeros(0, np.int64)
        lo_i = np.searchsorted(tr_key, tx_key, side="left")
        hi_i = np.searchsorted(tr_key, tx_key, side="right")
        tx_first_tr = self.n_transfers + lo_i.astype(np.int64)
        tx_n_tr = (hi_i - lo_i).astype(np.int32)
        blk_n_tr = np.bincount(t_blk, minlength=nb_).astype(np.int32) if ntr else np.zeros(nb_, np.int32)
        blk_first_tr = self.n_transfers + np.concatenate([[0], np.cumsum(blk_n_tr)[:-1]]).astype(np.int64)

        status_col = pa.array(np.where(status < 0, 0, status).astype(np.int8), mask=status < 0)
        inp = txs["input"]
        if nt:
            inp = pc.fill_null(inp, "0x")
            ok_in = pc.match_substring_regex(inp, r"^0x([0-9a-fA-F]{2})*$").to_numpy(zero_copy_only=False)
            if not ok_in.all():
                _fail(txs, int(np.flatnonzero(~ok_in)[0]), "input: not hex data")
            inp_bin = pa.array([bytes.fromhex(x[2:]) for x in inp.to_pylist()], pa.binary())
        else:
            inp_bin = pa.array([], pa.binary())
        transactions = pa.table({
            "tx_id": tx_ids, "hash": thash, "height": tblk + h0, "tx_index": tidx.astype(np.int32),
            "time": btime[tblk] if nt else np.zeros(0, np.int64), "nonce": txs["nonce"],
            "from_id": from_id, "to_id": nz(to_id), "contract_id": nz(contract_id),
            "value": tvalue, "value_big": tvalue_big, "gas": txs["gas"], "gas_price": gas_price,
            "max_fee_per_gas": maxfee, "max_priority_fee_per_gas": maxprio,
            "tx_type": pc.cast(txs["transaction_type"], pa.int16()), "input": inp_bin, "status": status_col,
            "gas_used": txs["receipt_gas_used"], "cumulative_gas_used": txs["receipt_cumulative_gas_used"],
            "effective_gas_price": pc.if_else(pa.array(nofee), pa.scalar(None, U.D38), eff_dec),
            "fee": fee_col, "burned": burn_col, "tip": tip_col,
            "first_transfer_id": tx_first_tr, "n_transfers": tx_n_tr,
        }, schema=schema.TRANSACTIONS)
        transfers = pa.table({
            "transfer_id": tr_ids, "height": t_blk + h0, "tx_id": nz(np.where(t_txpos >= 0, self.n_tx + t_txpos, -1)),
            "tx_index": pa.array(np.where(t_txpos >= 0, tidx[np.maximum(t_txpos, 0)] if nt else 0, 0).astype(np.int32),
                                 mask=t_txpos < 0),
            "seq": seq, "kind": t_kind, "asset_id": asset_id, "from_id": nz(trf_id), "to_id": nz(trt_id),
            "value": cat["value"].take(take), "value_big": cat["value_big"].take(take),
            "log_index": pa.array(cat["log_index"][order].astype(np.int32), mask=cat["log_index"][order] < 0),
            "trace_address": cat["trace_address"].take(take),
        }, schema=schema.TRANSFERS)

        def opt_int(c):
            return blocks[c] if c in blocks.column_names else pa.nulls(nb_, pa.int64())

        diff, _ = _amounts(blocks, "difficulty", "0")
        tdiff, _ = _amounts(blocks, "total_difficulty", "0")
        nwd = np.bincount(wd["block_number"].to_numpy().astype(np.int64) - h0, minlength=nb_) if len(wd) else np.zeros(nb_)
        blocks_t = pa.table({
            "height": heights, "hash": hashes, "parent_hash": parents, "time": btime, "miner_id": nz(miner_id),
            "gas_limit": blocks["gas_limit"], "gas_used": blocks["gas_used"], "base_fee_per_gas": base_fee,
            "n_tx": counts.astype(np.int32), "size": blocks["size"],
            "difficulty": pc.if_else(blocks["difficulty"].is_null(), pa.scalar(None, U.D38), diff),
            "total_difficulty": pc.if_else(blocks["total_difficulty"].is_null(), pa.scalar(None, U.D38), tdiff),
            "nonce": blocks["nonce"], "sha3_uncles": blocks["sha3_uncles"],
            "transactions_root": blocks["transactions_root"], "state_root": blocks["state_root"],
            "receipts_root": blocks["receipts_root"], "extra_data": blocks["extra_data"],
            "withdrawals_root": blocks["withdrawals_root"], "n_withdrawals": nwd.astype(np.int32),
            "blob_gas_used": opt_int("blob_gas_used"), "excess_blob_gas": opt_int("excess_blob_gas"),
            "first_tx_id": self.n_tx + first_in_block, "first_transfer_id": blk_first_tr, "n_transfers": blk_n_tr,
        }, schema=schema.BLOCKS)
        self.n_tx += nt
        self.n_transfers += ntr
        kinds = {}
        if ntr:
            vc = pc.value_counts(t_kind)
            kinds = {d["values"]: int(d["counts"]) for d in vc.to_pylist()}
        rows = {"blocks": blocks_t, "transactions": transactions, "transfers": transfers, "addresses": new_addr,
                "assets": asset_rows}
        return rows, {"failed": int((status_known == 0).sum()), "kinds": kinds}

    @staticmethod
    def _part(kind, blk, txpos, sub, frm, to, token, value, value_big, log_index=None, trace_address=None,
              korder=None) -> dict:
        n = len(blk)
        if isinstance(kind, str):
            kind_arr = pa.array(np.full(n, kind, dtype=object), pa.string())
            ko = np.full(n, KIND_ORDER[kind], np.int64)
        else:
            kind_arr = pa.array(np.asarray(kind, dtype=object), pa.string())
            ko = np.array([KIND_ORDER[k] for k in kind], np.int64) if n else np.zeros(0, np.int64)
        return {
            "blk": np.asarray(blk, np.int64), "txpos": np.asarray(txpos, np.int64), "sub": np.asarray(sub, np.int64),
            "korder": ko if korder is None else korder, "kind": kind_arr,
            "from": frm.combine_chunks() if isinstance(frm, pa.ChunkedArray) else frm,
            "to": to.combine_chunks() if isinstance(to, pa.ChunkedArray) else to,
            "token": token, "value": value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value,
            "value_big": value_big.combine_chunks() if isinstance(value_big, pa.ChunkedArray) else value_big,
            "log_index": np.full(n, -1, np.int64) if log_index is None else np.asarray(log_index, np.int64),
            "trace_address": pa.nulls(n, pa.string()) if trace_address is None else trace_address,
        }

    def _tx_positions(self, t: pa.Table, thash_l: list[str], h0: int, tblk: np.ndarray) -> np.ndarray:
        hashes = _check_re(t, "transaction_hash", HASH_RE, "a 32-byte hex hash", False).to_pylist()
        index = {h: i for i, h in enumerate(thash_l)}
        pos = np.fromiter((index.get(h, -1) for h in hashes), np.int64, len(hashes))
        if np.any(pos < 0):
            i = int(np.flatnonzero(pos < 0)[0])
            _fail(t, i, f"transaction {hashes[i]} is not in the transactions of this block range")
        b = t["block_number"].to_numpy().astype(np.int64) - h0
        bad = np.flatnonzero(tblk[pos] != b)
        if len(bad):
            i = int(bad[0])
            _fail(t, i, f"block_number {int(b[i]) + h0} differs from its transaction's block {int(tblk[pos[i]]) + h0}")
        return pos

    def _tokens(self, tt: pa.Table, thash_l, tblk, h0, nb_, ok_tx, txs) -> dict:
        tt = conform("token_transfers", tt)
        pos = self._tx_positions(tt, thash_l, h0, tblk)
        if np.any(~ok_tx[pos]):
            i = int(np.flatnonzero(~ok_tx[pos])[0])
            _fail(tt, i, f"token transfer in failed transaction {thash_l[pos[i]]}")
        token = _check_re(tt, "token_address", ADDR_RE, "an address", False)
        frm = _check_re(tt, "from_address", ADDR_RE, "an address", False)
        to = _check_re(tt, "to_address", ADDR_RE, "an address", False)
        value, big = _amounts(tt, "value", None)
        li = tt["log_index"]
        if li.null_count:
            _fail(tt, int(np.flatnonzero(~li.is_valid().to_numpy(zero_copy_only=False))[0]), "log_index is missing")
        li = li.to_numpy().astype(np.int64)
        ev = tt["event"].fill_null("transfer").to_pylist()
        kinds = ["wrap" if e == "deposit" else "unwrap" if e == "withdrawal" else "token" for e in ev]
        return self._part(kinds, tblk[pos], pos, li, frm, to, token, value, big, log_index=li)

    def _traces(self, traces: pa.Table, txs: pa.Table, thash_l, tblk, tidx, h0, nb_, first_in_block, status):
        tr = conform("traces", traces)
        n = len(tr)
        ttype = pc.fill_null(pc.utf8_lower(tr["trace_type"]), "").to_pylist()
        ctype = pc.fill_null(pc.utf8_lower(tr["call_type"]), "").to_pylist()
        taddr = pc.fill_null(tr["trace_address"], "").to_pylist()
        err = tr["error"].is_valid().to_numpy(zero_copy_only=False)
        st = tr["status"].to_numpy(zero_copy_only=False)
        st = np.where(np.isnan(st.astype(float)), -1, st).astype(np.int64) if n else np.zeros(0, np.int64)
        has_hash = tr["transaction_hash"].is_valid().to_numpy(zero_copy_only=False)
        has_idx = tr["transaction_index"].is_valid().to_numpy(zero_copy_only=False)
        in_tx = has_hash | has_idx
        b = tr["block_number"].to_numpy().astype(np.int64) - h0
        if n and (b.min() < 0 or b.max() >= nb_):
            _fail(tr, int(np.flatnonzero((b < 0) | (b >= nb_))[0]), "trace outside the batch's blocks")
        pos = np.full(n, -1, np.int64)
        if has_hash.any():
            sel = np.flatnonzero(has_hash)
            pos[sel] = self._tx_positions(tr.take(pa.array(sel)), thash_l, h0, tblk)
        sel = np.flatnonzero(~has_hash & has_idx)
        if len(sel):
            ti = tr["transaction_index"].to_numpy(zero_copy_only=False)[sel].astype(np.int64)
            p = first_in_block[b[sel]] + ti
            counts = np.bincount(tblk, minlength=nb_) if len(tblk) else np.zeros(nb_, np.int64)
            bad = np.flatnonzero(ti >= counts[b[sel]])
            if len(bad):
                _fail(tr, int(sel[bad[0]]), f"transaction_index {int(ti[bad[0]])} is not in block {int(b[sel[bad[0]]]) + h0}")
            pos[sel] = p
        # failed frames: a frame is effective only if neither it nor an ancestor failed
        failed = err | (st == 0)
        effective = ~failed
        if failed.any():
            bad_by_tx: dict[int, list[str]] = {}
            for i in np.flatnonzero(failed & in_tx).tolist():
                bad_by_tx.setdefault(int(pos[i]), []).append(taddr[i])
            for i in np.flatnonzero(in_tx & ~failed).tolist():
                fl = bad_by_tx.get(int(pos[i]))
                if fl:
                    a = taddr[i]
                    if any(f == "" or a == f or a.startswith(f + ",") for f in fl):
                        effective[i] = False
        # status of transactions without a receipt status: their top-level frame
        top = in_tx & np.array([a == "" for a in taddr], bool) if n else np.zeros(0, bool)
        status = status.copy()
        for i in np.flatnonzero(top).tolist():
            p = int(pos[i])
            s = 0 if failed[i] else 1
            if status[p] == -1:
                status[p] = s
            elif status[p] != s and ttype[i] in ("call", "create", "create2"):
                _fail(tr, i, f"top-level trace {'failed' if s == 0 else 'succeeded'} but the receipt status of "
                             f"{thash_l[p]} is {int(status[p])}")
        # value-moving frames
        value, big = _amounts(tr, "value", "0")
        vlo, vhi = U.from_decimal(value)
        nonzero = ~((vlo == 0) & (vhi == 0)) | big.is_valid().to_numpy(zero_copy_only=False)
        kind = []
        keep = []
        create_to = {}
        for i in range(n):
            t, c, a = ttype[i], ctype[i], taddr[i]
            if in_tx[i] and a == "":
                if t in ("create", "create2") and tr["to_address"][i].is_valid:
                    create_to[int(pos[i])] = tr["to_address"][i].as_py().lower()
                continue  # top-level value comes from the transaction itself
            if not nonzero[i]:
                continue
            if not in_tx[i]:
                if t in ("reward", "genesis"):
                    kind.append(t)
                    keep.append(i)
                continue
            if not effective[i]:
                continue
            if t == "call" and c in ("call", ""):
                kind.append("internal")
            elif t in ("create", "create2"):
                kind.append("create")
            elif t in ("suicide", "selfdestruct"):
                kind.append("selfdestruct")
            else:
                continue  # delegatecall/staticcall/callcode move no value to another account
            keep.append(i)
        keep_a = np.array(keep, np.int64)
        sub = tr.take(pa.array(keep_a)) if len(keep) else conform("traces", tr.slice(0, 0))
        frm = _check_re(sub, "from_address", ADDR_RE, "an address", True)
        to = _check_re(sub, "to_address", ADDR_RE, "an address", False)
        issued = np.array([k in ("reward", "genesis") for k in kind], bool)
        if len(keep) and frm.null_count and np.any(~frm.is_valid().to_numpy(zero_copy_only=False) & ~issued):
            i = int(np.flatnonzero(~frm.is_valid().to_numpy(zero_copy_only=False) & ~issued)[0])
            _fail(sub, i, "from_address is missing")
        frm = pc.if_else(pa.array(issued), pa.scalar(None, pa.string()), frm) if len(keep) else frm
        # order inside a transaction: call-trace pre-order = lexicographic order of the trace address
        addr_lists = [[int(x) for x in taddr[i].split(",")] if taddr[i] else [] for i in keep]
        depth = max((len(x) for x in addr_lists), default=0)
        mat = np.full((len(keep), max(depth, 1)), -1, np.int64)
        for r, x in enumerate(addr_lists):
            mat[r, :len(x)] = x
        kp = pos[keep_a] if len(keep) else np.zeros(0, np.int64)
        okey = np.lexsort(tuple(mat[:, j] for j in range(mat.shape[1] - 1, -1, -1)) + (kp, b[keep_a] if len(keep) else kp))
        sub_order = np.empty(len(keep), np.int64)
        sub_order[okey] = np.arange(len(keep))
        rank_in_block = sub_order
        part = self._part(kind, b[keep_a] if len(keep) else np.zeros(0, np.int64), np.where(issued, -1, kp),
                          rank_in_block, frm, to, pa.nulls(len(keep), pa.string()),
                          value.take(pa.array(keep_a)), big.take(pa.array(keep_a)),
                          trace_address=pa.array([taddr[i] if taddr[i] else None for i in keep], pa.string()))
        ct = [None] * len(txs)
        for p, a in create_to.items():
            ct[p] = a
        return {"parts": [part], "create_to": pa.array(ct, pa.string())}, status

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
