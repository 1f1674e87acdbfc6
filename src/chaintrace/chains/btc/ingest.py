"""Bitcoin ingestion into the store: batches of blocks -> Arrow tables -> one atomic commit per batch.

The ingestor keeps a spend index (txid -> tx id, per-output value/address/spent) so every input is linked
to the output it spends while the batch is built; blocks arrive in chain order (the block-file planner or
the RPC source guarantee it) and a block that does not extend the tip first rolls the store back to its
parent. Each batch is validated completely (structure, merkle roots, spends, value balance) before its
commit, so a store only ever holds whole, linked blocks.
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

from chaintrace.chains.btc import script as S
from chaintrace.chains.btc.blockfile import BlockFileError, header_work
from chaintrace.chains.btc.pow import PARAMS as POW_PARAMS, RULES as POW_RULES, check_target, required_bits
from chaintrace.chains.btc.parse import ParseError, hash_transactions, merkle_root, parse_blocks
from chaintrace.chains.btc.columns import AddressMap, address_column, binary_column, hex_column, string_codes
from chaintrace.chains.btc.utxo import SpendIndex, gather32, txid_strings_to_internal
from chaintrace.model.encoding import hash160
from chaintrace.model.networks import BtcNetwork, network as get_network
from chaintrace.errors import UserError
from chaintrace.progress import NULL, Progress
from chaintrace.store.ingestor import ChainIngestor
from chaintrace.store.schema import btc as schema
from chaintrace.store.segments import StoreError
from chaintrace.store.workspace import Workspace

MAX_MONEY = 21_000_000 * 100_000_000
COINBASE_PREV = b"\0" * 32
BATCH_BYTES = 32 << 20


@dataclass
class IngestReport:
    """What an ingest run did."""

    chain: str = "btc"
    network: str = ""
    blocks: int = 0
    transactions: int = 0
    inputs: int = 0
    outputs: int = 0
    new_addresses: int = 0
    bytes: int = 0
    commits: int = 0
    seconds: float = 0.0
    tip_height: int | None = None
    tip_hash: str | None = None
    rolled_back_to: int | None = None
    orphans: list[str] = field(default_factory=list)
    already_stored: int = 0
    unresolved_inputs: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Pending:
    height: int
    raw: bytes
    source: str
    offset: int



def _blocks_table(pending, p, heights, times, lens, starts, blk_of_tx, stripped, n_tx_before: int) -> pa.Table:
    """The ``blocks`` rows of a parsed batch (header fields, sizes and weights)."""
    hdr = [q.raw[:80] for q in pending]
    blk_stripped = np.zeros(len(pending), np.int64)
    np.add.at(blk_stripped, blk_of_tx, stripped)
    hdr_len = (p.tx_start[p.blk_tx0] - starts)  # header + tx-count varint
    return pa.table({
        "height": heights,
        "hash": [hashlib.sha256(hashlib.sha256(h).digest()).digest()[::-1].hex() for h in hdr],
        "prev_hash": [h[4:36][::-1].hex() for h in hdr],
        "merkle_root": [h[36:68][::-1].hex() for h in hdr],
        "time": times,
        "version": [int.from_bytes(h[0:4], "little", signed=True) for h in hdr],
        "bits": [int.from_bytes(h[72:76], "little") for h in hdr],
        "nonce": [int.from_bytes(h[76:80], "little") for h in hdr],
        "n_tx": p.blk_ntx.astype(np.int32), "size": lens, "stripped_size": hdr_len + blk_stripped,
        "weight": (hdr_len + blk_stripped) * 3 + lens,
        "first_tx_id": n_tx_before + p.blk_tx0,
    }, schema=schema.BLOCKS)


class BtcIngestor(ChainIngestor):
    """Append blocks to a workspace's Bitcoin store (use as a context manager; it holds the write lock).
    Blocks are queued by :meth:`add_block` and committed by :meth:`flush` every `batch_bytes`."""

    chain = "btc"

    def __init__(self, workspace: Workspace, network: str | None = None, batch_bytes: int = BATCH_BYTES,
                 progress: Progress = NULL, pow_rules: str = "network"):
        super().__init__(workspace, progress)
        if pow_rules not in POW_RULES:
            raise UserError(f"proof-of-work rules {pow_rules!r}: choose {' or '.join(POW_RULES)}")
        self.pow_rules = pow_rules
        self.requested_network = network
        self.batch_bytes = batch_bytes
        self.report = IngestReport()
        self._pending: list[_Pending] = []
        self._pending_bytes = 0

    def set_network(self, net: BtcNetwork | None) -> None:
        """Fix the network (from blk magic, the RPC node or --network); it must match the store's."""
        stored = self.store.meta.get("network")
        name = net.name if net else (self.requested_network and get_network(self.requested_network).name)
        if self.requested_network and net and get_network(self.requested_network).name != net.name:
            raise StoreError(f"--network {self.requested_network} contradicts the input, which is {net.name}")
        name = name or stored or "main"
        if stored and stored != name:
            raise StoreError(f"the store holds {stored} blocks; refusing to add {name} blocks")
        self.net = get_network(name)
        self.report.network = name

    def _load(self) -> None:
        st = self.store
        blocks = st.read("blocks", ["height", "hash", "bits", "time"])
        self.start_height = blocks["height"][0].as_py() if len(blocks) else None
        self.hashes: list[bytes] = [bytes.fromhex(h)[::-1] for h in blocks["hash"].to_pylist()]
        self.height_of = {h: i + (self.start_height or 0) for i, h in enumerate(self.hashes)}
        self.cumwork: list[int] = []
        acc = 0
        self.bits_hist: list[int] = blocks["bits"].to_pylist()  # per stored height, for the difficulty rules
        self.time_hist: list[int] = blocks["time"].to_pylist()
        self._pow_memo: dict[int, int] = {}  # min-difficulty walk per height (cleared with every reload)
        for b in self.bits_hist:
            acc += header_work(b)
            self.cumwork.append(acc)
        txs = st.read("transactions", ["txid", "first_output_id", "n_outputs"])
        outs = st.read("outputs", ["value", "address_id"])
        ins = st.read("inputs", ["spent_output_id"])
        self.idx = SpendIndex()
        self.idx.add_transactions(txid_strings_to_internal(txs["txid"]),
                                  txs["first_output_id"].to_numpy(), txs["n_outputs"].to_numpy())
        self.idx.add_outputs(outs["value"].to_numpy(),
                             outs["address_id"].fill_null(-1).to_numpy())
        spent = ins["spent_output_id"].drop_null().to_numpy()
        self.idx.mark_spent(spent)
        addr = st.read("addresses", ["script"])
        self.amap = AddressMap.from_scripts(addr["script"])
        self.n_tx = len(txs)
        self.n_out = len(outs)
        self.n_in = len(ins)
        self.n_addr = self.amap.n
        self.net = get_network(st.meta["network"]) if st.meta.get("network") else None
        self.stored_pow_rules = st.meta.get("pow_rules")
        if self.net:
            self.report.network = self.net.name

    def hash_text(self, h: bytes) -> str:
        return h[::-1].hex()  # hashes are kept in internal byte order

    # ------------------------------------------------------------------ adding blocks

    def add_block(self, height: int, raw: bytes, source: str = "", offset: int = 0) -> None:
        """Queue a block at `height`; it must extend the tip (after :meth:`rollback` if needed) and pass the
        proof-of-work checks (:mod:`chaintrace.chains.btc.pow`)."""
        if self.net is None:
            self.set_network(None)
        if len(raw) < 81:
            raise BlockFileError(source, offset, "block shorter than a header")
        prev = raw[4:36]
        h = hashlib.sha256(hashlib.sha256(raw[:80]).digest()).digest()
        if self.tip_height is not None:
            if height != self.tip_height + 1 or prev != self.tip_hash:
                raise StoreError(f"block at height {height} ({h[::-1].hex()}) does not extend the tip {self.tip_height}")
        bits, time = int.from_bytes(raw[72:76], "little"), int.from_bytes(raw[68:72], "little")
        self.check_pow(height, h, bits, time, source, offset, self._bits_at, self._time_at, self._pow_memo)
        if self.start_height is None:
            self.start_height = height
        self._pending.append(_Pending(height, raw, source, offset))
        self.hashes.append(h)
        self.bits_hist.append(bits)
        self.time_hist.append(time)
        self.height_of[h] = height
        self.cumwork.append((self.cumwork[-1] if self.cumwork else 0) + header_work(bits))
        self._pending_bytes += len(raw)
        self.progress.advance(len(raw), height=height)
        if self._pending_bytes >= self.batch_bytes:
            self.flush()

    # ------------------------------------------------------------------ proof of work

    def _bits_at(self, height: int) -> int | None:
        i = height - (self.start_height if self.start_height is not None else height + 1)
        if 0 <= i < len(self.bits_hist):
            return self.bits_hist[i]
        return POW_PARAMS[self.net.name].genesis_bits if height == 0 and self.net.name in POW_PARAMS else None

    def _time_at(self, height: int) -> int | None:
        i = height - (self.start_height if self.start_height is not None else height + 1)
        if 0 <= i < len(self.time_hist):
            return self.time_hist[i]
        return POW_PARAMS[self.net.name].genesis_time if height == 0 and self.net.name in POW_PARAMS else None

    def check_pow(self, height: int, block_hash: bytes, bits: int, time: int, source: str, offset: int,
                  bits_at, time_at, memo: dict[int, int] | None = None) -> None:
        """Raise :class:`BlockFileError` (naming `source`, `offset` and the block hash) when the header fails
        its own target or, under the network rules, the network's limit or difficulty transition."""
        params = POW_PARAMS.get(self.net.name) if self.pow_rules == "network" else None
        why = check_target(block_hash, bits, params.pow_limit if params else None)
        if why is None and params is not None:
            need = required_bits(height, time, params, bits_at, time_at, memo)
            if need is not None and need != bits:
                why = f"bits {bits:08x} differ from the {need:08x} the {self.net.name} difficulty rules require"
        if why is None:
            return
        hint = ""
        if params is not None and self.net.name != "regtest" and bits == 0x207FFFFF:
            hint = (" (a chain simulated at regtest difficulty under this network's magic? ingest it with "
                    "--pow-rules target-only)")
        raise BlockFileError(source, offset, f"block {block_hash[::-1].hex()} at height {height}: {why}{hint}")

    def check_headers(self, headers, fork_height: int | None = None) -> None:
        """Check the proof of work of a planned chain before anything of it is queued: `headers` are
        (height, hash, bits, time, source, offset) in chain order, on top of the stored chain up to
        `fork_height` (default: the tip)."""
        if self.net is None:
            self.set_network(None)
        top = self.tip_height if fork_height is None else fork_height
        new_bits: dict[int, int] = {}
        new_time: dict[int, int] = {}
        memo: dict[int, int] = {}

        def bits_at(x: int) -> int | None:
            return new_bits[x] if x in new_bits else (self._bits_at(x) if top is None or x <= top else None)

        def time_at(x: int) -> int | None:
            return new_time[x] if x in new_time else (self._time_at(x) if top is None or x <= top else None)

        for height, h, bits, time, source, offset in headers:
            self.check_pow(height, h, bits, time, source, offset, bits_at, time_at, memo)
            new_bits[height], new_time[height] = bits, time

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        try:
            rows, stats = self._build(pending)
        except BaseException:
            # the in-memory index may hold part of this batch; this batch was not committed, so reload state
            # (after the previous batch's commit, which may still be in flight)
            self._wait_quietly()
            self._load()
            raise
        tip = {"height": pending[-1].height, "hash": hashlib.sha256(hashlib.sha256(
            pending[-1].raw[:80]).digest()).digest()[::-1].hex()}
        # written in a background thread while the next batch is parsed (commits stay one at a time, in order)
        rules = "target-only" if "target-only" in (self.pow_rules, self.stored_pow_rules) else "network"
        self.commit(rows, tip, background=True, meta={"network": self.net.name, "pow_rules": rules})
        r = self.report
        r.blocks += len(pending)
        r.transactions += stats["tx"]
        r.inputs += stats["in"]
        r.outputs += stats["out"]
        r.new_addresses += stats["addr"]
        r.unresolved_inputs += stats["unresolved"]
        r.bytes += sum(len(p.raw) for p in pending)

    # ------------------------------------------------------------------ batch -> tables

    def _where(self, pending: list[_Pending], starts: np.ndarray, pos: int) -> tuple[str, int]:
        b = int(np.searchsorted(starts, pos, side="right") - 1)
        return pending[b].source, pending[b].offset + (pos - int(starts[b]))

    def _check_shape(self, pending: list[_Pending], buf, p, starts):
        """Merkle roots, coinbase shape and output value ranges of a parsed batch (BlockFileError naming
        file and offset). Returns (block of each tx, index in its block, is coinbase, tx of each input,
        previous txid words, input of a coinbase)."""
        nblk, ntx = len(pending), p.n_tx
        for b in range(nblk):
            t0, k = int(p.blk_tx0[b]), int(p.blk_ntx[b])
            if merkle_root(p.txid[t0:t0 + k]) != pending[b].raw[36:68]:
                raise BlockFileError(pending[b].source, pending[b].offset + 36,
                                     f"merkle root mismatch in block at height {pending[b].height}")
        blk_of_tx = np.repeat(np.arange(nblk), p.blk_ntx)
        tx_index = np.arange(ntx) - p.blk_tx0[blk_of_tx]
        is_cb = tx_index == 0
        in_tx = np.repeat(np.arange(ntx), p.tx_nin)
        prev = gather32(buf, p.in_prev)
        prev_null = ~prev.any(axis=1)
        cb_in = is_cb[in_tx]
        cb_shape = prev_null & (p.in_vout == 0xFFFFFFFF)
        bad = np.flatnonzero(cb_in != cb_shape)
        if len(bad):
            i = int(bad[0])
            src, off = self._where(pending, starts, int(p.in_prev[i]))
            what = "coinbase input expected" if cb_in[i] else "coinbase-shaped input outside a coinbase"
            raise BlockFileError(src, off, what)
        if np.any(p.tx_nin[is_cb] != 1):
            src, off = self._where(pending, starts, int(p.tx_start[np.flatnonzero(is_cb & (p.tx_nin != 1))[0]]))
            raise BlockFileError(src, off, "coinbase must have exactly one input")
        badv = np.flatnonzero((p.out_value < 0) | (p.out_value > MAX_MONEY))
        if len(badv):
            src, off = self._where(pending, starts, int(p.out_soff[badv[0]]) - 9)
            raise BlockFileError(src, off, f"output value {int(p.out_value[badv[0]])} out of range")
        return blk_of_tx, tx_index, is_cb, in_tx, prev, cb_in

    def _build(self, pending: list[_Pending]) -> tuple[dict[str, pa.Table], dict]:
        raw = b"".join(p.raw for p in pending)
        buf = np.frombuffer(raw, np.uint8)
        lens = np.array([len(p.raw) for p in pending], np.int64)
        ends = np.cumsum(lens)
        starts = ends - lens
        try:
            p = parse_blocks(buf, starts, ends)
        except ParseError as e:
            src, off = self._where(pending, starts, e.offset)
            raise BlockFileError(src, off, e.message) from None
        hash_transactions(p)
        ntx, nin, nout = p.n_tx, len(p.in_vout), len(p.out_value)

        blk_of_tx, tx_index, is_cb, in_tx, prev, cb_in = self._check_shape(pending, buf, p, starts)

        heights = np.array([q.height for q in pending], np.int64)
        tx_height = heights[blk_of_tx]
        tx_ids = self.n_tx + np.arange(ntx, dtype=np.int64)
        out_ids = self.n_out + np.arange(nout, dtype=np.int64)
        in_ids = self.n_in + np.arange(nin, dtype=np.int64)
        out_tx = np.repeat(np.arange(ntx), p.tx_nout)

        # addresses: one canonical script per output (a P2PK output pays the P2PKH script of its key), looked
        # up in the numba address map; new addresses are encoded as a column
        typ, poff, plen, wver = S.classify(buf, p.out_soff, p.out_slen)
        has = np.flatnonzero((typ != S.NONSTANDARD) & (typ != S.NULLDATA))
        koff, klen = p.out_soff[has].copy(), p.out_slen[has].copy()
        atype, aoff, alen, awver = typ[has].copy(), poff[has].copy(), plen[has].copy(), wver[has]
        keybuf = buf
        pk = np.flatnonzero(atype == S.P2PK)
        if len(pk):
            extra = b"".join(b"\x76\xa9\x14" + hash160(raw[o:o + n]) + b"\x88\xac"
                             for o, n in zip(aoff[pk].tolist(), alen[pk].tolist()))
            keybuf = np.concatenate([buf, np.frombuffer(extra, np.uint8)])
            base = len(buf) + 25 * np.arange(len(pk), dtype=np.int64)
            koff[pk], klen[pk] = base, 25
            atype[pk], aoff[pk], alen[pk] = S.P2PKH, base + 3, 20
        ids, first_new = self.amap.assign(keybuf, koff, klen)
        addr_id = np.full(nout, -1, np.int64)
        addr_id[has] = ids
        new_at = np.flatnonzero(ids >= first_new)
        _uniq, pos = np.unique(ids[new_at], return_index=True)  # first occurrence of each new id, in id order
        sel = new_at[pos]
        ms = sel[atype[sel] == S.MULTISIG]
        new_addresses = (address_column(keybuf, atype[sel], aoff[sel], alen[sel], awver[sel], self.net,
                                        [raw[o:o + n] for o, n in zip(koff[ms].tolist(), klen[ms].tolist())]),
                         string_codes(atype[sel], S.SCRIPT_TYPES), self.amap.scripts_since(first_new),
                         tx_height[out_tx[has[sel]]])

        # spend index: register this batch, then resolve inputs
        txid_arr = np.frombuffer(b"".join(p.txid), np.uint8).reshape(ntx, 32)
        self.idx.add_transactions(txid_arr, self.n_out + p.tx_out0, p.tx_nout)
        self.idx.add_outputs(p.out_value, addr_id)
        q_rows = np.flatnonzero(~cb_in)
        tx_of = np.full(nin, -1, np.int64)
        if len(q_rows):
            tx_of[q_rows] = self.idx.lookup(prev, q_rows)
        err, at, spent_oid, in_value, in_addr = self.idx.resolve(tx_of, p.in_vout, tx_ids[in_tx])
        if err:
            src, off = self._where(pending, starts, int(p.in_prev[at]))
            msg = {1: "spends an output index its transaction does not have",
                   2: "spends an output that is already spent (double spend)",
                   3: "spends an output of its own or a later transaction"}[err]
            raise BlockFileError(src, off, f"input spending {prev[at][::-1].tobytes().hex()}:{int(p.in_vout[at])} {msg}")
        unresolved = (~cb_in) & (spent_oid < 0)

        # per-transaction input value (NULL if any input is outside the store), fee
        val0 = np.where(spent_oid >= 0, in_value, 0)
        in_sum = np.zeros(ntx, np.int64)
        np.add.at(in_sum, in_tx, val0)
        unres_tx = np.zeros(ntx, np.bool_)
        unres_tx[in_tx[unresolved]] = True
        out_sum = np.zeros(ntx, np.int64)
        np.add.at(out_sum, out_tx, p.out_value)
        in_sum[is_cb] = 0
        fee = in_sum - out_sum
        fee[is_cb] = 0
        neg = np.flatnonzero((fee < 0) & ~unres_tx & ~is_cb)
        if len(neg):
            t = int(neg[0])
            src, off = self._where(pending, starts, int(p.tx_start[t]))
            raise BlockFileError(src, off, f"transaction {p.txid[t][::-1].hex()} pays out more than it spends")
        null_in = pa.array(in_sum, mask=unres_tx)
        null_fee = pa.array(fee, mask=unres_tx)

        size = p.tx_end - p.tx_start
        stripped = np.where(p.tx_segwit, 8 + (p.tx_body1 - p.tx_body0), size)
        weight = stripped * 3 + size
        vsize = (weight + 3) // 4

        times = np.array([int.from_bytes(q.raw[68:72], "little") for q in pending], np.int64)
        wtxid_arr = np.frombuffer(b"".join(p.wtxid), np.uint8).reshape(ntx, 32)
        transactions = pa.table({
            "tx_id": tx_ids, "txid": hex_column(txid_arr), "wtxid": hex_column(wtxid_arr),
            "height": tx_height, "tx_index": tx_index.astype(np.int32), "time": times[blk_of_tx],
            "is_coinbase": is_cb, "version": p.tx_version, "locktime": p.tx_locktime,
            "size": size.astype(np.int32), "vsize": vsize.astype(np.int32), "weight": weight.astype(np.int32),
            "n_inputs": p.tx_nin.astype(np.int32), "n_outputs": p.tx_nout.astype(np.int32),
            "first_input_id": self.n_in + p.tx_in0, "first_output_id": self.n_out + p.tx_out0,
            "input_value": null_in, "output_value": out_sum, "fee": null_fee,
        }, schema=schema.TRANSACTIONS)

        out_n = np.arange(nout) - p.tx_out0[out_tx]
        outputs = pa.table({
            "output_id": out_ids, "tx_id": tx_ids[out_tx], "height": tx_height[out_tx],
            "n": out_n.astype(np.int32), "value": p.out_value, "script_type": string_codes(typ, S.SCRIPT_TYPES),
            "address_id": pa.array(addr_id, mask=addr_id < 0),
            "script": binary_column(buf, p.out_soff, p.out_slen),
        }, schema=schema.OUTPUTS)

        in_n = np.arange(nin) - p.tx_in0[in_tx]
        inputs = pa.table({
            "input_id": in_ids, "tx_id": tx_ids[in_tx], "height": tx_height[in_tx], "n": in_n.astype(np.int32),
            "prev_txid": hex_column(prev, valid=~cb_in),
            "prev_vout": pa.array(p.in_vout, mask=cb_in),
            "spent_output_id": pa.array(spent_oid, mask=spent_oid < 0),
            "value": pa.array(in_value, mask=spent_oid < 0),
            "address_id": pa.array(in_addr, mask=in_addr < 0),
            "sequence": p.in_seq,
        }, schema=schema.INPUTS)

        blocks = _blocks_table(pending, p, heights, times, lens, starts, blk_of_tx, stripped, self.n_tx)

        addresses = pa.table({
            "address_id": self.n_addr + np.arange(len(sel), dtype=np.int64),
            "address": new_addresses[0], "script_type": new_addresses[1], "script": new_addresses[2],
            "height": new_addresses[3],
        }, schema=schema.ADDRESSES)

        self.n_tx += ntx
        self.n_out += nout
        self.n_in += nin
        self.n_addr += len(sel)
        rows = {"blocks": blocks, "transactions": transactions, "outputs": outputs, "inputs": inputs,
                "addresses": addresses}
        stats = {"tx": ntx, "in": nin, "out": nout, "addr": len(sel),
                 "unresolved": int(unresolved.sum())}
        return rows, stats
