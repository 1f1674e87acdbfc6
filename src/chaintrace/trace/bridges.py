"""Bridge sinks: a trace that reaches a bridge stops there (the bridge is a sink: tags of category ``bridge`` /
``defi_bridge``), and each such sink row lists the transfers on the other chain its deposit was matched with
(:func:`chaintrace.graph.bridges.bridge_matches`): chain, transaction, recipient, amount, fee, delay, rule and
confidence. ``rule == "event"`` matches are deterministic (the deposit names its destination); ``amount+time``
matches are probabilistic candidates, their confidences a split that never sums over 1 per deposit.

The trace does not continue on the other chain (``--through-bridges`` is not built): the matched release is
where to start the next trace, on the other chain, with its recipient and amount given here.
"""
from __future__ import annotations

from chaintrace.trace.report import TraceReport

BRIDGE_CATEGORIES = ("bridge", "defi_bridge")


def attach_bridge_matches(ws, report: TraceReport, **params) -> None:
    """Fill ``sink.bridge`` of every bridge sink of `report` (in place) and note what the matching stood on in
    ``report.assumptions["bridges"]``."""
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

    btc_bridges = sorted({s.address for s in sinks}) if report.chain == "btc" else []
    if not btc_bridges:
        for s in sinks:
            s.bridge = []
        report.assumptions["bridges"] = ("a bridge contract on Ethereum was reached; matching its deposits needs "
                                         "the bridge's Bitcoin custodian address: run chaintrace detect bridges "
                                         "--bridge CONTRACT --bridge CUSTODIAN")
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
        "amount+time = probabilistic split); the trace stops at the bridge")
    for e in report.explain:
        hit = [s for s in sinks if s.address == e.get("address") and s.bridge]
        if hit:
            rel = "; ".join(f"{b['chain']} {b['tx']} -> {b['recipient']} {b['amount']} ({b['rule']}, "
                            f"{b['confidence']:.2f})" for s in hit for b in (s.bridge or []))
            e["note"] = (e.get("note") or f"{len(e['paths'])} path(s) carried traced value here") + \
                f"; bridge: released on {other}: {rel}"
