"""``trace --coinjoins link``: past a CoinJoin along the outputs that later spending links to the traced side.

The deterministic trace stops where traced value enters a detected CoinJoin (``--coinjoins stop``: stopped
rows, reason ``coinjoin``). With ``link`` the Bitcoin tracer then:

1. takes every round the traced value entered and the traced amount that entered it;
2. links the round's outputs to the traced side by what happens to them afterwards
   (:func:`chaintrace.detect.postmix.link_postmix`): a later transaction pays an address the deterministic
   trace reached (rule ``deposit_reuse``: the same exchange deposit address, one customer's account) or
   co-spends an output the deterministic trace reached (rule ``co_spend``);
3. gives the linked outputs of a round the traced amount that entered it (each its whole value while they
   add up to no more; else in proportion, floored) and follows them under the same policy and limits, each
   output its own source, stopping again at CoinJoins (a remix is not linked through);
4. scales every resulting amount to its output's linked share.

The result is ``report.coinjoin_links``: apart from the deterministic taint, a heuristic re-attribution of
value the deterministic report shows as stopped at the rounds, with each link's rule, confidence and evidence
transaction, and a nested trace report. Conservation, checked exactly: per round, traced in = linked out +
held (held >= 0: value of the other participants' outputs, unlinked outputs, fees, rounding); linked out = the
nested report's seeded total = its sinks + holdings + stopped + fees.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from chaintrace.detect import postmix as P
from chaintrace.graph.btc import BtcGraph, address_strings, txids
from chaintrace.trace import kernels as K
from chaintrace.trace.mixers import _scale
from chaintrace.trace.report import InvariantError, TraceReport

NOTE = ("heuristic: outputs of CoinJoin rounds linked to the traced side by their later spending (deposited at an "
        "address the deterministic trace reached, or co-spent with a traced output); the value shown is the "
        "traced value that entered the round, given to its linked outputs. Not proof: kept apart from the "
        "deterministic taint, which reports this value as stopped at the round.")
NOT_SINKS = ("mixing_service", "coinjoin")  # sinks that are no customer account (not anchors)


def _anchors(g: BtcGraph, res, sinks, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Anchor addresses (sink addresses that are no mixer or CoinJoin, whose sink transfers were at least
    `share` traced, summed per address) and anchor outputs (traced outputs at least `share` traced)."""
    out_addr = np.asarray(g.out_addr)
    out_value = np.asarray(g.out_value)
    anchor_addr = np.zeros(g.n_addresses, bool)
    sl = np.flatnonzero(res.kind == K.SINK)
    if len(sl):
        a = out_addr[res.out[sl]]
        ents = np.asarray(sinks.addr_sink)[a]
        ok = np.array([sinks.entities[int(e)].category not in NOT_SINKS for e in ents.tolist()], bool)
        amt = np.zeros(g.n_addresses, np.float64)
        val = np.zeros(g.n_addresses, np.float64)
        np.add.at(amt, a[ok], res.amount[sl][ok])
        np.add.at(val, a[ok], out_value[res.out[sl]][ok])
        anchor_addr = (val > 0) & (amt >= share * val)
    anchor_out = np.zeros(g.n_out, bool)
    m = (res.kind != K.COINJOIN) & (res.amount > 0)
    m &= res.amount >= share * out_value[res.out]
    anchor_out[res.out[m]] = True
    return anchor_addr, anchor_out


def link_coinjoins(ws, g: BtcGraph, res, sinks, stop_tx: np.ndarray, propagate_kw: dict, build_report,
                   params: P.PostmixParams | None = None) -> dict[str, Any]:
    """The ``coinjoin_links`` section for a finished deterministic propagation `res` that stopped at the
    CoinJoins `stop_tx` (see the module doc). `propagate_kw`: the keyword arguments of that
    :func:`~chaintrace.trace.kernels.propagate_graph` call; `build_report(seeds, nominal, nominal_value, res,
    per_seed)` builds the nested report."""
    params = params or P.PostmixParams()
    out_value = np.asarray(g.out_value)
    out_spender = np.asarray(g.out_spender_tx)
    cj = np.flatnonzero(res.kind == K.COINJOIN)
    rounds = out_spender[res.out[cj]]
    section: dict[str, Any] = {
        "note": NOTE, "params": {"max_hops": params.max_hops, "max_frontier": params.max_frontier,
                   "anchor_share": params.anchor_share},
        "rules": {name: {"confidence": P.CONFIDENCE[code]} for code, name in P.RULES.items()},
        "rounds": [], "links": [], "trace": None}
    if not len(cj):
        return section
    uniq, inv = np.unique(rounds, return_inverse=True)
    traced_in = np.zeros(len(uniq), np.int64)
    np.add.at(traced_in, inv, res.amount[cj])
    anchor_addr, anchor_out = _anchors(g, res, sinks, params.anchor_share)
    stop_addr = np.asarray(sinks.addr_sink) >= 0 if len(sinks.addr_sink) else np.zeros(g.n_addresses, bool)
    L = P.link_postmix(np.asarray(g.tx_out), np.asarray(g.tx_in), np.asarray(g.out_addr), out_spender,
                       np.asarray(g.in_output), uniq, anchor_addr, anchor_out, stop_addr, stop_tx, params)
    amount = np.zeros(len(L.out), np.int64)
    for k, r in enumerate(uniq.tolist()):
        m = L.round == r
        amount[m] = P.linked_amounts(int(traced_in[k]), out_value[L.out[m]])
    use = amount > 0
    order = np.argsort(L.out[use], kind="stable")
    seeds, linked = L.out[use][order], amount[use][order]
    delivered = np.zeros(len(seeds), np.int64)
    if len(seeds):
        r2 = K.propagate_graph(g, seeds, np.arange(len(seeds), dtype=np.int64), len(seeds), **propagate_kw)
        pv = np.asarray(r2.seeded, np.int64)  # each output's full value (less if part of it was traced already)
        lk = np.minimum(linked, pv)
        scaled = _scale(r2, pv, lk)
        sub: TraceReport = build_report([("linked CoinJoin outputs", "coinjoin_output", seeds)],
                                        np.array([len(seeds)]), [int(out_value[seeds].sum())], scaled,
                                        np.array([int(scaled.seeded[0])], np.int64))
        section["trace"] = sub
        delivered = _delivered(r2, pv, lk)
    _rows(ws, g, section, uniq, traced_in, L, seeds, delivered)
    return section


def _delivered(r2, pv: np.ndarray, lk: np.ndarray) -> np.ndarray:
    """Per source, the value the scaled nested report carries (the floored per-segment shares)."""
    src = r2.seg_source
    ok = src >= 0
    val = np.zeros(len(src), np.int64)
    val[ok] = (r2.seg_value[ok].astype(object) * lk[src[ok]] // np.maximum(pv[src[ok]], 1)).astype(np.int64)
    seg_slot = np.repeat(np.arange(len(r2.out)), np.diff(r2.seg))
    terminal = (r2.kind != K.PASSED) & (r2.kind != K.PENDING)
    per = np.zeros(len(pv), np.int64)
    m = ok & terminal[seg_slot]
    np.add.at(per, src[m], val[m])
    fee = (r2.fee.astype(object) * lk // np.maximum(pv, 1)).astype(np.int64)
    return per + fee


def _rows(ws, g: BtcGraph, section: dict, uniq, traced_in, L, seeds, delivered) -> None:
    tx_out = np.asarray(g.tx_out)
    out_value = np.asarray(g.out_value)
    tid = txids(ws, set(uniq.tolist()) | set(L.evidence_tx.tolist()))
    out_addr = np.asarray(g.out_addr)
    names = address_strings(ws, set(out_addr[L.out].tolist()))
    got = dict(zip(seeds.tolist(), delivered.tolist()))
    for k, r in enumerate(uniq.tolist()):
        m = np.flatnonzero(L.round == r)
        out = sum(got.get(int(o), 0) for o in L.out[m].tolist())
        section["rounds"].append({
            "txid": tid[r], "traced_in": str(int(traced_in[k])), "outputs": int(tx_out[r + 1] - tx_out[r]),
            "linked_outputs": int(len(m)), "linked_out": str(out), "held": str(int(traced_in[k]) - out)})
        for i in m.tolist():
            o = int(L.out[i])
            section["links"].append({
                "round": tid[r], "output": f"{tid[r]}:{o - int(tx_out[r])}", "address": names.get(int(out_addr[o])),
                "value": str(int(out_value[o])),
                "amount": str(got.get(o, 0)), "rule": P.RULES[int(L.rule[i])],
                "confidence": P.CONFIDENCE[int(L.rule[i])], "evidence_txid": tid[int(L.evidence_tx[i])],
                "hops": int(L.hops[i])})


def check_coinjoin_links(report: TraceReport) -> None:
    """Per round traced in == linked out + held (held >= 0); the rounds' linked out == the nested report's
    seeded total (which satisfies the invariant itself); the rounds' traced in == the deterministic report's
    value stopped at CoinJoins."""
    from chaintrace.trace.report import check_invariant

    sec = report.coinjoin_links or {}
    sub = sec.get("trace")
    seeded = 0
    if sub is not None:
        check_invariant(sub)
        seeded = sub.total_seeded.get(report.asset, 0)
    rounds = sec.get("rounds", [])
    for r in rounds:
        if int(r["held"]) < 0 or int(r["traced_in"]) != int(r["linked_out"]) + int(r["held"]):
            raise InvariantError(f"CoinJoin {r['txid']}: traced in {r['traced_in']} != linked out "
                                 f"{r['linked_out']} + held {r['held']}")
    out = sum(int(r["linked_out"]) for r in rounds)
    if out != seeded:
        raise InvariantError(f"CoinJoin rounds' linked out {out} != linked trace seeded {seeded}")
    stopped = sum(s.amount for s in report.stopped if s.reason == "coinjoin")
    if sum(int(r["traced_in"]) for r in rounds) != stopped:
        raise InvariantError(f"CoinJoin rounds' traced in != the trace's value stopped at CoinJoins ({stopped})")

