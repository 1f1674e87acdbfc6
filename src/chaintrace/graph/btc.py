"""Bitcoin transaction graph as flat arrays indexed by dense ids (BlockSci style), cached on disk.

:func:`load_btc_graph` reads the store's columns once, derives the spender of every output, and saves the
arrays as ``.npy`` files under ``DATA/btc/cache/graph-v<format>-c<commit>/`` (:mod:`chaintrace.graph.cache`);
later loads memory-map them (a new commit invalidates the cache). Everything downstream (tracing, clustering, detectors) takes a
:class:`BtcGraph` and works on its arrays; no per-transaction Python objects.

CSR layout: the outputs of transaction ``t`` are ``tx_out[t]:tx_out[t+1]`` (output ids), its inputs
``tx_in[t]:tx_in[t+1]`` (input ids). Output ``o`` belongs to ``out_tx[o]`` and is spent by input
``out_spender_in[o]`` of transaction ``out_spender_tx[o]`` (-1: unspent). Input ``i`` spends output
``in_output[i]`` (-1: coinbase, or an output outside the store).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numba as nb
import numpy as np
import pyarrow.compute as pc

from chaintrace.graph.cache import load_arrays, save_arrays
from chaintrace.store.workspace import Workspace

FORMAT = 1


@dataclass
class BtcGraph:
    commit: int
    network: str
    tx_height: np.ndarray  # int64[n_tx]
    tx_time: np.ndarray  # int64[n_tx]
    tx_index: np.ndarray  # int32[n_tx] position in block
    tx_coinbase: np.ndarray  # bool[n_tx]
    tx_fee: np.ndarray  # int64[n_tx], -1 when unknown (inputs outside the store)
    tx_locktime: np.ndarray  # int64[n_tx]
    tx_version: np.ndarray  # int64[n_tx]
    tx_out: np.ndarray  # int64[n_tx+1] CSR into outputs
    tx_in: np.ndarray  # int64[n_tx+1] CSR into inputs
    out_value: np.ndarray  # int64[n_out]
    out_addr: np.ndarray  # int64[n_out], -1 for no address
    out_type: np.ndarray  # int8[n_out], script type code (chaintrace.chains.btc.script.SCRIPT_TYPES)
    out_tx: np.ndarray  # int64[n_out]
    out_spender_tx: np.ndarray  # int64[n_out], -1 unspent
    out_spender_in: np.ndarray  # int64[n_out], -1 unspent
    in_output: np.ndarray  # int64[n_in], -1 coinbase / outside the store
    in_tx: np.ndarray  # int64[n_in]
    in_sequence: np.ndarray  # int64[n_in]
    n_addresses: int

    @property
    def n_tx(self) -> int:
        return len(self.tx_height)

    @property
    def n_out(self) -> int:
        return len(self.out_value)

    @property
    def n_in(self) -> int:
        return len(self.in_output)

    def outputs_of(self, t: int) -> range:
        return range(int(self.tx_out[t]), int(self.tx_out[t + 1]))

    def inputs_of(self, t: int) -> range:
        return range(int(self.tx_in[t]), int(self.tx_in[t + 1]))


_ARRAYS = [f.name for f in fields(BtcGraph) if f.name not in ("commit", "network", "n_addresses")]


@nb.njit(cache=True)
def _spenders(in_output, in_tx, n_out, sp_tx, sp_in):
    for i in range(in_output.shape[0]):
        o = in_output[i]
        if o >= 0:
            sp_tx[o] = in_tx[i]
            sp_in[o] = i


def _csr(first: np.ndarray, count: np.ndarray, total: int) -> np.ndarray:
    out = np.empty(len(first) + 1, np.int64)
    out[:-1] = first
    out[-1] = total
    if len(first) and not np.array_equal(out[1:-1], first[:-1] + count[:-1]):
        raise ValueError("store transactions are not contiguous in output/input ids")
    return out


def build_btc_graph(ws: Workspace) -> BtcGraph:
    """Build the arrays from the store (no cache)."""
    from chaintrace.chains.btc.script import SCRIPT_TYPES

    store = ws.require_chain("btc")
    tx = store.read("transactions", ["height", "time", "tx_index", "is_coinbase", "fee", "locktime", "version",
                                     "first_output_id", "n_outputs", "first_input_id", "n_inputs"])
    out = store.read("outputs", ["value", "address_id", "script_type", "tx_id"])
    inp = store.read("inputs", ["spent_output_id", "tx_id", "sequence"])
    n_out, n_in = len(out), len(inp)
    codes = {name: i for i, name in enumerate(SCRIPT_TYPES)}
    st = out["script_type"].combine_chunks() if len(out) else None
    if st is not None:
        d = st.dictionary_encode()
        lut = np.array([codes[x] for x in d.dictionary.to_pylist()], np.int8)
        out_type = lut[d.indices.to_numpy()]
    else:
        out_type = np.zeros(0, np.int8)
    in_output = inp["spent_output_id"].fill_null(-1).to_numpy().astype(np.int64)
    in_tx = inp["tx_id"].to_numpy().astype(np.int64)
    sp_tx = np.full(n_out, -1, np.int64)
    sp_in = np.full(n_out, -1, np.int64)
    _spenders(in_output, in_tx, n_out, sp_tx, sp_in)
    return BtcGraph(
        commit=store.manifest["commit"],
        network=store.meta.get("network", "main"),
        tx_height=tx["height"].to_numpy().astype(np.int64),
        tx_time=tx["time"].to_numpy().astype(np.int64),
        tx_index=tx["tx_index"].to_numpy().astype(np.int32),
        tx_coinbase=tx["is_coinbase"].to_numpy(zero_copy_only=False).astype(np.bool_),
        tx_fee=tx["fee"].fill_null(-1).to_numpy().astype(np.int64),
        tx_locktime=tx["locktime"].to_numpy().astype(np.int64),
        tx_version=tx["version"].to_numpy().astype(np.int64),
        tx_out=_csr(tx["first_output_id"].to_numpy(), tx["n_outputs"].to_numpy(), n_out),
        tx_in=_csr(tx["first_input_id"].to_numpy(), tx["n_inputs"].to_numpy(), n_in),
        out_value=out["value"].to_numpy().astype(np.int64),
        out_addr=out["address_id"].fill_null(-1).to_numpy().astype(np.int64),
        out_type=out_type,
        out_tx=out["tx_id"].to_numpy().astype(np.int64),
        out_spender_tx=sp_tx,
        out_spender_in=sp_in,
        in_output=in_output,
        in_tx=in_tx,
        in_sequence=inp["sequence"].to_numpy().astype(np.int64),
        n_addresses=store.row_count("addresses"),
    )


def load_btc_graph(ws: Workspace, use_cache: bool = True) -> BtcGraph:
    """The graph of the current commit: from the on-disk cache if present, else built and cached."""
    store = ws.require_chain("btc")
    commit = store.manifest["commit"]
    hit = load_arrays(ws, "btc", FORMAT, commit, _ARRAYS) if use_cache else None
    if hit is not None:
        arrays, done = hit
        network, n_addresses = done.split()[:2]
        return BtcGraph(commit=commit, network=network, n_addresses=int(n_addresses), **arrays)
    g = build_btc_graph(ws)
    if use_cache:
        save_arrays(ws, "btc", FORMAT, commit, {n: getattr(g, n) for n in _ARRAYS}, f"{g.network} {g.n_addresses}\n")
    return g


def address_ids(ws: Workspace, addresses: list[str]) -> dict[str, int]:
    """Dense ids of the given addresses (those present in the store)."""
    if not addresses:
        return {}
    con = ws.connect()
    con.execute("CREATE TEMP TABLE q(address VARCHAR)")
    con.executemany("INSERT INTO q VALUES (?)", [(a,) for a in addresses])
    rows = con.execute("SELECT a.address, a.address_id FROM btc.addresses a JOIN q USING (address)").fetchall()
    return dict(rows)


def address_strings(ws: Workspace, ids) -> dict[int, str]:
    """Address strings of the given dense ids."""
    ids = sorted({int(i) for i in ids if int(i) >= 0})
    if not ids:
        return {}
    store = ws.require_chain("btc")
    t = store.read("addresses", ["address_id", "address"])
    sel = t.filter(pc.is_in(t["address_id"], value_set=__import__("pyarrow").array(ids, type=t["address_id"].type)))
    return dict(zip(sel["address_id"].to_pylist(), sel["address"].to_pylist()))
