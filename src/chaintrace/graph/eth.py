"""Ethereum transfer graph as flat arrays indexed by dense ids, cached on disk (like :mod:`chaintrace.graph.btc`).

Every value movement of the store (top-level, internal and token transfers, gas fees, issuance) is one entry
``k`` of the transfer arrays, in chronological order (transfer ids). Amounts are exact 128-bit integers split
in two uint64 limbs (``tr_lo``, ``tr_hi``); amounts of 10**38 and more (``value_big``) are flagged in
``tr_big`` and their exact values are kept in :attr:`EthGraph.big_values`.

A *holding* is one (account, asset) pair: ``tr_from_h``/``tr_to_h`` are dense holding ids (-1: the protocol
side of issuance and burned fees), so per-balance state in the trace kernels is a flat array. Transactions
are CSR ranges into the transfers (``tx_tr[t]:tx_tr[t+1]``; block-level issuance lies outside every range).

Report rows name transfers and accounts, so the graph also keeps what that takes without a query: the
transaction hashes and addresses as uint64 words (``tx_hash``, ``addr_words``), and each transfer's position
in its transaction, log index and call-trace address (``tr_seq``, ``tr_log``, ``tr_trace`` into
:attr:`EthGraph.trace_paths`); :meth:`EthGraph.refs` and :meth:`EthGraph.address_strings` turn them into
strings for any number of rows at once. Cached with :mod:`chaintrace.graph.cache`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from chaintrace.chains.eth import columns as C
from chaintrace.model import u128 as U
from chaintrace.graph.cache import load_arrays, save_arrays
from chaintrace.store.workspace import Workspace

FORMAT = 2
KINDS = ("fee_burn", "fee_tip", "call", "create", "internal", "selfdestruct", "token", "wrap", "unwrap",
         "withdrawal", "reward", "genesis")
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
FEE_KINDS = (KIND_CODE["fee_burn"], KIND_CODE["fee_tip"])
_ADDR = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass
class EthGraph:
    commit: int
    network: str
    n_addresses: int
    n_assets: int
    tr_from: np.ndarray  # int64 account id, -1 = issued by the protocol
    tr_to: np.ndarray  # int64 account id, -1 = destroyed by the protocol
    tr_asset: np.ndarray  # int32
    tr_lo: np.ndarray  # uint64 low limb of the amount
    tr_hi: np.ndarray  # uint64 high limb
    tr_big: np.ndarray  # bool: amount >= 10**38 (exact value in big_values)
    tr_kind: np.ndarray  # int8 code (KINDS)
    tr_tx: np.ndarray  # int64 tx id, -1 for block-level issuance
    tr_height: np.ndarray  # int64
    tr_from_h: np.ndarray  # int64 holding id
    tr_to_h: np.ndarray  # int64 holding id
    hold_account: np.ndarray  # int64[n_holdings]
    hold_asset: np.ndarray  # int32[n_holdings]
    tx_tr: np.ndarray  # int64[n_tx + 1] CSR into transfers
    tx_from: np.ndarray  # int64[n_tx] sender account
    tx_height: np.ndarray  # int64[n_tx]
    blk_height0: int
    blk_time: np.ndarray  # int64 time of block height blk_height0 + i
    big_values: dict  # transfer index -> exact int, for amounts >= 10**38
    tr_seq: np.ndarray  # int32 position inside the transaction (or the block's issuance)
    tr_log: np.ndarray  # int32 log index of token transfers, -1 none
    tr_trace: np.ndarray  # int32 index into trace_paths, -1 none
    tx_hash: np.ndarray  # uint64[n_tx, 4] transaction hashes
    addr_words: np.ndarray  # uint64[n_addresses, 3] addresses
    trace_paths: list  # distinct call-trace addresses ("0,2")
    _index: object = None  # address -> id (chaintrace.chains.eth.columns.KeyIndex), built on first use

    @property
    def n_transfers(self) -> int:
        return len(self.tr_from)

    @property
    def n_holdings(self) -> int:
        return len(self.hold_account)

    @property
    def n_tx(self) -> int:
        return len(self.tx_from)

    def amount(self, k: int) -> int:
        if self.tr_big[k]:
            return self.big_values[int(k)]
        return (int(self.tr_hi[k]) << 64) | int(self.tr_lo[k])

    def time_of_height(self, h) -> np.ndarray:
        return self.blk_time[np.asarray(h) - self.blk_height0]

    def amounts(self, ks) -> list[int]:
        """Exact amounts of transfers `ks` (Python ints)."""
        ks = np.asarray(ks, np.int64)
        out = U.to_ints(self.tr_lo[ks], self.tr_hi[ks]) if len(ks) else []
        if self.big_values:
            for j in np.flatnonzero(self.tr_big[ks]).tolist():
                out[j] = self.big_values[int(ks[j])]
        return out

    def address_ids(self, addresses: list[str]) -> dict[str, int]:
        """Dense ids of the given addresses present in the graph, keyed by the lower-cased address."""
        q = sorted({a.lower() for a in addresses if isinstance(a, str) and _ADDR.fullmatch(a)})
        if not q:
            return {}
        if self._index is None:
            self._index = C.KeyIndex(3, self.addr_words)
        words, valid, _ = C.hex_words(pa.array(q, pa.string()), 20, False)
        ids = self._index.lookup(words, valid)
        return {a: int(i) for a, i in zip(q, ids.tolist()) if i >= 0}

    def address_strings(self, ids) -> list[str | None]:
        """Addresses of account ids (None for -1)."""
        ids = np.asarray(ids, np.int64)
        ok = ids >= 0
        return C.words_to_strings(self.addr_words[np.where(ok, ids, 0)], 20, ok).to_pylist() if len(ids) else []

    def refs(self, ks) -> tuple[list[str], list[str], np.ndarray]:
        """(txid, ref, time) of transfers `ks`, as the report names them: the transaction hash (or
        ``block:<height>`` for block-level issuance) and ``<txid>:log<i>`` (token transfers),
        ``<txid>:trace<a.b>`` (internal), ``<txid>:<kind>`` (fees, creations...) or ``<txid>:<seq>`` (the
        transaction's own value)."""
        ks = np.asarray(ks, np.int64)
        if not len(ks):
            return [], [], np.zeros(0, np.int64)
        tx = self.tr_tx[ks]
        height = self.tr_height[ks]
        has_tx = tx >= 0
        hashes = C.words_to_strings(self.tx_hash[np.where(has_tx, tx, 0)], 32, has_tx) if len(self.tx_hash) \
            else pa.nulls(len(ks), pa.string())
        txid = pc.coalesce(hashes, pc.binary_join_element_wise("block:", pc.cast(pa.array(height), pa.string()), ""))
        kind = self.tr_kind[ks]
        kind_name = pa.DictionaryArray.from_arrays(pa.array(kind, pa.int8()), pa.array(KINDS)).cast(pa.string())
        log = self.tr_log[ks]
        trace = self.tr_trace[ks]
        is_log = np.isin(kind, TOKEN_KINDS) & (log >= 0)
        is_trace = ~is_log & (trace >= 0)
        is_call = ~is_log & ~is_trace & (kind == KIND_CODE["call"])
        paths = pa.array([p.replace(",", ".") for p in self.trace_paths] or [""], pa.string())
        suffix = pc.if_else(pa.array(is_log), pc.binary_join_element_wise("log", pc.cast(pa.array(log), pa.string()), ""),
                 pc.if_else(pa.array(is_trace), pc.binary_join_element_wise("trace", paths.take(
                     pa.array(np.maximum(trace, 0))), ""),
                 pc.if_else(pa.array(is_call), pc.cast(pa.array(self.tr_seq[ks]), pa.string()), kind_name)))
        ref = pc.binary_join_element_wise(txid, suffix, ":")
        return txid.to_pylist(), ref.to_pylist(), self.time_of_height(height)


_ARRAYS = [f.name for f in fields(EthGraph)
           if f.name not in ("commit", "network", "n_addresses", "n_assets", "blk_height0", "big_values",
                             "trace_paths", "_index")]
TOKEN_KINDS = np.array([KIND_CODE[k] for k in ("token", "wrap", "unwrap")], np.int8)


def holdings(acct_from: np.ndarray, acct_to: np.ndarray, asset: np.ndarray, n_assets: int):
    """Dense (account, asset) ids for both sides of every transfer (-1 where the account is -1)."""
    na = max(int(n_assets), 1)
    kf = np.where(acct_from >= 0, acct_from * na + asset, -1)
    kt = np.where(acct_to >= 0, acct_to * na + asset, -1)
    keys = np.concatenate([kf, kt])
    uniq, inv = np.unique(keys, return_inverse=True)
    start = 1 if len(uniq) and uniq[0] == -1 else 0
    ids = inv.astype(np.int64) - start
    n = len(kf)
    fh, th = ids[:n], ids[n:]
    fh[kf < 0] = -1
    th[kt < 0] = -1
    u = uniq[start:]
    return fh, th, (u // na).astype(np.int64), (u % na).astype(np.int32)


def build_eth_graph(ws: Workspace) -> EthGraph:
    """Build the arrays from the store (no cache)."""
    store = ws.require_chain("eth")
    tr = store.read("transfers", ["from_id", "to_id", "asset_id", "value", "value_big", "kind", "tx_id", "height",
                                  "seq", "log_index", "trace_address"])
    tx = store.read("transactions", ["from_id", "height", "first_transfer_id", "n_transfers", "hash"])
    blk = store.read("blocks", ["height", "time"])
    addr = store.read("addresses", ["address"])
    n = len(tr)
    lo, hi = U.from_decimal(tr["value"])
    big = tr["value_big"].is_valid().to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
    big_values = {}
    if big.any():
        idx = np.flatnonzero(big)
        for i, v in zip(idx.tolist(), tr["value_big"].take(idx).to_pylist()):
            big_values[i] = int(v)
    kinds = tr["kind"].combine_chunks().dictionary_encode() if n else None
    if kinds is not None:
        lut = np.array([KIND_CODE[x] for x in kinds.dictionary.to_pylist()], np.int8)
        kind = lut[kinds.indices.to_numpy()]
    else:
        kind = np.zeros(0, np.int8)
    fr = tr["from_id"].fill_null(-1).to_numpy().astype(np.int64)
    to = tr["to_id"].fill_null(-1).to_numpy().astype(np.int64)
    asset = tr["asset_id"].to_numpy().astype(np.int32)
    n_assets = store.row_count("assets")
    fh, th, hacct, hasset = holdings(fr, to, asset, n_assets)
    first = tx["first_transfer_id"].to_numpy().astype(np.int64)
    cnt = tx["n_transfers"].to_numpy().astype(np.int64)
    tx_tr = np.empty(len(first) + 1, np.int64)
    tx_tr[:-1] = first
    tx_tr[-1] = first[-1] + cnt[-1] if len(first) else 0
    heights = blk["height"].to_numpy().astype(np.int64)
    trace = tr["trace_address"].combine_chunks().dictionary_encode() if n else None
    tx_hash, _, bad = C.hex_words(tx["hash"], 32, False)
    addr_words, _, bad2 = C.hex_words(addr["address"], 20, False)
    if bad >= 0 or bad2 >= 0:
        raise ValueError("malformed hash or address in the store")
    return EthGraph(
        commit=store.manifest["commit"], network=store.meta.get("network", "unknown"),
        n_addresses=store.row_count("addresses"), n_assets=n_assets,
        tr_from=fr, tr_to=to, tr_asset=asset, tr_lo=lo, tr_hi=hi, tr_big=big, tr_kind=kind,
        tr_tx=tr["tx_id"].fill_null(-1).to_numpy().astype(np.int64),
        tr_height=tr["height"].to_numpy().astype(np.int64), tr_from_h=fh, tr_to_h=th,
        hold_account=hacct, hold_asset=hasset, tx_tr=tx_tr,
        tx_from=tx["from_id"].to_numpy().astype(np.int64), tx_height=tx["height"].to_numpy().astype(np.int64),
        blk_height0=int(heights[0]) if len(heights) else 0, blk_time=blk["time"].to_numpy().astype(np.int64),
        big_values=big_values, tr_seq=tr["seq"].to_numpy().astype(np.int32),
        tr_log=tr["log_index"].fill_null(-1).to_numpy().astype(np.int32),
        tr_trace=trace.indices.fill_null(-1).to_numpy().astype(np.int32) if n else np.zeros(0, np.int32),
        tx_hash=tx_hash, addr_words=addr_words, trace_paths=trace.dictionary.to_pylist() if n else [])


def load_eth_graph(ws: Workspace, use_cache: bool = True) -> EthGraph:
    """The graph of the current commit: memory-mapped from the on-disk cache, else built and cached."""
    store = ws.require_chain("eth")
    commit = store.manifest["commit"]
    hit = load_arrays(ws, "eth", FORMAT, commit, _ARRAYS) if use_cache else None
    if hit is not None:
        arrays, done = hit
        meta = json.loads(done)
        return EthGraph(commit=commit, network=meta["network"], n_addresses=meta["n_addresses"],
                        n_assets=meta["n_assets"], blk_height0=meta["blk_height0"],
                        big_values={int(k): int(v) for k, v in meta["big_values"].items()},
                        trace_paths=meta["trace_paths"], **arrays)
    g = build_eth_graph(ws)
    if use_cache:
        save_arrays(ws, "eth", FORMAT, commit, {n: getattr(g, n) for n in _ARRAYS}, json.dumps({
            "network": g.network, "n_addresses": g.n_addresses, "n_assets": g.n_assets,
            "blk_height0": g.blk_height0, "big_values": {str(k): str(v) for k, v in g.big_values.items()},
            "trace_paths": g.trace_paths}))
    return g


def address_ids(ws: Workspace, addresses: list[str]) -> dict[str, int]:
    """Dense ids of the given addresses (lower-cased; those present in the store)."""
    if not addresses:
        return {}
    store = ws.require_chain("eth")
    t = store.read("addresses", ["address_id", "address"])
    q = pa.array([a.lower() for a in addresses], pa.string())
    sel = t.filter(pc.is_in(t["address"], value_set=q))
    return dict(zip(sel["address"].to_pylist(), sel["address_id"].to_pylist()))


def address_strings(ws: Workspace, ids) -> dict[int, str]:
    ids = sorted({int(i) for i in ids if int(i) >= 0})
    if not ids:
        return {}
    t = ws.require_chain("eth").read("addresses", ["address_id", "address"])
    sel = t.filter(pc.is_in(t["address_id"], value_set=pa.array(ids, pa.int64())))
    return dict(zip(sel["address_id"].to_pylist(), sel["address"].to_pylist()))
