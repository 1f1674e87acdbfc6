"""Ethereum transfer graph as flat arrays indexed by dense ids, cached on disk (like :mod:`chaintrace.graph.btc`).

Every value movement of the store (top-level, internal and token transfers, gas fees, issuance) is one entry
``k`` of the transfer arrays, in chronological order (transfer ids). Amounts are exact 128-bit integers split
in two uint64 limbs (``tr_lo``, ``tr_hi``); amounts of 10**38 and more (``value_big``) are flagged in
``tr_big`` and their exact values are kept in :attr:`EthGraph.big_values`.

A *holding* is one (account, asset) pair: ``tr_from_h``/``tr_to_h`` are dense holding ids (-1: the protocol
side of issuance and burned fees), so per-balance state in the trace kernels is a flat array. Transactions
are CSR ranges into the transfers (``tx_tr[t]:tx_tr[t+1]``; block-level issuance lies outside every range).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from chaintrace.chains.eth import u128 as U
from chaintrace.store.workspace import Workspace

FORMAT = 1
KINDS = ("fee_burn", "fee_tip", "call", "create", "internal", "selfdestruct", "token", "wrap", "unwrap",
         "withdrawal", "reward", "genesis")
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
FEE_KINDS = (KIND_CODE["fee_burn"], KIND_CODE["fee_tip"])


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


_ARRAYS = [f.name for f in fields(EthGraph)
           if f.name not in ("commit", "network", "n_addresses", "n_assets", "blk_height0", "big_values")]


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
    tr = store.read("transfers", ["from_id", "to_id", "asset_id", "value", "value_big", "kind", "tx_id", "height"])
    tx = store.read("transactions", ["from_id", "height", "first_transfer_id", "n_transfers"])
    blk = store.read("blocks", ["height", "time"])
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
    return EthGraph(
        commit=store.manifest["commit"], network=store.meta.get("network", "unknown"),
        n_addresses=store.row_count("addresses"), n_assets=n_assets,
        tr_from=fr, tr_to=to, tr_asset=asset, tr_lo=lo, tr_hi=hi, tr_big=big, tr_kind=kind,
        tr_tx=tr["tx_id"].fill_null(-1).to_numpy().astype(np.int64),
        tr_height=tr["height"].to_numpy().astype(np.int64), tr_from_h=fh, tr_to_h=th,
        hold_account=hacct, hold_asset=hasset, tx_tr=tx_tr,
        tx_from=tx["from_id"].to_numpy().astype(np.int64), tx_height=tx["height"].to_numpy().astype(np.int64),
        blk_height0=int(heights[0]) if len(heights) else 0, blk_time=blk["time"].to_numpy().astype(np.int64),
        big_values=big_values)


def _cache_dir(ws: Workspace) -> Path:
    return ws.path / "eth" / "cache"


def load_eth_graph(ws: Workspace, use_cache: bool = True) -> EthGraph:
    """The graph of the current commit: memory-mapped from the on-disk cache, else built and cached."""
    store = ws.require_chain("eth")
    commit = store.manifest["commit"]
    cdir = _cache_dir(ws) / f"graph-v{FORMAT}-c{commit:06d}"
    if use_cache and (cdir / "DONE").exists():
        meta = json.loads((cdir / "DONE").read_text())
        # plain ndarray views of the maps: element access from Python skips np.memmap's slow __getitem__
        arrays = {n: np.load(cdir / f"{n}.npy", mmap_mode="r").view(np.ndarray) for n in _ARRAYS}
        return EthGraph(commit=commit, network=meta["network"], n_addresses=meta["n_addresses"],
                        n_assets=meta["n_assets"], blk_height0=meta["blk_height0"],
                        big_values={int(k): int(v) for k, v in meta["big_values"].items()}, **arrays)
    g = build_eth_graph(ws)
    if use_cache:
        tmp = cdir.with_name(cdir.name + f".tmp{time.time_ns()}")
        tmp.mkdir(parents=True)
        for n in _ARRAYS:
            np.save(tmp / f"{n}.npy", getattr(g, n))
        (tmp / "DONE").write_text(json.dumps({
            "network": g.network, "n_addresses": g.n_addresses, "n_assets": g.n_assets,
            "blk_height0": g.blk_height0, "big_values": {str(k): str(v) for k, v in g.big_values.items()}}))
        for old in _cache_dir(ws).glob("graph-*"):
            if old != tmp:
                shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(cdir)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    return g


def address_ids(ws: Workspace, addresses: list[str]) -> dict[str, int]:
    """Dense ids of the given addresses (lower-cased; those present in the store)."""
    if not addresses:
        return {}
    import pyarrow as pa

    store = ws.require_chain("eth")
    t = store.read("addresses", ["address_id", "address"])
    q = pa.array([a.lower() for a in addresses], pa.string())
    sel = t.filter(pc.is_in(t["address"], value_set=q))
    return dict(zip(sel["address"].to_pylist(), sel["address_id"].to_pylist()))


def address_strings(ws: Workspace, ids) -> dict[int, str]:
    import pyarrow as pa

    ids = sorted({int(i) for i in ids if int(i) >= 0})
    if not ids:
        return {}
    t = ws.require_chain("eth").read("addresses", ["address_id", "address"])
    sel = t.filter(pc.is_in(t["address_id"], value_set=pa.array(ids, pa.int64())))
    return dict(zip(sel["address_id"].to_pylist(), sel["address"].to_pylist()))
