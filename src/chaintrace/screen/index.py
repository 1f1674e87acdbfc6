"""The exposure index: every address's incoming and outgoing exposure to every illicit source group,
precomputed so that screening an address or a deposit is a lookup, not a trace.

Built by :func:`build_index` (``chaintrace screen index``) from the Bitcoin graph arrays
(:mod:`chaintrace.graph.btc`) and the registry (:mod:`chaintrace.screen.sources`): for each source group,
:func:`chaintrace.screen.kernels.forward` (incoming exposure) and :func:`~chaintrace.screen.kernels.backward`
(outgoing) over at most ``max_hops`` transactions. Stored beside the graph cache in
``DATA/btc/cache/screen-v<FORMAT>-c<commit>-g<registry generation>-r<registry id>-<config digest>/`` (written to a
temporary directory and renamed: readers never see half an index), self-contained (a server keeps
answering from it while an ingest commits and the next index is built: snapshot reads).

Arrays (``.npy``):

``e_addr, e_group, e_dir, e_amount, e_hops, e_out``   one row per (address, group, direction) exposure,
                                                      sorted by address id (``e_dir`` 0 incoming, 1 outgoing;
                                                      ``e_out``: the output carrying the largest part)
``f_out, f_group, f_taint, f_hop, f_parent, f_dir``   every tainted output per group and direction (sorted by
                                                      output id): transfer screening and path evidence
``a_id, a_received, a_sent``                          exposed addresses with their totals (the shares' base)
``seen_hash``                                         sorted 64-bit hashes of every address key in the chain
``tx_hash8, tx_order``                                first 8 bytes of every txid (sorted) -> tx id
``tx_out, out_value, out_tx``                         outputs of each transaction, their values and tx
``ans_off, ans_blob``                                 every exposed or registry-tagged address's answer,
                                                      serialized at build (:mod:`chaintrace.screen.answers`)
``x_off, x_blob``                                     the compact detection facts of each address a detection
                                                      touches (:mod:`chaintrace.screen.detections`,
                                                      ``meta["facts"]``: their addresses)
``s_off, s_blob``                                     the service table those facts name (one entry per
                                                      recognised service, shared by its rows)
plus ``meta.json`` (data version, groups, exposed address strings, txids of evidence transactions).
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chaintrace.errors import UserError
from chaintrace.intel.index import hash_words
from chaintrace.progress import Progress
from chaintrace.screen.config import Config
from chaintrace.screen.sources import NO_DAY, Sources, read_sources
from chaintrace.screen.strings import AddressStrings, TxStrings
from chaintrace.store.workspace import Workspace

FORMAT = 5  # 3: detection facts (x_off, x_blob) and the answers carrying them; 4: the facts compact (a shared
#             service table), the answers of addresses with detection facts only assembled from them, not baked;
#             5: every address answer carries ``bridges`` (chaintrace.screen.bridges): format-4 baked answers lack
#             it, so a fast answer would differ from a computed one until the index is rebuilt
PREFIX = f"screen-v{FORMAT}-"
ARRAYS = ("e_addr", "e_group", "e_dir", "e_amount", "e_hops", "e_out", "f_out", "f_group", "f_taint", "f_hop",
          "f_parent", "f_dir", "a_id", "a_received", "a_sent", "seen_hash", "tx_hash8", "tx_order", "tx_out",
          "out_value", "out_tx", "ans_off", "ans_blob", "x_off", "x_blob", "s_off", "s_blob")
KEY_WIDTH = 96  # bytes of an address key that take part in the "seen" hash (longer keys are cut)


def index_root(ws: Workspace, chain: str = "btc") -> Path:
    return ws.path / chain / "cache"


def registry_id(ws: Workspace) -> str:
    """Short id of the registry directory `ws` uses (indexes of different registries never mix)."""
    import hashlib

    from chaintrace.intel import registry as reg

    r = reg.as_registry(ws)
    return hashlib.sha256(str(r.path.resolve()).encode()).hexdigest()[:8] if r is not None else "none"


def index_name(commit: int, generation: int, config: Config, registry: str = "none") -> str:
    return f"{PREFIX}c{commit:06d}-g{generation}-r{registry}-{config.digest}"


def hash_keys(keys: list[str]) -> np.ndarray:
    """64-bit hashes of address keys (the registry index's hash, over the first KEY_WIDTH bytes)."""
    if not keys:
        return np.zeros(0, np.uint64)
    enc = np.array([k.encode("utf-8")[:KEY_WIDTH] for k in keys], dtype=f"S{KEY_WIDTH}")
    return hash_words(np.ascontiguousarray(enc).view(np.uint64).reshape(len(keys), KEY_WIDTH // 8))


def txid_hash8(txids_hex: list[str]) -> np.ndarray:
    """First 8 bytes of each (display-order hex) txid as uint64."""
    raw = bytes.fromhex("".join(t[:16] for t in txids_hex)) if txids_hex else b""
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


@dataclass
class ExposureIndex:
    """A loaded index: arrays (memory-mapped) plus the exposed addresses and groups."""

    path: Path
    meta: dict
    arrays: dict

    def __post_init__(self):
        a = self.arrays
        self.groups: list[dict] = self.meta["groups"]
        from chaintrace.intel import addresses as A

        # exposed address key -> row of a_id
        self.addr_row = {A.key("btc", s): i for i, s in enumerate(self.meta["addresses"])}
        self.e_start = np.searchsorted(a["e_addr"], a["a_id"], side="left")
        self.e_end = np.searchsorted(a["e_addr"], a["a_id"], side="right")
        self.txids = {int(k): v for k, v in self.meta["txids"].items()}
        # (output, group, direction) -> position in the f_* arrays (sorted by that triple): one probe
        self._ng = 2 * max(1, len(self.groups))
        self.f_key = a["f_out"].astype(np.int64) * self._ng + a["f_group"].astype(np.int64) * 2 + a["f_dir"]
        # precomputed answers (absent while the index itself is being built)
        self.blob = memoryview(a["ans_blob"]) if "ans_blob" in a else None
        self.ans_off = a["ans_off"].tolist() if "ans_off" in a else None  # a list: one probe per answer of a batch
        # address key -> row of its precomputed answer (exposed addresses, then the other registry hits)
        self.ans_row = dict(self.addr_row)
        self.known: set[str] = set()  # keys known to be in the chain data (a shortcut of seen())
        n = len(self.addr_row)
        self.ans_row.update((k, n + i) for i, k in enumerate(self.meta.get("baked_direct", [])))
        # address key -> row of its detection facts (x_off/x_blob); the addresses whose answer holds these facts
        # only (``meta["baked_facts"]``) are assembled from them (:func:`chaintrace.screen.service.facts_answer`)
        from chaintrace.screen.detections import FactTable

        facts = self.meta.get("facts") or {}
        self.fact_row = {k: i for i, k in enumerate(facts.get("addresses", []))}
        if "baked_facts" not in self.meta:  # (not stored: every fact address without an answer row)
            self.meta = {**self.meta, "baked_facts": [k for k in facts.get("addresses", []) if k not in self.ans_row]}
        run = self.meta["data_version"].get("detections") or {}
        self.fact_table = FactTable(a["s_off"] if "s_off" in a else np.zeros(1, np.int64),
                                    memoryview(a["s_blob"]) if "s_blob" in a else memoryview(b""),
                                    run.get("flows") or {}, bool(facts.get("informational")))
        self.x_blob = memoryview(a["x_blob"]) if "x_blob" in a else None
        self.x_off = a["x_off"].tolist() if "x_off" in a else None  # a list: one probe per answer of a batch

    def facts(self, key: str) -> dict | None:
        """The detection facts of address `key` (``{"exposures", "detections"}``), or None."""
        i = self.fact_row.get(key)
        return self.facts_at(i) if i is not None else None

    def facts_at(self, i: int) -> dict | None:
        """The detection facts of fact row `i`."""
        if self.x_blob is None or self.x_off is None:
            return None
        return self.fact_table.expand(self.x_blob[self.x_off[i]:self.x_off[i + 1]])

    @property
    def data_version(self) -> dict:
        return self.meta["data_version"]

    def seen(self, key: str) -> bool:
        if key in self.known:
            return True
        h = hash_keys([key])[0]
        s = self.arrays["seen_hash"]
        p = int(np.searchsorted(s, h))
        return p < len(s) and s[p] == h

    def tx_of(self, txid: str) -> int:
        """Dense tx id of a txid (hex), or -1."""
        try:
            h = txid_hash8([txid])[0]
        except ValueError:
            return -1
        s = self.arrays["tx_hash8"]
        p = int(np.searchsorted(s, h))
        if p < len(s) and s[p] == h:
            return int(self.arrays["tx_order"][p])
        return -1

    def output_entries(self, o: int, direction: int = 0) -> list[tuple[int, int, int, int]]:
        """(group, taint, hop, parent) of output `o` in `direction`."""
        a = self.arrays
        lo = int(self.f_key.searchsorted(o * self._ng))
        hi = int(self.f_key.searchsorted((o + 1) * self._ng))
        return [(g, t, h, p) for g, t, h, p, d in zip(a["f_group"][lo:hi].tolist(), a["f_taint"][lo:hi].tolist(),
                                                    a["f_hop"][lo:hi].tolist(), a["f_parent"][lo:hi].tolist(),
                                                    a["f_dir"][lo:hi].tolist()) if d == direction]

    def entry(self, o: int, group: int, direction: int) -> tuple[int, int, int] | None:
        """(taint, hop, parent) of output `o` for one group and direction, or None."""
        k = o * self._ng + group * 2 + direction
        p = int(self.f_key.searchsorted(k))
        if p >= len(self.f_key) or self.f_key[p] != k:
            return None
        a = self.arrays
        return int(a["f_taint"][p]), int(a["f_hop"][p]), int(a["f_parent"][p])

    def trail(self, o: int, group: int, direction: int, limit: int = 32) -> list[dict]:
        """The chain of outputs from the source (incoming) or to the destination (outgoing) through `o`:
        ``[{hop, txid, vout, value, taint}]`` ordered from the source side."""
        a = self.arrays
        steps = []
        seen = set()
        while o >= 0 and len(steps) < limit and o not in seen:
            seen.add(o)
            ent = self.entry(o, group, direction)
            if ent is None:
                break
            taint, hop, parent = ent
            t = int(a["out_tx"][o])
            steps.append({"hop": hop, "txid": self.txids.get(t), "vout": o - int(a["tx_out"][t]),
                          "value": int(a["out_value"][o]), "taint": taint})
            o = parent
        return steps[::-1] if direction == 0 else steps


def current_name(ws: Workspace, config: Config) -> tuple[str, int, int] | None:
    """(index directory name, commit, generation) the current data calls for, or None without btc data."""
    from chaintrace.intel import registry as reg

    store = ws.chain("btc")
    if not store.exists:
        return None
    store.reload()
    commit = int(store.manifest["commit"])
    gen = reg.generation(ws)
    return index_name(commit, gen, config, registry_id(ws)), commit, gen


def load_index(ws: Workspace, config: Config, name: str | None = None) -> ExposureIndex | None:
    """The index for the current data (or the named one); None when it was not built."""
    if name is None:
        cur = current_name(ws, config)
        if cur is None:
            return None
        name = cur[0]
    d = index_root(ws) / name
    got = read_index_dir(d, ARRAYS)
    return ExposureIndex(d, *got) if got is not None else None


def read_index_dir(d: Path, names: tuple) -> tuple[dict, dict] | None:
    """(meta, arrays memory-mapped) of a complete index directory written by :func:`write_index_dir`; None
    while it is incomplete or absent."""
    if not (d / "DONE").exists():
        return None
    meta = json.loads((d / "meta.json").read_text())
    return meta, {n: np.load(d / f"{n}.npy", mmap_mode="r").view(np.ndarray) for n in names}


def latest_index(ws: Workspace, config: Config) -> ExposureIndex | None:
    """The newest complete index built with this configuration (possibly for older data), preferring one
    built with the current registry generation."""
    from chaintrace.intel import registry as reg

    p = newest_complete(index_root(ws), f"{PREFIX}c*-{config.digest}",
                        prefer=f"-g{reg.generation(ws)}-r{registry_id(ws)}-")
    return load_index(ws, config, p.name) if p is not None else None


def newest_complete(root: Path, pattern: str, prefer: str | None = None) -> Path | None:
    """The newest complete index directory under `root` matching `pattern` (those whose name holds `prefer`
    first), or None."""
    if not root.exists():
        return None
    cands = sorted((p for p in root.glob(pattern) if (p / "DONE").exists()),
                   key=lambda p: (prefer is not None and prefer in p.name, p.stat().st_mtime_ns))
    return cands[-1] if cands else None


def current_or_latest(chain: str, cur: tuple[str, int, int], load, latest, warnings: list[str]):
    """The index a screening snapshot of `chain` answers from (one rule for btc and eth): the index of the
    current data (`cur`: name, commit, registry generation; ``load(name)``), else the newest complete one
    (``latest()``: an ingest or import is being indexed; a warning says it is behind), else None (a warning
    says that answers hold direct hits only)."""
    idx = load(cur[0])
    if idx is not None:
        return idx
    idx = latest()
    label = "exposure index" if chain == "btc" else f"{chain} exposure index"
    if idx is None:
        warnings.append(f"no exposure index for {chain}: {chain} answers hold direct hits only "
                        "(run `chaintrace screen index`)")
    else:
        warnings.append(f"{label} {idx.path.name} is behind the current data (commit {cur[1]}, registry "
                        f"generation {cur[2]}): run `chaintrace screen index`")
    return idx


# ----------------------------------------------------------------------------------------------- build


def _seeds(sources: Sources, keys_to_id: dict[str, int], g, out_by_addr_start, out_by_addr) -> list[np.ndarray]:
    """Seed outputs per group: the outputs received by the group's addresses (from their valid_from on)."""
    per: list[list[np.ndarray]] = [[] for _ in sources.groups]
    for k, grp, frm in zip(sources.keys, sources.key_group.tolist(), sources.key_from.tolist()):
        a = keys_to_id.get(k)
        if a is None:
            continue
        outs = out_by_addr[out_by_addr_start[a]:out_by_addr_start[a + 1]]
        if frm != NO_DAY:
            outs = outs[g.tx_time[g.out_tx[outs]] >= frm * 86400]
        per[grp].append(outs)
    return [np.unique(np.concatenate(x)) if x else np.zeros(0, np.int64) for x in per]


def _digest(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a, dtype=np.int64).tobytes()).hexdigest()[:32]


def _gkey(g: dict) -> tuple:
    return tuple(g.get(k) for k in ("category", "abuse", "entity", "actor", "severity"))


def _previous(ws: Workspace, config: Config, commit: int, name: str, stop_digest: str) -> ExposureIndex | None:
    """The newest complete index of the same chain commit, registry directory and configuration (another
    registry generation) whose stop set (services in the chain) is the same: its groups can be reused."""
    root = index_root(ws)
    tail = f"-r{registry_id(ws)}-{config.digest}"
    cands = sorted((p for p in root.glob(f"{PREFIX}c{commit:06d}-g*{tail}")
                    if p.name != name and (p / "DONE").exists()), key=lambda p: p.stat().st_mtime_ns)
    for p in reversed(cands):
        idx = load_index(ws, config, p.name)
        if idx is not None and idx.meta.get("stop_digest") == stop_digest and "seed_digests" in idx.meta:
            return idx
    return None


def _reusable(prev: ExposureIndex, groups: list[dict], seed_digests: list[str]) -> dict[int, dict]:
    """group -> its rows (out, taint, hop, parent, dir) from `prev`, for every group of the new sources with the
    same identity and the same seed outputs as one of `prev`'s."""
    old = {(_gkey(gr), d): i for i, (gr, d) in enumerate(zip(prev.groups, prev.meta["seed_digests"]))}
    a = prev.arrays
    fg = np.asarray(a["f_group"])
    order = np.argsort(fg, kind="stable")
    bounds = np.searchsorted(fg[order], np.arange(len(prev.groups) + 1))
    out = {}
    for gi, (gr, d) in enumerate(zip(groups, seed_digests)):
        oi = old.get((_gkey(gr), d))
        if oi is None:
            continue
        sel = order[bounds[oi]:bounds[oi + 1]]
        out[gi] = {"out": np.asarray(a["f_out"])[sel], "taint": np.asarray(a["f_taint"])[sel],
                   "hop": np.asarray(a["f_hop"])[sel], "parent": np.asarray(a["f_parent"])[sel],
                   "dir": np.asarray(a["f_dir"])[sel]}
    return out


def build_index(ws: Workspace, config: Config, *, at: str | None = None, progress: Progress | None = None,
                incremental: bool = True, exposures: dict | None = None, engine: str = "embedded") -> dict:
    """Build (or reuse) the exposure index of the current Bitcoin data and registry; returns its summary.

    Incremental after a registry change (an ``intel import``) on the same chain data: the propagation of
    every source group whose identity and seed outputs are unchanged is taken from the previous index (when
    the services in the chain, where exposure stops, are unchanged too); only new or changed groups are
    propagated. After new blocks (another chain commit) or a changed stop set the whole index is
    propagated again. `incremental=False` always propagates everything (tests compare the two).

    `exposures` (arrays ``out, group, taint, hop, parent, dir``: every tainted output per source group and
    direction) comes from another engine (``chaintrace spark run exposure``): nothing is propagated here,
    the index is written from them (replacing an index of the same name) and ``meta.json`` names the
    `engine`. ``exposures["groups"]``, when given, are the source groups the engine propagated (the custodial
    mixers it recognised included): they must equal this build's (registry and recognised mixers unchanged
    since), else nothing is written."""
    from chaintrace.graph.btc import load_btc_graph
    from chaintrace.screen import kernels
    from chaintrace.screen import refresh as R

    progress = progress or Progress()
    t0 = time.perf_counter()
    cur = current_name(ws, config)
    if cur is None:
        raise UserError(f"no btc data in workspace {ws.path}: nothing to index (run `chaintrace ingest ...`)")
    name, commit, gen = cur
    done = index_root(ws) / name / "DONE"
    if done.exists() and at is None and exposures is None and incremental:
        idx = load_index(ws, config, name)
        return {**summary(idx), "reused": True}
    g = load_btc_graph(ws)
    sources = read_sources(ws, "btc", config, at=at)
    from chaintrace.screen.mixer_sources import add_mixer_groups, find_mixers

    reg_digest = R.sources_digest(sources)  # the registry's own facts (a refresh says which of the two changed)
    mixers, mixer_note = find_mixers(ws, g)
    # custodial mixers recognised by behaviour are source groups too (another engine's `exposures` were
    # propagated from the same groups: spark.exposure_job adds them the same way)
    sources, mixed_in, left = add_mixer_groups(ws, g, sources, config, mixers)
    if exposures is not None and exposures.get("groups") is not None and \
            json.loads(json.dumps(sources.groups)) != exposures["groups"]:
        raise UserError(f"{ws.path}: the source groups changed since {engine} propagated the exposures (registry "
                        "or recognised mixers): compute them again (`chaintrace spark run exposure`)")
    store = ws.chain("btc")
    from chaintrace.intel import addresses as A

    n_out, n_tx = g.n_out, g.n_tx
    # txids: every transaction (hash prefix for transfer refs; the chain prefix digest of a later refresh)
    txs = TxStrings(store.read("transactions", ["txid", "tx_id"]), n_tx)
    tx_idn = txs.ids
    h8 = txs.hash8()
    h8_by_id = np.zeros(n_tx, np.uint64)
    h8_by_id[tx_idn] = h8
    src_digest = R.sources_digest(sources, mixed_in)
    base, why = None, None
    if not incremental:
        why = "full rebuild requested"
    elif exposures is not None:
        why = f"propagated by another engine ({engine})"
    elif at is not None:
        why = f"registry facts as of {at}"
    else:
        base, why = R.ingest_base(ws, config, commit, g, h8_by_id, src_digest, reg_digest)
    # address keys: every address's (a full build), or, continuing an index, the registry's addresses it
    # found plus the new addresses' (the old ones' keys are in its seen hashes)
    addrs = AddressStrings(store.read("addresses", ["address", "address_id"]), int(g.n_addresses))
    n_addr = len(addrs.pos)
    tail_from = int(base.meta["stats"]["n_addresses"]) if base is not None and "registry_ids" in base.meta else 0
    wanted = set(sources.keys) | sources.services | set(sources.direct)  # the only keys looked up by id
    keys_to_id = _registry_ids(addrs, wanted, tail_from, base)
    # outputs grouped by address
    oa = g.out_addr
    order = np.argsort(oa, kind="stable")
    has = oa[order] >= 0
    out_by_addr = order[has]
    counts = np.bincount(oa[oa >= 0], minlength=n_addr)
    start = np.zeros(n_addr + 1, np.int64)
    np.cumsum(counts, out=start[1:])
    stop = np.zeros(n_addr, np.bool_)
    for k in sources.services:
        a = keys_to_id.get(k)
        if a is not None:
            stop[a] = True
    seeds = _seeds(sources, keys_to_id, g, start, out_by_addr)
    taint = np.zeros(n_out, np.int64)
    hop = np.full(n_out, -1, np.int64)
    parent = np.full(n_out, -1, np.int64)
    queued = np.zeros(n_tx, np.bool_)
    ro = {n: np.ascontiguousarray(getattr(g, n)) for n in ("tx_out", "tx_in", "out_value", "out_addr",
                                                              "out_spender_tx", "out_tx", "in_output")}
    parts: dict[str, list] = {k: [] for k in ("out", "group", "taint", "hop", "parent", "dir")}
    stop_digest, seed_digests = _digest(np.flatnonzero(stop)), [_digest(x) for x in seeds]
    if base is not None and _digest(np.flatnonzero(stop[:int(base.meta["stats"]["n_addresses"])])) != \
            base.meta.get("stop_digest"):  # (implied by the registry facts: a safety net)
        why = f"the services where exposure stops changed since {base.path.name}: full rebuild"
        base, tail_from = None, 0
        keys_to_id = _registry_ids(addrs, wanted, 0, None)
        stop[:] = False
        for k in sources.services:
            a = keys_to_id.get(k)
            if a is not None:
                stop[a] = True
        seeds = _seeds(sources, keys_to_id, g, start, out_by_addr)
        stop_digest, seed_digests = _digest(np.flatnonzero(stop)), [_digest(x) for x in seeds]
    prev = (_previous(ws, config, commit, name, stop_digest) if base is None and incremental and at is None
            and exposures is None else None)
    if prev is not None:
        why = None
    reuse = _reusable(prev, sources.groups, seed_digests) if prev is not None else {}
    n_reused = 0
    base_rows = R.group_rows(base) if base is not None else {}
    pre = base.meta["chain_prefix"] if base is not None else None
    changed_keys: list[np.ndarray] = []
    n_tx_prop = 0
    ngk = 2 * max(1, len(sources.groups))
    progress.start("exposure index", total=2 * len(sources.groups))
    if exposures is not None:  # propagated by another engine (spark run exposure)
        for k, dt in zip(parts, (np.int64, np.int32, np.int64, np.int16, np.int64, np.int8)):
            parts[k].append(np.asarray(exposures[k]).astype(dt))
    for gi, seed in enumerate(seeds if exposures is None else []):
        if not len(seed):
            progress.advance(2)
            continue
        if base is not None and _digest(seed[seed < pre["n_out"]]) == base.meta["seed_digests"][gi]:
            # the chain grew: continue from the previous index's rows of this group
            n_tx_prop += _resume(ro, base_rows, gi, seed[seed >= pre["n_out"]], pre, stop, config, taint, hop,
                                 parent, queued, parts, changed_keys, ngk)
            progress.advance(2)
            continue
        if gi in reuse:  # same group, same seeds, same stops, same chain: the previous index's rows
            rows = reuse[gi]
            for k in ("out", "taint", "hop", "parent", "dir"):
                parts[k].append(rows[k])
            parts["group"].append(np.full(len(rows["out"]), gi, np.int32))
            n_reused += 1
            progress.advance(2)
            continue
        for direction in (0, 1):
            if direction == 0:
                touched = kernels.forward(ro["tx_out"], ro["tx_in"], ro["out_value"], ro["out_addr"],
                                          ro["out_spender_tx"], ro["in_output"], seed, stop,
                                          np.int64(config.max_hops), taint, hop, parent, queued)
            else:
                touched = kernels.backward(ro["tx_out"], ro["tx_in"], ro["out_value"], ro["out_addr"],
                                           ro["out_tx"], ro["in_output"], seed, stop,
                                           np.int64(config.max_hops), taint, hop, parent, queued)
            parts["out"].append(touched)
            parts["group"].append(np.full(len(touched), gi, np.int32))
            parts["taint"].append(taint[touched].copy())
            parts["hop"].append(hop[touched].astype(np.int16))
            parts["parent"].append(parent[touched].copy())
            parts["dir"].append(np.full(len(touched), direction, np.int8))
            kernels.reset(touched, taint, hop, parent)
            if base is not None:  # a group the previous index could not continue: all its rows may differ
                changed_keys.append(touched * ngk + gi * 2 + direction)
                changed_keys.append(base_rows[(gi, direction)]["out"] * ngk + gi * 2 + direction
                                    if (gi, direction) in base_rows else np.zeros(0, np.int64))
            progress.advance()
    progress.finish()
    cat = {k: (np.concatenate(v) if v else np.zeros(0, dt)) for (k, v), dt in zip(
        parts.items(), (np.int64, np.int32, np.int64, np.int16, np.int64, np.int8))}
    fo = np.lexsort((cat["dir"], cat["group"], cat["out"]))
    f = {k: v[fo] for k, v in cat.items()}
    # per (address, group, direction) aggregation; outgoing exposure counts hop >= 1 only (a destination's
    # own receipts are not value it sent)
    f_addr = g.out_addr[f["out"]]
    keep = (f_addr >= 0) & ((f["dir"] == 0) | (f["hop"] >= 1))
    ka, kg, kd = f_addr[keep], f["group"][keep], f["dir"][keep]
    kt, kh, ko = f["taint"][keep], f["hop"][keep], f["out"][keep]
    eo = np.lexsort((-kt, kd, kg, ka))
    ka, kg, kd, kt, kh, ko = ka[eo], kg[eo], kd[eo], kt[eo], kh[eo], ko[eo]
    if len(ka):
        first = np.ones(len(ka), np.bool_)
        first[1:] = (ka[1:] != ka[:-1]) | (kg[1:] != kg[:-1]) | (kd[1:] != kd[:-1])
        run = np.cumsum(first) - 1
        sel = np.nonzero(first)[0]
        e_amount = np.add.reduceat(kt.astype(np.int64), sel)  # integer sums of each (address, group, dir) run
        e_hops = np.full(run[-1] + 1, 1 << 14, np.int64)
        np.minimum.at(e_hops, run, kh.astype(np.int64))
        e = {"e_addr": ka[sel], "e_group": kg[sel], "e_dir": kd[sel], "e_amount": e_amount,
             "e_hops": e_hops.astype(np.int16), "e_out": ko[sel]}
    else:
        e = {"e_addr": np.zeros(0, np.int64), "e_group": np.zeros(0, np.int32), "e_dir": np.zeros(0, np.int8),
             "e_amount": np.zeros(0, np.int64), "e_hops": np.zeros(0, np.int16), "e_out": np.zeros(0, np.int64)}
    a_id = np.unique(e["e_addr"])
    received = _int_sums(oa >= 0, oa, g.out_value, n_addr)  # exact integers (a float bincount is not past 2**53)
    spent = (oa >= 0) & (g.out_spender_tx >= 0)
    sent = _int_sums(spent, oa, g.out_value, n_addr)
    # the evidence transactions' txids in full
    ho = np.argsort(h8, kind="stable")
    ev_tx = np.unique(g.out_tx[f["out"]]) if len(f["out"]) else np.zeros(0, np.int64)
    ev_txids = txs.strings(ev_tx)
    a_str = addrs.strings(a_id)
    exposed = [a_str.get(a) or f"#{a}" for a in a_id.tolist()]
    arrays = {**e,
              "f_out": f["out"], "f_group": f["group"], "f_taint": f["taint"], "f_hop": f["hop"],
              "f_parent": f["parent"], "f_dir": f["dir"],
              "a_id": a_id, "a_received": received[a_id].astype(np.int64), "a_sent": sent[a_id].astype(np.int64),
              "seen_hash": np.sort(np.concatenate([np.asarray(base.arrays["seen_hash"]), addrs.key_hashes(tail_from)])
                                   if tail_from else addrs.key_hashes()),  # base is kept when tail_from
              "tx_hash8": h8[ho], "tx_order": tx_idn[ho],
              "tx_out": np.asarray(g.tx_out), "out_value": np.asarray(g.out_value), "out_tx": np.asarray(g.out_tx)}
    tip = store.tip or {}
    built = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    tip_time = int(g.tx_time.max()) if n_tx else None
    data_version = {
        "chains": {"btc": {"commit": commit, "tip_height": int(g.tx_height[-1]) if n_tx else None,
                           "tip_hash": tip.get("hash"),
                           "tip_time": _dt.datetime.fromtimestamp(tip_time, _dt.timezone.utc).isoformat()
                           if tip_time is not None else None}},
        "registry_generation": gen, "registry_at": sources.at, "config_version": config.version,
        "config_digest": config.digest, "index_built": built, "index": name, "max_hops": config.max_hops,
        "policy": config.policy,
    }
    exposed_keys = {A.key("btc", s) for s in exposed}
    baked_direct = sorted(k for k in sources.direct if k in keys_to_id and k not in exposed_keys)
    from chaintrace.screen.detections import build_facts, informational, pack

    t_facts = time.perf_counter()
    fact_addrs, arrays["x_off"], arrays["x_blob"], run, services = build_facts(
        ws, g, config, addrs.strings, txs, (mixers, mixer_note))
    fact_keys = [A.key("btc", s) for s in fact_addrs]
    run["mixers"]["source_groups"] = len(mixed_in)
    run["mixers"]["left_to_tags"] = left
    data_version["detections"] = run
    arrays["s_off"], arrays["s_blob"] = pack(services)
    taken = exposed_keys | set(baked_direct)
    baked_facts = [k for k in fact_keys if k not in taken]
    meta = {"format": FORMAT, "engine": engine, "data_version": data_version, "groups": sources.groups,
            "addresses": exposed, "baked_direct": baked_direct,
            "facts": {"addresses": fact_keys, "n_services": len(services),
                      "informational": informational(services, config)}, "stop_digest": stop_digest,
            "seed_digests": seed_digests, "txids": {str(k): v for k, v in ev_txids.items()},
            "sources_digest": src_digest, "registry_digest": reg_digest,
            "detected_groups": {str(m["group"]): {k: m[k] for k in ("address", "kind", "confidence", "features")}
                                for m in mixed_in},
            "chain_prefix": R.prefix_digest(g, h8_by_id, n_tx),
            "registry_ids": {k: keys_to_id[k] for k in sorted(wanted) if k in keys_to_id},
            "stats": {"n_tx": n_tx, "n_out": n_out, "n_addresses": n_addr, "n_groups": len(sources.groups),
                      "n_sources": len(sources.keys), "n_sources_in_chain": int(sum(len(s) > 0 for s in seeds)),
                      "n_services": len(sources.services), "n_tainted_outputs": int(len(f["out"])),
                      "n_exposures": int(len(e["e_addr"])), "n_exposed_addresses": int(len(a_id)),
                      "n_groups_reused": n_reused, "previous_index": prev.path.name if prev is not None else None,
                      "n_fact_addresses": len(fact_keys),
                      "n_answers": len(exposed) + len(baked_direct),
                      "n_answers_from_facts": len(baked_facts),
                      "facts_seconds": round(time.perf_counter() - t_facts, 3),
                      "refreshed_from": base.path.name if base is not None else None,
                      "refresh_reason": why if prev is None else None,
                      "n_new_tx": n_tx - pre["n_tx"] if base is not None else None,
                      "n_tx_propagated": n_tx_prop if base is not None else None,
                      "build_seconds": round(time.perf_counter() - t0, 3)}}
    from chaintrace.screen.answers import bake

    t_bake = time.perf_counter()
    old_rows = None
    if base is not None:  # answers of addresses nothing new touched: the previous index's bytes
        ck = np.unique(np.concatenate(changed_keys)) if changed_keys else np.zeros(0, np.int64)
        aff = R.affected_addresses(g, f, ck, len(sources.groups), pre["n_tx"], pre["n_out"], config.max_hops,
                                   n_addr)
        row_ids = np.concatenate([a_id, np.array([keys_to_id[k] for k in baked_direct], np.int64)])
        row_keys = [A.key("btc", s) for s in exposed] + baked_direct
        from chaintrace.screen.detections import changed_facts

        moved = changed_facts(base, fact_keys, arrays["x_off"], arrays["x_blob"], arrays["s_off"],
                              arrays["s_blob"])  # their detections changed
        old_rows = [-1 if aff[i] or k in moved else base.ans_row.get(k, -1)
                    for i, k in zip(row_ids.tolist(), row_keys)]
        meta["stats"]["n_addresses_affected"] = int(aff.sum())
        meta["stats"]["n_answers_recomputed"] = int(sum(r < 0 for r in old_rows))
    arrays["ans_off"], arrays["ans_blob"] = bake(ExposureIndex(index_root(ws) / name, meta, arrays), sources, config,
                                                 reuse=(base, old_rows) if base is not None else None)
    meta["stats"]["bake_seconds"] = round(time.perf_counter() - t_bake, 3)
    meta["stats"]["build_seconds"] = round(time.perf_counter() - t0, 3)
    write_index_dir(index_root(ws), name, arrays, meta, ARRAYS, PREFIX,
                    replace=exposures is not None or not incremental)
    return {**summary(load_index(ws, config, name)), "reused": False}


def _registry_ids(addrs: AddressStrings, wanted: set[str], tail_from: int, base) -> dict[str, int]:
    """Dense ids of the registry's keys `wanted` (sources, services, direct hits) in the chain. A full build:
    looked up among every address. Continuing `base` (`tail_from` > 0: its address count): its
    ``registry_ids`` plus those among the addresses from `tail_from` on."""
    if not tail_from:
        return addrs.ids_of(wanted)
    out = dict(base.meta["registry_ids"])
    out.update(addrs.ids_of(wanted, min_id=tail_from))
    return out


def _resume(ro: dict, base_rows: dict, gi: int, new_seed: np.ndarray, pre: dict, stop: np.ndarray, config: Config,
            taint, hop, parent, queued, parts: dict, changed_keys: list, ngk: int) -> int:
    """Group `gi` over the grown chain from the previous index's rows (both directions); appends the rows
    to `parts` and the keys of the rows that changed to `changed_keys`; returns the transactions processed."""
    from chaintrace.screen import kernels

    n_proc = 0
    for direction in (0, 1):
        old = base_rows[(gi, direction)]
        if direction == 0:
            new, n = kernels.forward_resume(ro["tx_out"], ro["tx_in"], ro["out_value"], ro["out_addr"],
                                            ro["out_spender_tx"], ro["in_output"], old["out"], old["taint"],
                                            old["hop"], old["parent"], new_seed, np.int64(pre["n_tx"]), stop,
                                            np.int64(config.max_hops), taint, hop, parent, queued)
        else:
            new, n = kernels.backward_resume(ro["tx_out"], ro["tx_in"], ro["out_value"], ro["out_addr"],
                                             ro["out_tx"], ro["in_output"], old["out"], old["taint"], old["hop"],
                                             old["parent"], new_seed, stop, np.int64(config.max_hops), taint, hop,
                                             parent, queued)
        n_proc += int(n)
        outs = np.union1d(old["out"], new)
        outs = outs[hop[outs] >= 0]
        parts["out"].append(outs)
        parts["group"].append(np.full(len(outs), gi, np.int32))
        parts["taint"].append(taint[outs].copy())
        parts["hop"].append(hop[outs].astype(np.int16))
        parts["parent"].append(parent[outs].copy())
        parts["dir"].append(np.full(len(outs), direction, np.int8))
        changed_keys.append(np.unique(new) * ngk + gi * 2 + direction)
        kernels.reset(old["out"], taint, hop, parent)
        kernels.reset(new, taint, hop, parent)
    return n_proc


def _int_sums(mask: np.ndarray, keys: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per key in [0, n): the exact int64 sum of `values` where `mask`."""
    out = np.zeros(n, np.int64)
    np.add.at(out, keys[mask], np.asarray(values)[mask].astype(np.int64))
    return out


def write_index_dir(root: Path, name: str, arrays: dict, meta: dict, names: tuple, prefix: str,
                    replace: bool = False) -> None:
    """Write an index directory atomically (a temporary directory renamed into place, ``DONE`` last) and keep
    the two newest of the `prefix` family (a server may still answer from the previous one). `replace`: an
    existing directory of that name is replaced (else kept, the new one discarded)."""
    import os

    d = root / name
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    tmp = root / f".{name}.tmp{os.getpid()}-{time.time_ns()}"
    tmp.mkdir(parents=True)
    try:
        for n in names:
            np.save(tmp / f"{n}.npy", arrays[n])
        (tmp / "meta.json").write_text(json.dumps(meta))
        (tmp / "DONE").write_text("ok\n")
    except BaseException:  # interrupted (an error, Ctrl-C): nothing half-written stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if d.exists() and replace:  # readers holding the old files keep them (mapped) until they reload
        trash = root / f".{name}.old{time.time_ns()}"
        d.rename(trash)
        tmp.rename(d)
        shutil.rmtree(trash, ignore_errors=True)
    elif d.exists():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            tmp.rename(d)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    olds = sorted((p for p in root.glob(f"{prefix}*") if p.is_dir()), key=lambda p: p.stat().st_mtime_ns)
    for p in olds[:-2]:
        shutil.rmtree(p, ignore_errors=True)
    _remove_other_formats(root, prefix)


def _remove_other_formats(root: Path, prefix: str) -> None:
    """Remove the index directories of the `prefix` family (``screen-v<N>-``, ``screen-eth-v<N>-``) written in
    another index format: no version of this code reads them (an upgrade rebuilt them, saying so)."""
    import re

    m = re.match(r"^(.*-v)\d+-$", prefix)
    if m is None:
        return
    family = re.compile(re.escape(m.group(1)) + r"\d+-")
    for p in root.glob(f"{m.group(1)}*"):
        if p.is_dir() and not p.name.startswith(prefix) and family.match(p.name):
            shutil.rmtree(p, ignore_errors=True)


def _clean_stale(root: Path) -> None:
    """Remove the temporary directories of index writers that died (killed half-way: their process is
    gone); those of running writers stay."""
    import os
    import re

    for p in root.glob(".*.tmp*"):
        m = re.search(r"\.tmp(\d+)-\d+$", p.name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (PermissionError, OSError):
            pass


def summary(idx: ExposureIndex) -> dict:
    size = sum(p.stat().st_size for p in idx.path.iterdir())
    return {"path": str(idx.path), "data_version": idx.data_version, **idx.meta["stats"], "bytes": size}
