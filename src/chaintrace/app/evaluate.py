"""Scoring a trace report against simulator ground truth (``chaintrace simulate`` truth.json).

Metrics (tracing-methods.md §6.3, issue 4):

``recall``
    value-weighted recall of the true cash-outs: for every address where the thief really cashed out
    stolen value at an exchange, the smaller of the traced and the true amount, summed, over the true total.
    Direct cash-outs only (``recall``) and including the cash-outs of mixer payouts (``recall_all``; taint
    cannot follow value through a custodial mixer, so this one measures what a tracer misses there).
``precision``
    traced value landing on true cash-out addresses over all traced value landing on exchange sinks (sinks of
    category ``exchange``, and services recognised by behaviour, ``unidentified_service``: an untagged OTC
    desk or deposit address is where the thief cashed out as much as a tagged exchange).
``collateral``
    innocent deposit addresses flagged: exchange deposit addresses (not the exchange's own wallets) that
    received traced value but never a true cash-out (and the traced value they received).
``recall_exchange``, ``precision_exchange``
    the same at the level of the receiving exchange (what a freeze request needs): per exchange, the smaller
    of the traced value landing on any of its addresses and the true stolen value cashed out there, over the
    true total (recall) or over all traced value on exchange sinks (precision). Needs the true owner of the
    sink addresses (`entity_of`, from the simulator's addresses.parquet: :func:`sink_entities`).
"""
from __future__ import annotations

from chaintrace.trace.report import TraceReport


def true_cashouts(incident: dict, via_mixer: bool = False) -> dict[str, int]:
    """address -> true amount cashed out there (direct: the stolen part; via_mixer: also mixer payouts)."""
    out: dict[str, int] = {}
    for c in incident.get("cashouts", []):
        if c.get("address") and c["stolen"]:
            out[c["address"]] = out.get(c["address"], 0) + int(c["stolen"])
    if via_mixer:
        for c in incident.get("cashouts_via_mixer", []):
            if c.get("address"):
                out[c["address"]] = out.get(c["address"], 0) + int(c["amount"])
    return out


def incident_seeds(incident: dict) -> list[str]:
    """The stolen outputs of an incident as ``txid:vout`` seeds."""
    return [f"{o['txid']}:{o['vout']}" for o in incident["stolen"]["outputs"]]


def sink_entities(sim_dir, report: TraceReport) -> dict[str, tuple[int, str]]:
    """The true (entity id, role) of every sink address of `report`, from a simulation's addresses.parquet."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from chaintrace.sim import address_entities

    t = address_entities(sim_dir)
    sinks = list(report.sinks)
    for sec in (report.probabilistic, report.coinjoin_links):
        sub = (sec or {}).get("trace")
        sinks += list(sub.sinks) if sub is not None else []
    want = pa.array(sorted({s.address for s in sinks}), pa.string())
    t = t.filter(pc.is_in(t["address"], value_set=want))
    return {a: (e, r) for a, e, r in zip(t["address"].to_pylist(), t["entity"].to_pylist(), t["role"].to_pylist())}


def score(report: TraceReport, incident: dict, entity_of: dict[str, tuple[int, str]] | None = None,
          probabilistic: bool = True) -> dict:
    """Recall, precision and collateral of `report` against one simulated `incident` (see module doc).
    With `probabilistic` (default) the sink transfers of ``report.probabilistic`` (``trace --through-mixers``)
    and of ``report.coinjoin_links`` (``trace --coinjoins link``) count too, at their linked amounts."""
    direct = true_cashouts(incident)
    allc = true_cashouts(incident, via_mixer=True)
    traced: dict[str, int] = {}
    exch_total = 0
    mixer_total = 0
    rows = list(report.sinks)
    if probabilistic:
        for sec in (report.probabilistic, report.coinjoin_links):
            sub = (sec or {}).get("trace")
            rows += list(sub.sinks) if sub is not None else []
    for s in rows:
        if s.category in ("exchange", "unidentified_service"):
            traced[s.address] = traced.get(s.address, 0) + s.amount
            exch_total += s.amount
        elif s.category in ("mixing_service", "coinjoin"):
            mixer_total += s.amount

    def recall(truth: dict[str, int]) -> float:
        total = sum(truth.values())
        return sum(min(traced.get(a, 0), v) for a, v in truth.items()) / total if total else 0.0

    on_true = sum(v for a, v in traced.items() if a in allc)
    wallets = {a for a, (_e, role) in (entity_of or {}).items() if role != "deposit"}
    innocent = {a: v for a, v in traced.items() if a not in allc and v > 0 and a not in wallets}
    ex = {}
    if entity_of is not None:
        true_e: dict[int, int] = {}
        for c in incident.get("cashouts", []):
            if c.get("address") and c["stolen"]:
                true_e[c["exchange_entity"]] = true_e.get(c["exchange_entity"], 0) + int(c["stolen"])
        traced_e: dict[int, int] = {}
        for a, v in traced.items():
            e = entity_of.get(a, (None, None))[0]
            traced_e[e] = traced_e.get(e, 0) + v
        hit = sum(min(traced_e.get(e, 0), v) for e, v in true_e.items())
        ex = {"recall_exchange": round(hit / sum(true_e.values()), 4) if true_e else 0.0,
              "precision_exchange": round(hit / exch_total, 4) if exch_total else 0.0}
    t = report.totals(report.asset)
    bal = incident.get("balance", {})
    return {
        "policy": report.policy["name"],
        "params": report.policy.get("params", {}),
        "recall": round(recall(direct), 4),
        "recall_all": round(recall(allc), 4),
        "precision": round(on_true / exch_total, 4) if exch_total else 0.0,
        **ex,
        "collateral_addresses": len(innocent),
        "collateral_value": sum(innocent.values()),
        "true_cashout_addresses": len(direct),
        "true_cashed_out": sum(direct.values()),
        "traced_to_exchanges": exch_total,
        "traced_to_mixers": mixer_total,
        "true_to_mixer": int(bal.get("mixer_deposited", 0)),
        "holdings": t["holdings"],
        "true_dormant": int(bal.get("dormant", 0)),
        "seeded": t["seeded"],
        "txs_processed": report.stats.get("txs_processed", 0),
    }
