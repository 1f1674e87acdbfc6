"""Bridge sinks: a trace that reaches a bridge stops there (the bridge is a sink: tags of category ``bridge`` /
``defi_bridge``), and each such sink row lists the transfers on the other chain its deposit was matched with
(:func:`chaintrace.graph.bridges.bridge_matches`): chain, transaction, recipient, amount, fee, delay, rule and
confidence. ``rule == "event"`` matches are deterministic (the deposit names its destination); ``amount+time``
matches are probabilistic candidates, their confidences a split that never sums over 1 per deposit.

With ``trace --through-bridges`` the trace continues on the other chain from the matched releases
(:mod:`chaintrace.trace.crosschain`).
"""
from __future__ import annotations

from chaintrace.trace.report import TraceReport

BRIDGE_CATEGORIES = ("bridge", "defi_bridge")


def _other_side(ws, report: TraceReport, sinks, other: str, tags, registry: bool, bridges) -> list[str]:
    """Addresses of the reached bridges on the `other` chain: those of `bridges` written like `other`'s
    addresses, else the `other` chain's tags of a bridge category with the actor (or label) of a reached sink."""
    if bridges:
        return [b for b in bridges if b.lower().startswith("0x") == (other == "eth")]
    from chaintrace.trace import load_trace_tags

    keys = {s.actor or s.label for s in sinks}
    return sorted({t.address for t in load_trace_tags(ws, other, list(tags or ()), registry)
                   if t.category in BRIDGE_CATEGORIES and (t.actor or t.label) in keys})


def attach_bridge_matches(ws, report: TraceReport, *, tags=(), registry: bool = True, bridges=None,
                          **params) -> None:
    """Fill ``sink.bridge`` of every bridge sink of `report` (in place) and note what the matching stood on in
    ``report.assumptions["bridges"]``. The bridge's addresses on the other chain come from `bridges` or from
    the other chain's ``bridge`` tags with the same actor (`tags` files and, with `registry`, the registry):
    on Bitcoin the reached custodian addresses are matched against Ethereum mints (and the contract's payouts);
    on Ethereum the reached bridge contracts need the custodian's Bitcoin addresses."""
    sinks = [s for s in report.sinks if s.category in BRIDGE_CATEGORIES]
    if not sinks:
        return
    other = "eth" if report.chain == "btc" else "btc"
    chains = ws.chains()
    if other not in chains or report.chain not in ("btc", "eth"):
        for s in sinks:
            s.bridge = []
        report.assumptions["bridges"] = (f"{len(sinks)} transfer(s) reached a bridge; the other side ({other}) "
                                         "is not in this workspace, so no release could be matched (unknown)")
        return
    from chaintrace.graph.bridges import bridge_matches

    far = _other_side(ws, report, sinks, other, tags, registry, bridges)
    near = sorted({s.address for s in sinks})
    btc_bridges = near + far if report.chain == "btc" else far + near
    if not [b for b in btc_bridges if not b.lower().startswith("0x")]:
        for s in sinks:
            s.bridge = []
        report.assumptions["bridges"] = ("a bridge contract on Ethereum was reached; matching its deposits needs "
                                         "the bridge's Bitcoin custodian address: tag it (category bridge, the "
                                         "same actor) or name it (trace --bridge ADDRESS; chaintrace detect "
                                         "bridges --bridge CONTRACT --bridge CUSTODIAN)")
        return
    res = bridge_matches(ws, btc_bridges, **params)
    by_ref: dict[str, list[dict]] = {}
    for m in res["matches"]:
        by_ref.setdefault(m["deposit"]["ref"], []).append(m)
    n = 0
    for s in sinks:
        s.bridge = [{"chain": m["to_chain"], "tx": m["release"]["tx"], "ref": m["release"].get("ref"),
                     "recipient": m["release"]["recipient"], "amount": str(m["release"]["amount"]),
                     "asset": m["release"].get("asset", "BTC"), "fee_sat": str(m["fee_sat"]), "delay_s": m["delay_s"],
                     "rule": m["rule"], "confidence": m["confidence"]} for m in by_ref.get(s.ref, [])]
        n += bool(s.bridge)
    p = res["params"]
    report.assumptions["bridges"] = (
        f"{n} of {len(sinks)} bridge deposit(s) matched on {other} (fee {p['fee_min']:.2%}-{p['fee_max']:.2%} + "
        f"{p['fee_fixed']} sat, delay {p['delay_min']}-{p['delay_max']} s; rule event = deterministic, "
        "amount+time = probabilistic split)")
    for e in report.explain:
        hit = [s for s in sinks if s.address == e.get("address") and s.bridge]
        if hit:
            rel = "; ".join(f"{b['chain']} {b['tx']} -> {b['recipient']} {b['amount']} ({b['rule']}, "
                            f"{b['confidence']:.2f})" for s in hit for b in (s.bridge or []))
            e["note"] = (e.get("note") or f"{len(e['paths'])} path(s) carried traced value here") + \
                f"; bridge: released on {other}: {rel}"
