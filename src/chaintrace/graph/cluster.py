"""Bitcoin address clustering: multi-input and change heuristics, CoinJoin-aware, explainable, undoable.

Specification: ``../shared/docs/tracing-methods.md`` §2 (heuristics, collapse prevention, union-find) and
§3.2 (CoinJoin detectors). User guide: ``docs/clustering.md``.

Pipeline (:func:`build_clusters`)::

    BtcGraph --(per chunk of transactions)--> CoinJoin detectors  -> coinjoins/*.parquet
                                           -> layer 0: multi-input edges (mih)      -> layers/mih/*.parquet
                                           -> layer 1: unique-change edges (change) -> layers/change/*.parquet
    stored edges of the selected layers, in transaction order
        --> guarded union-find (refuse: CoinJoin / excluded tx, both sides >= max size, two services)
        --> unions/*.parquet (every union performed: the evidence), refusals/*.parquet (every refusal + reason)
        --> address_clusters.parquet (address_id, cluster_id, cluster_size) + the catalog view
            ``btc.address_clusters``; growth alarms in the state

*Candidate edges* are stored for every heuristic, whatever the guards decide, so clusters can be rebuilt
without a heuristic, with other guards, or without the unions of a transaction (:func:`exclude`, which
undoes a collapse) from the stored edges alone, without re-reading the chain. A multi-input transaction with
inputs from addresses a0, a1, a2... yields the edges (a0, a1), (a0, a2)... (BlockSci's star); a unique change
output c yields (a0, c).

Everything lives under ``DATA/btc/clusters/`` and is committed atomically: new files get names no committed
state refers to, ``state.json`` is replaced (the commit point), then files no longer named are deleted; an
interrupted build leaves the previous clusters intact and the next build removes its leftovers.

Incremental: the state records the store commit and the number of transactions processed; a build after new
blocks generates edges for the new transactions only and unions them into the saved union-find arrays (the
result equals a full rebuild because edges are always processed in transaction order). A reorg below the
processed tip, or different detector/change parameters, trigger a rebuild of what they affect.

Cluster ids are the smallest address id of the cluster (:mod:`chaintrace.graph.unionfind`). Tags are never
stored with clusters: :func:`cluster_info` labels a cluster at query time with the tags of its members and
reports conflicts (two different services) instead of picking one.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numba as nb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chaintrace.detect import change as ch
from chaintrace.detect.coinjoin import (ALL as CJ_DETECTORS, PROTOCOLS, CoinJoinParams, coordinator_address_ids,
                                        detect_coinjoins)
from chaintrace.detect.peel import is_peeling_chain
from chaintrace.errors import UserError
from chaintrace.graph import unionfind as uf_mod
from chaintrace.graph.btc import BtcGraph, load_btc_graph
from chaintrace.model.tags import Tag
from chaintrace.progress import NULL, Progress
from chaintrace.store.workspace import Workspace

FORMAT = 1
STATE = "state.json"
CHUNK_INPUTS = 4_000_000  # inputs per generation chunk (bounds memory)
MERGE_ROWS = 1_000_000  # a file smaller than this is merged with the next rows of the same kind

EDGES = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("tx_id", pa.int64()), ("height", pa.int64()),
                   ("heuristic", pa.string()), ("confidence", pa.float64()), ("coinjoin", pa.uint8())])
COINJOINS = pa.schema([("tx_id", pa.int64()), ("height", pa.int64()), ("protocol", pa.string()),
                       ("detectors", pa.string()), ("partial", pa.bool_()), ("denomination", pa.int64()),
                       ("n_equal", pa.int32()), ("n_inputs", pa.int32()), ("n_outputs", pa.int32())])
UNIONS = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("tx_id", pa.int64()), ("height", pa.int64()),
                    ("heuristic", pa.string()), ("confidence", pa.float64()), ("size_a", pa.int64()),
                    ("size_b", pa.int64())])
REFUSALS = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("tx_id", pa.int64()), ("height", pa.int64()),
                      ("heuristic", pa.string()), ("confidence", pa.float64()), ("reason", pa.string()),
                      ("detail", pa.string()), ("size_a", pa.int64()), ("size_b", pa.int64())])
ADDRESS_CLUSTERS = pa.schema([("address_id", pa.int64()), ("cluster_id", pa.int64()), ("cluster_size", pa.int64())])

# catalog views (btc.<name>) over the committed files; see chaintrace.store.schema.btc
VIEW_TABLES = {"address_clusters": ADDRESS_CLUSTERS, "cluster_unions": UNIONS, "cluster_refusals": REFUSALS,
               "cluster_edges": EDGES, "coinjoins": COINJOINS}

HEURISTICS = ("mih", "change")


# ---------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class ClusterConfig:
    """What a build does. ``heuristics``: "mih" (layer 0) and/or "change" (layer 1, off by default)."""

    heuristics: tuple[str, ...] = ("mih",)
    change: tuple[str, ...] = ch.DEFAULT  # change heuristics combined by intersection (unique result)
    change_digits: int = 6
    change_max_outputs: int = 10
    coinjoin: str = "skip"  # skip: no union across a detected CoinJoin; include: naive (for comparison)
    coinjoin_params: CoinJoinParams = field(default_factory=CoinJoinParams)
    max_merge_size: int = 100_000  # refuse a union when both clusters already have this many addresses
    tag_guard: bool = True  # refuse a union of clusters tagged as two different services
    alarm_growth: float = 0.5  # alarm when the largest cluster grows by more than this fraction in a block
    alarm_min_size: int = 1_000  # ... and reaches at least this many addresses

    def __post_init__(self):
        bad = [h for h in self.heuristics if h not in HEURISTICS]
        if bad or not self.heuristics:
            raise UserError(f"unknown heuristic(s) {', '.join(bad) or '(none)'}; use mih and/or "
                            f"change[:{'+'.join(ch.DEFAULT)}]")
        if self.coinjoin not in ("skip", "include"):
            raise UserError(f"--coinjoin must be skip or include, not {self.coinjoin!r}")
        if self.max_merge_size < 0 or self.change_max_outputs < 2 or not 0 <= self.change_digits <= 15:
            raise UserError("max_merge_size must be >= 0 (0: no limit), change_max_outputs >= 2, "
                            "change_digits 0..15")

    @classmethod
    def parse(cls, heuristics: str = "mih", detectors: str | None = None, activation_heights: bool = True,
              **kw) -> "ClusterConfig":
        """From the CLI syntax: ``"mih,change:fresh_address+optimal_change"``; detectors ``"wasabi2,whirlpool"``;
        `activation_heights` False: detect CoinJoins on mainnet below the protocols' launch heights too (for
        simulated chains written with mainnet parameters)."""
        names: list[str] = []
        change = ch.DEFAULT
        for part in heuristics.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, arg = part.partition(":")
            name = name.strip().lower()
            if name not in HEURISTICS:
                raise UserError(f"--heuristics: unknown heuristic {name!r} in {heuristics!r}; use mih and/or "
                                f"change[:H+H...] with H in {', '.join(ch.HEURISTICS)}")
            if name == "change":
                try:
                    change = ch.parse_heuristics(arg)
                except ValueError as e:
                    raise UserError(f"--heuristics: {e}") from None
            if name not in names:
                names.append(name)
        dets = CJ_DETECTORS if detectors is None else tuple(d.strip().lower() for d in detectors.split(",")
                                                            if d.strip())
        try:
            kw["coinjoin_params"] = CoinJoinParams(detectors=dets, mainnet_heights=activation_heights)
        except ValueError as e:
            raise UserError(f"--detectors: {e}") from None
        return cls(heuristics=tuple(names), change=change, **kw)

    @property
    def change_name(self) -> str:
        return "change:" + "+".join(self.change)

    def mih_spec(self) -> dict:
        return {"coinjoin_params": self.coinjoin_params.key()}

    def change_spec(self) -> dict:
        return {"heuristics": list(self.change), "digits": self.change_digits,
                "max_outputs": self.change_max_outputs}

    def describe(self) -> dict:
        return {"heuristics": [self.change_name if h == "change" else h for h in self.heuristics],
                "change_digits": self.change_digits, "change_max_outputs": self.change_max_outputs,
                "coinjoin": self.coinjoin, "detectors": list(self.coinjoin_params.detectors),
                "activation_heights": self.coinjoin_params.mainnet_heights,
                "max_merge_size": self.max_merge_size, "tag_guard": self.tag_guard,
                "alarm_growth": self.alarm_growth, "alarm_min_size": self.alarm_min_size}


# ---------------------------------------------------------------------------------------------- storage

def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ClusterStore:
    """The files under ``DATA/btc/clusters/`` and their committed state."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.root = ws.path / "btc" / "clusters"

    @property
    def exists(self) -> bool:
        return (self.root / STATE).exists()

    def state(self) -> dict | None:
        p = self.root / STATE
        if not p.exists():
            return None
        try:
            s = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{p}: unreadable cluster state ({e}); delete {self.root} and rebuild") from e
        if s.get("format") != FORMAT:
            raise UserError(f"{p}: cluster state of format {s.get('format')}, expected {FORMAT}; rebuild with "
                            "`chaintrace cluster build --full`")
        return s

    def require(self) -> dict:
        s = self.state()
        if s is None:
            raise UserError(f"no clusters in workspace {self.ws.path} yet: run `chaintrace cluster build`")
        return s

    @contextmanager
    def writer(self) -> Iterator["ClusterStore"]:
        self.root.mkdir(parents=True, exist_ok=True)
        fh = open(self.root / ".lock", "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise UserError(f"{self.root}: another process is building clusters") from None
        try:
            self.cleanup(self.state())
            yield self
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    @staticmethod
    def referenced(state: dict | None) -> set[str]:
        """Relative paths of every file and directory a state names."""
        if not state:
            return set()
        out: set[str] = set()
        for layer in state.get("layers", {}).values():
            out |= {f["file"] for f in layer["files"]}
        out |= {f["file"] for f in state.get("coinjoins", {}).get("files", [])}
        u = state.get("union") or {}
        for k in ("unions", "refusals"):
            out |= {f["file"] for f in u.get(k, [])}
        if u.get("uf"):
            out.add(u["uf"])
        if state.get("address_clusters"):
            out.add(state["address_clusters"])
        return out

    def cleanup(self, state: dict | None) -> int:
        """Delete every file under the root that `state` does not name (leftovers of interrupted builds)."""
        keep = self.referenced(state)
        removed = 0
        for p in sorted(self.root.rglob("*"), key=lambda x: -len(x.parts)):
            rel = p.relative_to(self.root).as_posix()
            if rel in (STATE, ".lock") or rel in keep or any(k.startswith(rel + "/") for k in keep):
                continue
            if any(rel.startswith(k + "/") for k in keep):
                continue
            if p.is_dir():
                if not any(p.iterdir()):
                    p.rmdir()
                continue
            p.unlink()
            removed += 1
        return removed

    def write_parquet(self, rel: str, table: pa.Table) -> dict:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd", row_group_size=1 << 20)
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
        return {"file": rel, "rows": len(table)}

    def append(self, files: list[dict], kind: str, lo: int, hi: int, gen: int, table: pa.Table,
               schema: pa.Schema) -> None:
        """Add the rows of transactions lo..hi-1 to a file list; a small last file that ends at `lo` is merged
        with them into one new file (incremental builds after every block would otherwise leave thousands of
        tiny files). The replaced file stays on disk until the commit names the new one."""
        if files and files[-1]["hi"] == lo and files[-1]["rows"] < MERGE_ROWS:
            last = files.pop()
            table = pa.concat_tables([pq.read_table(self.root / last["file"]).cast(schema), table.cast(schema)])
            lo = last["lo"]
        f = self.write_parquet(_name(kind, lo, hi, gen), table)
        files.append({**f, "lo": lo, "hi": hi})

    def commit(self, state: dict) -> None:
        tmp = self.root / (STATE + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(state, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / STATE)  # <- commit point
        _fsync(self.root)
        self.cleanup(state)

    def read(self, files: list[dict], columns: list[str] | None = None, schema: pa.Schema | None = None) -> pa.Table:
        parts = [pq.read_table(self.root / f["file"], columns=columns) for f in files]
        if not parts:
            sch = schema if columns is None else pa.schema([schema.field(c) for c in columns])
            return pa.Table.from_batches([], schema=sch)
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def catalog_views(store_root: Path, schema: str = "btc") -> list[str]:
    """DuckDB statements for the cluster views ``<schema>.address_clusters``, ``cluster_unions``,
    ``cluster_refusals``, ``cluster_edges`` and ``coinjoins`` of the store at `store_root` (empty, typed
    views before the first build). Called by :func:`chaintrace.store.schema.btc.views`."""
    from chaintrace.store.schema._sql import scan

    root = Path(store_root) / "clusters"
    try:
        s = json.loads((root / STATE).read_text()) if (root / STATE).exists() else None
    except (OSError, json.JSONDecodeError):
        s = None
    files = _view_files(root, s if (s and s.get("format") == FORMAT) else None)
    return [f"CREATE OR REPLACE VIEW {schema}.{name} AS SELECT * FROM {scan(files[name], sch)}"
            for name, sch in VIEW_TABLES.items()]


def _view_files(root: Path, s: dict | None) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {k: [] for k in VIEW_TABLES}
    if not s or not s.get("union"):
        return out
    out["address_clusters"] = [root / s["address_clusters"]] if s.get("address_clusters") else []
    u = s["union"]
    out["cluster_unions"] = [root / f["file"] for f in u.get("unions", [])]
    out["cluster_refusals"] = [root / f["file"] for f in u.get("refusals", [])]
    out["cluster_edges"] = [root / f["file"] for layer in s["layers"].values() for f in layer["files"]]
    out["coinjoins"] = [root / f["file"] for f in s["coinjoins"]["files"]]
    return out


def view_files(ws: Workspace) -> dict[str, list[Path]]:
    """Committed Parquet files behind each catalog view (``btc.address_clusters``, ``btc.cluster_unions``...)."""
    cs = ClusterStore(ws)
    return _view_files(cs.root, cs.state())


# ---------------------------------------------------------------------------------------------- kernels

@nb.njit(cache=True, nogil=True)
def _mih_edges(t0, t1, tx_in, tx_coinbase, in_output, out_addr, mark, ea, eb, et):
    """Star edges (first input address, other distinct input address) of transactions t0..t1-1."""
    k = 0
    for t in range(t0, t1):
        if tx_coinbase[t]:
            continue
        first = -1
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o < 0:
                continue
            a = out_addr[o]
            if a < 0 or mark[a] == t:
                continue
            mark[a] = t
            if first < 0:
                first = a
            else:
                ea[k] = first
                eb[k] = a
                et[k] = t
                k += 1
    return k


@nb.njit(cache=True, nogil=True)
def _first_input_addr(t0, t1, tx_in, in_output, out_addr, out):
    for t in range(t0, t1):
        out[t - t0] = -1
        for i in range(tx_in[t], tx_in[t + 1]):
            o = in_output[i]
            if o >= 0 and out_addr[o] >= 0:
                out[t - t0] = out_addr[o]
                break


@nb.njit(cache=True, nogil=True)
def _bfs_path(n, indptr, nbr, eidx, src, dst, prev_node, prev_edge):
    """Shortest path src -> dst in an undirected CSR graph of n local nodes; fills prev arrays."""
    for i in range(n):
        prev_node[i] = -2
    q = np.empty(n, np.int64)
    head = 0
    tail = 0
    q[tail] = src
    tail += 1
    prev_node[src] = -1
    while head < tail:
        x = q[head]
        head += 1
        if x == dst:
            return True
        for k in range(indptr[x], indptr[x + 1]):
            y = nbr[k]
            if prev_node[y] == -2:
                prev_node[y] = x
                prev_edge[y] = eidx[k]
                q[tail] = y
                tail += 1
    return False


# ---------------------------------------------------------------------------------------------- tags

def _ids_of(ws: Workspace, addresses: list[str]) -> dict[str, int]:
    if not addresses:
        return {}
    con = ws.connect()
    con.register("q_addr", pa.table({"address": pa.array(addresses, pa.string())}))
    rows = con.execute("SELECT a.address, a.address_id FROM btc.addresses a JOIN q_addr q USING (address)").fetchall()
    return dict(rows)


_ROLE_WORDS = ("deposit addresses", "deposit address", "deposit", "hot wallets", "hot wallet", "cold wallets",
               "cold wallet", "reserve wallets", "reserve wallet", "reserves", "reserve", "wallets", "wallet", "payouts",
               "payout", "coinbase", "fee address", "address", "change")
_ROLE_RE = re.compile(r"(?:[\s:,-]+(?:" + "|".join(re.escape(w) for w in _ROLE_WORDS) + r"))+$")


def service_entity(t: Tag) -> str | None:
    """The service a tag names, for the tag-conflict guard and cluster labels: its actor (GraphSense's entity
    id) when given; else its label, lower-cased, without a trailing role ("Arbor Exchange deposit address"
    and "Arbor Exchange hot wallet" both name "arbor exchange"). None for non-service tags."""
    if not t.is_service:
        return None
    if t.actor and t.actor.strip():
        return t.actor.strip().lower()
    key = " ".join((t.label or "").lower().replace("_", " ").split())
    stripped = _ROLE_RE.sub("", key).strip(" -:,")
    return stripped or key or None


@dataclass
class ServiceLabels:
    entities: list[str]  # label index -> service entity
    by_address: dict[str, int]  # address -> label index (addresses naming a single service)
    ambiguous: list[str]  # addresses tagged as two or more different services (no guard label)
    fingerprint: str

    @classmethod
    def from_tags(cls, tags: list[Tag] | None) -> "ServiceLabels":
        per: dict[str, set[str]] = {}
        for t in tags or ():
            if t.chain != "btc":
                continue
            e = service_entity(t)
            if e:
                per.setdefault(t.address, set()).add(e)
        ambiguous = sorted(a for a, s in per.items() if len(s) > 1)
        single = {a: next(iter(s)) for a, s in per.items() if len(s) == 1}
        entities = sorted(set(single.values()))
        idx = {e: i for i, e in enumerate(entities)}
        h = hashlib.sha256()
        for a in sorted(per):
            h.update(f"{a}\t{','.join(sorted(per[a]))}\n".encode())
        return cls(entities, {a: idx[e] for a, e in single.items()}, ambiguous, h.hexdigest())

    def labels(self, ws: Workspace, n: int, start: int = 0, dtype=np.int32) -> np.ndarray:
        """Label per address id start..n-1 (-1: none)."""
        out = np.full(n - start, -1, dtype)
        if self.by_address and n > start:
            ids = _ids_of(ws, list(self.by_address))
            for a, i in ids.items():
                if start <= i < n:
                    out[i - start] = self.by_address[a]
        return out


def _load_tags(ws: Workspace, tagpack_paths=()) -> list[Tag]:
    try:
        from chaintrace.intel import load_tags
    except ImportError:
        from chaintrace.intel.api import load_tags
    return load_tags(ws, "btc", tagpack_paths)


# ---------------------------------------------------------------------------------------------- build

def _chunks(g: BtcGraph, lo: int, hi: int, per: int = CHUNK_INPUTS) -> list[tuple[int, int]]:
    """Split transactions lo..hi-1 into ranges of about `per` inputs."""
    out = []
    t = lo
    while t < hi:
        target = g.tx_in[t] + per
        e = int(np.searchsorted(g.tx_in, target, side="right")) - 1
        e = min(max(e, t + 1), hi)
        out.append((t, e))
        t = e
    return out


def _name(kind: str, lo: int, hi: int, gen: int) -> str:
    return f"{kind}/t{lo:012d}-{hi:012d}.g{gen:06d}.parquet"


def _heur_array(name: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int8)), pa.array([name])).cast(pa.string()) \
        if n else pa.array([], pa.string())


def _block_hash(ws: Workspace, height: int) -> str | None:
    t = ws.chain("btc").read("blocks", ["hash"], lo=height, hi=height)
    return t["hash"][0].as_py() if len(t) else None


@dataclass
class _Gen:
    """Per-build context for edge generation."""

    g: BtcGraph
    cfg: ClusterConfig
    coords: np.ndarray
    vsize: np.ndarray | None = None
    first_tx: np.ndarray | None = None
    peel: np.ndarray | None = None

    def change_inputs(self, ws: Workspace) -> None:
        if self.vsize is None:
            v = ws.chain("btc").read("transactions", ["vsize"])["vsize"]
            self.vsize = v.to_numpy().astype(np.int64) if len(v) else np.zeros(0, np.int64)
            self.first_tx = ch.address_first_tx(self.g)
            self.peel = is_peeling_chain(self.g)


def _gen_chunk(ctx: _Gen, lo: int, hi: int, mark: np.ndarray, want_mih: bool, want_change: bool):
    """Coinjoin rows, mih edges and change edges of transactions lo..hi-1 (Arrow tables)."""
    g, cfg = ctx.g, ctx.cfg
    cj = detect_coinjoins(g, cfg.coinjoin_params, lo, hi, ctx.coords)
    cj_tables = mih = chg = None
    if want_mih:
        hit = np.flatnonzero(cj.protocol)
        tx = lo + hit
        names = np.array([""] + [PROTOCOLS[k] for k in sorted(PROTOCOLS)], dtype=object)
        dets = [",".join(PROTOCOLS[c] for c in sorted(PROTOCOLS) if m >> (c - 1) & 1) for m in cj.mask[hit].tolist()]
        cj_tables = pa.table({
            "tx_id": pa.array(tx, pa.int64()), "height": pa.array(g.tx_height[tx], pa.int64()),
            "protocol": pa.array(names[cj.protocol[hit]].tolist(), pa.string()),
            "detectors": pa.array(dets, pa.string()), "partial": pa.array(cj.partial[hit], pa.bool_()),
            "denomination": pa.array(cj.denomination[hit], pa.int64()),
            "n_equal": pa.array(cj.n_equal[hit], pa.int32()),
            "n_inputs": pa.array(np.asarray(g.tx_in)[tx + 1] - np.asarray(g.tx_in)[tx], pa.int32()),
            "n_outputs": pa.array(np.asarray(g.tx_out)[tx + 1] - np.asarray(g.tx_out)[tx], pa.int32())},
            schema=COINJOINS)
        cap = int(g.tx_in[hi] - g.tx_in[lo])
        ea = np.empty(cap, np.int64)
        eb = np.empty(cap, np.int64)
        et = np.empty(cap, np.int64)
        k = _mih_edges(lo, hi, g.tx_in, g.tx_coinbase, g.in_output, g.out_addr, mark, ea, eb, et)
        ea, eb, et = ea[:k], eb[:k], et[:k]
        mih = pa.table({"a": ea, "b": eb, "tx_id": et, "height": np.asarray(g.tx_height)[et],
                        "heuristic": _heur_array("mih", k), "confidence": np.ones(k, np.float64),
                        "coinjoin": cj.protocol[et - lo]}, schema=EDGES)
    if want_change:
        masks = ch.change_masks(g, ctx.vsize, lo, hi, cfg.change_digits, ctx.first_tx, ctx.peel)
        change, conf = ch.unique_change(g, masks, cfg.change, lo, hi, skip=cj.protocol != 0,
                                        max_outputs=cfg.change_max_outputs)
        first = np.empty(hi - lo, np.int64)
        _first_input_addr(lo, hi, g.tx_in, g.in_output, g.out_addr, first)
        r = np.flatnonzero(change >= 0)
        a = first[r]
        b = np.asarray(g.out_addr)[change[r]]
        keep = (a >= 0) & (b >= 0) & (a != b)
        r, a, b = r[keep], a[keep], b[keep]
        tx = lo + r
        chg = pa.table({"a": a, "b": b, "tx_id": tx, "height": np.asarray(g.tx_height)[tx],
                        "heuristic": _heur_array(cfg.change_name, len(r)), "confidence": conf[r].astype(np.float64),
                        "coinjoin": np.zeros(len(r), np.uint8)}, schema=EDGES)
    return cj_tables, mih, chg


def _edges_for(cs: ClusterStore, state: dict, layer: str, lo: int, hi: int, cache: dict) -> pa.Table | None:
    """Stored edges of `layer` with lo <= tx_id < hi."""
    info = state["layers"].get(layer)
    if not info:
        return None
    parts = []
    for f in info["files"]:
        if f["hi"] <= lo or f["lo"] >= hi:
            continue
        t = cache.get(f["file"])
        if t is None:
            t = pq.read_table(cs.root / f["file"])
            cache.clear()
            cache[f["file"]] = t
        if f["lo"] < lo or f["hi"] > hi:
            t = t.filter(pc.and_(pc.greater_equal(t["tx_id"], lo), pc.less(t["tx_id"], hi)))
        parts.append(t)
    if not parts:
        return None
    return pa.concat_tables(parts) if len(parts) > 1 else parts[0]


def _resolve_txids(ws: Workspace, txids: list[str]) -> dict[str, int]:
    if not txids:
        return {}
    con = ws.connect()
    con.register("q_tx", pa.table({"txid": pa.array([t.lower() for t in txids], pa.string())}))
    return dict(con.execute("SELECT t.txid, t.tx_id FROM btc.transactions t JOIN q_tx USING (txid)").fetchall())


def txids_of(ws: Workspace, tx_ids) -> dict[int, str]:
    """txid strings of dense transaction ids."""
    ids = sorted({int(t) for t in tx_ids if t is not None and int(t) >= 0})
    if not ids:
        return {}
    con = ws.connect()
    con.register("q_ids", pa.table({"tx_id": pa.array(ids, pa.int64())}))
    return dict(con.execute("SELECT t.tx_id, t.txid FROM btc.transactions t JOIN q_ids USING (tx_id)").fetchall())


def build_clusters(ws: Workspace, config: ClusterConfig | None = None, *, tags: list[Tag] | None = None,
                   tagpack_paths=(), full: bool = False, progress: Progress = NULL) -> dict:
    """Build or update the address clusters of the workspace's Bitcoin store. Returns a report (dict).

    `tags` (default: every Bitcoin tag the intelligence registry knows, plus `tagpack_paths`) feed the
    service-tag guard only; they are not stored with the clusters. `full` recomputes everything.
    Incremental otherwise: only transactions added since the last build are read, unless the store was
    reorganised below the processed tip or the detector/change parameters changed.
    """
    cfg = config or ClusterConfig()
    t_start = time.time()
    store = ws.require_chain("btc")
    g = load_btc_graph(ws)
    if tags is None:
        tags = _load_tags(ws, tagpack_paths) if cfg.tag_guard else []
    svc = ServiceLabels.from_tags(tags if cfg.tag_guard else [])
    cs = ClusterStore(ws)
    notes: list[str] = []
    with cs.writer():
        old = cs.state()
        if old is not None and not full:
            tip = old.get("tip")
            if old["n_tx"] > g.n_tx or (tip and _block_hash(ws, tip["height"]) != tip["hash"]):
                notes.append("the store was reorganised below the last clustered block: full rebuild")
                full = True
        gen = (old["generation"] + 1) if old else 1
        state = json.loads(json.dumps(old)) if (old and not full) else {
            "format": FORMAT, "n_tx": 0, "layers": {}, "coinjoins": {"files": []}, "union": None,
            "exclusions": (old or {}).get("exclusions", {})}
        state["generation"] = gen
        layers = state["layers"]

        # ---- which layers need (re)generation, from which tx
        mih_from = None
        if "mih" not in layers or layers["mih"]["spec"] != cfg.mih_spec():
            if "mih" in layers:
                notes.append("CoinJoin detector parameters changed: layer 0 regenerated")
            layers["mih"] = {"spec": cfg.mih_spec(), "files": [], "n_tx": 0}
            state["coinjoins"] = {"files": []}
            mih_from = 0
        elif layers["mih"]["n_tx"] < g.n_tx:
            mih_from = layers["mih"]["n_tx"]
        change_from = None
        if "change" in cfg.heuristics:
            if "change" not in layers or layers["change"]["spec"] != cfg.change_spec():
                if "change" in layers:
                    notes.append("change heuristics changed: layer 1 regenerated")
                layers["change"] = {"spec": cfg.change_spec(), "files": [], "n_tx": 0}
                change_from = 0
            elif layers["change"]["n_tx"] < g.n_tx:
                change_from = layers["change"]["n_tx"]

        # ---- generate edges
        ctx = _Gen(g, cfg, coordinator_address_ids(ws, cfg.coinjoin_params) if g.network == "main"
                   else np.zeros(0, np.int64))
        if change_from is not None:
            ctx.change_inputs(ws)
        starts = [x for x in (mih_from, change_from) if x is not None]
        gen_stats = Counter()
        if starts:
            lo0 = min(starts)
            mark = np.full(g.n_addresses, -1, np.int64)
            chunks = _chunks(g, lo0, g.n_tx)
            progress.start("cluster: edges", g.n_tx - lo0, "transactions")
            for lo, hi in chunks:
                want_mih = mih_from is not None and hi > mih_from
                want_chg = change_from is not None and hi > change_from
                a = max(lo, mih_from) if want_mih else hi
                c0 = max(lo, change_from) if want_chg else hi
                cj_t = mih_t = chg_t = None
                if want_mih and want_chg and a == c0:
                    cj_t, mih_t, chg_t = _gen_chunk(ctx, a, hi, mark, True, True)
                else:
                    if want_mih:
                        cj_t, mih_t, _ = _gen_chunk(ctx, a, hi, mark, True, False)
                    if want_chg:
                        _, _, chg_t = _gen_chunk(ctx, c0, hi, mark, False, True)
                if chg_t is not None:
                    cs.append(layers["change"]["files"], "layers/change", c0, hi, gen, chg_t, EDGES)
                    layers["change"]["n_tx"] = hi
                    gen_stats["change_edges"] += len(chg_t)
                if mih_t is not None:
                    cs.append(layers["mih"]["files"], "layers/mih", a, hi, gen, mih_t, EDGES)
                    layers["mih"]["n_tx"] = hi
                    cs.append(state["coinjoins"]["files"], "coinjoins", a, hi, gen, cj_t, COINJOINS)
                    gen_stats["mih_edges"] += len(mih_t)
                    gen_stats["coinjoins"] += len(cj_t)
                progress.advance(hi - lo)
            progress.finish()
        state["n_tx"] = g.n_tx
        state["store_commit"] = g.commit
        state["tip"] = store.tip and {"height": store.tip["height"], "hash": store.tip["hash"]}

        # ---- union pass (incremental when nothing but new transactions changed)
        excl = state.get("exclusions", {})
        excl_ids = _resolve_txids(ws, list(excl))
        union_key = {**cfg.describe(), "change_spec": cfg.change_spec() if "change" in cfg.heuristics else None,
                     "mih_spec": cfg.mih_spec(), "tags": svc.fingerprint,
                     "exclusions": sorted(excl_ids.values())}
        u = state.get("union")
        redo = (u is None or u["key"] != union_key or mih_from == 0 or change_from == 0)
        if redo and u is not None and not full and mih_from != 0 and change_from != 0:
            notes.append("guards, heuristics, tags or exclusions changed: clusters recomputed from the stored edges")
        n_addr = g.n_addresses
        if not redo and not starts and u["n_tx"] == g.n_tx and old.get("n_addresses") == n_addr:
            return {"workspace": str(ws.path), "generation": old["generation"], "up_to_date": True,
                    "config": cfg.describe(), "store_commit": g.commit, "transactions": g.n_tx,
                    "addresses": n_addr, "incremental": True, "new_transactions": 0, "edges_generated": {},
                    **old.get("stats", {}), "edges_by_status": dict(sorted(u.get("counts", {}).items())),
                    "alarms": u.get("alarms", [])[-20:], "notes": notes,
                    "heuristics": [cfg.change_name if h == "change" else h for h in cfg.heuristics],
                    "seconds": round(time.time() - t_start, 3)}
        if redo:
            uf = uf_mod.UnionFind(n_addr)
            label = svc.labels(ws, n_addr) if svc.entities else np.zeros(0, np.int32)
            alarm_state = np.array([0, 0, -1, 0, 0, -1], np.int64)
            u = {"key": union_key, "n_tx": 0, "unions": [], "refusals": [], "alarms": [], "entities": svc.entities,
                 "counts": {}}
            u_from = 0
        else:
            d = cs.root / u["uf"]
            uf = uf_mod.UnionFind.from_array(np.load(d / "uf.npy"))
            old_n = len(uf)
            uf.grow(n_addr)
            label = np.load(d / "label.npy") if (d / "label.npy").exists() else np.zeros(0, np.int32)
            if svc.entities:
                label = np.concatenate([label, svc.labels(ws, n_addr, old_n)]) if len(label) else \
                    svc.labels(ws, n_addr)
            alarm_state = np.array(u["alarm_state"], np.int64)
            u_from = u["n_tx"]
        label = label.astype(np.int32, copy=False)
        counts = Counter(u.get("counts", {}))
        alarms_raw: list[tuple] = []
        selected = [cfg.change_name if h == "change" else h for h in cfg.heuristics]
        windows = [(f["lo"], f["hi"]) for f in layers["mih"]["files"] if f["hi"] > u_from]
        cache_m: dict = {}
        cache_c: dict = {}
        progress.start("cluster: unions", g.n_tx - u_from, "transactions")
        for lo, hi in windows:
            lo = max(lo, u_from)
            parts = []
            if "mih" in cfg.heuristics:
                t = _edges_for(cs, state, "mih", lo, hi, cache_m)
                if t is not None:
                    parts.append(t)
            if "change" in cfg.heuristics:
                t = _edges_for(cs, state, "change", lo, hi, cache_c)
                if t is not None:
                    parts.append(t)
            if parts:
                e = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
                if len(parts) > 1:
                    e = e.take(pa.array(np.argsort(e["tx_id"].to_numpy(), kind="stable")))
                _union_window(cs, gen, lo, hi, e, uf, label, svc, excl, excl_ids, cfg, alarm_state, u, counts,
                              alarms_raw)
            progress.advance(hi - lo)
        progress.finish()
        alarms_arr = np.zeros((uf_mod.MAX_ALARMS, 5), np.int64)
        before = int(alarm_state[3])
        uf_mod.close_block(alarm_state, alarms_arr, cfg.alarm_growth, cfg.alarm_min_size)
        if alarm_state[3] > before:
            alarms_raw.append(tuple(int(x) for x in alarms_arr[0]))
        u["n_tx"] = g.n_tx
        u["alarm_state"] = [int(x) for x in alarm_state]
        if alarms_raw:
            names = txids_of(ws, [r[3] for r in alarms_raw])
            for h, b0, b1, tx, jump in alarms_raw:
                u["alarms"].append({"height": h, "largest_before": b0, "largest_after": b1, "tx_id": tx,
                                    "txid": names.get(tx), "growth": jump})
        u["counts"] = dict(counts)

        # ---- cluster ids, sizes, write-back
        progress.start("cluster: write-back", n_addr, "addresses")
        cid, csize = uf.clusters()
        ud = f"uf.g{gen:06d}"
        (cs.root / ud).mkdir(parents=True, exist_ok=True)
        for name, arr in (("uf", uf.par), ("cluster_of", cid), ("cluster_size", csize),
                          ("label", label)):
            np.save(cs.root / ud / f"{name}.npy", arr)
        u["uf"] = ud
        u["entities"] = svc.entities
        ac = pa.table({"address_id": np.arange(n_addr, dtype=np.int64), "cluster_id": cid.astype(np.int64),
                       "cluster_size": csize.astype(np.int64)}, schema=ADDRESS_CLUSTERS)
        state["address_clusters"] = cs.write_parquet(f"address_clusters.g{gen:06d}.parquet", ac)["file"]
        progress.advance(n_addr)
        progress.finish()
        state["union"] = u
        state["config"] = cfg.describe()
        state["n_addresses"] = n_addr
        st = _stats(uf, cid, csize, n_addr)
        st["ambiguous_service_addresses"] = len(svc.ambiguous)
        state["stats"] = st
        state["built_at"] = int(time.time())
        cs.commit(state)
    _refresh_views(ws)
    return {
        "workspace": str(ws.path), "generation": gen, "config": cfg.describe(), "store_commit": g.commit,
        "transactions": g.n_tx, "addresses": n_addr, "incremental": not redo,
        "new_transactions": g.n_tx - u_from, "edges_generated": dict(gen_stats), **st,
        "edges_by_status": dict(sorted(counts.items())), "alarms": u["alarms"][-20:], "notes": notes,
        "heuristics": selected, "seconds": round(time.time() - t_start, 3)}


def _refresh_views(ws: Workspace) -> None:
    """Best effort: the persistent catalog's views (queries through Workspace.connect() never need them)."""
    import duckdb

    try:
        ws.refresh_catalog_views()
    except duckdb.Error:
        pass  # the catalog is open in this process or another one; it is refreshed at the next commit


def _union_window(cs, gen, lo, hi, e, uf, label, svc, excl, excl_ids, cfg, alarm_state, u, counts, alarms_raw):
    n = len(e)
    dt = uf.dtype
    a = e["a"].to_numpy().astype(dt)
    b = e["b"].to_numpy().astype(dt)
    tx = e["tx_id"].to_numpy()
    height = e["height"].to_numpy()
    cj = e["coinjoin"].to_numpy()
    blocked = np.zeros(n, np.uint8)
    if cfg.coinjoin == "skip":
        blocked[cj != 0] = 1
    if excl_ids:
        ex = np.isin(tx, np.fromiter(excl_ids.values(), np.int64))
        blocked[ex] = 2
    status = np.zeros(n, np.uint8)
    sa = np.zeros(n, np.int64)
    sb = np.zeros(n, np.int64)
    la = np.full(n, -1, np.int32)
    lb = np.full(n, -1, np.int32)
    alarms = np.zeros((1024, 5), np.int64)
    before = int(alarm_state[3])
    uf_mod.union_guarded(uf.par, label, a, b, tx, height, blocked,
                         cfg.max_merge_size, status, sa, sb, la, lb, cfg.alarm_growth, cfg.alarm_min_size,
                         alarm_state, alarms)
    for r in alarms[:min(int(alarm_state[3]) - before, len(alarms))]:
        alarms_raw.append(tuple(int(x) for x in r))
    heur = e["heuristic"]
    for code, name in uf_mod.STATUS_NAMES.items():
        m = status == code
        if not m.any():
            continue
        for vc in pc.value_counts(pc.filter(heur, pa.array(m))).to_pylist():
            counts[f"{name}:{vc['values']}"] += vc["counts"]
    m = status == uf_mod.UNION
    if m.any():
        sel = np.flatnonzero(m)
        t = pa.table({"a": a[sel].astype(np.int64), "b": b[sel].astype(np.int64), "tx_id": tx[sel],
                      "height": height[sel], "heuristic": heur.take(pa.array(sel)),
                      "confidence": e["confidence"].take(pa.array(sel)), "size_a": sa[sel], "size_b": sb[sel]},
                     schema=UNIONS)
        cs.append(u["unions"], "unions", lo, hi, gen, t, UNIONS)
    ref = np.flatnonzero((status == uf_mod.REFUSED_BLOCKED) | (status == uf_mod.REFUSED_SIZE)
                         | (status == uf_mod.REFUSED_LABEL))
    if len(ref):
        st = status[ref]
        reason = np.where(st == uf_mod.REFUSED_SIZE, "size_limit",
                          np.where(st == uf_mod.REFUSED_LABEL, "tag_conflict",
                                   np.where(blocked[ref] == 1, "coinjoin", "excluded"))).astype(object)
        detail = np.full(len(ref), None, dtype=object)
        cjr = np.flatnonzero(reason == "coinjoin")
        if len(cjr):
            detail[cjr] = np.array(["", *[PROTOCOLS[k] for k in sorted(PROTOCOLS)]], dtype=object)[cj[ref[cjr]]]
        tg = np.flatnonzero(reason == "tag_conflict")
        for j in tg:
            k = ref[j]
            detail[j] = f"{svc.entities[la[k]]} | {svc.entities[lb[k]]}"
        if excl_ids:
            by_id = {v: k for k, v in excl_ids.items()}
            for j in np.flatnonzero(reason == "excluded"):
                txid = by_id.get(int(tx[ref[j]]))
                detail[j] = (excl.get(txid) or {}).get("reason") or "excluded by user"
        sz = np.flatnonzero(reason == "size_limit")
        for j in sz:
            detail[j] = f"both clusters >= {cfg.max_merge_size} addresses"
        t = pa.table({"a": a[ref].astype(np.int64), "b": b[ref].astype(np.int64), "tx_id": tx[ref],
                      "height": height[ref], "heuristic": heur.take(pa.array(ref)),
                      "confidence": e["confidence"].take(pa.array(ref)),
                      "reason": pa.array(reason.tolist(), pa.string()), "detail": pa.array(detail.tolist(), pa.string()),
                      "size_a": sa[ref], "size_b": sb[ref]}, schema=REFUSALS)
        cs.append(u["refusals"], "refusals", lo, hi, gen, t, REFUSALS)


def _stats(uf, cid, csize, n_addr) -> dict:
    if n_addr == 0:
        return {"clusters": 0, "multi_address_clusters": 0, "largest_cluster": None, "largest_cluster_size": 0,
                "largest_cluster_share": 0.0, "clustered_addresses": 0}
    roots = cid == np.arange(n_addr, dtype=cid.dtype)
    sizes = csize[roots]
    big = int(np.argmax(sizes))
    return {"clusters": int(roots.sum()), "multi_address_clusters": int((sizes > 1).sum()),
            "largest_cluster": int(np.flatnonzero(roots)[big]), "largest_cluster_size": int(sizes[big]),
            "largest_cluster_share": round(float(sizes[big]) / n_addr, 6),
            "clustered_addresses": int((csize > 1).sum())}


# ---------------------------------------------------------------------------------------------- read side

class Clusters:
    """Read access to the committed clusters (memory-mapped arrays)."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.cs = ClusterStore(ws)
        self.state = self.cs.require()
        d = self.cs.root / self.state["union"]["uf"]
        self.cluster_of = np.load(d / "cluster_of.npy", mmap_mode="r")
        self.cluster_size_of = np.load(d / "cluster_size.npy", mmap_mode="r")
        self.par = np.load(d / "uf.npy", mmap_mode="r")  # non-roots point at their root; roots hold -size
        self.n = len(self.cluster_of)

    def cluster_size(self, cid: int) -> int:
        return int(self.cluster_size_of[cid])

    def members(self, cid: int) -> np.ndarray:
        return np.flatnonzero(np.asarray(self.cluster_of) == cid)

    def of(self, address_ids: np.ndarray) -> np.ndarray:
        """Cluster id per address id (an address newer than the last build is its own cluster)."""
        ids = np.asarray(address_ids, np.int64)
        out = ids.copy()
        ok = (ids >= 0) & (ids < self.n)
        out[ok] = np.asarray(self.cluster_of)[ids[ok]]
        return out

    def unions_touching(self, members_mask: np.ndarray) -> pa.Table:
        t = self.cs.read(self.state["union"]["unions"], schema=UNIONS)
        if not len(t):
            return t
        a = t["a"].to_numpy()
        return t.filter(pa.array(members_mask[a]))

    def refusals_touching(self, members_mask: np.ndarray) -> pa.Table:
        t = self.cs.read(self.state["union"]["refusals"], schema=REFUSALS)
        if not len(t):
            return t
        a, b = t["a"].to_numpy(), t["b"].to_numpy()
        return t.filter(pa.array(members_mask[a] | members_mask[b]))


def _resolve_ref(ws: Workspace, c: Clusters, ref: str) -> tuple[int, int | None, str | None]:
    """(cluster id, address id or None, address or None) of an address or cluster id argument."""
    ref = ref.strip()
    if ref.isdigit():
        cid = int(ref)
        if cid >= c.n:
            raise UserError(f"cluster {cid} does not exist (cluster ids are address ids below {c.n})")
        if int(c.cluster_of[cid]) != cid:
            raise UserError(f"{cid} is not a cluster id: address id {cid} belongs to cluster "
                            f"{int(c.cluster_of[cid])}")
        return cid, None, None
    ids = _ids_of(ws, [ref])
    if ref not in ids:
        raise UserError(f"address {ref} does not appear in the store")
    aid = ids[ref]
    if aid >= c.n:
        return aid, aid, ref
    return int(c.cluster_of[aid]), aid, ref


def _addr_strings(ws: Workspace, ids) -> dict[int, str]:
    ids = sorted({int(i) for i in ids if int(i) >= 0})
    if not ids:
        return {}
    con = ws.connect()
    con.register("q_aid", pa.table({"address_id": pa.array(ids, pa.int64())}))
    return dict(con.execute("SELECT a.address_id, a.address FROM btc.addresses a JOIN q_aid USING (address_id)")
                .fetchall())


def _tag_groups(tags: list[Tag], sample: int) -> list[dict]:
    """Tags on members grouped by (label, category, actor, source): count and a few addresses each."""
    groups: dict[tuple, list[str]] = {}
    conf: dict[tuple, int | None] = {}
    for t in sorted(tags, key=lambda t: (t.address, t.label or "")):
        k = (t.label, t.category, t.actor, t.source)
        groups.setdefault(k, []).append(t.address)
        conf[k] = t.confidence
    out = [{"label": k[0], "category": k[1], "actor": k[2], "source": k[3], "confidence": conf[k],
            "service": service_entity(Tag("btc", "", k[0] or "", k[1], k[2])), "count": len(v),
            "addresses": v[:max(1, min(sample, 5))]} for k, v in groups.items()]
    return sorted(out, key=lambda g: (-g["count"], g["label"] or ""))


def cluster_info(ws: Workspace, ref: str, *, sample: int = 20, tags: list[Tag] | None = None, tagpack_paths=(),
                 why: str | None = None) -> dict:
    """Everything about the cluster of an address (or a cluster id): size, sample of addresses, the tags
    on any member (service conflicts reported, never resolved), balance, received/sent, first/last seen,
    unions by heuristic, refusals touching it, and optionally why `why` is (or is not) in it."""
    c = Clusters(ws)
    cid, aid, addr = _resolve_ref(ws, c, ref)
    g = load_btc_graph(ws)
    if cid < c.n:
        members = c.members(cid)
    else:
        members = np.array([cid], np.int64)
    mask = np.zeros(max(g.n_addresses, c.n), np.bool_)
    mask[members] = True
    # money: outputs paid to members (exact integer sums)
    out_addr = np.asarray(g.out_addr)
    om = np.zeros(len(out_addr), np.bool_)
    has = out_addr >= 0
    om[has] = mask[out_addr[has]]
    oid = np.flatnonzero(om)
    vals = np.asarray(g.out_value)[oid]
    spent = np.asarray(g.out_spender_tx)[oid] >= 0
    received = int(vals.sum(dtype=np.int64))
    balance = int(vals[~spent].sum(dtype=np.int64))
    rtx = np.asarray(g.out_tx)[oid]
    stx = np.asarray(g.out_spender_tx)[oid][spent]
    txs = np.unique(np.concatenate([rtx, stx])) if len(oid) else np.zeros(0, np.int64)
    times = np.asarray(g.tx_time)[txs]
    heights = np.asarray(g.tx_height)[txs]
    sample_ids = list(members[:sample])
    if aid is not None and aid not in sample_ids:
        sample_ids = [aid] + sample_ids[:max(0, sample - 1)]
    names = _addr_strings(ws, sample_ids)
    # tags on members
    if tags is None:
        tags = _load_tags(ws, tagpack_paths)
    btags = [t for t in tags if t.chain == "btc"]
    tag_ids = _ids_of(ws, sorted({t.address for t in btags}))
    member_tags = [t for t in btags if t.address in tag_ids and tag_ids[t.address] < len(mask)
                   and mask[tag_ids[t.address]]]
    services: dict[str, list[str]] = {}
    for t in member_tags:
        e = service_entity(t)
        if e:
            services.setdefault(e, []).append(t.address)
    conflicts = [{"service": e, "addresses": sorted(set(v))} for e, v in sorted(services.items())] \
        if len(services) > 1 else []
    unions = c.unions_touching(mask)
    refusals = c.refusals_touching(mask)
    by_heur = Counter(unions["heuristic"].to_pylist()) if len(unions) else Counter()
    ref_reasons = Counter(refusals["reason"].to_pylist()) if len(refusals) else Counter()
    ref_sample = refusals.slice(0, 10).to_pylist() if len(refusals) else []
    txn = txids_of(ws, [r["tx_id"] for r in ref_sample])
    ref_addr = _addr_strings(ws, [r["a"] for r in ref_sample] + [r["b"] for r in ref_sample])
    for r in ref_sample:
        r["txid"] = txn.get(r["tx_id"])
        r["a"], r["b"] = ref_addr.get(r["a"], r["a"]), ref_addr.get(r["b"], r["b"])
    out = {
        "cluster_id": int(cid), "size": int(len(members)), "queried_address": addr,
        "built_generation": c.state["generation"], "store_commit": c.state.get("store_commit"),
        "stale": c.state.get("store_commit") != g.commit,
        "addresses": [names.get(int(i), str(i)) for i in sample_ids],
        "tagged_addresses": len({t.address for t in member_tags}),
        "tags": _tag_groups(member_tags, sample),
        "services": sorted(services), "conflicts": conflicts,
        "label": (sorted(services)[0] if len(services) == 1 else ("CONFLICT: " + " / ".join(sorted(services))
                                                                   if services else None)),
        "balance": balance, "received": received, "sent": received - balance,
        "outputs_received": int(len(oid)), "tx_count": int(len(txs)),
        "first_seen": int(times.min()) if len(txs) else None, "last_seen": int(times.max()) if len(txs) else None,
        "first_height": int(heights.min()) if len(txs) else None,
        "last_height": int(heights.max()) if len(txs) else None,
        "unions_by_heuristic": dict(by_heur), "refusals_by_reason": dict(ref_reasons), "refusals": ref_sample,
        "config": c.state.get("config"),
    }
    if why:
        out["why"] = explain(ws, addr or names.get(int(cid)) or _addr_strings(ws, [cid])[cid], why, clusters=c)
    return out


def explain(ws: Workspace, address_a: str, address_b: str, *, clusters: Clusters | None = None) -> dict:
    """Why two addresses are in one cluster: the chain of unions (txid, heuristic, confidence) linking them
    (a shortest path in the union forest). When they are not, the refusals between their clusters, if any."""
    c = clusters or Clusters(ws)
    ids = _ids_of(ws, [address_a, address_b])
    for x in (address_a, address_b):
        if x not in ids:
            raise UserError(f"address {x} does not appear in the store")
    ia, ib = ids[address_a], ids[address_b]
    ca, cb = (int(c.of(np.array([ia]))[0]), int(c.of(np.array([ib]))[0]))
    out: dict = {"a": address_a, "b": address_b, "cluster_a": ca, "cluster_b": cb, "same_cluster": ca == cb,
                 "path": [], "refusals": []}
    if ia == ib:
        return out
    if ca != cb:
        ma = np.zeros(c.n, np.bool_)
        mb = np.zeros(c.n, np.bool_)
        if ca < c.n:
            ma[c.members(ca)] = True
        if cb < c.n:
            mb[c.members(cb)] = True
        t = c.cs.read(c.state["union"]["refusals"], schema=REFUSALS)
        if len(t):
            a, b = t["a"].to_numpy(), t["b"].to_numpy()
            sel = (ma[a] & mb[b]) | (mb[a] & ma[b])
            rows = t.filter(pa.array(sel)).slice(0, 50).to_pylist()
            names = txids_of(ws, [r["tx_id"] for r in rows])
            an = _addr_strings(ws, [r["a"] for r in rows] + [r["b"] for r in rows])
            for r in rows:
                out["refusals"].append({"txid": names.get(r["tx_id"]), "height": r["height"],
                                        "heuristic": r["heuristic"], "reason": r["reason"], "detail": r["detail"],
                                        "a": an.get(r["a"]), "b": an.get(r["b"])})
        return out
    members = c.members(ca)
    mask = np.zeros(c.n, np.bool_)
    mask[members] = True
    u = c.unions_touching(mask)
    ea, eb = u["a"].to_numpy(), u["b"].to_numpy()
    nodes, inv = np.unique(np.concatenate([ea, eb]), return_inverse=True)
    m = len(ea)
    src_l, dst_l = inv[:m], inv[m:]
    both_s = np.concatenate([src_l, dst_l])
    both_d = np.concatenate([dst_l, src_l])
    eidx = np.concatenate([np.arange(m), np.arange(m)])
    order = np.argsort(both_s, kind="stable")
    indptr = np.zeros(len(nodes) + 1, np.int64)
    np.add.at(indptr, both_s + 1, 1)
    indptr = np.cumsum(indptr)
    s = int(np.searchsorted(nodes, ia))
    d = int(np.searchsorted(nodes, ib))
    prev_node = np.empty(len(nodes), np.int64)
    prev_edge = np.empty(len(nodes), np.int64)
    found = _bfs_path(len(nodes), indptr, both_d[order].astype(np.int64), eidx[order].astype(np.int64), s, d,
                      prev_node, prev_edge)
    if not found:  # cannot happen for a consistent state
        raise UserError(f"{address_a} and {address_b} share cluster {ca} but no union path was found; rebuild "
                        "with `chaintrace cluster build --full`")
    steps = []
    x = d
    while prev_node[x] != -1:
        steps.append(int(prev_edge[x]))
        x = int(prev_node[x])
    steps.reverse()
    rows = u.take(pa.array(steps)).to_pylist()
    names = txids_of(ws, [r["tx_id"] for r in rows])
    an = _addr_strings(ws, [r["a"] for r in rows] + [r["b"] for r in rows])
    cur = ia
    for r in rows:
        nxt = r["b"] if r["a"] == cur else r["a"]
        out["path"].append({"from": an.get(cur), "to": an.get(nxt), "txid": names.get(r["tx_id"]),
                            "height": r["height"], "heuristic": r["heuristic"], "confidence": r["confidence"],
                            "evidence": ("co-spent as inputs of" if r["heuristic"] == "mih"
                                         else "change output of a transaction spending")
                            })
        cur = nxt
    return out


def exclude(ws: Workspace, txids: list[str], reason: str | None = None, *, undo: bool = False,
            config: ClusterConfig | None = None, progress: Progress = NULL) -> dict:
    """Refuse (or, with `undo`, allow again) every union of the given transactions and recompute the
    clusters from the stored edges: the way to undo a collapse. Unknown txids are an error."""
    cs = ClusterStore(ws)
    st = cs.require()
    norm = [t.strip().lower() for t in txids if t.strip()]
    found = _resolve_txids(ws, norm)
    missing = [t for t in norm if t not in found]
    if missing:
        raise UserError(f"transaction(s) not in the store: {', '.join(missing)}")
    with cs.writer():
        st = cs.require()
        ex = dict(st.get("exclusions", {}))
        for t in norm:
            if undo:
                ex.pop(t, None)
            else:
                ex[t] = {"reason": reason or "excluded by user", "at": int(time.time())}
        st["exclusions"] = ex
        cs.commit(st)
    cfg = config or config_from_state(st)
    rep = build_clusters(ws, cfg, progress=progress)
    rep["exclusions"] = ex
    return rep


def config_from_state(st: dict) -> ClusterConfig:
    """The configuration the committed clusters were built with."""
    c = st.get("config") or {}
    heur = ",".join(c.get("heuristics", ["mih"]))
    return ClusterConfig.parse(heur, detectors=",".join(c.get("detectors", CJ_DETECTORS)),
                               activation_heights=c.get("activation_heights", True),
                               coinjoin=c.get("coinjoin", "skip"), max_merge_size=c.get("max_merge_size", 100_000),
                               change_digits=c.get("change_digits", 6),
                               change_max_outputs=c.get("change_max_outputs", 10),
                               tag_guard=c.get("tag_guard", True), alarm_growth=c.get("alarm_growth", 0.5),
                               alarm_min_size=c.get("alarm_min_size", 1000))


def cluster_stats(ws: Workspace, top: int = 10, tags: list[Tag] | None = None) -> dict:
    """Summary of the committed clusters: counts, largest clusters (with their service label), edges and
    refusals by heuristic and reason, CoinJoins by protocol, growth alarms."""
    c = Clusters(ws)
    st = c.state
    roots = np.flatnonzero(np.asarray(c.cluster_of) == np.arange(c.n))
    sizes = np.asarray(c.cluster_size_of)[roots] if len(roots) else np.zeros(0, np.int64)
    order = np.argsort(-sizes, kind="stable")[:top]
    d = c.cs.root / st["union"]["uf"]
    label = np.load(d / "label.npy") if (d / "label.npy").exists() else np.zeros(0, np.int32)
    ents = st["union"].get("entities", [])
    names = _addr_strings(ws, roots[order])
    largest = []
    for i in order:
        r = int(roots[i])
        root = r if int(c.par[r]) < 0 else int(c.par[r])
        lab = int(label[root]) if len(label) else -1
        largest.append({"cluster_id": r, "size": int(sizes[i]), "first_address": names.get(r),
                        "service": ents[lab] if lab >= 0 else None})
    cj = c.cs.read(st["coinjoins"]["files"], ["protocol"], COINJOINS)
    return {"generation": st["generation"], "store_commit": st.get("store_commit"), "transactions": st["n_tx"],
            "config": st.get("config"), **st.get("stats", {}), "largest": largest,
            "edges_by_status": st["union"].get("counts", {}),
            "coinjoins_by_protocol": dict(Counter(cj["protocol"].to_pylist())) if len(cj) else {},
            "alarms": st["union"].get("alarms", []), "exclusions": st.get("exclusions", {})}


def coinjoin_list(ws: Workspace, protocol: str | None = None, limit: int = 100) -> list[dict]:
    """Detected CoinJoin transactions (txid, height, protocol, detectors, denomination, participants)."""
    cs = ClusterStore(ws)
    st = cs.require()
    t = cs.read(st["coinjoins"]["files"], schema=COINJOINS)
    if protocol:
        if protocol not in CJ_DETECTORS:
            raise UserError(f"unknown protocol {protocol!r}; known: {', '.join(CJ_DETECTORS)}")
        t = t.filter(pc.equal(t["protocol"], protocol))
    rows = t.slice(0, limit).to_pylist()
    names = txids_of(ws, [r["tx_id"] for r in rows])
    for r in rows:
        r["txid"] = names.get(r["tx_id"])
    return rows


# ---------------------------------------------------------------------------------------------- tracing

def cluster_expander(ws: Workspace, graph=None):
    """For ``chaintrace.trace.sinks``: a function mapping tagged address ids to all members of their clusters.

    ``expand(address_ids, keys=None) -> (member_ids, origin)``: for each given address id, every member of
    its cluster, with ``origin[j]`` the position of the given id that member j belongs with. When `keys` (one
    entity key per given id) name two different entities inside one cluster, that cluster is *not*
    expanded (a conflict is never silently resolved): its ids are listed in ``expand.conflicts``.
    ``expand.entity_key`` (:func:`service_entity`) tells callers how to key a tag so that one service's
    differently labelled tags count as one entity.
    Returns None when no clusters were built.
    """
    if not ClusterStore(ws).exists:
        return None
    c = Clusters(ws)

    def expand(address_ids, keys=None):
        ids = np.asarray(address_ids, np.int64)
        cids = c.of(ids)
        ok = np.ones(len(ids), np.bool_)
        expand.conflicts = []
        if keys is not None:
            keys = np.asarray(keys)
            first_key: dict[int, object] = {}
            bad: set[int] = set()
            for cid, k in zip(cids.tolist(), keys.tolist()):
                if cid in first_key and first_key[cid] != k:
                    bad.add(cid)
                first_key.setdefault(cid, k)
            if bad:
                ok = ~np.isin(cids, np.fromiter(bad, np.int64))
                expand.conflicts = sorted(bad)
        # one origin per cluster (the first given id in it)
        uniq, first_pos = np.unique(cids[ok], return_index=True)
        pos = np.flatnonzero(ok)[first_pos]
        co = np.asarray(c.cluster_of)
        in_range = uniq < c.n
        sel = np.isin(co, uniq[in_range])
        members = np.flatnonzero(sel)
        origin = pos[np.searchsorted(uniq, co[members])] if len(members) else np.zeros(0, np.int64)
        return members, origin

    expand.conflicts = []
    # tags naming one service with different labels ("X deposit address", "X hot wallet") are one entity
    expand.entity_key = service_entity
    return expand


def _register_expander() -> None:
    try:
        from chaintrace.trace import sinks
    except ImportError:
        return
    sinks.CLUSTER_EXPANDERS.setdefault("btc", cluster_expander)


_register_expander()
