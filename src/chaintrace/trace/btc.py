"""Bitcoin tracer: seeds -> numba propagation over :class:`~chaintrace.graph.btc.BtcGraph` -> trace report.

Steps (each timed in ``report.stats``): load the cached graph arrays; resolve seeds to output ids; build
the sink index from tags (:mod:`chaintrace.trace.sinks`); run :func:`chaintrace.trace.kernels.propagate`;
turn the slots (one per tainted output) into report rows, looking up txids and addresses only for the
outputs the report names.
"""
from __future__ import annotations

import math
import re
import time

import numpy as np

from chaintrace.model.scripts import NULLDATA
from chaintrace.errors import UserError
from chaintrace.graph.btc import BtcGraph, address_ids, address_strings, load_btc_graph, tx_ids, txids
from chaintrace.progress import Progress
from chaintrace.trace import Bound, TraceRequest, Tracer, TRACERS, load_trace_tags
from chaintrace.trace import kernels as K
from chaintrace.trace.policies import FEE_MODES, POLICIES
from chaintrace.trace.report import Holding, TracePath, Seed, Sink, Step, Stopped, TraceReport
from chaintrace.trace.services import prefetch_detections, sink_fields
from chaintrace.trace.sinks import SinkIndex, resolve_sinks

ASSET = "BTC"
DECIMALS = 8
DEFAULT_MIN_VALUE = 10_000  # sat (0.0001 BTC): below this, value is reported as stopped, not followed
_TXID = re.compile(r"[0-9a-fA-F]{64}")
BY_SEED_MAX = 64  # up to this many seeds, each is its own source (by_seed breakdowns); beyond, one source


# ---------------------------------------------------------------------- lookups


def _norm_address(a: str) -> str:
    low = a.lower()
    if low.startswith(("bc1", "tb1", "bcrt1")) and a == a.upper():
        return low  # bech32 may be written in upper case
    return a


# ---------------------------------------------------------------------- bounds and seeds


def _bound_tx(g: BtcGraph, b: Bound, side: str) -> int:
    """`side` = "until": last tx id inside the bound; "since": first tx id inside it."""
    if b.kind == "height":
        if side == "until":
            return int(np.searchsorted(g.tx_height, b.value, side="right")) - 1
        return int(np.searchsorted(g.tx_height, b.value, side="left"))
    # block times are not monotonic: the bound is the first block whose time passes it
    past = g.tx_time > b.value if side == "until" else g.tx_time >= b.value
    first = int(np.argmax(past)) if past.any() else g.n_tx
    if side == "until":
        return first - 1
    return first


def _resolve_seeds(ws, g: BtcGraph, req: TraceRequest, since_tx: int, until_tx: int):
    """Per seed: (spec, kind, output ids)."""
    out = []
    wanted = []
    for spec in req.seeds:
        m = re.fullmatch(r"([0-9a-fA-F]{64})(:\d+)?", spec)
        if m:
            wanted.append(m.group(1).lower())
    ids = tx_ids(ws, wanted)
    addr_specs = [_norm_address(x) for x in req.seeds if not re.fullmatch(r"[0-9a-fA-F]{64}(:\d+)?", x)]
    aids = address_ids(ws, addr_specs)
    by_addr: dict[int, np.ndarray] = {}
    if aids:
        want = np.array(sorted(set(aids.values())), np.int64)
        out_addr = np.asarray(g.out_addr)
        hit = np.flatnonzero(np.isin(out_addr, want)).astype(np.int64)
        order = np.argsort(out_addr[hit], kind="stable")
        hit = hit[order]
        keys = out_addr[hit]
        for a in want:
            lo, hi = np.searchsorted(keys, a), np.searchsorted(keys, a, side="right")
            by_addr[int(a)] = np.sort(hit[lo:hi])
    for spec in req.seeds:
        m = re.fullmatch(r"([0-9a-fA-F]{64}):(\d+)", spec)
        if m:
            t = ids.get(m.group(1).lower())
            if t is None:
                raise UserError(f"seed {spec}: transaction {m.group(1).lower()} is not in the btc store")
            n = int(g.tx_out[t + 1] - g.tx_out[t])
            vout = int(m.group(2))
            if vout >= n:
                raise UserError(f"seed {spec}: the transaction has {n} output(s); output {vout} does not exist")
            if t > until_tx:
                raise UserError(f"seed {spec} is after --until ({req.until}): nothing to trace")
            out.append((spec, "output", np.array([g.tx_out[t] + vout], np.int64)))
        elif _TXID.fullmatch(spec):
            t = ids.get(spec.lower())
            if t is None:
                raise UserError(f"seed {spec}: transaction is not in the btc store (nor an address)")
            if t > until_tx:
                raise UserError(f"seed {spec} is after --until ({req.until}): nothing to trace")
            out.append((spec.lower(), "tx", np.arange(g.tx_out[t], g.tx_out[t + 1], dtype=np.int64)))
        else:
            addr = _norm_address(spec)
            if addr not in aids:
                raise UserError(f"seed {spec}: not an address, txid or txid:vout in the btc store "
                                f"(the address never appears in the stored blocks)")
            outs = by_addr[aids[addr]]
            tx = np.asarray(g.out_tx)[outs]
            outs = outs[(tx >= since_tx) & (tx <= until_tx)]
            if not len(outs):
                raise UserError(f"seed {spec}: the address received nothing between "
                                f"{req.since or 'the first block'} and {req.until or 'the tip'}")
            out.append((spec, "address", outs))
    return out


# ---------------------------------------------------------------------- the tracer


def trace_btc(ws, req: TraceRequest, progress: Progress) -> TraceReport:
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    progress.start("load graph", None)
    store = ws.require_chain("btc")
    g = load_btc_graph(ws)
    progress.finish()
    if g.n_tx == 0:
        raise UserError(f"the btc store in {ws.path} holds no transactions")
    times["graph_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    until_tx = g.n_tx - 1 if req.until is None else _bound_tx(g, req.until, "until")
    since_tx = 0 if req.since is None else _bound_tx(g, req.since, "since")
    if until_tx < 0:
        raise UserError(f"--until ({req.until}) is before the first stored block")
    if since_tx > until_tx:
        raise UserError(f"--since ({req.since}) is after --until ({req.until}) on this chain")
    seeds = _resolve_seeds(ws, g, req, since_tx, until_tx)
    all_out = np.concatenate([o for _, _, o in seeds])
    all_src = np.concatenate([np.full(len(o), k, np.int64) for k, (_, _, o) in enumerate(seeds)])
    order = np.lexsort((all_src, all_out))
    all_out, all_src = all_out[order], all_src[order]
    keep = np.ones(len(all_out), bool)
    keep[1:] = all_out[1:] != all_out[:-1]  # an output named by several seeds belongs to the first
    seed_out, seed_src = all_out[keep], all_src[keep]
    out_value = np.asarray(g.out_value)
    nominal = np.bincount(seed_src, weights=None, minlength=len(seeds))
    nominal_value = [int(out_value[seed_out[seed_src == k]].sum()) for k in range(len(seeds))]
    total_nominal = sum(nominal_value)
    min_value = max(req.min_value, math.ceil(req.min_share * total_nominal)) if req.min_share else req.min_value

    tags = load_trace_tags(ws, "btc", req.tag_files, req.registry)
    sinks = resolve_sinks(ws, g, tags, lambda a: address_ids(ws, a), g.n_addresses, chain="btc",
                          clusters=req.clusters)
    n_services = None
    if req.through_mixers and req.clusters:
        from chaintrace.trace.mixers import add_detected_mixers

        add_detected_mixers(ws, g, sinks)  # an untagged custodial mixer, recognised by behaviour
    if not req.follow_services:
        from chaintrace.trace.services import add_detected_services, detect_btc, with_swept_deposits

        det = with_swept_deposits(g, sinks, detect_btc(g, ws))
        sinks = add_detected_services(sinks, det, g.n_addresses, "btc", lambda ids: address_strings(ws, ids))
        n_services = len(det)
    stop_tx = None
    n_coinjoins = None
    if req.coinjoins in ("stop", "link"):
        from chaintrace.detect.coinjoin import CoinJoinParams, detect_coinjoins
        from chaintrace.graph.cluster.lookup import coordinator_address_ids

        coords = coordinator_address_ids(ws) if g.network == "main" else None
        cj_params = CoinJoinParams(mainnet_heights=getattr(req, "activation_heights", True))
        stop_tx = detect_coinjoins(g, cj_params, coordinator_ids=coords).protocol > 0
        n_coinjoins = int(stop_tx.sum())
    times["setup_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress.start(f"trace ({req.policy})", None)
    # every seed is its own source (per-seed attribution, by_seed) up to BY_SEED_MAX seeds; beyond, one source
    n_src = len(seeds) if len(seeds) <= BY_SEED_MAX else 1
    src_of = seed_src if n_src > 1 else np.zeros(len(seed_src), np.int64)
    kw = dict(policy=req.policy, fee_mode=req.fee_mode,
              sink_of_addr=sinks.addr_sink if len(sinks.addr_sink) else None, min_value=min_value,
              max_hops=req.max_hops, until_tx=until_tx, max_txs=req.max_txs, stop_tx=stop_tx,
              unspendable_type=NULLDATA)
    res = K.propagate_graph(g, seed_out, src_of, n_src, **kw)
    progress.finish()
    times["trace_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    progress.start("report", None)
    per_seed = np.zeros(len(seeds), np.int64)
    np.add.at(per_seed, seed_src, res.seed_seeded)
    report = _build_report(ws, g, store, req, seeds, nominal, nominal_value, res, sinks, min_value, until_tx, tags,
                           per_seed, n_src)
    if n_coinjoins is not None:
        report.stats["coinjoins_detected"] = n_coinjoins
    if n_services is not None:
        report.stats["services_detected"] = n_services
    if req.detections:  # laundering shapes touching the traced paths (chaintrace.trace.detections)
        _attach_detections(ws, g, req, report, res.out)
    if req.through_mixers:
        from chaintrace.trace.mixers import through_mixers

        t1 = time.perf_counter()
        report.probabilistic = through_mixers(
            ws, g, req, res, sinks, kw, lambda sd, nom, nomv, r2, ps: _build_report(
                ws, g, store, req, sd, nom, nomv, r2, sinks, min_value, until_tx, tags, ps, 1))
        times["mixers_s"] = time.perf_counter() - t1
    if req.coinjoins == "link" and stop_tx is not None:
        from chaintrace.trace.postmix import link_coinjoins

        t1 = time.perf_counter()
        report.coinjoin_links = link_coinjoins(
            ws, g, res, sinks, stop_tx, kw, lambda sd, nom, nomv, r2, ps: _build_report(
                ws, g, store, req, sd, nom, nomv, r2, sinks, min_value, until_tx, tags, ps, 1))
        times["coinjoin_links_s"] = time.perf_counter() - t1
    progress.finish()
    times["report_s"] = time.perf_counter() - t0
    report.stats.update({k: round(v, 4) for k, v in times.items()})
    return report


def _attach_detections(ws, g: BtcGraph, req: TraceRequest, report: TraceReport, tainted) -> None:
    from chaintrace.trace.detections import detections_on_paths

    ids = address_ids(ws, [_norm_address(a) for a in req.explain]) if req.explain else {}
    explain_ids = {a: int(ids[_norm_address(a)]) for a in req.explain if _norm_address(a) in ids}
    section, per_addr = detections_on_paths(ws, g, tainted, explain_ids)
    section["counts"]["service_like_sinks"] = len({s.address for s in report.sinks if s.reason == "service_like"})
    section["counts"]["bridge_sinks"] = sum(s.bridge is not None for s in report.sinks)
    report.detections = section
    for e in report.explain:
        dets = per_addr.get(e["address"], [])
        e["detections"] = dets
        if dets:
            by: dict[str, int] = {}
            for d in dets:
                by[d["kind"]] = by.get(d["kind"], 0) + 1
            e["note"] += "; detections touching it: " + ", ".join(f"{k} {n}" for k, n in by.items())


def _build_report(ws, g: BtcGraph, store, req, seeds, nominal, nominal_value, res, sinks: SinkIndex,
                  min_value, until_tx, tags, per_seed, n_src) -> TraceReport:
    s_out, s_kind, s_amt, s_hop, s_par, s_seg = res.out, res.kind, res.amount, res.hop, res.parent, res.seg
    p_val, p_src, seeded, fee, processed, partial, n_pending = (res.seg_value, res.seg_source, res.seeded, res.fee,
                                                                res.processed, res.partial, res.n_pending)
    if n_pending:
        raise AssertionError(f"{n_pending} tainted outputs left pending after the trace")
    out_tx = np.asarray(g.out_tx)
    out_value = np.asarray(g.out_value)
    out_addr = np.asarray(g.out_addr)
    tx_out = np.asarray(g.tx_out)
    tx_time = np.asarray(g.tx_time)
    terminal = np.flatnonzero((s_kind != K.PASSED) & (s_kind != K.PENDING))

    by_seed = None
    row = None
    if 1 < n_src and len(terminal):
        row = np.full(len(s_out), -1, np.int64)  # terminal slot -> row of the per-seed matrix
        row[terminal] = np.arange(len(terminal))
        seg_slot = np.repeat(np.arange(len(s_out)), np.diff(s_seg))
        m = (p_src >= 0) & (row[seg_slot] >= 0)
        by_seed = np.zeros((len(terminal), n_src), np.int64)
        np.add.at(by_seed, (row[seg_slot[m]], p_src[m]), p_val[m])

    def bs(slots) -> list[int] | None:
        if by_seed is None:
            return None
        if np.ndim(slots):
            return [int(x) for x in by_seed[row[slots]].sum(axis=0)]
        return [int(x) for x in by_seed[row[slots]]]

    # paths: the largest sink transfers, and every output of the explained addresses
    sink_slots = terminal[s_kind[terminal] == K.SINK]
    top = sink_slots[np.argsort(-s_amt[sink_slots], kind="stable")[:req.top_paths]] if req.top_paths else []
    explain_ids = address_ids(ws, [_norm_address(a) for a in req.explain]) if req.explain else {}
    explain_slots: dict[str, np.ndarray] = {}
    for a in req.explain:
        na = _norm_address(a)
        if na not in explain_ids:
            raise UserError(f"--explain {a}: the address never appears in the btc store")
        sl = np.flatnonzero(out_addr[s_out] == explain_ids[na])
        explain_slots[a] = sl[np.argsort(-s_amt[sl], kind="stable")][:10]
    chains: dict[int, list[int]] = {}
    for sl in list(top) + [x for v in explain_slots.values() for x in v]:
        c = []
        x = int(sl)
        while x >= 0 and len(c) < 100_000:
            c.append(x)
            x = int(s_par[x])
        chains[int(sl)] = c[::-1]
    path_slots = np.array(sorted({x for c in chains.values() for x in c}), np.int64)

    # aggregate stopped slots per (reason, address), vectorised
    stop_slots = terminal[(s_kind[terminal] != K.SINK) & (s_kind[terminal] != K.HOLDING)]
    hold_slots = terminal[s_kind[terminal] == K.HOLDING]
    g_start = np.zeros(0, np.int64)
    g_sorted = np.zeros(0, np.int64)
    rep_stop = np.zeros(0, np.int64)
    if len(stop_slots):
        key = s_kind[stop_slots].astype(np.int64) * (g.n_addresses + 1) + (out_addr[s_out[stop_slots]] + 1)
        order = np.lexsort((-s_amt[stop_slots], key))  # by group, largest first inside a group
        g_sorted = stop_slots[order]
        ks = key[order]
        g_start = np.flatnonzero(np.concatenate([[True], ks[1:] != ks[:-1]]))
        rep_stop = g_sorted[g_start]

    need_tx = set(out_tx[s_out[np.concatenate([sink_slots, hold_slots, path_slots, rep_stop])]].tolist())
    txid = txids(ws, need_tx)
    need_addr = set(out_addr[s_out[terminal]].tolist()) | set(out_addr[s_out[path_slots]].tolist()) \
        if len(terminal) or len(path_slots) else set()
    addr = address_strings(ws, need_addr)

    def refs(slots: np.ndarray) -> list[str]:
        o = s_out[slots]
        t = out_tx[o]
        return [f"{txid[a]}:{b}" for a, b in zip(t.tolist(), (o - tx_out[t]).tolist())]

    def ref(sl: int) -> str:
        return refs(np.array([sl]))[0]

    def label(aid: int) -> str | None:
        t = sinks.labels.get(int(aid))
        return t.label if t else None

    sink_rows = []
    ss_ = sink_slots[np.argsort(s_out[sink_slots], kind="stable")]
    so = s_out[ss_]
    prefetch_detections(sinks, out_addr[so].tolist())
    for _k, (sl, a, t, am, hp, v, r) in enumerate(zip(
            ss_.tolist(), out_addr[so].tolist(), out_tx[so].tolist(), s_amt[ss_].tolist(), s_hop[ss_].tolist(),
            out_value[so].tolist(), refs(ss_))):
        e = sinks.entities[int(sinks.addr_sink[a])]
        sink_rows.append(Sink(address=addr[a], label=e.label, category=e.category, actor=e.actor, amount=am,
                              asset=ASSET, hops=hp, txid=txid[t], time=int(tx_time[t]), ref=r, value=v,
                              source=e.source, via_cluster=bool(sinks.via_cluster[a]), by_seed=bs(sl),
                              **sink_fields(sinks, a)))
    holding_rows = []
    hs = hold_slots[np.argsort(-s_amt[hold_slots], kind="stable")]
    ho = s_out[hs]
    for sl, a, am, hp, tm, v, r in zip(hs.tolist(), out_addr[ho].tolist(), s_amt[hs].tolist(), s_hop[hs].tolist(),
                                       tx_time[out_tx[ho]].tolist(), out_value[ho].tolist(), refs(hs)):
        holding_rows.append(Holding(address=addr.get(a), amount=am, asset=ASSET, ref=r, hops=hp, time=tm, value=v,
                                    label=label(a) if a >= 0 else None, by_seed=bs(sl)))
    stopped_rows = []
    if len(g_start):
        g_amt = np.add.reduceat(s_amt[g_sorted], g_start)
        g_hop = np.minimum.reduceat(s_hop[g_sorted], g_start)
        g_time = np.minimum.reduceat(tx_time[out_tx[s_out[g_sorted]]], g_start)
        g_n = np.diff(np.concatenate([g_start, [len(g_sorted)]]))
        bounds = np.concatenate([g_start, [len(g_sorted)]]).tolist()
        for k, (rep, am, hp, tm, n, r) in enumerate(zip(rep_stop.tolist(), g_amt.tolist(), g_hop.tolist(),
                                                        g_time.tolist(), g_n.tolist(), refs(rep_stop))):
            a = int(out_addr[s_out[rep]])
            stopped_rows.append(Stopped(
                reason=K.KIND_NAMES[int(s_kind[rep])], amount=am, asset=ASSET, address=addr.get(a), outputs=n,
                hops=hp, ref=r, time=tm,
                by_seed=bs(g_sorted[bounds[k]:bounds[k + 1]]) if by_seed is not None else None))
    stopped_rows.sort(key=lambda s: (-s.amount, s.reason, s.address or ""))

    def make_path(sl: int) -> TracePath:
        steps = []
        for x in chains[sl]:
            o = int(s_out[x])
            a = int(out_addr[o])
            t = int(out_tx[o])
            steps.append(Step(hop=int(s_hop[x]), txid=txid[t], ref=ref(x), address=addr.get(a),
                              amount=int(s_amt[x]), value=int(out_value[o]), time=int(tx_time[t]),
                              label=label(a) if a >= 0 else None))
        o = int(s_out[sl])
        return TracePath(to=addr.get(int(out_addr[o])), kind=K.KIND_NAMES[int(s_kind[sl])], amount=int(s_amt[sl]),
                    asset=ASSET, steps=steps)

    explain = []
    for a, sl in explain_slots.items():
        n_all = int((out_addr[s_out] == explain_ids[_norm_address(a)]).sum())
        explain.append({
            "address": a, "found": bool(len(sl)), "outputs_reached": n_all,
            "note": (f"traced value reached {a} in {n_all} output(s); the {len(sl)} largest are explained"
                     if len(sl) else f"no traced value reached {a} under policy {req.policy} with these limits"),
            "paths": [make_path(int(x)) for x in sl]})
        svc = sinks.detected.get(int(explain_ids[_norm_address(a)]))
        if svc is not None:  # the trace stopped there: it behaves like a service no tag names
            explain[-1]["service_like"] = svc
            explain[-1]["note"] += (f"; the address behaves like a service ({svc['kind']}, confidence "
                                    f"{svc['confidence']}): the trace stops there (--follow-services to go on)")

    total = int(seeded.sum())
    if int(per_seed.sum()) != int(seeded.sum()):
        raise AssertionError("per-seed amounts do not add up to the seeded total")
    seed_rows = [Seed(spec=spec, kind=kind, amount=int(per_seed[k]), asset=ASSET, outputs=int(nominal[k]),
                      nominal=nominal_value[k]) for k, (spec, kind, _o) in enumerate(seeds)]
    limits = {"max_hops": req.max_hops, "min_value": str(req.min_value), "min_share": req.min_share,
              "min_value_effective": str(min_value),
              "since": req.since.as_dict() if req.since else None,
              "until": req.until.as_dict() if req.until else None, "until_height": int(g.tx_height[until_tx]),
              "max_txs": req.max_txs, "coinjoins": req.coinjoins,
              "activation_heights": getattr(req, "activation_heights", True),
              "services": "follow" if req.follow_services else "stop"}
    params = {"fee_mode": req.fee_mode} if req.policy in ("fifo", "lifo", "tiho") else {}
    stats = {"txs_processed": int(processed), "tainted_outputs": int(len(s_out)),
             "sink_transfers": len(sink_rows), "holdings": len(holding_rows), "stopped_entries": len(stopped_rows),
             "store_commit": int(g.commit), "store_transactions": int(g.n_tx),
             "tip_height": int(g.tx_height[-1])}
    return TraceReport(
        chain="btc", network=g.network, policy={"name": req.policy, "params": params}, limits=limits,
        seeds=seed_rows, assets={ASSET: {"decimals": DECIMALS}}, total_seeded={ASSET: total},
        sinks=sink_rows, holdings=holding_rows, stopped=stopped_rows, fees={ASSET: int(fee.sum())}, stats=stats,
        partial=bool(partial),
        partial_reason=(f"stopped after --max-txs {req.max_txs} transactions; value still being followed is "
                        "reported as stopped (max_txs)") if partial else None,
        paths=[make_path(int(x)) for x in top], explain=explain,
        tags={"files": req.tag_files, "registry": req.registry, "tags_loaded": len(tags),
              "tagged_addresses": sinks.tagged, "sink_addresses": sinks.n_sink_addresses,
              "sink_entities": len(sinks.entities), "clusters": sinks.clusters_used,
              "cluster_conflicts": sinks.cluster_conflicts},
    )


TRACERS["btc"] = Tracer(chain="btc", policies=POLICIES, fee_modes=FEE_MODES, default_min_value=DEFAULT_MIN_VALUE,
                        run=trace_btc, asset=ASSET)
