"""``trace --through-bridges``: continue a trace on the other chain from the matched bridge release.

A trace that reaches a bridge stops there (a sink of category ``bridge``); :mod:`chaintrace.trace.bridges`
lists the releases on the other chain matched with each bridge deposit. With ``through_bridges`` the trace then
continues on the other chain (Bitcoin -> Ethereum wrapped asset, Ethereum -> Bitcoin) from each matched release,
carrying the matched share:

``carried = floor(release amount x traced / deposit value x confidence)``

in the release's own base units (the bridge fee is taken pro rata: what crossed is the traced share of what was
released). ``event`` matches (the deposit names its destination) are deterministic (confidence 1) and carry
taint; ``amount+time`` matches are probabilistic, their confidence multiplies the share, and they are reported
apart (``deterministic: false``), like ``--through-mixers``.

Each flow's continuation is a full trace on the other chain seeded with the release transfer (``txid:vout`` on
Bitcoin, ``<hash>:log<i>`` on Ethereum) and scaled to the carried share (:func:`scale_report`: every row floored,
the rounding units handed to the largest remainders so that per asset the rows add up to exactly ``carried``).
The continuation does not cross a second bridge (one crossing per trace).

Conversion rule: amounts are never mixed between chains. Each flow states the carried amount in the release's
base units (satoshi on Bitcoin; the wrapped token's base units on Ethereum) and its equivalent in the deposit's
base units, ``carried_src = floor(carried x 10**decimals(deposit asset) / 10**decimals(release asset))`` (1 sat =
10**(d - 8) base units of a wrapped token with d decimals; WBTC and renBTC have 8, so 1:1).

Conservation, checked exactly (:func:`check_cross_chain`): on the source chain, per bridge deposit,
``traced_in = crossed_deterministic + crossed_probabilistic + kept`` (``kept >= 0``: bridge fee, unmatched
value, the probabilistic remainder, rounding); on the other chain, every flow's continuation satisfies the
report invariant with ``total_seeded == carried``, and per release the carried amounts never exceed its amount.
"""
from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

from chaintrace.errors import UserError
from chaintrace.trace.report import InvariantError, TraceReport, check_invariant

NOTE = ("continued on the other chain from the bridge releases matched with traced deposits: event matches "
        "(the deposit names its destination) carry taint deterministically; amount+time matches are probabilistic "
        "(value x confidence), a candidate, not proof, and are kept apart")
CONVERSION = ("carried = floor(release amount x traced / deposit value x confidence), in the release's base units; "
              "carried_src = carried converted at 1 sat = 10**(d - 8) base units of a d-decimal wrapped token "
              "(WBTC: 1:1)")
DEFAULT_MIN_CONFIDENCE = 0.0


def _alloc(vals: list[int], num: int, den: int, target: int) -> list[int]:
    """Scale `vals` by num/den (floored) and hand the `target - sum` rounding units to the largest remainders."""
    base = [v * num // den for v in vals]
    k = target - sum(base)
    if k < 0 or k > len(vals):
        raise InvariantError(f"cannot scale {sum(vals)} to {target} exactly ({num}/{den})")
    order = sorted(range(len(vals)), key=lambda i: (-(vals[i] * num % den), i))
    for i in order[:k]:
        base[i] += 1
    return base


def scale_report(r: TraceReport, num: int, den: int) -> TraceReport:
    """A copy of `r` with every amount scaled by num/den: per asset the seeded total becomes
    ``floor(seeded x num / den)`` and sinks, holdings, stopped and fees are floored with the rounding units given
    to the largest remainders, so the invariant holds exactly. Paths and explain steps are floored (display)."""
    s = copy.deepcopy(r)
    if den <= 0 or num < 0 or num > den:
        raise ValueError(f"scale {num}/{den} is not a share")
    for a in s.assets:
        target = s.total_seeded.get(a, 0) * num // den
        every_row: list[Any] = [*s.sinks, *s.holdings, *s.stopped]
        rows = [x for x in every_row if x.asset == a]
        new = _alloc([x.amount for x in rows] + [s.fees.get(a, 0)], num, den, target)
        for x, v in zip(rows, new):
            x.amount = v
        if a in s.fees:
            s.fees[a] = new[-1]
        seeds = [x for x in s.seeds if x.asset == a]
        for x, v in zip(seeds, _alloc([x.amount for x in seeds], num, den, target)):
            x.amount = v
        s.total_seeded[a] = target
    every: list[Any] = [*s.sinks, *s.holdings, *s.stopped]
    for x in every:
        x.by_seed = None
    for p in [*s.paths, *(p for e in s.explain for p in e["paths"])]:
        p.amount = p.amount * num // den
        for st in p.steps:
            st.amount = st.amount * num // den
    s.sinks = [x for x in s.sinks if x.amount > 0]
    s.holdings = [x for x in s.holdings if x.amount > 0]
    s.stopped = [x for x in s.stopped if x.amount > 0]
    s.assumptions["cross_chain"] = (f"a bridge continuation: every amount is the traced share {num}/{den} of the "
                                    "release's trace (floored; rounding units to the largest remainders)")
    return s


def _decimals(r: TraceReport, asset: str) -> int:
    d = (r.assets.get(asset) or {}).get("decimals")
    return 8 if d is None and r.chain == "btc" else int(d if d is not None else 18)


def _release_asset(sub: TraceReport, b: dict) -> str:
    """The asset id of the release in the continuation's report (a token's contract address, or BTC/ETH)."""
    if len(sub.total_seeded) == 1:
        return next(iter(sub.total_seeded))
    for a, info in sub.assets.items():
        if a == b.get("asset") or (info or {}).get("symbol") == b.get("asset"):
            return a
    return sub.asset


def through_bridges(ws, report: TraceReport, trace_fn, kwargs: dict, min_confidence: float | None = None) -> dict:
    """The ``cross_chain`` section of `report` (see the module doc). `trace_fn(ws, seeds, **kw)` runs a trace
    (:func:`chaintrace.trace.trace`); `kwargs` are the options the continuation shares with the first trace."""
    other = "eth" if report.chain == "btc" else "btc"
    min_conf = float(DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence)
    from chaintrace.trace import get_tracer

    tracer = get_tracer(other)
    kw = dict(kwargs)
    if kw.get("coinjoins") == "link" and report.chain == "btc":  # the other chain has no CoinJoins to link past
        kw["coinjoins"] = "follow"
    notes = []
    if kw.get("policy") not in tracer.policies:
        notes.append(f"policy {kw.get('policy')} is not defined on {other}: the continuation uses haircut")
        kw["policy"] = "haircut"
    if kw.get("fee_mode") not in tracer.fee_modes:
        kw["fee_mode"] = tracer.fee_modes[0]
    until = kw.get("until")
    if until is not None and getattr(until, "kind", "time") == "height":
        notes.append(f"--until {until} is a {report.chain} height: not applied on {other}")
        kw["until"] = None
    kw["explain"] = [x for x in kw.get("explain", ()) if x.lower().startswith("0x") == (other == "eth")]
    section: dict = {"note": NOTE, "conversion": CONVERSION, "from_chain": report.chain, "to_chain": other,
                     "params": {"min_confidence": min_conf, "policy": kw["policy"], "crossings": 1},
                     "assumed": notes, "flows": [], "deposits": [], "skipped": []}
    cache: dict[str, TraceReport] = {}
    for s in report.sinks:
        if not s.bridge:
            continue
        dep = {"ref": s.ref, "tx": s.txid, "address": s.address, "label": s.label, "asset": s.asset,
               "traced_in": str(s.amount), "value": str(s.value), "crossed_deterministic": "0",
               "crossed_probabilistic": "0", "kept": str(s.amount)}
        crossed = {True: 0, False: 0}
        for b in s.bridge:
            det = b["rule"] == "event"
            conf = 1.0 if det else float(b["confidence"])
            if not det and conf < min_conf:
                section["skipped"].append({"deposit": s.ref, "release": b["ref"], "reason": "below_min_confidence",
                                           "confidence": conf})
                continue
            cf = Fraction(1) if det else Fraction(conf).limit_denominator(10**6)
            rel_amt = int(b["amount"])
            share = Fraction(s.amount, max(s.value, 1)) * cf
            carried = int(rel_amt * share)  # floor (non-negative)
            if carried <= 0:
                section["skipped"].append({"deposit": s.ref, "release": b["ref"], "reason": "nothing_carried",
                                           "confidence": conf})
                continue
            seed = b["ref"] or b["tx"]
            full = cache.get(seed)
            if full is None:
                try:
                    full = cache[seed] = trace_fn(ws, [seed], chain=other, through_bridges=False, **kw)
                except UserError as e:  # e.g. the release lies after --until: said, not hidden
                    section["skipped"].append({"deposit": s.ref, "release": b["ref"], "reason": str(e),
                                               "confidence": conf})
                    continue
            asset = _release_asset(full, b)
            seeded = full.total_seeded.get(asset, 0)
            if seeded != rel_amt:
                raise InvariantError(f"release {seed}: its trace seeded {seeded}, the release moved {rel_amt}")
            sub = scale_report(full, carried, rel_amt)
            carried_src = carried * 10 ** _decimals(report, s.asset) // 10 ** _decimals(full, asset)
            crossed[det] += carried_src
            section["flows"].append({
                "from_chain": report.chain, "to_chain": other, "deterministic": det,
                "deposit": {"ref": s.ref, "tx": s.txid, "address": s.address, "asset": s.asset,
                            "traced": str(s.amount), "value": str(s.value)},
                "release": {"tx": b["tx"], "ref": b["ref"], "recipient": b["recipient"], "amount": str(rel_amt),
                            "asset": asset, "symbol": b.get("asset")},
                "rule": b["rule"], "confidence": conf, "fee_sat": str(b["fee_sat"]), "delay_s": b["delay_s"],
                "carried": str(carried), "carried_asset": asset, "carried_src": str(carried_src),
                "trace": sub})
        dep["crossed_deterministic"] = str(crossed[True])
        dep["crossed_probabilistic"] = str(crossed[False])
        dep["kept"] = str(s.amount - crossed[True] - crossed[False])
        section["deposits"].append(dep)
    section["totals"] = {k: _totals([f for f in section["flows"] if f["deterministic"] == det])
                         for k, det in (("deterministic", True), ("probabilistic", False))}
    return section


def _totals(flows: list[dict]) -> dict:
    """Per asset of the other chain: carried, and where it went (sinks, holdings, stopped, fees), exact."""
    out: dict[str, dict] = {}
    for f in flows:
        for a, t in f["trace"].totals().items():
            o = out.setdefault(a, {"carried": 0, "seeded": 0, "sinks": 0, "holdings": 0, "stopped": 0, "fees": 0})
            for k in ("seeded", "sinks", "holdings", "stopped", "fees"):
                o[k] += t[k]
            if a == f["carried_asset"]:
                o["carried"] += int(f["carried"])
    return {a: {k: str(v) for k, v in t.items()} for a, t in out.items()}


def check_cross_chain(report: TraceReport) -> None:
    """Raise :class:`InvariantError` unless the cross-chain section conserves value exactly (module doc)."""
    sec = report.cross_chain or {}
    by_ref = {s.ref: s for s in report.sinks}
    per_release: dict[str, int] = {}
    for d in sec.get("deposits", []):
        s = by_ref.get(d["ref"])
        if s is None or int(d["traced_in"]) != s.amount:
            raise InvariantError(f"bridge deposit {d['ref']}: traced in {d['traced_in']} is not the sink's amount")
        kept = int(d["kept"])
        if kept < 0 or int(d["traced_in"]) != int(d["crossed_deterministic"]) + int(d["crossed_probabilistic"]) + kept:
            raise InvariantError(f"bridge deposit {d['ref']}: traced in {d['traced_in']} != crossed "
                                 f"{d['crossed_deterministic']} + {d['crossed_probabilistic']} + kept {kept}")
    for f in sec.get("flows", []):
        sub = f["trace"]
        check_invariant(sub)
        if sub.total_seeded.get(f["carried_asset"], 0) != int(f["carried"]):
            raise InvariantError(f"flow to {f['release']['ref']}: continuation seeded "
                                 f"{sub.total_seeded.get(f['carried_asset'], 0)} != carried {f['carried']}")
        key = f["release"]["ref"] or f["release"]["tx"]
        per_release[key] = per_release.get(key, 0) + int(f["carried"])
        if per_release[key] > int(f["release"]["amount"]):
            raise InvariantError(f"release {key}: carried {per_release[key]} > its amount {f['release']['amount']}")
    for det in (True, False):
        src = sum(int(d["crossed_deterministic" if det else "crossed_probabilistic"]) for d in sec.get("deposits", []))
        flows = sum(int(f["carried_src"]) for f in sec.get("flows", []) if f["deterministic"] == det)
        if src != flows:
            raise InvariantError(f"crossed {src} != the flows' carried_src {flows}")
