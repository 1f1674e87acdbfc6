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
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import columns as C
from chaintrace.model import u128 as U
from chaintrace.chains.eth.records import EthBatch, conform
from chaintrace.chains.eth.tokens import KNOWN_TOKENS
from chaintrace.errors import UserError
from chaintrace.progress import NULL, Progress
from chaintrace.store.ingestor import ChainIngestor
from chaintrace.store.schema import eth as schema
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace

# transfer kinds: code (the int8 stored in the graph arrays follows chaintrace.graph.eth.KINDS) and the
# order of the kind inside a transaction (fees, top-level value, call trace, logs; block-level issuance)
KINDS = ("fee_burn", "fee_tip", "call", "create", "internal", "selfdestruct", "token", "wrap", "unwrap",
         "withdrawal", "reward", "genesis")
KCODE = {k: i for i, k in enumerate(KINDS)}
KIND_ORDER = {"fee_burn": 0, "fee_tip": 1, "call": 2, "create": 2, "internal": 3, "selfdestruct": 3,
              "token": 4, "wrap": 4, "unwrap": 4, "withdrawal": 5, "reward": 6, "genesis": 7}
TRACE_ORDER = 3  # every value-moving frame of a call trace (calls, creates, selfdestructs) in pre-order
NATIVE = {"asset_id": 0, "address": None, "symbol": "ETH", "name": "Ether", "decimals": 18, "standard": "native",
          "height": -1}
CHAIN_NAMES = {1: "mainnet", 11155111: "sepolia", 17000: "holesky", 560048: "hoodi", 31337: "anvil"}
_KIND_ARR = pa.array(KINDS, pa.string())
_KORDER = np.array([KIND_ORDER[k] for k in KINDS], np.int64)


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


def _first_null(col) -> int:
    return int(np.flatnonzero(~col.is_valid().to_numpy(zero_copy_only=False))[0])


def _hash_words(t: pa.Table, col: str, nullable: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A column of 32-byte hashes, checked, as (n, 4) uint64 words + validity."""
    words, valid, bad = C.hex_words(t[col], 32, nullable)
    if bad >= 0:
        _fail(t, bad, f"{col}: not a 32-byte hex hash: {t[col][bad].as_py()!r}")
    return words, valid


def _hash_col(t: pa.Table, col: str) -> tuple[pa.Array, np.ndarray]:
    """A column of 32-byte hashes, checked: (lower-cased strings, words)."""
    words, _, bad, strings = C.hex_column(t[col], 32, False)
    if bad >= 0:
        _fail(t, bad, f"{col}: not a 32-byte hex hash: {t[col][bad].as_py()!r}")
    return strings, words


class _Addr:
    """An address column as (n, 3) uint64 words + validity (NULL where absent)."""

    __slots__ = ("words", "valid")

    def __init__(self, words: np.ndarray, valid: np.ndarray):
        self.words, self.valid = words, valid

    @classmethod
    def of(cls, t: pa.Table, col: str, nullable: bool) -> "_Addr":
        words, valid, bad = C.hex_words(t[col], 20, nullable)
        if bad >= 0:
            _fail(t, bad, f"{col}: not an address: {t[col][bad].as_py()!r}")
        return cls(words, valid)

    @classmethod
    def null(cls, n: int) -> "_Addr":
        return cls(np.zeros((n, 3), np.uint64), np.zeros(n, np.bool_))

    def take(self, idx) -> "_Addr":
        return _Addr(self.words[idx], self.valid[idx])

    def __len__(self) -> int:
        return len(self.valid)

    @staticmethod
    def concat(parts) -> "_Addr":
        parts = list(parts)
        if not parts:
            return _Addr.null(0)
        return _Addr(np.concatenate([p.words for p in parts]), np.concatenate([p.valid for p in parts]))


class _SameAs:
    """Transfer-side addresses that are another column's (the transaction's sender, the block's miner) at
    rows `idx`, or none (`source` None): they need no lookup, and are never an address's first appearance
    (the transaction or block that names them comes first)."""

    __slots__ = ("source", "idx")

    def __init__(self, source: str | None, idx):
        self.source, self.idx = source, np.asarray(idx, np.int64)

    def __len__(self) -> int:
        return len(self.idx)


class _Amounts:
    """An amount column in 128-bit limbs; ``big`` marks amounts of 10**38 and more, whose exact text is in
    ``big_text`` (a string column, NULL elsewhere; None when there are none)."""

    __slots__ = ("lo", "hi", "big", "big_text")

    def __init__(self, lo, hi, big=None, big_text=None):
        self.lo, self.hi = lo, hi
        self.big = np.zeros(len(lo), np.bool_) if big is None else big
        self.big_text = big_text

    def take(self, idx) -> "_Amounts":
        idx = np.asarray(idx, np.int64)
        return _Amounts(self.lo[idx], self.hi[idx], self.big[idx],
                        None if self.big_text is None or not self.big[idx].any() else self.big_text.take(pa.array(idx)))

    def nonzero(self) -> np.ndarray:
        return (self.lo != 0) | (self.hi != 0) | self.big

    def decimal(self, null: np.ndarray | None = None) -> pa.Array:
        """The ``DECIMAL(38,0)`` column (NULL where big or `null`)."""
        mask = self.big if null is None else (self.big | null)
        if not mask.any():
            return U.to_decimal(self.lo, self.hi)
        return U.to_decimal(np.where(mask, 0, self.lo), np.where(mask, 0, self.hi), mask)

    def big_column(self) -> pa.Array:
        return pa.nulls(len(self.lo), pa.string()) if self.big_text is None else self.big_text

    @staticmethod
    def concat(parts) -> "_Amounts":
        parts = list(parts)
        lo = np.concatenate([p.lo for p in parts]) if parts else np.zeros(0, np.uint64)
        hi = np.concatenate([p.hi for p in parts]) if parts else np.zeros(0, np.uint64)
        big = np.concatenate([p.big for p in parts]) if parts else np.zeros(0, np.bool_)
        text = None
        if big.any():
            text = pa.concat_arrays([p.big_column() for p in parts])
        return _Amounts(lo, hi, big, text)


def _amounts(t: pa.Table, col: str, default: str | None = None) -> _Amounts:
    c = t[col]
    if default is not None and c.null_count:
        c = pc.fill_null(c, default)
    lo, hi, big, text, bad = C.parse_amounts(c)
    if len(bad):
        i = int(bad[0])
        _fail(t, i, f"{col}: not an amount in base units (0 .. 2**256-1): {t[col][i].as_py()!r}")
    return _Amounts(lo, hi, big, text)


def _u64(t: pa.Table, col: str, a: _Amounts) -> np.ndarray:
    over = (a.hi != 0) | a.big
    if over.any():
        i = int(np.flatnonzero(over)[0])
        _fail(t, i, f"{col}: {t[col][i].as_py()} exceeds 2**64")
    return a.lo


def _ints(t: pa.Table, col: str, fill: int = 0, dtype=np.int64) -> np.ndarray:
    c = t[col]
    if c.null_count:
        c = pc.fill_null(c, fill)
    return c.to_numpy().astype(dtype, copy=False) if len(c) else np.zeros(0, dtype)


@nb.njit(cache=True, nogil=True)
def _trace_paths(off, data, valid, depth, out, ncol):
    """Parse trace addresses ("0,2,1"; NULL or "" is the top-level frame) into rows of `out` (padded with -1);
    returns the first malformed row or -1. Only the first `ncol` levels are stored (depth is exact)."""
    for i in range(off.shape[0] - 1):
        d = 0
        if valid[i]:
            s, e = off[i], off[i + 1]
            v = -1
            for j in range(s, e + 1):
                c = data[j] if j < e else 44
                if 48 <= c <= 57:
                    v = (0 if v < 0 else v) * 10 + (c - 48)
                    if v > 2_000_000_000:
                        return i
                elif c == 44:
                    if v < 0:
                        if j == e and d == 0:
                            break  # empty string
                        return i
                    if d < ncol:
                        out[i, d] = v
                    d += 1
                    v = -1
                elif c != 32:
                    return i
        depth[i] = d
    return -1


@nb.njit(cache=True, nogil=True)
def _ineffective(grp_start, rows, failed, depth, path):
    """Frames that moved nothing: failed ones, and those below a failed frame of the same transaction.
    `rows` lists the frames grouped by transaction (group g: rows[grp_start[g]:grp_start[g + 1]])."""
    out = failed.copy()
    for g in range(grp_start.shape[0] - 1):
        a, b = grp_start[g], grp_start[g + 1]
        for x in range(a, b):
            f = rows[x]
            if not failed[f]:
                continue
            df = depth[f]
            for y in range(a, b):
                r = rows[y]
                if out[r] or depth[r] < df:
                    continue
                same = True
                for k in range(min(df, path.shape[1])):
                    if path[r, k] != path[f, k]:
                        same = False
                        break
                if same:
                    out[r] = True
    return out


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
        blocks = batch.blocks
        nb_ = len(blocks)
        nums = blocks["number"].to_numpy().astype(np.int64)
        h0 = int(nums[0])
        if not np.array_equal(nums, h0 + np.arange(nb_)):
            i = int(np.flatnonzero(nums != h0 + np.arange(nb_))[0])
            _fail(blocks, i, f"block {int(nums[i])} is not the next block (expected {h0 + i}): blocks must be "
                             f"contiguous")
        hashes, hashes_w = _hash_col(blocks, "hash")
        parents, _ = _hash_col(blocks, "parent_hash")
        hl, pl = hashes.to_pylist(), parents.to_pylist()
        expect_parent = self.tip_hash if self.tip_height is not None else None
        for i in range(nb_):
            if expect_parent is not None and pl[i] != expect_parent:
                src, line = _where(blocks, i)
                msg = (f"block {h0 + i} has parent {pl[i]}, expected {expect_parent} (not on the same chain as the "
                       f"block before it)")
                raise ChainMismatch(f"{src}:{line}: {msg}" if line else f"{src}: {msg}")
            expect_parent = hl[i]
        if len(set(hl)) != nb_:
            _fail(blocks, 0, "duplicate block hashes")
        for c in ("timestamp", "gas_used", "gas_limit"):
            if blocks[c].null_count:
                _fail(blocks, _first_null(blocks[c]), f"{c} is missing")
        base_fee_null = blocks["base_fee_per_gas"].is_null().to_numpy(zero_copy_only=False)
        base = _amounts(blocks, "base_fee_per_gas", "0")
        base_lo = _u64(blocks, "base_fee_per_gas", base)
        miners = _Addr.of(blocks, "miner", True)
        btime = blocks["timestamp"].to_numpy().astype(np.int64)

        # ---------------- transactions
        txs = batch.transactions
        nt = len(txs)
        for c in ("block_number", "transaction_index", "hash", "from_address"):
            if txs[c].null_count:
                _fail(txs, _first_null(txs[c]), f"{c} is missing")
        tblk = _ints(txs, "block_number") - h0
        tidx = _ints(txs, "transaction_index")
        if nt and np.any((tblk[1:] < tblk[:-1]) | ((tblk[1:] == tblk[:-1]) & (tidx[1:] < tidx[:-1]))):
            txs = txs.take(pc.sort_indices(txs, [("block_number", "ascending"), ("transaction_index", "ascending")]))
            tblk, tidx = _ints(txs, "block_number") - h0, _ints(txs, "transaction_index")
        if nt and (tblk.min() < 0 or tblk.max() >= nb_):
            i = int(np.flatnonzero((tblk < 0) | (tblk >= nb_))[0])
            _fail(txs, i, f"transaction of block {int(tblk[i]) + h0}, which is not in this batch's blocks file range")
        counts = np.bincount(tblk, minlength=nb_) if nt else np.zeros(nb_, np.int64)
        first_in_block = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        if nt:
            expected_idx = np.arange(nt) - first_in_block[tblk]
            bad = np.flatnonzero(tidx != expected_idx)
            if len(bad):
                i = int(bad[0])
                _fail(txs, i, f"transaction index {int(tidx[i])} in block {int(tblk[i]) + h0}: expected "
                              f"{int(expected_idx[i])} (missing or duplicate transactions)")
        decl = blocks["transaction_count"].fill_null(-1).to_numpy()
        badc = np.flatnonzero((decl >= 0) & (decl != counts))
        if len(badc):
            i = int(badc[0])
            _fail(blocks, i, f"block {h0 + i} declares {int(decl[i])} transactions, the export has {int(counts[i])}")
        thash, thash_w = _hash_col(txs, "hash")
        tx_index = C.KeyIndex(4, thash_w)  # transaction hash -> position in the batch
        if tx_index.duplicate >= 0:
            _fail(txs, tx_index.duplicate, f"duplicate transaction {thash[tx_index.duplicate].as_py()}")
        if nt and txs["block_hash"].null_count < nt:
            bh, bh_valid = _hash_words(txs, "block_hash", True)
            same = ~bh_valid | (bh == hashes_w[tblk]).all(axis=1)
            if not same.all():
                i = int(np.flatnonzero(~same)[0])
                _fail(txs, i, f"block_hash {txs['block_hash'][i].as_py().lower()} differs from block "
                              f"{int(tblk[i]) + h0}'s hash {hl[int(tblk[i])]}")
        tfrom = _Addr.of(txs, "from_address", False)
        tto = _Addr.of(txs, "to_address", True)
        tcontract = _Addr.of(txs, "receipt_contract_address", True)
        tvalue = _amounts(txs, "value", "0")
        gas_price = _amounts(txs, "gas_price", "0")
        maxfee = _amounts(txs, "max_fee_per_gas", "0")
        maxprio = _amounts(txs, "max_priority_fee_per_gas", "0")
        eff_t = txs.set_column(txs.column_names.index("receipt_effective_gas_price"), "receipt_effective_gas_price",
                               pc.coalesce(txs["receipt_effective_gas_price"], txs["gas_price"]))
        eff = _amounts(eff_t, "receipt_effective_gas_price", "0")
        eff_lo = _u64(eff_t, "receipt_effective_gas_price", eff)
        has_gas = txs["receipt_gas_used"].is_valid().to_numpy(zero_copy_only=False) if nt else np.zeros(0, bool)
        gu = _ints(txs, "receipt_gas_used", 0, np.uint64)

        # status: receipt, else the top-level call frame, else assumed successful
        status = _ints(txs, "receipt_status", -1)
        if nt and np.any((status != -1) & (status != 0) & (status != 1)):
            i = int(np.flatnonzero((status != -1) & (status != 0) & (status != 1))[0])
            _fail(txs, i, f"receipt_status must be 0 or 1, got {int(status[i])}")

        # ---------------- traces -> internal transfers (and status of receipt-less transactions)
        traces = batch.traces
        trace_part, create_to = None, None
        if traces is not None and len(traces):
            trace_part, create_to, status = self._traces(traces, thash, tx_index, tblk, h0, nb_, first_in_block,
                                                         counts, status)
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
        blob_used = _ints(txs, "receipt_blob_gas_used", 0, np.uint64)
        if nt and blob_used.any():
            blo, bhi = U.mul64(blob_used, _u64(txs, "receipt_blob_gas_price",
                                               _amounts(txs, "receipt_blob_gas_price", "0")))
            fee_lo, fee_hi = U.add(fee_lo, fee_hi, blo, bhi)
            burn_lo, burn_hi = U.add(burn_lo, burn_hi, blo, bhi)
        tip_lo, tip_hi = U.sub(fee_lo, fee_hi, burn_lo, burn_hi)
        nofee = ~has_gas

        # ---------------- transfer rows from every source (as columns), then one chronological sort
        parts = []
        tx_pos = np.arange(nt, dtype=np.int64)
        if nt:
            sel = np.flatnonzero(has_gas & ((burn_lo != 0) | (burn_hi != 0)))
            parts.append(_part("fee_burn", tblk[sel], sel, 0, _SameAs("from", sel), _SameAs(None, sel),
                               _Amounts(burn_lo[sel], burn_hi[sel])))
            sel = np.flatnonzero(has_gas & ((tip_lo != 0) | (tip_hi != 0)))
            if not miners.valid[tblk[sel]].all():
                i = int(sel[np.flatnonzero(~miners.valid[tblk[sel]])[0]])
                _fail(blocks, int(tblk[i]), "miner (fee recipient) is missing")
            parts.append(_part("fee_tip", tblk[sel], sel, 0, _SameAs("from", sel), _SameAs("miner", tblk[sel]),
                               _Amounts(tip_lo[sel], tip_hi[sel])))
            # top-level value: to the recipient, or the created contract (receipt, else the create frame)
            sel = np.flatnonzero(tvalue.nonzero() & ok_tx)
            dest = _Addr(np.where(tto.valid[:, None], tto.words, tcontract.words), tto.valid | tcontract.valid)
            if create_to is not None:
                dest = _Addr(np.where(dest.valid[:, None], dest.words, create_to.words), dest.valid | create_to.valid)
            d = dest.take(sel)
            if not d.valid.all():
                i = int(sel[np.flatnonzero(~d.valid)[0]])
                _fail(txs, i, "contract creation with value but no receipt_contract_address")
            kinds = np.where(tto.valid[sel], KCODE["call"], KCODE["create"]).astype(np.int8)
            parts.append(_part(kinds, tblk[sel], sel, 0, _SameAs("from", sel), d, tvalue.take(sel)))
        if trace_part is not None:
            parts.append(trace_part)
        tt = batch.token_transfers
        if len(tt):
            parts.append(self._tokens(tt, thash, tx_index, tblk, h0, ok_tx))
        wd = batch.withdrawals
        if len(wd):  # block-level issuance, after the block's transactions
            wb = _ints(wd, "block_number") - h0
            if wb.min() < 0 or wb.max() >= nb_:
                _fail(wd, int(np.flatnonzero((wb < 0) | (wb >= nb_))[0]), "withdrawal outside the batch's blocks")
            waddr = _Addr.of(wd, "address", False)
            glo = _u64(wd, "amount", _amounts(wd, "amount", None))
            wlo, whi = U.mul64(glo, np.full(len(glo), 10**9, np.uint64))
            # order inside the block by withdrawal index (as a rank, so the sort key stays small)
            worder = np.lexsort((_ints(wd, "index"), wb))
            wsub = np.empty(len(wb), np.int64)
            wsub[worder] = np.arange(len(wb))
            parts.append(_part("withdrawal", wb, -1, wsub, _SameAs(None, wb), waddr, _Amounts(wlo, whi)))
        parts = [p for p in parts if len(p["blk"])]
        ntr = sum(len(p["blk"]) for p in parts)
        cat = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, np.int64)
               for k in ("blk", "txpos", "sub", "kind", "korder", "log_index")}
        cat["kind"] = cat["kind"].astype(np.int8)
        amt = _Amounts.concat(p["amount"] for p in parts)
        order = _transfer_order(cat["blk"], cat["txpos"], cat["korder"], cat["sub"], first_in_block + counts)
        rank = np.empty(ntr, np.int64)
        rank[order] = np.arange(ntr)
        t_blk = cat["blk"][order]
        t_txpos = cat["txpos"][order]
        t_kind = cat["kind"][order]
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
        tx_h = tblk + h0
        offs = np.cumsum([0] + [len(p["blk"]) for p in parts])
        looked_up = [(p[side], np.arange(o, o + len(p["blk"])), j) for j, side in enumerate(("from", "to"))
                     for p, o in zip(parts, offs) if isinstance(p[side], _Addr)]
        occ_addr = _Addr.concat([miners, tfrom, tto, tcontract] + [a for a, _, _ in looked_up])
        occ_h = np.concatenate([heights, tx_h, tx_h, tx_h] + [cat["blk"][rows] + h0 for _, rows, _ in looked_up])
        occ_pos = np.concatenate([np.zeros(nb_, np.int64), (tx_pos + 1) * 4, (tx_pos + 1) * 4 + 1, (tx_pos + 1) * 4 + 2]
                                 + [(nt + 1) * 4 + 2 * rank[rows] + j for _, rows, j in looked_up])
        n_before = self.book.n
        ids, first = self.book.assign(occ_addr.words, occ_addr.valid, occ_h * (1 << 40) + occ_pos)
        new_addr = pa.table({"address_id": np.arange(n_before, self.book.n, dtype=np.int64),
                             "address": C.words_to_strings(occ_addr.words[first], 20), "height": occ_h[first]},
                            schema=schema.ADDRESSES)
        miner_id, from_id, to_id, contract_id = np.split(ids, np.cumsum([nb_, nt, nt, nt]))[:4]
        side_ids = (np.full(ntr, -1, np.int64), np.full(ntr, -1, np.int64))
        k = 3 * nt + nb_
        for _a, rows, j in looked_up:
            side_ids[j][rows] = ids[k:k + len(rows)]
            k += len(rows)
        for j, side in enumerate(("from", "to")):
            for p, o in zip(parts, offs):
                if isinstance(p[side], _SameAs) and p[side].source is not None:
                    src = from_id if p[side].source == "from" else miner_id
                    side_ids[j][o:o + len(p["blk"])] = src[p[side].idx]
        trf_id, trt_id = side_ids

        # assets (native ETH is asset 0 of every store; tokens by first appearance)
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
        inp, bad = C.hex_bytes(txs["input"])
        if bad >= 0:
            _fail(txs, bad, "input: not hex data")
        transactions = pa.table({
            "tx_id": tx_ids, "hash": thash, "height": tx_h, "tx_index": tidx.astype(np.int32),
            "time": btime[tblk] if nt else np.zeros(0, np.int64), "nonce": txs["nonce"],
            "from_id": from_id, "to_id": nz(to_id), "contract_id": nz(contract_id),
            "value": tvalue.decimal(), "value_big": tvalue.big_column(), "gas": txs["gas"],
            "gas_price": gas_price.decimal(),
            "max_fee_per_gas": maxfee.decimal(txs["max_fee_per_gas"].is_null().to_numpy(zero_copy_only=False)),
            "max_priority_fee_per_gas": maxprio.decimal(
                txs["max_priority_fee_per_gas"].is_null().to_numpy(zero_copy_only=False)),
            "tx_type": pc.cast(txs["transaction_type"], pa.int16()), "input": inp, "status": status_col,
            "gas_used": txs["receipt_gas_used"], "cumulative_gas_used": txs["receipt_cumulative_gas_used"],
            "effective_gas_price": eff.decimal(nofee),
            "fee": U.to_decimal(fee_lo, fee_hi, nofee), "burned": U.to_decimal(burn_lo, burn_hi, nofee),
            "tip": U.to_decimal(tip_lo, tip_hi, nofee),
            "first_transfer_id": tx_first_tr, "n_transfers": tx_n_tr,
        }, schema=schema.TRANSACTIONS)
        t_amt = amt.take(order) if ntr else amt
        t_li = cat["log_index"][order]
        trace_addr = pa.nulls(ntr, pa.string())
        if trace_part is not None and trace_part["trace_address"] is not None and len(trace_part["blk"]):
            k0 = sum(len(p["blk"]) for p in parts[:next(i for i, p in enumerate(parts) if p is trace_part)])
            src = np.full(ntr, -1, np.int64)
            src[rank[k0:k0 + len(trace_part["blk"])]] = np.arange(len(trace_part["blk"]))
            trace_addr = trace_part["trace_address"].take(pa.array(src, mask=src < 0))
        tx_of = np.where(t_txpos >= 0, self.n_tx + t_txpos, -1)
        transfers = pa.table({
            "transfer_id": tr_ids, "height": t_blk + h0, "tx_id": nz(tx_of),
            "tx_index": pa.array(np.where(t_txpos >= 0, tidx[np.maximum(t_txpos, 0)] if nt else 0, 0).astype(np.int32),
                                 mask=t_txpos < 0),
            "seq": seq, "kind": pa.DictionaryArray.from_arrays(pa.array(t_kind, pa.int8()), _KIND_ARR).cast(pa.string()),
            "asset_id": asset_id, "from_id": nz(trf_id[order]), "to_id": nz(trt_id[order]),
            "value": t_amt.decimal(), "value_big": t_amt.big_column(),
            "log_index": pa.array(t_li.astype(np.int32), mask=t_li < 0),
            "trace_address": trace_addr,
        }, schema=schema.TRANSFERS)

        def opt_int(c):
            return blocks[c] if c in blocks.column_names else pa.nulls(nb_, pa.int64())

        diff = _amounts(blocks, "difficulty", "0")
        tdiff = _amounts(blocks, "total_difficulty", "0")
        nwd = np.bincount(_ints(wd, "block_number") - h0, minlength=nb_) if len(wd) else np.zeros(nb_)
        blocks_t = pa.table({
            "height": heights, "hash": hashes, "parent_hash": parents, "time": btime, "miner_id": nz(miner_id),
            "gas_limit": blocks["gas_limit"], "gas_used": blocks["gas_used"],
            "base_fee_per_gas": base.decimal(base_fee_null),
            "n_tx": counts.astype(np.int32), "size": blocks["size"],
            "difficulty": diff.decimal(blocks["difficulty"].is_null().to_numpy(zero_copy_only=False)),
            "total_difficulty": tdiff.decimal(blocks["total_difficulty"].is_null().to_numpy(zero_copy_only=False)),
            "nonce": blocks["nonce"], "sha3_uncles": blocks["sha3_uncles"],
            "transactions_root": blocks["transactions_root"], "state_root": blocks["state_root"],
            "receipts_root": blocks["receipts_root"], "extra_data": blocks["extra_data"],
            "withdrawals_root": blocks["withdrawals_root"], "n_withdrawals": nwd.astype(np.int32),
            "blob_gas_used": opt_int("blob_gas_used"), "excess_blob_gas": opt_int("excess_blob_gas"),
            "first_tx_id": self.n_tx + first_in_block, "first_transfer_id": blk_first_tr, "n_transfers": blk_n_tr,
        }, schema=schema.BLOCKS)
        self.n_tx += nt
        self.n_transfers += ntr
        kc = np.bincount(t_kind, minlength=len(KINDS)) if ntr else np.zeros(len(KINDS), np.int64)
        firsts = np.unique(t_kind, return_index=True)[1] if ntr else []
        kinds = {KINDS[int(t_kind[i])]: int(kc[t_kind[i]]) for i in sorted(firsts)}
        rows = {"blocks": blocks_t, "transactions": transactions, "transfers": transfers, "addresses": new_addr,
                "assets": asset_rows}
        return rows, {"failed": int((status_known == 0).sum()), "kinds": kinds}

    def _tx_positions(self, t: pa.Table, tx_index: C.KeyIndex, h0: int, tblk: np.ndarray) -> np.ndarray:
        """Positions in the batch's transactions of the rows' ``transaction_hash``, checked against their
        ``block_number``."""
        words, valid = _hash_words(t, "transaction_hash")
        pos = tx_index.lookup(words, valid)
        if np.any(pos < 0):
            i = int(np.flatnonzero(pos < 0)[0])
            _fail(t, i, f"transaction {t['transaction_hash'][i].as_py().lower()} is not in the transactions of "
                        f"this block range")
        b = _ints(t, "block_number") - h0
        bad = np.flatnonzero(tblk[pos] != b)
        if len(bad):
            i = int(bad[0])
            _fail(t, i, f"block_number {int(b[i]) + h0} differs from its transaction's block {int(tblk[pos[i]]) + h0}")
        return pos

    def _tokens(self, tt: pa.Table, thash, tx_index, tblk, h0, ok_tx) -> dict:
        tt = conform("token_transfers", tt)
        pos = self._tx_positions(tt, tx_index, h0, tblk)
        if np.any(~ok_tx[pos]):
            i = int(np.flatnonzero(~ok_tx[pos])[0])
            _fail(tt, i, f"token transfer in failed transaction {thash[int(pos[i])].as_py()}")
        token = _Addr.of(tt, "token_address", False)
        frm = _Addr.of(tt, "from_address", False)
        to = _Addr.of(tt, "to_address", False)
        value = _amounts(tt, "value", None)
        if tt["log_index"].null_count:
            _fail(tt, _first_null(tt["log_index"]), "log_index is missing")
        li = _ints(tt, "log_index")
        ev = pc.fill_null(tt["event"], "transfer")
        kinds = np.where(pc.equal(ev, "deposit").to_numpy(zero_copy_only=False), KCODE["wrap"],
                         np.where(pc.equal(ev, "withdrawal").to_numpy(zero_copy_only=False), KCODE["unwrap"],
                                  KCODE["token"])).astype(np.int8)
        return _part(kinds, tblk[pos], pos, li, frm, to, value, token=token, log_index=li)

    def _traces(self, traces: pa.Table, thash, tx_index, tblk, h0, nb_, first_in_block, counts, status):
        """Call-trace frames -> the internal-transfer part, the created contract of top-level create frames
        (per transaction) and the status of transactions that have no receipt status."""
        tr = conform("traces", traces)
        n = len(tr)
        nt = len(tblk)
        tcode = pc.index_in(pc.fill_null(pc.utf8_lower(tr["trace_type"]), ""), value_set=pa.array(
            ["call", "create", "create2", "suicide", "selfdestruct", "reward", "genesis"])).fill_null(-1).to_numpy()
        is_call, is_create = tcode == 0, (tcode == 1) | (tcode == 2)
        is_destruct, is_issue = (tcode == 3) | (tcode == 4), (tcode == 5) | (tcode == 6)
        plain_call = pc.is_in(pc.fill_null(pc.utf8_lower(tr["call_type"]), ""),
                              value_set=pa.array(["call", ""])).to_numpy(zero_copy_only=False)
        off, data, valid = C.string_buffers(tr["trace_address"])
        depth = np.zeros(n, np.int64)
        ncol = 1
        path = np.full((n, ncol), -1, np.int64)
        bad = _trace_paths(off, data, valid, depth, path, ncol)
        if bad >= 0:
            _fail(tr, bad, f"trace_address: not a list of call indices: {tr['trace_address'][bad].as_py()!r}")
        if n and depth.max() > ncol:
            ncol = int(depth.max())
            path = np.full((n, ncol), -1, np.int64)
            _trace_paths(off, data, valid, depth, path, ncol)
        top = depth == 0
        failed = tr["error"].is_valid().to_numpy(zero_copy_only=False) | (_ints(tr, "status", -1) == 0)
        has_hash = tr["transaction_hash"].is_valid().to_numpy(zero_copy_only=False)
        has_idx = tr["transaction_index"].is_valid().to_numpy(zero_copy_only=False)
        in_tx = has_hash | has_idx
        b = _ints(tr, "block_number") - h0
        if n and (b.min() < 0 or b.max() >= nb_):
            _fail(tr, int(np.flatnonzero((b < 0) | (b >= nb_))[0]), "trace outside the batch's blocks")
        pos = np.full(n, -1, np.int64)
        if has_hash.all():
            pos = self._tx_positions(tr, tx_index, h0, tblk)
        elif has_hash.any():
            sel = np.flatnonzero(has_hash)
            pos[sel] = self._tx_positions(tr.take(pa.array(sel)), tx_index, h0, tblk)
        sel = np.flatnonzero(~has_hash & has_idx)
        if len(sel):
            ti = _ints(tr, "transaction_index")[sel]
            bad = np.flatnonzero(ti >= counts[b[sel]])
            if len(bad):
                _fail(tr, int(sel[bad[0]]), f"transaction_index {int(ti[bad[0]])} is not in block {int(b[sel[bad[0]]]) + h0}")
            pos[sel] = first_in_block[b[sel]] + ti
        # frames that move value: neither they nor an ancestor failed
        effective = ~failed
        if (failed & in_tx).any():
            rows = np.flatnonzero(in_tx)
            rows = rows[np.argsort(pos[rows], kind="stable")]
            p = pos[rows]
            grp = np.r_[0, np.flatnonzero(p[1:] != p[:-1]) + 1, len(rows)]
            effective = ~_ineffective(grp, rows, failed, depth, path)
        # status of transactions without a receipt status: their top-level frame
        status = status.copy()
        tops = np.flatnonzero(in_tx & top)
        if len(tops):
            tp = pos[tops]
            s = np.where(failed[tops], 0, 1)
            unknown = status[tp] == -1
            _, first = np.unique(tp, return_index=True)
            firsts = np.zeros(len(tops), bool)
            firsts[first] = True
            setting = unknown & firsts
            status[tp[setting]] = s[setting]
            clash = ~setting & (status[tp] != s) & (is_call | is_create)[tops]
            if clash.any():
                k = int(np.flatnonzero(clash)[0])
                i, p_ = int(tops[k]), int(tp[k])
                _fail(tr, i, f"top-level trace {'failed' if s[k] == 0 else 'succeeded'} but the receipt status of "
                             f"{thash[p_].as_py()} is {int(status[p_])}")
        # the created contract of top-level create frames (the transaction's value goes there)
        create_to = _Addr.null(nt)
        cr = np.flatnonzero(in_tx & top & is_create & tr["to_address"].is_valid().to_numpy(zero_copy_only=False))
        if len(cr):
            a = _Addr.of(tr.take(pa.array(cr)), "to_address", False)
            create_to.words[pos[cr]] = a.words
            create_to.valid[pos[cr]] = True
        # value-moving frames (top-level value comes from the transaction itself)
        value = _amounts(tr, "value", "0")
        moves = ~(in_tx & top) & value.nonzero()
        kind = np.full(n, -1, np.int64)
        kind[moves & ~in_tx & is_issue] = np.where(tcode == 5, KCODE["reward"], KCODE["genesis"])[moves & ~in_tx & is_issue]
        inner = moves & in_tx & effective
        kind[inner & is_call & plain_call] = KCODE["internal"]
        kind[inner & is_create] = KCODE["create"]
        kind[inner & is_destruct] = KCODE["selfdestruct"]  # delegatecall/staticcall/callcode move no value
        keep = np.flatnonzero(kind >= 0)
        sub = tr.select(["from_address", "to_address", "trace_address", "_src", "_line"]).take(pa.array(keep))
        frm = _Addr.of(sub, "from_address", True)
        to = _Addr.of(sub, "to_address", False)
        issued = (kind[keep] == KCODE["reward"]) | (kind[keep] == KCODE["genesis"])
        if np.any(~frm.valid & ~issued):
            _fail(sub, int(np.flatnonzero(~frm.valid & ~issued)[0]), "from_address is missing")
        frm.valid &= ~issued
        # order inside a transaction: call-trace pre-order = lexicographic order of the trace address
        kp, kb = pos[keep], b[keep]
        okey = np.lexsort(tuple(path[keep, j] for j in range(ncol - 1, -1, -1)) + (kp, kb))
        rank_in_block = np.empty(len(keep), np.int64)
        rank_in_block[okey] = np.arange(len(keep))
        ta = sub["trace_address"]
        ta = pc.if_else(pc.equal(pc.fill_null(ta, ""), ""), pa.scalar(None, pa.string()), ta)
        part = _part(kind[keep].astype(np.int8), kb, np.where(issued, -1, kp), rank_in_block, frm, to,
                     value.take(keep), trace_address=ta.combine_chunks() if isinstance(ta, pa.ChunkedArray) else ta,
                     korder=np.where(issued, _KORDER[kind[keep]], TRACE_ORDER))
        return part, create_to, status

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


def _part(kind, blk, txpos, sub, frm: _Addr | _SameAs, to: _Addr | _SameAs, amount: _Amounts, token=None, log_index=None,
          trace_address=None, korder=None) -> dict:
    """Transfer rows of one source, as columns. `kind` is a kind name or an int8 code array; `korder` (an
    array) overrides the kinds' order inside the transaction."""
    n = len(blk)
    kind = np.full(n, KCODE[kind], np.int8) if isinstance(kind, str) else np.asarray(kind, np.int8)
    return {
        "blk": np.asarray(blk, np.int64), "txpos": np.broadcast_to(np.asarray(txpos, np.int64), (n,)).copy(),
        "sub": np.broadcast_to(np.asarray(sub, np.int64), (n,)).copy(), "kind": kind,
        "korder": _KORDER[kind] if korder is None else np.asarray(korder, np.int64), "from": frm, "to": to, "amount": amount, "token": token,
        "log_index": np.full(n, -1, np.int64) if log_index is None else np.asarray(log_index, np.int64),
        "trace_address": trace_address,
    }


def _transfer_order(blk, txpos, korder, sub, block_end) -> np.ndarray:
    """Chronological order of transfer rows: block, transaction (block-level issuance after the block's
    transactions), kind order, then `sub` (log index, call-trace rank, withdrawal rank). One stable integer
    argsort when the composite key fits 63 bits, else a lexsort."""
    n = len(blk)
    if not n:
        return np.zeros(0, np.int64)
    # group: tx position + block, or (first tx of the next block) + block for block-level rows: increasing
    # with (block, position in block), block-level rows last, distinct across blocks (empty ones too)
    g = np.where(txpos >= 0, txpos, block_end[blk]) + blk
    sub_bits = max(int(sub.max()).bit_length(), 1) if n else 1
    g_bits = max(int(g.max()).bit_length(), 1)
    if g_bits + 3 + sub_bits <= 63 and sub.min() >= 0:
        key = (g << (3 + sub_bits)) | (korder << sub_bits) | sub
        return np.argsort(key, kind="stable")
    return np.lexsort((sub, korder, g))
