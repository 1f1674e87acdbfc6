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
import pyarrow as pa

from chaintrace.errors import UserError
from chaintrace.graph.eth import FEE_KINDS, EthGraph, address_ids, address_strings, load_eth_graph
from chaintrace.progress import Progress
from chaintrace.trace import TRACERS, Bound, TraceRequest, Tracer, load_trace_tags
from chaintrace.trace import eth_kernels as K
from chaintrace.trace.report import Holding, Seed, Sink, Step, Stopped, TracePath, TraceReport
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
    """Report names of every asset id (symbol, disambiguated by address when symbols repeat) and the
    ``assets`` dict of the report."""
    t = ws.require_chain("eth").read("assets", ["asset_id", "address", "symbol", "decimals"])
    rows = sorted(zip(*(t[c].to_pylist() for c in ("asset_id", "address", "symbol", "decimals"))))
    count: dict[str, int] = {}
    for _, _, sym, _ in rows:
        if sym:
            count[sym] = count.get(sym, 0) + 1
    names, info = [], {}
    for aid, addr, sym, dec in rows:
        if addr is None:
            name = sym or "ETH"
        elif sym and count[sym] == 1 and sym != "ETH":
            name = sym
        elif sym:
            name = f"{sym}@{addr[:10]}"
        else:
            name = addr
        names.append(name)
        info[name] = {"decimals": dec, "address": addr}
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
            ids = address_ids(ws, [s])
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
        else:
            raise UserError(f"seed {s!r}: expected an address (0x + 40 hex digits) or a transaction hash "
                            f"(0x + 64 hex digits)")
        free = ks[seed_of[ks] < 0]
        seed_of[free] = i
        specs.append((s, kind, ks))
    return seed_of, specs


def _amounts(g: EthGraph, ks: np.ndarray) -> list[int]:
    return [g.amount(int(k)) for k in ks]


def run_kernel(g: EthGraph, policy: str, seed_of, start_k, end_k, acct_sink, burn_acct, min_per_asset: list[int],
               max_hops, max_txs, engine: str = "auto", entry_mode: str = ENTRY_MODE) -> dict:
    """Run the numba kernel (or the exact Python reference) and return its results with Python-int amounts."""
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
        return {"engine": "python", "rec_k": np.array([r[0] for r in recs], np.int64),
                "rec_amt": [r[1] for r in recs], "rec_par": np.array([r[2] for r in recs], np.int64),
                "rec_hop": np.array([r[3] for r in recs], np.int64), "rec_code": np.array([r[4] for r in recs], np.int8),
                "rec_minted": [r[5] for r in recs], "taint": {h: v for h, v in enumerate(taint) if v}, "hop": np.array(hop, np.int64),
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

    def ints(lo, hi):
        return [(int(h) << 64) | int(x) for x, h in zip(lo.tolist(), hi.tolist())]

    nz = np.flatnonzero((t_lo != 0) | (t_hi != 0))
    taint = {int(h): v for h, v in zip(nz.tolist(), ints(t_lo[nz], t_hi[nz]))}
    convs = list(zip(c_tx.tolist(), c_acct.tolist(), c_afrom.tolist(), ints(c_flo, c_fhi), c_ato.tolist(),
                     ints(c_tlo, c_thi), c_rec.tolist()))
    return {"engine": "numba", "rec_k": r_k, "rec_amt": _Limbs(r_lo, r_hi), "rec_par": r_par,
            "rec_hop": r_hop.astype(np.int64), "rec_code": r_code, "rec_minted": _Limbs(r_mlo, r_mhi),
            "taint": taint, "hop": hop.astype(np.int64), "src": src, "convs": convs, "deficits": int(deficits),
            "partial": bool(partial), "stop_k": int(stop_k), "txs": int(txs_done)}


class _Limbs:
    """Exact ints from (lo, hi) uint64 arrays, converted on access (a kernel result may hold millions)."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __len__(self) -> int:
        return len(self.lo)

    def __getitem__(self, i) -> int:
        return (int(self.hi[i]) << 64) | int(self.lo[i])


def _transfer_info(ws, ks) -> dict[int, dict]:
    ks = np.unique(np.asarray(list(ks), np.int64))
    if not len(ks):
        return {}
    con = _con(ws, ("transfers", "transactions", "blocks"))
    con.register("q_ids", pa.table({"transfer_id": ks}))
    rows = con.execute(f"""
        SELECT r.transfer_id, r.kind, r.seq, r.log_index, r.trace_address, t.hash, b.time, r.height
        FROM transfers r JOIN q_ids USING (transfer_id)
        LEFT JOIN transactions t ON t.tx_id = r.tx_id
        LEFT JOIN blocks b ON b.height = r.height
        WHERE r.transfer_id BETWEEN {int(ks[0])} AND {int(ks[-1])}""").fetchall()
    out = {}
    for k, kind, seq, li, ta, h, tm, height in rows:
        base = h or f"block:{height}"
        if kind in ("token", "wrap", "unwrap") and li is not None:
            ref = f"{base}:log{li}"
        elif ta:
            ref = f"{base}:trace{ta.replace(',', '.')}"
        else:
            ref = f"{base}:{kind}" if kind != "call" else f"{base}:{seq}"
        out[int(k)] = {"txid": h or f"block:{height}", "ref": ref, "time": tm, "kind": kind}
    return out


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
    sinks = resolve_sinks(ws, g, tags, lambda a: address_ids(ws, a), g.n_addresses, chain="eth",
                          clusters=req.clusters)
    timing["sinks_s"] = round(time.perf_counter() - t1, 4)
    burn = address_ids(ws, ["0x" + "0" * 40])
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
    report.stats["seconds"] = round(time.perf_counter() - t0, 4)
    return report


def _build_report(ws, g: EthGraph, req, names, assets_info, specs, seed_of, res, sinks, start_k, until_k):
    rk, ramt, rpar, rhop, rcode = res["rec_k"], res["rec_amt"], res["rec_par"], res["rec_hop"], res["rec_code"]
    n_rec = len(rk)
    codes = rcode.astype(np.int64)
    rec_to = np.asarray(g.tr_to)[rk] if n_rec else np.zeros(0, np.int64)
    terminal = np.flatnonzero(codes != K.PASS)
    interesting = set(terminal[codes[terminal] != K.FEE].tolist())
    # holdings: remaining taint per holding (or stopped: max_txs when partial)
    hold_rows = sorted(res["taint"].items(), key=lambda kv: -kv[1])
    for h, _ in hold_rows:
        s = int(res["src"][h])
        if s >= 0:
            interesting.add(s)
    for c in res["convs"]:
        if c[6] >= 0:
            interesting.add(int(c[6]))
    # paths: walk parents of sink records (largest first) and explain targets
    sink_idx = terminal[codes[terminal] == K.SINK]
    sink_recs = [int(i) for i in sink_idx if ramt[int(i)] > 0]
    sink_recs.sort(key=lambda i: -ramt[i])
    explain_ids = address_ids(ws, req.explain) if req.explain else {}
    path_heads = list(sink_recs[:req.top_paths])
    expl_heads: dict[str, list[int]] = {}
    to_acct = g.tr_to
    for a in req.explain:
        aid = explain_ids.get(a.lower())
        if aid is None:
            expl_heads[a] = []
            continue
        mine = [int(i) for i in np.flatnonzero(rec_to == aid) if ramt[int(i)] > 0]
        mine.sort(key=lambda i: -ramt[i])
        expl_heads[a] = mine[:5]
    chain_recs = set()
    for head in path_heads + [i for v in expl_heads.values() for i in v]:
        i = head
        while i >= 0 and i not in chain_recs:
            chain_recs.add(i)
            i = int(rpar[i])
    need = np.fromiter(interesting | chain_recs, np.int64)
    info = _transfer_info(ws, rk[need] if len(need) else [])
    acct_ids = set(np.unique(rec_to[need]).tolist()) if len(need) else set()
    acct_ids |= {int(g.hold_account[h]) for h, _ in hold_rows}
    acct_ids |= {int(c[1]) for c in res["convs"]}
    acct_ids |= set(np.unique(np.asarray(g.hold_account)[np.asarray(g.tr_from_h)[rk[terminal[codes[terminal] == K.CONVERTED]]]]).tolist())
    addr = address_strings(ws, acct_ids)

    def label(aid):
        t = sinks.labels.get(aid)
        return t.label if t else None

    def asset_of(k):
        return names[int(g.tr_asset[k])]

    sink_rows, stop_groups, fees = [], {}, {}
    fee_recs = terminal[codes[terminal] == K.FEE]
    if len(fee_recs):
        if isinstance(ramt, _Limbs):
            from chaintrace.chains.eth import u128 as U

            fa = np.asarray(g.tr_asset)[rk[fee_recs]]
            for a_id in np.unique(fa).tolist():
                sel = fee_recs[fa == a_id]
                lo, hi = ramt.lo[sel], ramt.hi[sel]
                total = int(lo.astype(object).sum()) + (int(hi.astype(object).sum()) << 64)
                fees[names[a_id]] = fees.get(names[a_id], 0) + total
        else:
            for i in fee_recs.tolist():
                a = asset_of(int(rk[i]))
                fees[a] = fees.get(a, 0) + ramt[i]
    for i in terminal.tolist():
        c = int(codes[i])
        k = int(rk[i])
        amt = ramt[i]
        if c == K.FEE:
            continue
        a = asset_of(k)
        acct = int(to_acct[k])
        inf = info[k]
        if c == K.SINK:
            if amt == 0:
                continue
            ent = sinks.entities[int(sinks.addr_sink[acct])]
            sink_rows.append(Sink(address=addr.get(acct, str(acct)), label=ent.label, category=ent.category,
                                  actor=ent.actor, amount=amt, asset=a, hops=int(rhop[i]), txid=inf["txid"],
                                  time=inf["time"], ref=inf["ref"], value=g.amount(k), source=ent.source,
                                  via_cluster=bool(sinks.via_cluster[acct]) if len(sinks.via_cluster) else False))
            continue
        reason = K.CODE_NAMES[c]
        who = int(g.hold_account[g.tr_from_h[k]]) if c == K.CONVERTED else acct
        key = (reason, who, a)
        grp = stop_groups.setdefault(key, [0, 0, 1 << 30, None, 0, None])
        grp[0] += amt
        grp[1] += 1
        grp[2] = min(grp[2], int(rhop[i]))
        if amt >= grp[4]:
            grp[3], grp[4] = inf["ref"], amt
        if inf["time"] is not None:
            grp[5] = inf["time"] if grp[5] is None else min(grp[5], inf["time"])
    if res["convs"]:
        addr.update(address_strings(ws, {int(c[1]) for c in res["convs"]}))
    stopped_rows = [Stopped(reason=reason, amount=amt, asset=a, address=addr.get(who) if who >= 0 else None,
                            outputs=n, hops=hmin, ref=ref, time=tm)
                    for (reason, who, a), (amt, n, hmin, ref, _, tm) in stop_groups.items()]
    holding_rows = []
    for h, amt in hold_rows:
        acct = int(g.hold_account[h])
        a = names[int(g.hold_asset[h])]
        s = int(res["src"][h])
        inf = info.get(int(rk[s])) if s >= 0 else None
        if res["partial"]:
            stopped_rows.append(Stopped(reason="max_txs", amount=amt, asset=a, address=addr.get(acct), outputs=1,
                                        hops=int(res["hop"][h]), ref=inf["ref"] if inf else "", time=inf["time"] if inf else None))
            continue
        holding_rows.append(Holding(address=addr.get(acct), amount=amt, asset=a, ref=inf["ref"] if inf else "",
                                    hops=int(res["hop"][h]), time=inf["time"] if inf else None,
                                    value=amt, label=label(acct)))
    stopped_rows.sort(key=lambda s: (-s.amount, s.reason, s.address or ""))
    sink_rows.sort(key=lambda s: (-s.amount, s.address))
    # seeds: minted per (seed, asset); conversions add taint to the asset received
    seed_rows = []
    minted = res["rec_minted"]
    rk_arr = np.asarray(rk)
    total = {}
    for idx, (spec, kind, ks) in enumerate(specs):
        per: dict[str, list] = {}
        for k in ks.tolist():
            if k >= until_k or seed_of[k] != idx:
                continue
            a = asset_of(k)
            row = per.setdefault(a, [0, 0, 0])
            j = int(np.searchsorted(rk_arr, k))
            row[0] += minted[j] if j < len(rk_arr) and rk_arr[j] == k else 0
            row[1] += 1
            row[2] += g.amount(k)
        for a, (m, n, nom) in per.items():
            seed_rows.append(Seed(spec=spec, kind=kind, amount=m, asset=a, outputs=n, nominal=nom))
            total[a] = total.get(a, 0) + m
    conv_detail = []
    conv_sum: dict[tuple, list] = {}
    tx_hash = {}
    if res["convs"]:
        con = _con(ws, ("transactions",))
        ids = sorted({int(c[0]) for c in res["convs"]})
        con.register("q_tx", pa.table({"tx_id": pa.array(ids, pa.int64())}))
        tx_hash = dict(con.execute("SELECT tx_id, hash FROM transactions JOIN q_tx USING (tx_id)").fetchall())
    for tx, acct, afrom, tfrom, ato, tto, _rec in res["convs"]:
        af, at = names[afrom], names[ato]
        s = conv_sum.setdefault((af, at), [0, 0])
        s[0] += tto
        s[1] += 1
        if len(conv_detail) < 200:
            conv_detail.append({"txid": tx_hash.get(tx), "account": addr.get(acct), "from_asset": af,
                                "from_amount": str(tfrom), "to_asset": at, "to_amount": str(tto)})
    for (af, at), (amt, n) in conv_sum.items():
        seed_rows.append(Seed(spec=f"conversion {af}->{at}", kind="conversion", amount=amt, asset=at, outputs=n,
                              nominal=amt))
        total[at] = total.get(at, 0) + amt
    used_assets = set(total) | {s.asset for s in sink_rows} | {h.asset for h in holding_rows} | \
        {s.asset for s in stopped_rows} | set(fees)
    assets = {a: assets_info[a] for a in sorted(used_assets, key=lambda x: (x != "ETH", x))}
    for a in assets:
        total.setdefault(a, 0)
        fees.setdefault(a, 0)

    def step(i) -> Step:
        k = int(rk[i])
        inf = info[k]
        acct = int(to_acct[k])
        return Step(hop=int(rhop[i]), txid=inf["txid"], ref=inf["ref"], address=addr.get(acct),
                    amount=ramt[i], value=g.amount(k), time=inf["time"], label=label(acct))

    def make_path(i, kind) -> TracePath:
        steps = []
        j = i
        seen = set()
        while j >= 0 and j not in seen:
            seen.add(j)
            steps.append(step(j))
            j = int(rpar[j])
        k = int(rk[i])
        return TracePath(to=addr.get(int(to_acct[k])), kind=kind, amount=ramt[i], asset=asset_of(k), steps=steps[::-1])

    paths = [make_path(i, "sink") for i in path_heads]
    explain = []
    for a, heads in expl_heads.items():
        if not heads:
            explain.append({"address": a, "found": False,
                            "note": "no traced value reached this address", "paths": []})
            continue
        explain.append({"address": a, "found": True, "note": None,
                        "paths": [make_path(i, K.CODE_NAMES[int(codes[i])]) for i in heads]})
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
              "until": req.until.as_dict() if req.until else None, "max_txs": req.max_txs}
    params = {"entry_mode": ENTRY_MODE} if req.policy in ("fifo", "lifo") else {}
    return TraceReport(
        chain="eth", network=g.network, policy={"name": req.policy, "params": params}, limits=limits,
        seeds=seed_rows, assets=assets, total_seeded=total, sinks=sink_rows, holdings=holding_rows,
        stopped=stopped_rows, fees=fees, stats=stats, partial=res["partial"],
        partial_reason=(f"stopped after --max-txs {req.max_txs} transactions carrying taint; value still held is "
                        "reported as stopped (max_txs)") if res["partial"] else None,
        paths=paths, explain=explain,
        tags={"files": req.tag_files, "registry": req.registry, "sink_addresses": sinks.n_sink_addresses})


TRACERS["eth"] = Tracer(chain="eth", policies=POLICIES, fee_modes=("tail",), default_min_value=DEFAULT_MIN_VALUE,
                        run=trace_eth, asset="ETH")
