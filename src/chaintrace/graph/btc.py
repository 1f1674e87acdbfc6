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
import pyarrow as pa

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
    from chaintrace.model.scripts import SCRIPT_TYPES

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


# ---------------------------------------------------------------- ids <-> strings, at the edge of the graph


def _scan(ws: Workspace, table: str):
    """An in-memory DuckDB connection with one view, `table`, over the store's segments of it."""
    import duckdb

    from chaintrace.errors import UserError

    files = [str(f) for f in ws.require_chain("btc").files(table)]
    con = duckdb.connect(":memory:")
    if not files:
        raise UserError(f"the btc store in {ws.path} has no {table}")
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({files!r})")
    return con


def _by_ids(ws: Workspace, table: str, key: str, value: str, ids) -> dict:
    ids = np.unique(np.asarray([int(i) for i in ids if i is not None and int(i) >= 0], np.int64))
    if not len(ids):
        return {}
    con = _scan(ws, table)
    con.register("q_ids", pa.table({key: ids}))
    return dict(con.execute(f"""SELECT t.{key}, t.{value} FROM {table} t JOIN q_ids USING ({key})
                                WHERE t.{key} BETWEEN {int(ids[0])} AND {int(ids[-1])}""").fetchall())


def _by_strings(ws: Workspace, table: str, key: str, value: str, strings) -> dict:
    strings = sorted(set(strings))
    if not strings:
        return {}
    con = _scan(ws, table)
    con.register("q_str", pa.table({key: pa.array(strings, pa.string())}))
    return dict(con.execute(f"SELECT t.{key}, t.{value} FROM {table} t JOIN q_str USING ({key})").fetchall())


def address_ids(ws: Workspace, addresses) -> dict[str, int]:
    """Dense ids of the given addresses (those present in the store)."""
    return _by_strings(ws, "addresses", "address", "address_id", addresses)


def address_strings(ws: Workspace, ids) -> dict[int, str]:
    """Address strings of dense address ids (negative ids and None ignored)."""
    return _by_ids(ws, "addresses", "address_id", "address", ids)


def tx_ids(ws: Workspace, txids) -> dict[str, int]:
    """Dense transaction ids of txids (hex, any case; those in the store), keyed by the lower-case txid."""
    return _by_strings(ws, "transactions", "txid", "tx_id", [t.lower() for t in txids])


def txids(ws: Workspace, ids) -> dict[int, str]:
    """txid strings of dense transaction ids."""
    return _by_ids(ws, "transactions", "tx_id", "txid", ids)
