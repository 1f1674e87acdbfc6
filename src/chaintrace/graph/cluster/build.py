"""Building the clusters (:func:`build_clusters`) and undoing unions (:func:`exclude`): the orchestration
between the store, the pure steps (:mod:`.edges`, :mod:`.unionpass`, :mod:`.index`) and the committed files
(:mod:`.storage`).

A build, under the single-writer lock:

1. plans what to (re)generate: a layer whose parameters changed is regenerated from the first transaction,
   otherwise only the transactions added since the last build are read (a reorganisation below the
   clustered tip rebuilds everything);
2. generates CoinJoin rows and candidate edges per chunk of about :data:`CHUNK_INPUTS` inputs;
3. indexes the outputs added since the last build by address (for ``cluster show``);
4. unions the stored edges of the selected layers in transaction order into the union-find: from scratch
   when guards, heuristics, tags or exclusions changed, else only the new transactions' edges into the saved
   union-find (the result equals a full rebuild: edges are always processed in transaction order);
5. writes the union-find, cluster ids and sizes, members by cluster and ``address_clusters.parquet``, and
   commits ``state.json``.

The change layer's dynamic heuristics (locktime, peeling_chain, fixed_fee) and every change link's
confidence depend on later spends. An incremental build evaluates the new transactions with the spends
known then and does not revisit older links; it counts the older links the new blocks would alter
(:func:`.edges.change_drift`), reports them (``change_drift``) and says so when a link itself would change;
``--full`` re-evaluates everything.
"""
from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np
import pyarrow as pa

from chaintrace.detect.coinjoin import detect_coinjoins
from chaintrace.errors import UserError
from chaintrace.graph import unionfind as uf_mod
from chaintrace.graph.btc import BtcGraph, load_btc_graph
from chaintrace.graph.cluster.config import ClusterConfig, config_from_state
from chaintrace.graph.cluster.edges import ChangeInputs, change_drift, change_edges, coinjoin_arrays, \
    coinjoin_table, mih_edges
from chaintrace.graph.cluster.index import group_by_cluster, index_outputs
from chaintrace.graph.cluster.lookup import block_hash, coordinator_address_ids, resolve_txids, txids_of
from chaintrace.graph.cluster.services import ServiceLabels, load_tags
from chaintrace.graph.cluster.summary import partition_stats
from chaintrace.graph.cluster.unionpass import Guards, union_window
from chaintrace.model.tags import Tag
from chaintrace.progress import NULL, Progress
from chaintrace.store.clusters.storage import FORMAT, MERGE_ROWS, ClusterStore, file_name
from chaintrace.store.clusters.tables import COINJOINS, EDGES, REFUSALS, UNIONS, address_cluster_table, edge_table
from chaintrace.store.clusters.views import refresh_views
from chaintrace.store.workspace import Workspace

CHUNK_INPUTS = 4_000_000  # inputs per generation chunk (bounds memory)


def chunks(g: BtcGraph, lo: int, hi: int, per: int = CHUNK_INPUTS) -> list[tuple[int, int]]:
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


# ---------------------------------------------------------------------------------------------- 1. plan

def _reorganised(ws: Workspace, old: dict, g: BtcGraph) -> bool:
    tip = old.get("tip")
    return old["n_tx"] > g.n_tx or bool(tip and block_hash(ws, tip["height"]) != tip["hash"])


def _plan_layers(state: dict, cfg: ClusterConfig, n_tx: int, notes: list[str]) -> tuple[int | None, int | None]:
    """(first transaction to generate for layer 0, for layer 1), None: nothing to generate. Resets the
    state of a layer whose parameters changed."""
    layers = state["layers"]
    mih_from = None
    if "mih" not in layers or layers["mih"]["spec"] != cfg.mih_spec():
        if "mih" in layers:
            notes.append("CoinJoin detector parameters changed: layer 0 regenerated")
        layers["mih"] = {"spec": cfg.mih_spec(), "files": [], "n_tx": 0}
        state["coinjoins"] = {"files": []}
        mih_from = 0
    elif layers["mih"]["n_tx"] < n_tx:
        mih_from = layers["mih"]["n_tx"]
    change_from = None
    if "change" in cfg.heuristics:
        if "change" not in layers or layers["change"]["spec"] != cfg.change_spec():
            if "change" in layers:
                notes.append("change heuristics changed: layer 1 regenerated")
            layers["change"] = {"spec": cfg.change_spec(), "files": [], "n_tx": 0,
                                "drift": {"links": 0, "confidence": 0}}
            change_from = 0
        elif layers["change"]["n_tx"] < n_tx:
            change_from = layers["change"]["n_tx"]
    return mih_from, change_from


# ---------------------------------------------------------------------------------------------- 2. edges

def _chunk_tables(g: BtcGraph, cfg: ClusterConfig, coords: np.ndarray, change_inputs: ChangeInputs | None,
                  lo: int, hi: int, mark: np.ndarray, want_mih: bool, want_change: bool):
    """CoinJoin rows, mih edges and change edges of transactions lo..hi-1 (Arrow tables; None: not wanted)."""
    cj = detect_coinjoins(g, cfg.coinjoin_params, lo, hi, coords)
    cj_t = mih_t = chg_t = None
    height = np.asarray(g.tx_height)
    if want_mih:
        cj_t = coinjoin_table(**coinjoin_arrays(g, cj, lo))
        a, b, tx = mih_edges(g, lo, hi, mark)
        mih_t = edge_table(a, b, tx, height[tx], "mih", coinjoin=cj.protocol[tx - lo])
    if want_change:
        a, b, tx, conf = change_edges(g, change_inputs, cfg.change, cfg.change_digits, cfg.change_max_outputs,
                                      np.arange(lo, hi, dtype=np.int64), cj.protocol != 0)
        chg_t = edge_table(a, b, tx, height[tx], cfg.change_name, conf)
    return cj_t, mih_t, chg_t


def _generate(ws: Workspace, cs: ClusterStore, state: dict, cfg: ClusterConfig, g: BtcGraph, gen: int,
              mih_from: int | None, change_from: int | None, progress: Progress) -> tuple[Counter, ChangeInputs | None]:
    """Generate and store the CoinJoins and candidate edges the plan asks for; returns the counts."""
    layers = state["layers"]
    change_inputs = None
    if change_from is not None:
        v = ws.chain("btc").read("transactions", ["vsize"])["vsize"]
        change_inputs = ChangeInputs.of(g, v.to_numpy().astype(np.int64) if len(v) else np.zeros(0, np.int64))
    starts = [x for x in (mih_from, change_from) if x is not None]
    stats: Counter = Counter()
    if not starts:
        return stats, change_inputs
    coords = coordinator_address_ids(ws, cfg.coinjoin_params) if g.network == "main" else np.zeros(0, np.int64)
    lo0 = min(starts)
    mark = np.full(g.n_addresses, -1, np.int64)
    progress.start("cluster: edges", g.n_tx - lo0, "transactions")
    for lo, hi in chunks(g, lo0, g.n_tx):
        want_mih = mih_from is not None and hi > mih_from
        want_chg = change_from is not None and hi > change_from
        a = max(lo, mih_from) if want_mih else hi
        c0 = max(lo, change_from) if want_chg else hi
        cj_t = mih_t = chg_t = None
        if want_mih and want_chg and a == c0:
            cj_t, mih_t, chg_t = _chunk_tables(g, cfg, coords, change_inputs, a, hi, mark, True, True)
        else:
            if want_mih:
                cj_t, mih_t, _ = _chunk_tables(g, cfg, coords, change_inputs, a, hi, mark, True, False)
            if want_chg:
                _, _, chg_t = _chunk_tables(g, cfg, coords, change_inputs, c0, hi, mark, False, True)
        if chg_t is not None:
            cs.append(layers["change"]["files"], "layers/change", c0, hi, gen, chg_t, EDGES)
            layers["change"]["n_tx"] = hi
            stats["change_edges"] += len(chg_t)
        if mih_t is not None:
            cs.append(layers["mih"]["files"], "layers/mih", a, hi, gen, mih_t, EDGES)
            layers["mih"]["n_tx"] = hi
            cs.append(state["coinjoins"]["files"], "coinjoins", a, hi, gen, cj_t, COINJOINS)
            stats["mih_edges"] += len(mih_t)
            stats["coinjoins"] += len(cj_t)
        progress.advance(hi - lo)
    progress.finish()
    return stats, change_inputs


def _measure_drift(cs: ClusterStore, state: dict, cfg: ClusterConfig, g: BtcGraph, change_from: int,
                   change_inputs: ChangeInputs, notes: list[str]) -> dict:
    """Count the earlier change links the transactions change_from.. alter; add them to the layer's drift."""
    cj = cs.read(state["coinjoins"]["files"], ["tx_id"], COINJOINS)["tx_id"].to_numpy()
    d = change_drift(g, change_inputs, cfg.change, cfg.change_digits, cfg.change_max_outputs, change_from, cj)
    total = state["layers"]["change"].setdefault("drift", {"links": 0, "confidence": 0})
    total["links"] += d["links"]
    total["confidence"] += d["confidence"]
    if d["links"]:
        notes.append(f"the new blocks spend outputs of earlier transactions, which changes the change link of "
                     f"{d['links']:,} of them (dynamic change heuristics); incremental builds keep the links "
                     f"evaluated when those transactions were new: `chaintrace cluster build --full` "
                     "re-evaluates them")
    return d


# ---------------------------------------------------------------------------------------------- 3. outputs index

def _index_new_outputs(cs: ClusterStore, state: dict, g: BtcGraph, gen: int) -> None:
    """Index the outputs added since the last build by address, in segments over output-id ranges; a last
    segment that is small, or not much larger than the new range, is re-indexed with it (few segments)."""
    idx = state.setdefault("address_outputs", {"n_out": 0, "files": []})
    if idx["n_out"] >= g.n_out:
        return
    files = idx["files"]
    lo = idx["n_out"]
    while files and (files[-1]["hi"] - files[-1]["lo"] < MERGE_ROWS
                     or files[-1]["hi"] - files[-1]["lo"] <= 2 * (g.n_out - lo)):
        lo = files.pop()["lo"]
    addr, out = index_outputs(np.asarray(g.out_addr[lo:g.n_out]), lo)
    rel = cs.save_arrays(file_name("address_outputs", lo, g.n_out, gen, suffix="", unit="o"),
                         {"address": addr.astype(uf_mod.id_dtype(g.n_addresses)), "output": out})
    files.append({"file": rel, "lo": lo, "hi": g.n_out, "rows": int(len(out))})
    idx["n_out"] = g.n_out


# ---------------------------------------------------------------------------------------------- 4. unions

def _union_stored_edges(cs: ClusterStore, state: dict, cfg: ClusterConfig, u: dict, uf: uf_mod.UnionFind,
                        guards: Guards, alarm_state: np.ndarray, u_from: int, n_tx: int, gen: int,
                        progress: Progress) -> tuple[Counter, list[tuple]]:
    """Union the stored edges of the selected layers for transactions u_from.. (windows of the layer-0
    files, both layers merged in transaction order); unions and refusals are appended to `u`'s file lists."""
    counts = Counter(u.get("counts", {}))
    alarms: list[tuple] = []
    layers = state["layers"]
    windows = [(f["lo"], f["hi"]) for f in layers["mih"]["files"] if f["hi"] > u_from]
    selected = [h for h in ("mih", "change") if h in cfg.heuristics and layers.get(h)]  # layer 0 first
    caches: dict[str, dict] = {h: {} for h in selected}
    progress.start("cluster: unions", n_tx - u_from, "transactions")
    for lo, hi in windows:
        lo = max(lo, u_from)
        parts = []
        for h in selected:
            t = cs.read_range(layers[h]["files"], lo, hi, caches[h])
            if t is not None:
                parts.append(t)
        if parts:
            e = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            if len(parts) > 1:
                e = e.take(pa.array(np.argsort(e["tx_id"].to_numpy(), kind="stable")))
            r = union_window(e, uf.par, guards, alarm_state)
            counts.update(r.counts)
            alarms += r.alarms
            if r.unions is not None:
                cs.append(u["unions"], "unions", lo, hi, gen, r.unions, UNIONS)
            if r.refusals is not None:
                cs.append(u["refusals"], "refusals", lo, hi, gen, r.refusals, REFUSALS)
        progress.advance(hi - lo)
    progress.finish()
    last = np.zeros((uf_mod.MAX_ALARMS, 5), np.int64)
    before = int(alarm_state[3])
    uf_mod.close_block(alarm_state, last, cfg.alarm_growth, cfg.alarm_min_size)
    if alarm_state[3] > before:
        alarms.append(tuple(int(x) for x in last[0]))
    return counts, alarms


def _open_union(ws: Workspace, cs: ClusterStore, u: dict | None, svc: ServiceLabels, n_addr: int
                ) -> tuple[uf_mod.UnionFind, np.ndarray, np.ndarray, int]:
    """(union-find, service labels, alarm state, first transaction to union): fresh when `u` is None, else the
    committed union state `u` grown to `n_addr` addresses (new addresses labelled from the tags)."""
    if u is None:
        label = svc.labels(ws, n_addr) if svc.entities else np.zeros(0, np.int32)
        return (uf_mod.UnionFind(n_addr), label.astype(np.int32, copy=False),
                np.array([0, 0, -1, 0, 0, -1], np.int64), 0)
    uf = uf_mod.UnionFind.from_array(cs.load_array(u["uf"], "uf"))
    old_n = len(uf)
    uf.grow(n_addr)
    label = cs.load_array(u["uf"], "label")
    label = np.zeros(0, np.int32) if label is None else label
    if svc.entities:
        label = np.concatenate([label, svc.labels(ws, n_addr, old_n)]) if len(label) else svc.labels(ws, n_addr)
    return uf, label.astype(np.int32, copy=False), np.array(u["alarm_state"], np.int64), u["n_tx"]


def _write_back(cs: ClusterStore, state: dict, u: dict, uf: uf_mod.UnionFind, label: np.ndarray, gen: int,
                progress: Progress) -> dict:
    """Write the union-find, cluster ids and sizes, members by cluster and ``address_clusters``; name them in
    the (uncommitted) state; return the partition's figures."""
    n_addr = len(uf)
    progress.start("cluster: write-back", n_addr, "addresses")
    cid, csize = uf.clusters()
    members, member_start = group_by_cluster(cid, csize)
    u["uf"] = cs.save_arrays(f"uf.g{gen:06d}", {"uf": uf.par, "cluster_of": cid, "cluster_size": csize,
                                                 "label": label, "members": members, "member_start": member_start})
    state["address_clusters"] = cs.write_parquet(f"address_clusters.g{gen:06d}.parquet",
                                                 address_cluster_table(cid, csize))["file"]
    progress.advance(n_addr)
    progress.finish()
    return partition_stats(cid, csize)


def _named_alarms(ws: Workspace, raw: list[tuple]) -> list[dict]:
    names = txids_of(ws, [r[3] for r in raw])
    return [{"height": h, "largest_before": b0, "largest_after": b1, "tx_id": tx, "txid": names.get(tx),
             "growth": jump} for h, b0, b1, tx, jump in raw]


# ---------------------------------------------------------------------------------------------- build

def _report(ws: Workspace, cfg: ClusterConfig, g: BtcGraph, gen: int, stats: dict, u: dict, *, incremental: bool,
            new_tx: int, edges: dict, notes: list[str], t_start: float, **extra) -> dict:
    return {"workspace": str(ws.path), "generation": gen, **extra, "config": cfg.describe(),
            "store_commit": g.commit, "transactions": g.n_tx, "addresses": g.n_addresses, "incremental": incremental,
            "new_transactions": new_tx, "edges_generated": edges, **stats,
            "edges_by_status": dict(sorted(u.get("counts", {}).items())), "alarms": u.get("alarms", [])[-20:],
            "notes": notes, "heuristics": cfg.layer_names, "seconds": round(time.time() - t_start, 3)}


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
        tags = load_tags(ws, tagpack_paths) if cfg.tag_guard else []
    svc = ServiceLabels.from_tags(tags if cfg.tag_guard else [])
    cs = ClusterStore(ws)
    notes: list[str] = []
    with cs.writer():
        old = cs.state(any_format=full)
        if old is not None and not full and _reorganised(ws, old, g):
            notes.append("the store was reorganised below the last clustered block: full rebuild")
            full = True
        gen = (old["generation"] + 1) if old else 1
        state = json.loads(json.dumps(old)) if (old and not full) else {
            "format": FORMAT, "n_tx": 0, "layers": {}, "coinjoins": {"files": []}, "union": None,
            "exclusions": (old or {}).get("exclusions", {})}
        state["generation"] = gen

        # ---- 1-2. candidate edges of the new (or all) transactions
        mih_from, change_from = _plan_layers(state, cfg, g.n_tx, notes)
        gen_stats, change_inputs = _generate(ws, cs, state, cfg, g, gen, mih_from, change_from, progress)
        drift = None
        if change_from:
            drift = _measure_drift(cs, state, cfg, g, change_from, change_inputs, notes)
        state["n_tx"] = g.n_tx
        state["store_commit"] = g.commit
        state["tip"] = store.tip and {"height": store.tip["height"], "hash": store.tip["hash"]}

        # ---- 4. union pass (incremental when nothing but new transactions changed)
        excl = state.get("exclusions", {})
        excl_ids = resolve_txids(ws, list(excl))
        union_key = {**cfg.describe(), "change_spec": cfg.change_spec() if "change" in cfg.heuristics else None,
                     "mih_spec": cfg.mih_spec(), "tags": svc.fingerprint,
                     "exclusions": sorted(excl_ids.values())}
        u = state.get("union")
        redo = (u is None or u["key"] != union_key or mih_from == 0 or change_from == 0)
        if redo and u is not None and not full and mih_from != 0 and change_from != 0:
            notes.append("guards, heuristics, tags or exclusions changed: clusters recomputed from the stored edges")
        n_addr = g.n_addresses
        indexed = (not redo and "address_outputs" in state
                   and cs.load_array(u["uf"], "members", mmap=True) is not None)
        if not redo and mih_from is None and change_from is None and u["n_tx"] == g.n_tx \
                and old.get("n_addresses") == n_addr and indexed:
            return _report(ws, cfg, g, old["generation"], old.get("stats", {}), u, incremental=True, new_tx=0,
                           edges={}, notes=notes, t_start=t_start, up_to_date=True)
        if redo:
            u = {"key": union_key, "n_tx": 0, "unions": [], "refusals": [], "alarms": [], "entities": svc.entities,
                 "counts": {}}
        uf, label, alarm_state, u_from = _open_union(ws, cs, None if redo else u, svc, n_addr)
        guards = Guards(cfg, label, svc.entities,
                        {t: (excl.get(x) or {}).get("reason") or "excluded by user" for x, t in excl_ids.items()})
        counts, alarms = _union_stored_edges(cs, state, cfg, u, uf, guards, alarm_state, u_from, g.n_tx, gen,
                                             progress)
        u["n_tx"] = g.n_tx
        u["alarm_state"] = [int(x) for x in alarm_state]
        u["alarms"] += _named_alarms(ws, alarms)
        u["counts"] = dict(counts)

        # ---- 3. + 5. outputs index, cluster ids, sizes, members, write-back; commit
        _index_new_outputs(cs, state, g, gen)
        st = _write_back(cs, state, u, uf, label, gen, progress)
        u["entities"] = svc.entities
        state["union"] = u
        state["config"] = cfg.describe()
        state["n_addresses"] = n_addr
        st["ambiguous_service_addresses"] = len(svc.ambiguous)
        state["stats"] = st
        state["built_at"] = int(time.time())
        cs.commit(state)
    refresh_views(ws)
    extra = {"change_drift": drift} if drift is not None else {}
    return _report(ws, cfg, g, gen, st, u, incremental=not redo, new_tx=g.n_tx - u_from, edges=dict(gen_stats),
                   notes=notes, t_start=t_start, **extra)


def exclude(ws: Workspace, txids: list[str], reason: str | None = None, *, undo: bool = False,
            config: ClusterConfig | None = None, progress: Progress = NULL) -> dict:
    """Refuse (or, with `undo`, allow again) every union of the given transactions and recompute the
    clusters from the stored edges: the way to undo a collapse. Unknown txids are an error."""
    cs = ClusterStore(ws)
    st = cs.require()
    norm = [t.strip().lower() for t in txids if t.strip()]
    found = resolve_txids(ws, norm)
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
