"""Ethereum tracer (account model): seeds -> :func:`chaintrace.trace.eth_kernels.propagate` over
:class:`~chaintrace.graph.eth.EthGraph` -> the chain-neutral :class:`~chaintrace.trace.report.TraceReport`.

Seeds: an address (every credit it received, in any asset, within ``--since``/``--until``) or a transaction
hash (every value transfer of it, fees excluded). Policies per (account, asset): ``poison``, ``haircut``,
``fifo``, ``lifo``, ``seniority`` (tainted-first-out). Gas paid from tainted balances goes to ``fees``;
internal and token transfers count like top-level ones; a swap converts taint from the asset paid into the
asset received (a ``converted`` stop in the first asset, a ``conversion`` seed in the second, and the
details in ``stats.conversions``), so the value invariant holds per asset.

``--min-value`` is in wei and applies to native ETH; every asset also honours ``--min-share`` of its seeded
value. Amounts of 10**38 and more (``value_big``, spam tokens) cannot be held in the kernel's 128-bit limbs:
a store that has any runs the exact pure-Python engine instead (``stats.engine`` says which ran).
"""
from __future__ import annotations

import re
import time
from decimal import Decimal, ROUND_CEILING

import numpy as np

from chaintrace.chains.eth import columns as C
from chaintrace.model import u128 as U
from chaintrace.errors import UserError
from chaintrace.graph.eth import FEE_KINDS, EthGraph, load_eth_graph
from chaintrace.progress import Progress
from chaintrace.trace import TRACERS, Bound, TraceRequest, Tracer, load_trace_tags
from chaintrace.trace import eth_kernels as K
from chaintrace.trace.report import Holding, Seed, Sink, Step, Stopped, TracePath, TraceReport
from chaintrace.trace.services import prefetch_detections, sink_fields
from chaintrace.trace.sinks import resolve_sinks

POLICIES = ("poison", "haircut", "fifo", "lifo", "seniority")
DEFAULT_MIN_VALUE = 10**12  # wei (0.000001 ETH)
_ADDR = re.compile(r"0x[0-9a-fA-F]{40}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
ENTRY_MODE = "prorata"


def _con(ws, tables):
    import duckdb

    store = ws.require_chain("eth")
    con = duckdb.connect(":memory:")
    for t in tables:
        files = [str(f) for f in store.files(t)]
        if files:
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet({files!r})")
        else:
            from chaintrace.store.schema import empty_select
            from chaintrace.store.schema.eth import SCHEMAS

            con.execute(f"CREATE VIEW {t} AS {empty_select(SCHEMAS[t])}")
    return con


def asset_names(ws) -> tuple[list[str], dict]:
    """Report keys of every asset id and the ``assets`` dict of the report. A token is keyed by its contract
    address (lowercase), native ether by ``ETH``: symbols are not unique and scam tokens copy them, so two
    tokens sharing a symbol are never summed together. The symbol is kept as a label in the dict."""
    t = ws.require_chain("eth").read("assets", ["asset_id", "address", "symbol", "decimals"])
    rows = sorted(zip(*(t[c].to_pylist() for c in ("asset_id", "address", "symbol", "decimals"))))
    names, info = [], {}
    for _aid, addr, sym, dec in rows:
        name = "ETH" if addr is None else addr.lower()
        names.append(name)
        info[name] = {"decimals": dec, "address": addr, "symbol": "ETH" if addr is None else (sym or None)}
    return names, info


def _bound_k(g: EthGraph, b: Bound | None, side: str) -> int:
    """First transfer index after the bound (side 'until') or at/after it (side 'since')."""
    if b is None:
        return g.n_transfers if side == "until" else 0
    if b.kind == "height":
        key = g.tr_height
        v = b.value
    else:
        key = g.time_of_height(g.tr_height) if g.n_transfers else g.tr_height
        v = b.value
    return int(np.searchsorted(key, v, side="right" if side == "until" else "left"))


def _resolve_seeds(ws, g: EthGraph, req: TraceRequest, since_k: int, until_k: int):
    seed_of = np.full(g.n_transfers, -1, np.int32)
    specs = []
    fee = np.isin(g.tr_kind, FEE_KINDS)
    for i, spec in enumerate(req.seeds):
        s = spec.strip()
        if _ADDR.fullmatch(s):
            ids = g.address_ids([s])
            if not ids:
                raise UserError(f"seed {s}: address not in the eth store")
            aid = next(iter(ids.values()))
            ks = np.flatnonzero((g.tr_to == aid) & ~fee)
            ks = ks[(ks >= since_k) & (ks < until_k)]
            kind = "address"
            if not len(ks):
                raise UserError(f"seed {s}: the address received nothing in the store"
                                + (" within --since/--until" if req.since or req.until else ""))
        elif _HASH.fullmatch(s):
            con = _con(ws, ("transactions",))
            row = con.execute("SELECT tx_id FROM transactions WHERE hash = ?", [s.lower()]).fetchone()
            if row is None:
                raise UserError(f"seed {s}: transaction not in the eth store")
            t = int(row[0])
            ks = np.arange(g.tx_tr[t], g.tx_tr[t + 1])
            ks = ks[~fee[ks]]
            kind = "tx"
            if not len(ks):
                raise UserError(f"seed {s}: the transaction moved no value (failed, or only paid gas)")
            if ks[0] >= until_k:
                raise UserError(f"seed {s} lies after --until")
        elif ":" in s and _HASH.fullmatch(s.split(":", 1)[0]):  # one transfer: <hash>:log<i>, as reports name it
            ks, kind = _transfer_seed(ws, g, s, fee), "transfer"
            if ks[0] >= until_k:
                raise UserError(f"seed {s} lies after --until")
        else:
            raise UserError(f"seed {s!r}: expected an address (0x + 40 hex digits), a transaction hash "
                            f"(0x + 64 hex digits) or a transfer (<hash>:log<i>, as reports name it)")
        free = ks[seed_of[ks] < 0]
        seed_of[free] = i
        specs.append((s, kind, ks))
    return seed_of, specs


def _transfer_seed(ws, g: EthGraph, s: str, fee: np.ndarray) -> np.ndarray:
    """The transfer named ``<hash>:<suffix>`` (the ``ref`` of report rows, e.g. ``<hash>:log3``)."""
    con = _con(ws, ("transactions",))
    row = con.execute("SELECT tx_id FROM transactions WHERE hash = ?", [s.split(":", 1)[0].lower()]).fetchone()
    if row is None:
        raise UserError(f"seed {s}: transaction not in the eth store")
    ks = np.arange(g.tx_tr[int(row[0])], g.tx_tr[int(row[0]) + 1])
    _, refs, _ = g.refs(ks)
    hit = ks[[r.lower() == s.lower() for r in refs]] if len(ks) else ks
    hit = hit[~fee[hit]]
    if not len(hit):
        raise UserError(f"seed {s}: no value transfer with that reference in the transaction "
                        f"(it has: {', '.join(refs[:5]) or 'none'})")
    return hit


def _amounts(g: EthGraph, ks: np.ndarray) -> list[int]:
    return g.amounts(ks)


class _Amt:
    """Exact amounts of a kernel result, indexed by position: uint64 limbs (numba engine) or Python ints
    (the reference engine, whose amounts may reach 2**256). Report code works on index arrays, so only the
    rows it prints become Python ints."""

    def __init__(self, lo=None, hi=None, ints=None):
        self.lo, self.hi = lo, hi
        self.obj = None if ints is None else np.array(list(ints) + [None], dtype=object)[:-1]

    def __len__(self) -> int:
        return len(self.lo) if self.obj is None else len(self.obj)

    def __getitem__(self, i) -> int:
        return (int(self.hi[i]) << 64) | int(self.lo[i]) if self.obj is None else self.obj[i]

    def ints(self, idx) -> list[int]:
        idx = np.asarray(idx, np.int64)
        if self.obj is not None:
            return self.obj[idx].tolist()
        hi = self.hi[idx]
        return self.lo[idx].tolist() if not hi.any() else U.to_ints(self.lo[idx], hi)

    def positive(self, idx) -> np.ndarray:
        idx = np.asarray(idx, np.int64)
        if self.obj is not None:
            return np.array([v > 0 for v in self.obj[idx]], bool)
        return (self.lo[idx] != 0) | (self.hi[idx] != 0)

    def desc(self, idx) -> np.ndarray:
        """`idx` ordered by amount, largest first (equal amounts keep their order)."""
        idx = np.asarray(idx, np.int64)
        if self.obj is not None:
            vals = self.obj[idx]
            return idx[sorted(range(len(idx)), key=lambda j: -vals[j])]
        return idx[np.lexsort((np.arange(len(idx)), ~self.lo[idx], ~self.hi[idx]))]

    def group_sums(self, idx, grp, n: int) -> list[int]:
        """Sum per group (grp[j] in 0..n-1 is the group of idx[j])."""
        idx = np.asarray(idx, np.int64)
        if self.obj is not None:
            out = [0] * n
            for g_, v in zip(grp.tolist(), self.obj[idx]):
                out[g_] += v
            return out
        m32 = np.uint64(0xFFFFFFFF)
        parts = []
        for limb in (self.lo[idx], self.hi[idx]):
            for half in (limb & m32, limb >> np.uint64(32)):
                acc = np.zeros(n, np.uint64)
                np.add.at(acc, grp, half)
                parts.append(acc.tolist())
        return [a + (b << 32) + (c << 64) + (d << 96) for a, b, c, d in zip(*parts)]

    def group_last_max(self, idx, grp, n: int) -> np.ndarray:
        """Per group, the element of idx with the largest amount (the last one among equals)."""
        idx = np.asarray(idx, np.int64)
        out = np.full(n, -1, np.int64)
        if self.obj is not None:
            best = [None] * n
            for g_, i in zip(grp.tolist(), idx.tolist()):
                if best[g_] is None or self.obj[i] >= best[g_]:
                    best[g_], out[g_] = self.obj[i], i
            return out
        order = np.lexsort((np.arange(len(idx)), self.lo[idx], self.hi[idx], grp))
        last = np.r_[np.flatnonzero(grp[order][1:] != grp[order][:-1]), len(order) - 1] if len(order) else order
        out[grp[order][last]] = idx[order][last]
        return out


def run_kernel(g: EthGraph, policy: str, seed_of, start_k, end_k, acct_sink, burn_acct, min_per_asset: list[int],
               max_hops, max_txs, engine: str = "auto", entry_mode: str = ENTRY_MODE) -> dict:
    """Run the numba kernel (or the exact Python reference) and return its results: records (``rec_*``), the
    holdings left with taint (``taint_h``, ascending, and their amounts ``taint``), and the rest."""
    pcode = K.POLICY_CODES[policy]
    emode = K.ENTRY_MODES[entry_mode]
    use_py = engine == "python" or (engine == "auto" and bool(g.tr_big.any()))
    mh = -1 if max_hops is None else int(max_hops)
    mt = -1 if max_txs is None else int(max_txs)
    if use_py:
        from chaintrace.trace.eth_reference import propagate_py

        amounts = [g.amount(k) for k in range(g.n_transfers)]
        recs, taint, hop, src, flagged, convs, deficits, partial, stop_k, txs_done = propagate_py(
            pcode, emode, g.tr_from_h, g.tr_to_h, g.tr_to, g.tr_asset, amounts, g.tr_kind, g.tr_tx, g.tx_tr,
            g.tx_from, g.hold_account, g.n_holdings, seed_of, start_k, end_k, acct_sink, burn_acct,
            min_per_asset, mh, mt, set(FEE_KINDS))
        taint_h = np.array([h for h, v in enumerate(taint) if v], np.int64)
        return {"engine": "python", "rec_k": np.array([r[0] for r in recs], np.int64),
                "rec_amt": _Amt(ints=[r[1] for r in recs]), "rec_par": np.array([r[2] for r in recs], np.int64),
                "rec_hop": np.array([r[3] for r in recs], np.int64), "rec_code": np.array([r[4] for r in recs], np.int8),
                "rec_minted": _Amt(ints=[r[5] for r in recs]), "taint_h": taint_h,
                "taint": _Amt(ints=[taint[h] for h in taint_h.tolist()]), "hop": np.array(hop, np.int64),
                "src": np.array(src, np.int64), "convs": convs, "deficits": deficits, "partial": partial,
                "stop_k": stop_k, "txs": txs_done}
    lim = 1 << 128
    mins = [min(int(m), lim - 1) for m in min_per_asset]
    min_lo = np.array([m & ((1 << 64) - 1) for m in mins], np.uint64)
    min_hi = np.array([m >> 64 for m in mins], np.uint64)
    out = K.propagate(pcode, emode, g.tr_from_h, g.tr_to_h, g.tr_to, g.tr_asset, g.tr_lo, g.tr_hi, g.tr_kind,
                      g.tr_tx, g.tx_tr, g.tx_from, g.hold_account, g.hold_asset, g.n_holdings, seed_of,
                      int(start_k), int(end_k), acct_sink, int(burn_acct), min_lo, min_hi, mh, mt,
                      int(FEE_KINDS[0]), int(FEE_KINDS[1]))
    (r_k, r_lo, r_hi, r_par, r_hop, r_code, r_mlo, r_mhi, t_lo, t_hi, hop, src, flagged,
     c_tx, c_acct, c_afrom, c_flo, c_fhi, c_ato, c_tlo, c_thi, c_rec, deficits, partial, stop_k, txs_done) = out
    taint_h = np.flatnonzero((t_lo != 0) | (t_hi != 0))
    convs = list(zip(c_tx.tolist(), c_acct.tolist(), c_afrom.tolist(), U.to_ints(c_flo, c_fhi), c_ato.tolist(),
                     U.to_ints(c_tlo, c_thi), c_rec.tolist()))
    return {"engine": "numba", "rec_k": r_k, "rec_amt": _Amt(r_lo, r_hi), "rec_par": r_par,
            "rec_hop": r_hop.astype(np.int64), "rec_code": r_code, "rec_minted": _Amt(r_mlo, r_mhi),
            "taint_h": taint_h, "taint": _Amt(t_lo[taint_h], t_hi[taint_h]), "hop": hop.astype(np.int64), "src": src,
            "convs": convs, "deficits": int(deficits), "partial": bool(partial), "stop_k": int(stop_k),
            "txs": int(txs_done)}


def trace_eth(ws, req: TraceRequest, progress: Progress, engine: str = "auto") -> TraceReport:
    t0 = time.perf_counter()
    timing = {}
    g = load_eth_graph(ws)
    timing["load_graph_s"] = round(time.perf_counter() - t0, 4)
    names, assets_info = asset_names(ws)
    since_k = _bound_k(g, req.since, "since")
    until_k = _bound_k(g, req.until, "until")
    seed_of, specs = _resolve_seeds(ws, g, req, since_k, until_k)
    # sinks and labels
    t1 = time.perf_counter()
    tags = load_trace_tags(ws, "eth", req.tag_files, req.registry)
    sinks = resolve_sinks(ws, g, tags, g.address_ids, g.n_addresses, chain="eth",
                          clusters=req.clusters)
    sinks.tags_loaded = len(tags)
    n_services = None
    if not req.follow_services:
        from chaintrace.trace.services import add_detected_services, detect_eth

        det = detect_eth(g, ws)
        sinks = add_detected_services(sinks, det, g.n_addresses, "eth", lambda ids: dict(zip(
            ids, g.address_strings(np.asarray(ids, np.int64)))))
        n_services = len(det)
    timing["sinks_s"] = round(time.perf_counter() - t1, 4)
    burn = g.address_ids(["0x" + "0" * 40])
    burn_acct = next(iter(burn.values())) if burn else -1
    # thresholds per asset: --min-value (wei) for ETH, --min-share of each asset's seeded (nominal) value
    seeded_k = np.flatnonzero(seed_of >= 0)
    nominal = {}
    for k, v in zip(seeded_k.tolist(), _amounts(g, seeded_k)):
        a = int(g.tr_asset[k])
        nominal[a] = nominal.get(a, 0) + v
    mins = [0] * max(g.n_assets, 1)
    mins[0] = int(req.min_value or 0)
    if req.min_share:
        share = Decimal(repr(float(req.min_share)))
        for a, v in nominal.items():
            mins[a] = max(mins[a], int((share * v).to_integral_value(rounding=ROUND_CEILING)))
    start_k = int(seeded_k[0]) if len(seeded_k) else 0
    # balances before the first seed matter (haircut fractions, FIFO's untracked part): start at 0
    t2 = time.perf_counter()
    res = run_kernel(g, req.policy, seed_of, 0, until_k, sinks.addr_sink, burn_acct, mins, req.max_hops,
                     req.max_txs, engine=engine)
    timing["propagate_s"] = round(time.perf_counter() - t2, 4)
    t3 = time.perf_counter()
    report = _build_report(ws, g, req, names, assets_info, specs, seed_of, res, sinks, start_k, until_k)
    timing["report_s"] = round(time.perf_counter() - t3, 4)
    report.stats.update(timing)
    if n_services is not None:
        report.stats["services_detected"] = n_services
    report.stats["seconds"] = round(time.perf_counter() - t0, 4)
    return report


def _stopped_rows(g: EthGraph, names, codes, terminal, tcodes, rk, ramt, rhop) -> list:
    """Stopped entries: per (reason, account, asset), in order of first occurrence."""
    stop_idx = terminal[(tcodes != K.FEE) & (tcodes != K.SINK)]
    stopped_rows = []
    if len(stop_idx):
        ks = rk[stop_idx]
        c = codes[stop_idx]
        who = np.where(c == K.CONVERTED, g.hold_account[np.maximum(g.tr_from_h[ks], 0)], g.tr_to[ks])
        asset = g.tr_asset[ks].astype(np.int64)
        order = np.lexsort((asset, who, c))
        key = np.stack([c[order], who[order], asset[order]])
        starts = np.r_[0, np.flatnonzero((key[:, 1:] != key[:, :-1]).any(axis=0)) + 1]
        mark = np.zeros(len(order), np.int64)
        mark[starts] = 1
        grp = np.empty(len(order), np.int64)
        grp[order] = np.cumsum(mark) - 1
        n_g = len(starts)
        first = order[starts]  # stable sort: the first record of each group
        hop_min = np.minimum.reduceat(rhop[stop_idx][order], starts)
        times = g.time_of_height(g.tr_height[ks])
        t_min = np.minimum.reduceat(times[order], starts)
        sums = ramt.group_sums(stop_idx, grp, n_g)
        best = ramt.group_last_max(stop_idx, grp, n_g)
        _, best_ref, _ = g.refs(rk[best])
        who_g = who[first]
        addrs = g.address_strings(who_g)
        cnt = np.diff(np.r_[starts, len(order)])
        for j in np.argsort(first, kind="stable").tolist():
            stopped_rows.append(Stopped(reason=K.CODE_NAMES[int(c[first[j]])], amount=sums[j],
                                        asset=names[int(asset[first[j]])], address=addrs[j], outputs=int(cnt[j]),
                                        hops=int(hop_min[j]), ref=best_ref[j], time=int(t_min[j])))
    return stopped_rows


def _holding_rows(g: EthGraph, res, rk, asset_names, sinks, stopped_rows: list, label) -> list:
    """Holdings: taint still held, largest first (after a partial trace they are appended to
    `stopped_rows` as max_txs entries instead)."""
    hold = res["taint_h"]
    pos = res["taint"].desc(np.arange(len(hold)))
    hold = hold[pos]
    holding_rows = []
    if len(hold):
        h_amt = res["taint"].ints(pos)
        h_acct = g.hold_account[hold]
        h_addr = g.address_strings(h_acct)
        h_asset = asset_names[g.hold_asset[hold].astype(np.int64)].tolist()
        h_hops = res["hop"][hold].tolist()
        s = res["src"][hold]
        has = s >= 0
        _, refs_, tms_ = g.refs(rk[s[has]])
        h_ref = np.full(len(hold), "", dtype=object)
        h_ref[has] = refs_
        h_time = np.full(len(hold), None, dtype=object)
        h_time[has] = tms_.tolist()
        h_ref, h_time = h_ref.tolist(), h_time.tolist()
        if res["partial"]:
            stopped_rows += [Stopped(reason="max_txs", amount=am, asset=a_, address=ad, outputs=1, hops=hp, ref=r_, time=t_)
                             for am, a_, ad, hp, r_, t_ in zip(h_amt, h_asset, h_addr, h_hops, h_ref, h_time)]
        else:
            labels = [None] * len(hold)
            if sinks.labels:
                for j in np.flatnonzero(np.isin(h_acct, np.fromiter(sinks.labels, np.int64))).tolist():
                    labels[j] = label(int(h_acct[j]))
            holding_rows = [Holding(address=ad, amount=am, asset=a_, ref=r_, hops=hp, time=t_, value=am, label=lb)
                            for ad, am, a_, r_, hp, t_, lb in zip(h_addr, h_amt, h_asset, h_ref, h_hops, h_time, labels)]
    return holding_rows


def _seed_rows(g: EthGraph, names, specs, seed_of, res, rk, n_rec: int, until_k):
    """Seed rows: minted per (seed, asset); conversions add taint to the asset received. Returns (rows,
    total seeded per asset, the first 200 conversions in detail)."""
    seed_rows = []
    minted = res["rec_minted"]
    total = {}
    for idx, (spec, kind, ks) in enumerate(specs):
        ks = ks[(ks < until_k) & (seed_of[ks] == idx)]
        j = np.minimum(np.searchsorted(rk, ks), max(n_rec - 1, 0))
        hit = (j < n_rec) & (rk[j] == ks) if n_rec else np.zeros(len(ks), bool)
        m = minted.ints(j[hit]) if n_rec else []
        minted_k = [0] * len(ks)
        for p_, v in zip(np.flatnonzero(hit).tolist(), m):
            minted_k[p_] = v
        nominal = g.amounts(ks)
        a_of = g.tr_asset[ks].astype(np.int64)
        uniq, first = np.unique(a_of, return_index=True)
        for a_id in uniq[np.argsort(first)].tolist():
            sel = np.flatnonzero(a_of == a_id).tolist()
            amt = sum(minted_k[p_] for p_ in sel)
            seed_rows.append(Seed(spec=spec, kind=kind, amount=amt, asset=names[a_id], outputs=len(sel),
                                  nominal=sum(nominal[p_] for p_ in sel)))
            total[names[a_id]] = total.get(names[a_id], 0) + amt
    conv_detail = []
    conv_sum: dict[tuple, list] = {}
    tx_hash = {}
    if res["convs"]:
        ids = np.array(sorted({int(c[0]) for c in res["convs"]}), np.int64)
        tx_hash = dict(zip(ids.tolist(), C.words_to_strings(g.tx_hash[ids], 32).to_pylist()))
    conv_addr = dict(zip([int(c[1]) for c in res["convs"]], g.address_strings([int(c[1]) for c in res["convs"]])))
    for tx, acct, afrom, tfrom, ato, tto, _rec in res["convs"]:
        af, at = names[afrom], names[ato]
        s_ = conv_sum.setdefault((af, at), [0, 0])
        s_[0] += tto
        s_[1] += 1
        if len(conv_detail) < 200:
            conv_detail.append({"txid": tx_hash.get(tx), "account": conv_addr.get(acct), "from_asset": af,
                                "from_amount": str(tfrom), "to_asset": at, "to_amount": str(tto)})
    for (af, at), (amt, n) in conv_sum.items():
        seed_rows.append(Seed(spec=f"conversion {af}->{at}", kind="conversion", amount=amt, asset=at, outputs=n,
                              nominal=amt))
        total[at] = total.get(at, 0) + amt
    return seed_rows, total, conv_detail


def _paths(g: EthGraph, req, names, codes, rk, ramt, rpar, rhop, rec_to, sink_idx, label):
    """Paths: walk the parents of the largest sink records and of the explained addresses' records.
    Returns (paths to sinks, explain entries)."""
    sink_recs = ramt.desc(sink_idx).tolist()
    path_heads = sink_recs[:req.top_paths]
    explain_ids = g.address_ids(req.explain) if req.explain else {}
    expl_heads: dict[str, list[int]] = {}
    for a in req.explain:
        aid = explain_ids.get(a.lower())
        if aid is None:
            expl_heads[a] = []
            continue
        mine = np.flatnonzero(rec_to == aid)
        mine = mine[ramt.positive(mine)]
        expl_heads[a] = ramt.desc(mine)[:5].tolist()
    chains = {}
    for head in path_heads + [i for v in expl_heads.values() for i in v]:
        i, seen = head, []
        while i >= 0 and i not in seen:
            seen.append(i)
            i = int(rpar[i])
        chains[head] = seen
    steps_at = {}
    recs_ = sorted({i for v in chains.values() for i in v})
    if recs_:
        ks = rk[recs_]
        txid, ref, tm = g.refs(ks)
        accts = g.tr_to[ks]
        for i, _k, acct, a_, amt, value, t_, r_, tm_ in zip(recs_, ks.tolist(), accts.tolist(),
                                                           g.address_strings(accts), ramt.ints(recs_),
                                                           g.amounts(ks), txid, ref, tm.tolist()):
            steps_at[i] = Step(hop=int(rhop[i]), txid=t_, ref=r_, address=a_, amount=amt, value=value, time=tm_,
                               label=label(acct))

    def make_path(i, kind) -> TracePath:
        k = int(rk[i])
        head = steps_at[i]
        return TracePath(to=head.address, kind=kind, amount=head.amount, asset=names[int(g.tr_asset[k])],
                         steps=[steps_at[j] for j in chains[i]][::-1])

    paths = [make_path(i, "sink") for i in path_heads]
    explain: list[dict] = []
    for a, heads in expl_heads.items():
        if not heads:
            explain.append({"address": a, "found": False,
                            "note": "no traced value reached this address", "paths": []})
            continue
        explain.append({"address": a, "found": True, "note": None,
                        "paths": [make_path(i, K.CODE_NAMES[int(codes[i])]) for i in heads]})
    return paths, explain


def _build_report(ws, g: EthGraph, req, names, assets_info, specs, seed_of, res, sinks, start_k, until_k):
    """Report rows from the kernel's record arrays: grouping, ordering and the transfer references are
    array operations; Python objects are made only for the rows the report holds."""
    rk, ramt, rpar, rhop = res["rec_k"], res["rec_amt"], res["rec_par"], res["rec_hop"]
    codes = res["rec_code"].astype(np.int64)
    n_rec = len(rk)
    rec_to = g.tr_to[rk]
    asset_names = np.array(names, dtype=object)
    terminal = np.flatnonzero(codes != K.PASS)
    tcodes = codes[terminal]

    def label(acct: int):
        t = sinks.labels.get(acct)
        return t.label if t else None

    # fees: per asset
    fees: dict[str, int] = {}
    fee_recs = terminal[tcodes == K.FEE]
    if len(fee_recs):
        fa = g.tr_asset[rk[fee_recs]].astype(np.int64)
        assets_, grp = np.unique(fa, return_inverse=True)
        for a_id, total in zip(assets_.tolist(), ramt.group_sums(fee_recs, grp.reshape(-1), len(assets_))):
            fees[names[a_id]] = fees.get(names[a_id], 0) + total
    # sinks: one row per transfer into a sink
    sink_idx = terminal[tcodes == K.SINK]
    sink_idx = sink_idx[ramt.positive(sink_idx)]
    sink_rows = []
    if len(sink_idx):
        ks = rk[sink_idx]
        txid, ref, tm = g.refs(ks)
        accts = g.tr_to[ks]
        addrs = g.address_strings(accts)
        prefetch_detections(sinks, accts.tolist())
        for i, k, acct, a_, amt, value, t_, r_, tm_ in zip(
                sink_idx.tolist(), ks.tolist(), accts.tolist(), addrs, ramt.ints(sink_idx), g.amounts(ks), txid, ref,
                tm.tolist()):
            ent = sinks.entities[int(sinks.addr_sink[acct])]
            sink_rows.append(Sink(address=a_ if a_ is not None else str(acct), label=ent.label, category=ent.category,
                                  actor=ent.actor, amount=amt, asset=names[int(g.tr_asset[k])], hops=int(rhop[i]),
                                  txid=t_, time=tm_, ref=r_, value=value, source=ent.source,
                                  via_cluster=bool(sinks.via_cluster[acct]) if len(sinks.via_cluster) else False,
                                  **sink_fields(sinks, acct)))
    stopped_rows = _stopped_rows(g, names, codes, terminal, tcodes, rk, ramt, rhop)
    holding_rows = _holding_rows(g, res, rk, asset_names, sinks, stopped_rows, label)
    stopped_rows.sort(key=lambda s: (-s.amount, s.reason, s.address or ""))
    sink_rows.sort(key=lambda s: (-s.amount, s.address))
    seed_rows, total, conv_detail = _seed_rows(g, names, specs, seed_of, res, rk, n_rec, until_k)
    used_assets = set(total) | {s.asset for s in sink_rows} | set(h.asset for h in holding_rows) | \
        {s.asset for s in stopped_rows} | set(fees)
    assets = {a: assets_info[a] for a in sorted(used_assets, key=lambda x: (x != "ETH", x))}
    for a in assets:
        total.setdefault(a, 0)
        fees.setdefault(a, 0)

    paths, explain = _paths(g, req, names, codes, rk, ramt, rpar, rhop, rec_to, sink_idx, label)
    explain_ids = g.address_ids(req.explain) if req.explain and sinks.detected else {}
    for e in explain:  # an explained address that behaves like a service no tag names: the trace stops there
        svc = sinks.detected.get(explain_ids.get(e["address"].lower(), -1)) if explain_ids else None
        if svc is not None:
            e["service_like"] = svc
            e["note"] = (f"{e['note'] + '; ' if e['note'] else ''}the address behaves like a service "
                         f"({svc['kind']}, confidence {svc['confidence']}): the trace stops there "
                         "(--follow-services to go on)")
    stats = {
        "engine": res["engine"], "entry_mode": ENTRY_MODE if req.policy in ("fifo", "lifo") else None,
        "transfers_in_store": g.n_transfers, "transfers_scanned": int(res["stop_k"]),
        "transfers_tainted": n_rec, "transactions_with_taint": res["txs"], "holdings_in_graph": g.n_holdings,
        "opening_balance_assumed": res["deficits"], "conversions": conv_detail, "n_conversions": len(res["convs"]),
        "sink_transfers": len(sink_rows), "holdings": len(holding_rows), "stopped_entries": len(stopped_rows),
        "sink_addresses": sinks.n_sink_addresses, "tagged_addresses": sinks.tagged,
    }
    limits = {"max_hops": req.max_hops, "min_value": req.min_value, "min_share": req.min_share,
              "since": req.since.as_dict() if req.since else None,
              "until": req.until.as_dict() if req.until else None, "max_txs": req.max_txs,
              "services": "follow" if req.follow_services else "stop"}
    params = {"entry_mode": ENTRY_MODE} if req.policy in ("fifo", "lifo") else {}
    return TraceReport(
        chain="eth", network=g.network, policy={"name": req.policy, "params": params}, limits=limits,
        seeds=seed_rows, assets=assets, total_seeded=total, sinks=sink_rows, holdings=holding_rows,
        stopped=stopped_rows, fees=fees, stats=stats, partial=res["partial"],
        partial_reason=(f"stopped after --max-txs {req.max_txs} transactions carrying taint; value still held is "
                        "reported as stopped (max_txs)") if res["partial"] else None,
        paths=paths, explain=explain,
        tags={"files": req.tag_files, "registry": req.registry, "sink_addresses": sinks.n_sink_addresses,
              "tags_loaded": sinks.tags_loaded, "tagged_addresses": sinks.tagged})


TRACERS["eth"] = Tracer(chain="eth", policies=POLICIES, fee_modes=("tail",), default_min_value=DEFAULT_MIN_VALUE,
                        run=trace_eth, asset="ETH")
