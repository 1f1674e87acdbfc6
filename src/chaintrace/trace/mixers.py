"""``trace --through-mixers``: follow traced value through custodial mixers along probabilistic links.

The deterministic trace stops at a custodial mixer (a sink, category ``mixing_service``). With
``through_mixers`` the Bitcoin tracer then:

1. takes the traced deposits into each mixer entity (its sink transfers) and every deposit and payout of the
   mixer around them (the entity's sink addresses: its tags, and its cluster members when clusters are used);
2. links deposits to payouts by amount minus a fee and delay (:mod:`chaintrace.detect.mixers`);
3. gives each linked payout the traced value of its deposits times the link's confidence
   (:func:`~chaintrace.detect.mixers.linked_amounts`), and follows the payouts under the same policy and
   limits as the deterministic trace, each payout its own source;
4. scales every resulting amount to its payout's linked share (floored, integer base units).

The result is ``report.probabilistic``: apart from the deterministic taint, marked probabilistic, with the
links (confidence, rule) and a nested trace report (sinks, holdings, stopped, fees, paths, explain). Its
conservation, checked exactly: per mixer, traced in = linked out + held (fee, unlinked, ambiguous and
rounding); linked out = the nested report's seeded total = its sinks + holdings + stopped + fees.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from chaintrace.detect import mixers as M
from chaintrace.graph.btc import BtcGraph, address_strings, txids
from chaintrace.graph.mixers import RULE_NAMES, check_params, flows_and_links, wallets
from chaintrace.trace import kernels as K

MIXER_CATEGORY = "mixing_service"
DEFAULT_MIN_CONFIDENCE = 0.02
NOTE = ("probabilistic: custodial-mixer payouts linked to the traced deposits by amount minus a fee and by delay "
        "only; the value shown is each payout's linked share (value x confidence x traced share of the deposit). "
        "A candidate, not proof; kept apart from the deterministic taint.")
NOTE_POSTMIX = ("probabilistic: custodial-mixer payouts linked to the traced deposits by amount minus a fee and by "
                "delay, and by what the payouts did afterwards (rules postmix:*: paid an exchange account the "
                "deterministic trace reached, or one owner received more than one order's payouts); the value "
                "shown is each payout's linked share (value x confidence x traced share of the deposit). A "
                "candidate, not proof; kept apart from the deterministic taint.")


DETECTED_SOURCE = "recognised by behaviour (chaintrace.detect.mixers.detect_mixers)"


def add_detected_mixers(ws, g: BtcGraph, sinks) -> list[dict]:
    """Custodial mixers recognised by behaviour (:func:`chaintrace.graph.mixers.detected_mixers`) that no
    tagged ``mixing_service`` sink covers become sinks of category ``mixing_service`` (label ``detected
    custodial mixer ADDRESS``, the confidence in percent), so the deterministic trace stops there and
    :func:`through_mixers` links through them; a detected mixer already holding a tagged mixer's address is
    left to the tag. Returns the summaries of the added ones (``sinks.detected_mixers``: label -> summary)."""
    from chaintrace.graph.mixers import detected_mixers, detection_summary
    from chaintrace.model.tags import Tag

    found = detected_mixers(ws, g)
    if not found:
        return []
    addr_sink = sinks.addr_sink if len(sinks.addr_sink) else np.full(g.n_addresses, -1, np.int32)
    tagged_mix = np.array([x.category == MIXER_CATEGORY for x in sinks.entities] + [False], bool)
    added = []
    for d in found:
        m = d["mask"]
        if tagged_mix[addr_sink[m]].any():  # (index -1 reads the trailing False)
            continue
        label = f"detected custodial mixer {d['address']}"
        sinks.entities.append(Tag(chain="btc", address=d["address"], label=label, category=MIXER_CATEGORY,
                                  source=DETECTED_SOURCE, confidence=int(round(100 * d["confidence"]))))
        addr_sink[m & (addr_sink < 0)] = len(sinks.entities) - 1
        summary = detection_summary(d)
        added.append(summary)
        sinks.detected_mixers[label] = summary
    sinks.addr_sink = addr_sink
    if not len(sinks.via_cluster):
        sinks.via_cluster = np.zeros(g.n_addresses, bool)
    return added


def _scale(res, pay_value: np.ndarray, linked: np.ndarray):
    """A copy of propagation result `res` (one source per payout, seeded with the full payout value) with every
    tainted segment scaled to its source's linked share (floored) and the sources merged into one."""
    src = res.seg_source
    ok = src >= 0
    num = np.zeros(len(src), np.int64)
    num[ok] = linked[src[ok]]
    den = np.ones(len(src), np.int64)
    den[ok] = np.maximum(pay_value[src[ok]], 1)
    val = res.seg_value.copy()
    if ok.any():
        val[ok] = (res.seg_value[ok].astype(object) * num[ok] // den[ok]).astype(np.int64)
    seg_slot = np.repeat(np.arange(len(res.out)), np.diff(res.seg))
    amt = np.zeros(len(res.out), np.int64)
    np.add.at(amt, seg_slot[ok], val[ok])
    before = np.zeros(len(res.out), np.int64)
    np.add.at(before, seg_slot[ok], res.seg_value[ok])
    if not np.array_equal(before, res.amount):
        raise AssertionError("slot amounts are not the sum of their tainted segments")
    fee = (res.fee.astype(object) * linked // np.maximum(pay_value, 1)).astype(np.int64)
    terminal = (res.kind != K.PASSED) & (res.kind != K.PENDING)
    seeded = int(amt[terminal].sum()) + int(fee.sum())
    new_src = np.where(ok, 0, src)
    return SimpleNamespace(out=res.out, kind=res.kind, amount=amt, hop=res.hop, parent=res.parent, seg=res.seg,
                           seg_value=val, seg_source=new_src, seg_hop=res.seg_hop,
                           seeded=np.array([seeded], np.int64), fee=np.array([int(fee.sum())], np.int64),
                           processed=res.processed, partial=res.partial, n_pending=res.n_pending,
                           seed_seeded=np.array([seeded], np.int64))


def _postmix_inputs(g: BtcGraph, res, sinks, params: dict) -> dict:
    """What the post-mix evidence needs from the deterministic trace: account addresses (sink addresses of no
    mixer or CoinJoin that received at most ``postmix_max_receipts`` payments: one customer's account at a
    service), anchor addresses (the account addresses the deterministic trace reached, at least half traced:
    :func:`chaintrace.trace.postmix._anchors`) and the addresses a walk does not go past (every sink)."""
    from chaintrace.trace.postmix import NOT_SINKS, _anchors

    addr_sink = np.asarray(sinks.addr_sink)
    if not len(addr_sink):
        addr_sink = np.full(g.n_addresses, -1, np.int64)
    ok_ent = np.array([x.category not in NOT_SINKS for x in sinks.entities] + [False], bool)
    out_addr = np.asarray(g.out_addr)
    receipts = np.bincount(out_addr[out_addr >= 0], minlength=g.n_addresses)
    account = ok_ent[addr_sink] & (addr_sink >= 0) & (receipts <= int(params["postmix_max_receipts"]))
    anchor, _ = _anchors(g, res, sinks, 0.5)
    return {"account_addr": account, "anchor_addr": anchor & account, "stop_addr": addr_sink >= 0,
            "hops": int(params["postmix_hops"])}


def _postmix_summary(side: dict | None, L, traced_deps: np.ndarray) -> dict | None:
    """The post-mix evidence of one mixer as the report shows it (counts; the links carry the rules)."""
    if side is None:
        return None
    f = dict(side.get("found") or {})
    f.pop("evidence", None)
    tr = np.isin(L.dep, np.flatnonzero(traced_deps))
    f["traced_links_postmix"] = int((tr & (L.rule >= 4)).sum())
    return f


def _name(sinks, all_mix, group_of, key) -> str:
    labels = sorted({sinks.entities[x].label for x in all_mix if group_of[x] == key})
    return " / ".join(labels)


def through_mixers(ws, g: BtcGraph, req, res, sinks, propagate_kw: dict, build_report) -> dict | None:
    """The probabilistic section for a finished deterministic propagation `res` (see the module doc).
    `propagate_kw`: the keyword arguments of the deterministic :func:`~chaintrace.trace.kernels.propagate_graph`
    call; `build_report(seeds, nominal, nominal_value, res, per_seed)` builds the nested report."""
    params = check_params(dict(req.mixer_params or {}))
    min_conf = float((req.mixer_params or {}).get("min_confidence") or DEFAULT_MIN_CONFIDENCE)
    out_addr = np.asarray(g.out_addr)
    out_value = np.asarray(g.out_value)
    out_tx = np.asarray(g.out_tx)
    h = np.asarray(g.tx_height)
    sink_slots = np.flatnonzero(res.kind == K.SINK)
    ent_of_slot = sinks.addr_sink[out_addr[res.out[sink_slots]]]
    # one mixer = every mixing_service sink entity with the same actor (deposit addresses, reserve, ...)
    def mkey(e: int) -> str:
        x = sinks.entities[e]
        return x.actor or x.label

    all_mix = [e for e, x in enumerate(sinks.entities) if x.category == MIXER_CATEGORY]
    group_of = {e: mkey(e) for e in all_mix}
    ent_of_slot = np.array([group_of.get(int(e), "") for e in ent_of_slot], object)
    mixer_ents = sorted({k for k in ent_of_slot if k})
    section: dict[str, Any] = {"note": NOTE_POSTMIX if params["postmix"] else NOTE,
                               "params": {**params, "min_confidence": min_conf}, "mixers": [], "links": []}
    if not mixer_ents:
        section["mixers"] = []
        section["trace"] = None
        return section
    all_pay, all_linked = [], []
    link_rows = []
    stop_at = None
    side_base = _postmix_inputs(g, res, sinks, params) if params["postmix"] else None
    evidence: dict[int, list[int]] = {}  # payout output id -> the account addresses its walk paid
    for e in mixer_ents:
        sl = sink_slots[ent_of_slot == e]
        traced_out = res.out[sl]
        traced_amt = res.amount[sl]
        mask = np.isin(np.asarray(sinks.addr_sink), [x for x in all_mix if group_of[x] == e])
        th = h[out_tx[traced_out]]
        wide: list = []
        wal = wallets(ws, g, mask) if req.clusters else None
        side = None if side_base is None else {**side_base, "traced": np.unique(traced_out),
                                               "stop_addr": side_base["stop_addr"] | mask}
        dep, pay, L = flows_and_links(g, mask, params, heights=(int(th.min()), int(th.max())), widened=wide,
                                      wallet=wal, side=side)
        if side is not None:
            evidence.update({o: a for o, (_r, a) in side["found"]["evidence"].items()})
        # the mixer's inferred reserve addresses stop the probabilistic trace too (value back in the mixer)
        stop_at = np.asarray(sinks.addr_sink).copy() if stop_at is None else stop_at
        extra = wide[0] & (stop_at < 0)
        stop_at[extra] = [x for x in all_mix if group_of[x] == e][0]
        dep_taint = np.zeros(len(dep), np.int64)
        pos = np.searchsorted(dep, traced_out)
        hit = (pos < len(dep)) & (dep[np.minimum(pos, len(dep) - 1)] == traced_out) if len(dep) else \
            np.zeros(len(traced_out), bool)
        dep_taint[pos[hit]] = traced_amt[hit]
        amt = M.linked_amounts(L, dep_taint, out_value[dep], out_value[pay], min_confidence=min_conf)
        use = amt > 0  # the links that carry traced value
        for k in np.flatnonzero(use):
            link_rows.append((e, int(dep[L.dep[k]]), int(pay[L.pay[k]]), float(L.confidence[k]), int(L.rule[k]),
                              float(L.fee[k]), int(amt[k]), int(dep_taint[L.dep[k]]), int(L.n_sets[L.dep[k]])))
        per_pay = np.bincount(L.pay, weights=amt, minlength=len(pay)).astype(np.int64) if len(L.pay) else \
            np.zeros(len(pay), np.int64)
        keep = per_pay > 0
        all_pay.append(pay[keep])
        all_linked.append(per_pay[keep])
        traced_deps = dep_taint > 0
        st = L.status[traced_deps]
        section["mixers"].append({
            "entity": _name(sinks, all_mix, group_of, e), "actor": e, "addresses": int(mask.sum()),
            "traced_in": int(traced_amt.sum()), "traced_deposits": int(len(sl)),
            "deposits_matched": int(hit.sum()), "deposits_linked": int((st == 0).sum()),
            "deposits_unlinked": int((st == 1).sum()), "deposits_ambiguous": int((st == 2).sum()),
            "mixer_deposits": int(len(dep)), "mixer_payouts": int(len(pay)),
            "detected": sinks.detected_mixers.get(e), "calibration": L.calibration,
            "postmix": _postmix_summary(side, L, traced_deps),
            "linked_out": 0, "held": 0, "_linked": int(per_pay.sum()), "_e": e})
    pay_out = np.concatenate(all_pay) if all_pay else np.zeros(0, np.int64)
    linked = np.concatenate(all_linked) if all_linked else np.zeros(0, np.int64)
    # a payout linked from two mixer entities (should not happen): merge
    order = np.argsort(pay_out, kind="stable")
    pay_out, linked = pay_out[order], linked[order]
    uniq, first = np.unique(pay_out, return_index=True)
    linked = np.add.reduceat(linked, first) if len(first) else linked
    pay_out = uniq
    sub = None
    if len(pay_out):
        kw = dict(propagate_kw)
        if stop_at is not None:
            kw["sink_of_addr"] = stop_at.astype(np.int32)
        r2 = K.propagate_graph(g, pay_out, np.arange(len(pay_out), dtype=np.int64), len(pay_out), **kw)
        pv = np.asarray(r2.seeded, np.int64)  # the value each payout seeded (its full value unless re-tainted)
        lk = np.minimum(linked, pv)
        scaled = _scale(r2, pv, lk)
        nominal_value = [int(out_value[pay_out].sum())]
        sub = build_report([("linked mixer payouts", "mixer_payout", pay_out)], np.array([len(pay_out)]),
                           nominal_value, scaled, np.array([int(scaled.seeded[0])], np.int64))
        # per payout what was really delivered after flooring: attribute back to mixers by their linked shares
        delivered = int(scaled.seeded[0])
    else:
        delivered = 0
    # per mixer: linked out in proportion to its linked amount (one mixer: exact), the rest held
    total_linked = sum(m["_linked"] for m in section["mixers"])
    rest = delivered
    for i, m in enumerate(section["mixers"]):
        if i == len(section["mixers"]) - 1:
            out = rest
        else:
            out = delivered * m["_linked"] // total_linked if total_linked else 0
        rest -= out
        m["held"] = str(m["traced_in"] - int(out))
        m["linked_out"] = str(int(out))
        m["traced_in"] = str(m["traced_in"])
        del m["_linked"], m["_e"]
    # link rows with ids resolved
    need = {int(out_tx[d]) for _, d, p, *_ in link_rows} | {int(out_tx[p]) for _, d, p, *_ in link_rows}
    tid = txids(ws, need)
    tx_out = np.asarray(g.tx_out)

    def ref(o: int) -> str:
        t = int(out_tx[o])
        return f"{tid[t]}:{o - int(tx_out[t])}"

    post = {p for _, _, p, _, r, *_ in link_rows if r >= 4}
    names = address_strings(ws, {a for p in post for a in evidence.get(p, [])}) if post else {}
    link_rows.sort(key=lambda r: (-r[6], r[1], r[2]))
    section["links"] = [{"mixer": e, "deposit": ref(d), "payout": ref(p),
                         "deposit_traced": str(dt), "deposit_value": str(int(out_value[d])),
                         "payout_value": str(int(out_value[p])), "amount": str(a), "confidence": round(c, 4),
                         "rule": RULE_NAMES[r], "implied_fee": None if f != f else round(f, 5), "candidate_sets": ns,
                         "delay_blocks": int(h[out_tx[p]] - h[out_tx[d]]),
                         **({"postmix_accounts": [names.get(x) for x in evidence.get(p, [])]} if r >= 4 else {})}
                        for e, d, p, c, r, f, a, dt, ns in link_rows]
    section["trace"] = sub
    return section

