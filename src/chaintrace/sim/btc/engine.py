"""The Bitcoin simulator engine: live state, entities, block assembly and the streaming outputs.

One :class:`Engine` holds the live UTXO table and the economy's actors as flat arrays (see
:mod:`chaintrace.sim.btc.kernels`). A block is built by appending transactions to the block buffers (the
numba economy kernels for background activity; :meth:`Engine.emit` and :meth:`Engine.owner_pay` for the
scenario actors), then :meth:`Engine.end_block` serializes them, hashes txids, builds the coinbase (subsidy
plus fees, BIP-34 height, BIP-141 witness commitment), the merkle root and a header whose nonce is ground
until its hash meets the target, and appends the block to ``blk*.dat``. Outputs created in a block can be
spent from the next block on (coinbase outputs after 100 blocks), so every input spends an output that
exists and is unspent; the kernels free a slot when it is spent, so no output is spent twice.

Memory is bounded by live state (unspent outputs, users, exchanges), not by the chain: blocks are written as
they are made and the address log is streamed into ``addresses.parquet``.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from chaintrace.chains.btc import script as S
from chaintrace.chains.btc.parse import merkle_root
from chaintrace.model.networks import BtcNetwork
from chaintrace.model.tags import SERVICE_CATEGORIES
from chaintrace.sim.btc import econ as E
from chaintrace.sim.btc import kernels as K
from chaintrace.sim.tagpack import actor_id

MAX_BLOCKFILE = 128 << 20  # Bitcoin Core's MAX_BLOCKFILE_SIZE
REGTEST_BITS = 0x207FFFFF
REGTEST_TARGET = 0x7FFFFF << (8 * (0x20 - 3))
BLOCK_VERSION = 0x20000000
STYPE_NAMES = {K.P2PKH: "p2pkh", K.P2SH: "p2sh", K.P2WPKH: "p2wpkh", K.P2WSH: "p2wsh", K.P2TR: "p2tr"}
_sha = hashlib.sha256


def sha256d(b) -> bytes:
    return _sha(_sha(b).digest()).digest()


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def script_num(n: int) -> bytes:
    """A CScript push of integer n as Bitcoin Core writes it (``CScript() << n``)."""
    if n == 0:
        return b"\x00"
    if 1 <= n <= 16:
        return bytes([0x50 + n])
    body = bytearray()
    v = n
    while v:
        body.append(v & 0xFF)
        v >>= 8
    if body[-1] & 0x80:
        body.append(0)
    return bytes([len(body)]) + bytes(body)


def subsidy(height: int, halving: int) -> int:
    h = height // halving
    return 0 if h >= 64 else (50 * 100_000_000) >> h


@dataclass
class Entity:
    id: int
    kind: str  # user, exchange, mining_pool, mixer, coinjoin_coordinator, launderer
    name: str
    category: str  # GraphSense / DW-VA concept id
    extra: dict = field(default_factory=dict)

    @property
    def actor(self) -> str | None:
        """GraphSense actor id: every service has its own (from its name); the launderer's is the DPRK
        actor it stands for."""
        return self.extra.get("actor")

    def as_json(self) -> dict:
        d = {"id": self.id, "kind": self.kind, "name": self.name, "category": self.category}
        d.update(self.extra)
        return d


@dataclass
class TxRef:
    """A transaction made by a scenario actor: its row in the block being built, then its txid."""

    height: int
    row: int
    kind: int
    fee: int
    out_slots: list[int]  # by the caller's output index (-1: dropped as dust, or OP_RETURN)
    out_vout: list[int]
    out_value: list[int]
    out_addr: list[int]
    in_value: int = 0
    n_in: int = 0
    txid: str | None = None


def encode_addresses_arrow(ids: np.ndarray, stypes: np.ndarray, key: int, net: BtcNetwork) -> pa.StringArray:
    """Address strings of simulator address ids as an Arrow array (vectorised base58check / bech32 / bech32m,
    no Python object per address)."""
    from chaintrace.chains.btc.sha256 import sha256d_rows

    n = len(ids)
    ids = np.ascontiguousarray(ids, np.int64)
    stypes = np.ascontiguousarray(stypes, np.int64)
    progs = np.zeros((n, 40), np.uint8)
    K.programs(ids, stypes, np.uint64(key), progs)
    enc = np.zeros((n, 100), np.uint8)
    enc_len = np.zeros(n, np.int64)
    b58 = np.flatnonzero((stypes == K.P2PKH) | (stypes == K.P2SH))
    if len(b58):
        rows = np.empty((len(b58), 25), np.uint8)
        rows[:, 0] = np.where(stypes[b58] == K.P2PKH, net.p2pkh, net.p2sh)
        rows[:, 1:21] = progs[b58, :20]
        chk = np.empty((len(b58), 32), np.uint8)
        sha256d_rows(rows, 21, chk)
        rows[:, 21:] = chk[:, :4]
        e = np.empty((len(b58), 40), np.uint8)
        el = np.empty(len(b58), np.int64)
        S._b58_rows(rows, e, el, S._B58)
        enc[b58, :40] = e
        enc_len[b58] = el
    sw = np.flatnonzero((stypes == K.P2WPKH) | (stypes == K.P2WSH) | (stypes == K.P2TR))
    if len(sw):
        vers = np.where(stypes[sw] == K.P2TR, 1, 0).astype(np.int64)
        plen = np.where(stypes[sw] == K.P2WPKH, 20, 32).astype(np.int64)
        e = np.empty((len(sw), 100), np.uint8)
        el = np.empty(len(sw), np.int64)
        S._bech32_rows(np.frombuffer(net.hrp.encode(), np.uint8), vers, np.ascontiguousarray(progs[sw]), plen,
                       e, el, S._B32, S._GEN)
        enc[sw] = e
        enc_len[sw] = el
    if (enc_len == 0).any():
        raise ValueError("address of an unknown script type")
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(enc_len, out=offsets[1:])
    data = enc[np.arange(100)[None, :] < enc_len[:, None]]
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data.tobytes()))


def encode_addresses(ids, stypes, key: int, net: BtcNetwork) -> list[str]:
    """Address strings of simulator address ids (a Python list; see :func:`encode_addresses_arrow`)."""
    if len(ids) == 0:
        return []
    return encode_addresses_arrow(np.asarray(ids), np.asarray(stypes), key, net).to_pylist()


class BlkWriter:
    """Bitcoin Core block files: records of magic, little-endian length and block, 128 MiB per file."""

    def __init__(self, directory: Path, magic: bytes, max_bytes: int = MAX_BLOCKFILE):
        self.dir = directory
        self.magic = magic
        self.max_bytes = max_bytes
        self.index = -1
        self.fh = None
        self.size = 0
        self.paths: list[Path] = []
        self.bytes = 0

    def write(self, block: bytes) -> None:
        rec = 8 + len(block)
        if self.fh is None or (self.size + rec > self.max_bytes and self.size > 0):
            self._next()
        self.fh.write(self.magic + struct.pack("<I", len(block)))
        self.fh.write(block)
        self.size += rec
        self.bytes += rec

    def _next(self) -> None:
        self.close()
        self.index += 1
        p = self.dir / f"blk{self.index:05d}.dat"
        self.fh = open(p, "wb")
        self.paths.append(p)
        self.size = 0

    def close(self) -> None:
        if self.fh is not None:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            self.fh = None


class AddressSink:
    """Streams the address log into ``addresses.parquet`` (address, entity, role, script type, customer)
    and picks the deposit / mixer addresses an analyst's tag set would know (``tag_coverage``)."""

    SCHEMA = pa.schema([("address", pa.string()), ("address_id", pa.int64()), ("entity", pa.int64()),
                        ("role", pa.dictionary(pa.int32(), pa.string())),
                        ("script_type", pa.dictionary(pa.int32(), pa.string())), ("customer", pa.int64())])
    ROWS = 1 << 18

    def __init__(self, path: Path, key: int, net: BtcNetwork, tag_coverage: float, tag_key: int, on_tags):
        self.path = path
        self.key = key
        self.net = net
        self.cov = tag_coverage
        self.tag_key = tag_key
        self.on_tags = on_tags  # callback(list of (address, role, entity, customer))
        self.writer = pq.ParquetWriter(path, self.SCHEMA, compression="zstd",
                                       use_dictionary=["role", "script_type"])
        self.parts: list[pa.Table] = []
        self.pending = 0
        self.count = 0
        self.roles_arrow = pa.array(E.ROLES, pa.string())
        self.stype_arrow = pa.array(list(S.SCRIPT_TYPES), pa.string())  # unique names, index = type code

    def add(self, first_id: int, rows: np.ndarray) -> None:
        n = len(rows)
        if n == 0:
            return
        ids = np.arange(first_id, first_id + n, dtype=np.int64)
        addrs = encode_addresses_arrow(ids, rows[:, K.L_STYPE], self.key, self.net)
        role = rows[:, K.L_ROLE]
        t = pa.table({
            "address": addrs, "address_id": ids,
            "entity": rows[:, K.L_ENTITY].astype(np.int64), "role": pa.DictionaryArray.from_arrays(
                role.astype(np.int32), self.roles_arrow),
            "script_type": pa.DictionaryArray.from_arrays(rows[:, K.L_STYPE].astype(np.int32), self.stype_arrow),
            "customer": rows[:, K.L_AUX].astype(np.int64),
        }, schema=self.SCHEMA)
        self.parts.append(t)
        self.pending += n
        self.count += n
        if self.cov > 0:
            cand = np.flatnonzero((role == E.R_DEPOSIT) | (role == E.R_MIXER_DEPOSIT))
            if len(cand):
                u = tag_uniform(ids[cand], self.tag_key)
                pick = cand[u < self.cov]
                if len(pick):
                    picked = addrs.take(pa.array(pick)).to_pylist()
                    self.on_tags([(a, int(role[i]), int(rows[i, K.L_ENTITY]), int(rows[i, K.L_AUX]))
                                  for a, i in zip(picked, pick.tolist())])
        if self.pending >= self.ROWS:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.writer.write_table(pa.concat_tables(self.parts), row_group_size=1 << 20)
            self.parts = []
            self.pending = 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def tag_uniform(ids: np.ndarray, key: int) -> np.ndarray:
    """A deterministic uniform [0, 1) number per address id (decides which addresses are tagged)."""
    z = (ids.astype(np.uint64) ^ np.uint64(key)) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class Engine:
    """Live state of a simulated Bitcoin chain and the machinery to append blocks to it."""

    def __init__(self, out_dir: Path, *, seed: int, net: BtcNetwork, halving: int, start_time: int,
                 n_users: int, n_extra_customers: int, tag_coverage: float, on_tags):
        self.out_dir = out_dir
        self.seed = seed
        self.net = net
        self.halving = halving
        self.rng = np.random.default_rng([seed, 0xB7C])
        K.seed_rng(int(self.rng.integers(0, 2**31 - 1)))
        self.key = int(self.rng.integers(0, 2**63 - 1))
        self.time = start_time
        self.height = 0
        self.prev_hash = bytes.fromhex(net.genesis)[::-1]
        self.tip_hash = net.genesis
        self.n_tx = 0
        self.n_blocks = 0
        self.kind_counts = np.zeros(len(E.KINDS), np.int64)
        self.fees_total = 0
        self.subsidy_total = 0
        self.max_block_weight = 0
        # slots
        cap = 1 << 16
        self.SL = np.zeros((cap, K.S_COLS), np.int64)
        self.SLTX = np.zeros((cap, 32), np.uint8)
        self.SL[:, K.S_NEXT] = np.arange(1, cap + 1)
        self.SL[-1, K.S_NEXT] = -1
        self.SL[:, K.S_OWNER] = -1
        self.ST = np.zeros(K.ST_COLS, np.int64)
        self.ST[K.ST_FREE] = 0
        self.ST[K.ST_NFREE] = cap
        self.ST[K.ST_KEY] = np.int64(np.uint64(self.key).view(np.int64))
        self.OW = np.zeros((0, K.O_COLS), np.int64)
        self.AL = np.zeros((1 << 16, K.L_COLS), np.int64)
        self.TXB = np.zeros((1024, K.T_COLS), np.int64)
        self.INB = np.zeros((4096, K.I_COLS), np.int64)
        self.INTX = np.zeros((4096, 32), np.uint8)
        self.OUTB = np.zeros((4096, K.X_COLS), np.int64)
        self.CNT = np.zeros(3, np.int64)
        # entities: users are 0..n_users-1 (their owner ids too); services follow
        self.n_users = n_users
        self.entities: list[Entity] = []
        self.owner_entity: list[int] = []
        self._add_owners(n_users, list(range(n_users)))
        self.n_customers = n_users + n_extra_customers
        self.next_customer = n_users
        self.sink = AddressSink(out_dir / "addresses.parquet", self.key, net, tag_coverage,
                                int(self.rng.integers(0, 2**62)), on_tags)
        self.writer = BlkWriter(out_dir, net.magic)
        self.refs: list[TxRef] = []
        self._addr_cache: dict[int, str] = {}
        self._addr_type: dict[int, int] = {}
        self.scratch = {k: np.zeros(8192, np.int64) for k in ("tmp", "sel", "perm", "ov", "oa", "os", "oo",
                                                              "da", "ds", "do", "dv")}
        self.fr_log = float(np.log(8.0))

    # ------------------------------------------------------------------ state plumbing

    @property
    def W(self):
        return (self.SL, self.SLTX, self.OW, self.ST, self.AL, self.TXB, self.INB, self.INTX, self.OUTB, self.CNT)

    def _add_owners(self, n: int, entities: list[int]) -> int:
        first = len(self.OW)
        add = np.zeros((n, K.O_COLS), np.int64)
        add[:, K.O_HEAD] = -1
        add[:, K.O_TAIL] = -1
        add[:, K.O_ENTITY] = entities
        self.OW = np.concatenate([self.OW, add]) if len(self.OW) else add
        self.owner_entity.extend(entities)
        return first

    def add_entity(self, kind: str, name: str, category: str, **extra) -> Entity:
        if category in SERVICE_CATEGORIES and "actor" not in extra:
            extra["actor"] = actor_id(name)
        e = Entity(self.n_users + len(self.entities), kind, name, category, extra)
        self.entities.append(e)
        return e

    def add_owner(self, entity: int) -> int:
        return self._add_owners(1, [entity])

    def new_customer(self) -> int:
        c = self.next_customer
        if c >= self.n_customers:
            raise RuntimeError("out of extra customer ids")
        self.next_customer += 1
        return c

    def ensure(self, tx: int, ins: int, outs: int, addrs: int) -> None:
        """Room for `tx` more transactions with `ins` inputs, `outs` outputs and `addrs` new addresses."""
        need = int(self.CNT[K.C_NTX]) + tx
        if need > len(self.TXB):
            self.TXB = _grow(self.TXB, need)
        need = int(self.CNT[K.C_NIN]) + ins
        if need > len(self.INB):
            self.INB = _grow(self.INB, need)
            self.INTX = _grow(self.INTX, need)
        need = int(self.CNT[K.C_NOUT]) + outs
        if need > len(self.OUTB):
            self.OUTB = _grow(self.OUTB, need)
        need = int(self.ST[K.ST_NADDR] - self.ST[K.ST_LOGBASE]) + addrs
        if need > len(self.AL):
            self.AL = _grow(self.AL, need)
        if self.ST[K.ST_NFREE] < outs + 1:
            self._grow_slots(outs + 1)

    def _grow_slots(self, extra: int) -> None:
        old = len(self.SL)
        new = max(2 * old, old + extra)
        SL = np.zeros((new, K.S_COLS), np.int64)
        SL[:old] = self.SL
        SL[old:, K.S_OWNER] = -1
        SL[old:, K.S_NEXT] = np.arange(old + 1, new + 1)
        SL[-1, K.S_NEXT] = self.ST[K.ST_FREE]  # append the old free list after the new rows
        SLTX = np.zeros((new, 32), np.uint8)
        SLTX[:old] = self.SLTX
        self.SL, self.SLTX = SL, SLTX
        self.ST[K.ST_FREE] = old
        self.ST[K.ST_NFREE] += new - old

    def new_addr(self, entity: int, stype: int, role: int, aux: int = -1) -> int:
        self.ensure(0, 0, 0, 1)
        a = int(K.new_addr(self.ST, self.AL, entity, stype, role, aux))
        self._addr_type[a] = stype
        return a

    def address(self, aid: int, stype: int | None = None) -> str:
        """The address string of an id (cached; the type is remembered for addresses made in Python)."""
        s = self._addr_cache.get(aid)
        if s is None:
            st = stype if stype is not None else self._addr_type[aid]
            s = encode_addresses(np.array([aid]), np.array([st]), self.key, self.net)[0]
            self._addr_cache[aid] = s
        return s

    def script(self, aid: int, stype: int) -> bytes:
        buf = np.zeros(40, np.uint8)
        n = K.write_script(buf, 0, stype, aid, np.int64(self.ST[K.ST_KEY]))
        return buf[:n].tobytes()

    # ------------------------------------------------------------------ reading state

    def spendable(self, owner: int, limit: int = 1 << 20) -> np.ndarray:
        out = np.empty(min(limit, max(1, int(self.OW[owner, K.O_COUNT]))), np.int64)
        n = E.owner_slots(self.SL, self.OW, owner, self.height, out)
        return out[:n]

    def value(self, slot: int) -> int:
        return int(self.SL[slot, K.S_VALUE])

    def balance(self, owner: int) -> int:
        return int(self.OW[owner, K.O_BAL])

    def lock(self, slot: int, on: bool = True) -> None:
        if on:
            self.SL[slot, K.S_META] |= K.META_LOCK
        else:
            self.SL[slot, K.S_META] &= ~K.META_LOCK

    # ------------------------------------------------------------------ fees

    def feerate(self) -> int:
        """This block's prevailing fee rate in milli-satoshi per vbyte."""
        return self._fr

    def _step_feerate(self) -> None:
        self.fr_log = 0.9 * self.fr_log + 0.1 * np.log(8.0) + self.rng.normal(0, 0.25)
        self.fr_log = float(np.clip(self.fr_log, np.log(1.0), np.log(300.0)))
        self._fr = int(np.exp(self.fr_log) * 1000)

    # ------------------------------------------------------------------ making transactions

    def emit(self, slots, outs, rem: int = -1, *, fr: int | None = None, version: int = 2, locktime: int = 0,
             seq: int = 0xFFFFFFFF, lowr: bool = True, order: int = K.ORD_GIVEN, kind: int = E.K_INCIDENT
             ) -> TxRef | None:
        """Spend `slots`, pay `outs` [(value, address id, script type, owner)]; output `rem` gets the rest
        minus the fee at rate `fr` (milli-sat/vB). Returns None when the slots cannot pay."""
        n_in, n_out = len(slots), len(outs)
        self.ensure(1, n_in, n_out, 0)
        ins = np.asarray(slots, np.int64).copy()
        ov = np.array([o[0] for o in outs], np.int64)
        oa = np.array([o[1] for o in outs], np.int64)
        os_ = np.array([o[2] for o in outs], np.int64)
        oo = np.array([o[3] for o in outs], np.int64)
        perm = np.empty(n_out, np.int64)
        t = int(K.emit(self.W, ins, n_in, ov, oa, os_, oo, n_out, rem, self._fr if fr is None else fr, version,
                       locktime, seq, lowr, order, kind, self.height, perm))
        if t < 0:
            if t == -1:
                return None
            raise RuntimeError(f"simulator bug: emit refused inputs {list(slots)} (code {t})")
        return self._ref(t, perm, n_out, kind)

    def owner_pay(self, owner: int, outs, change_addr: int, change_st: int, *, policy: int = K.SEL_LARGEST,
                  maxin: int = 60, fr: int | None = None, version: int = 2, locktime: int = 0,
                  seq: int = 0xFFFFFFFF, lowr: bool = True, order: int = K.ORD_GIVEN, kind: int = E.K_INCIDENT
                  ) -> TxRef | None:
        """`owner` pays `outs` from its coins (selected by `policy`) with change to `change_addr`; the change
        is output index len(outs)."""
        n_out = len(outs)
        self.ensure(1, maxin, n_out + 1, 0)
        sc = self.scratch
        ov, oa, os_, oo = (np.zeros(n_out + 1, np.int64) for _ in range(4))
        for j, o in enumerate(outs):
            ov[j], oa[j], os_[j], oo[j] = o
        tmp = np.empty(max(64, int(self.OW[owner, K.O_COUNT])), np.int64)
        perm = np.empty(n_out + 1, np.int64)
        t = int(E.owner_pay(self.W, owner, policy, maxin, ov, oa, os_, oo, n_out, change_addr, change_st,
                            self.height, self._fr if fr is None else fr, version, locktime, seq, lowr, order,
                            kind, tmp, sc["sel"], perm))
        if t < 0:
            return None
        return self._ref(t, perm, n_out + 1, kind)

    def _ref(self, t: int, perm: np.ndarray, n_out: int, kind: int) -> TxRef:
        o0, m = int(self.TXB[t, K.T_OUT0]), int(self.TXB[t, K.T_NOUT])
        slots = [-1] * n_out
        vouts = [-1] * n_out
        vals = [0] * n_out
        addrs = [-1] * n_out
        for k in range(m):
            j = int(perm[k])
            slots[j] = int(self.OUTB[o0 + k, K.X_SLOT])
            vouts[j] = k
            vals[j] = int(self.OUTB[o0 + k, K.X_VALUE])
            addrs[j] = int(self.OUTB[o0 + k, K.X_ADDR])
        ref = TxRef(self.height, t, kind, int(self.TXB[t, K.T_FEE]), slots, vouts, vals, addrs,
                    int(self.TXB[t, K.T_INVAL]), int(self.TXB[t, K.T_NIN]))
        self.refs.append(ref)
        return ref

    # ------------------------------------------------------------------ blocks

    def begin_block(self) -> int:
        self.height += 1
        self.CNT[:] = 0
        self.refs = []
        self._step_feerate()
        self.time += 60 + int(self.rng.exponential(540))
        return self.height

    def end_block(self, pool_owner: int, pool_addr: int, pool_st: int, pool_tag: bytes) -> dict:
        """Serialize the block being built, append it to the block files, and resolve txids."""
        ntx = int(self.CNT[K.C_NTX])
        TXB = self.TXB
        order = self.rng.permutation(ntx).astype(np.int64)
        size = int(TXB[:ntx, K.T_SIZE].sum())
        buf = np.empty(size, np.uint8)
        starts = np.empty(ntx, np.int64)
        ends = np.empty(ntx, np.int64)
        b0 = np.empty(ntx, np.int64)
        b1 = np.empty(ntx, np.int64)
        end = K.serialize(self.W, order, buf, starts, ends, b0, b1)
        if end != size:
            raise RuntimeError(f"simulator bug: serialized {end} bytes, sized {size}")
        mv = memoryview(buf)
        txids: list[bytes] = []
        wtxids: list[bytes] = []
        segw = TXB[order, K.T_SEGWIT].tolist() if ntx else []
        for s, e, x0, x1, w in zip(starts.tolist(), ends.tolist(), b0.tolist(), b1.tolist(), segw):
            full = _sha(_sha(mv[s:e]).digest()).digest()
            wtxids.append(full)
            if w:
                h = _sha(mv[s:s + 4])
                h.update(mv[x0:x1])
                h.update(mv[e - 4:e])
                txids.append(_sha(h.digest()).digest())
            else:
                txids.append(full)
        if ntx:
            K.fill_txids(self.SL, self.SLTX, self.OUTB, TXB, order,
                         np.frombuffer(b"".join(txids), np.uint8).reshape(ntx, 32))
        fees = int(TXB[:ntx, K.T_FEE].sum())
        reward = subsidy(self.height, self.halving) + fees
        wroot = merkle_root([b"\0" * 32] + wtxids)
        commitment = sha256d(wroot + b"\0" * 32)
        cb, cb_txid = self._coinbase(reward, self.script(pool_addr, pool_st), commitment, pool_tag)
        root = merkle_root([cb_txid] + txids)
        header = bytearray(struct.pack("<i", BLOCK_VERSION) + self.prev_hash + root
                           + struct.pack("<III", self.time, REGTEST_BITS, 0))
        nonce = 0
        while True:
            struct.pack_into("<I", header, 76, nonce)
            h = sha256d(header)
            if int.from_bytes(h, "little") <= REGTEST_TARGET:
                break
            nonce += 1
        block = bytes(header) + varint(ntx + 1) + cb + buf.tobytes()
        self.writer.write(block)
        tx_stripped = np.where(TXB[order, K.T_SEGWIT] == 1, 8 + b1 - b0, ends - starts) if ntx else np.zeros(0)
        stripped = 80 + len(varint(ntx + 1)) + (len(cb) - 2 - 34) + int(tx_stripped.sum())
        weight = stripped * 3 + len(block)
        self.max_block_weight = max(self.max_block_weight, weight)
        # the coinbase output becomes a live (immature) slot of the pool
        self.ensure(0, 0, 1, 0)
        K.add_coin(self.SL, self.SLTX, self.OW, self.ST, pool_owner, reward, pool_addr, pool_st, self.height,
                   K.META_CB, np.frombuffer(cb_txid, np.uint8), 0)
        # resolve the scenario actors' transactions
        pos = np.empty(ntx, np.int64)
        pos[order] = np.arange(ntx)
        for ref in self.refs:
            ref.txid = txids[int(pos[ref.row])][::-1].hex()
        if ntx:
            self.kind_counts += np.bincount(TXB[:ntx, K.T_KIND], minlength=len(E.KINDS))
        self.kind_counts[E.K_COINBASE] += 1
        self.prev_hash = h
        self.tip_hash = h[::-1].hex()
        self.n_tx += ntx + 1
        self.n_blocks += 1
        self.fees_total += fees
        self.subsidy_total += reward - fees
        # stream the addresses made in this block
        nlog = int(self.ST[K.ST_NADDR] - self.ST[K.ST_LOGBASE])
        if nlog:
            self.sink.add(int(self.ST[K.ST_LOGBASE]), self.AL[:nlog].copy())
            self.ST[K.ST_LOGBASE] = self.ST[K.ST_NADDR]
        return {"height": self.height, "hash": self.tip_hash, "txs": ntx + 1, "fees": fees,
                "coinbase_txid": cb_txid[::-1].hex(), "time": self.time}

    def _coinbase(self, value: int, pool_script: bytes, commitment: bytes, tag: bytes) -> tuple[bytes, bytes]:
        ss = script_num(self.height) + b"\x08" + self.rng.bytes(8) + tag
        ss = ss[:100]
        body = (varint(1) + b"\0" * 32 + b"\xff\xff\xff\xff" + varint(len(ss)) + ss + b"\xff\xff\xff\xff"
                + varint(2) + struct.pack("<q", value) + varint(len(pool_script)) + pool_script
                + struct.pack("<q", 0) + b"\x26\x6a\x24\xaa\x21\xa9\xed" + commitment)
        version = struct.pack("<i", 2)
        locktime = b"\0\0\0\0"
        stripped = version + body + locktime
        full = version + b"\x00\x01" + body + b"\x01\x20" + b"\0" * 32 + locktime
        return full, sha256d(stripped)

    def close(self) -> None:
        self.writer.close()
        self.sink.close()


def _grow(a: np.ndarray, need: int) -> np.ndarray:
    new = max(need, 2 * len(a))
    b = np.zeros((new, *a.shape[1:]), a.dtype)
    b[:len(a)] = a
    return b
