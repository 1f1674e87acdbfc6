"""Custodial-mixer linking over the Bitcoin store (``chaintrace detect mixer-links``): the mixer's addresses
(an address, widened to its cluster when clusters are built, or a cluster id), its deposits and payouts
(:func:`chaintrace.detect.mixers.mixer_flows`), the candidate links
(:func:`chaintrace.detect.mixers.link_deposits`) with txids, addresses, amounts and delays resolved."""
from __future__ import annotations

from typing import Any

import numpy as np

from chaintrace.detect import mixers as M
from chaintrace.errors import UserError
from chaintrace.graph.btc import BtcGraph, address_ids, address_strings, load_btc_graph, txids
from chaintrace.graph.unionfind import UnionFind
from chaintrace.store.workspace import Workspace

RULE_NAMES = {0: "amount-fee-delay:single", 1: "amount-fee-delay:split", 2: "amount-fee-delay:window",
              3: "same-wallet", 4: "postmix:common_owner", 5: "postmix:deposit_reuse"}
# post-mix evidence (``trace --through-mixers``): on by default; the change walk's length; an account address
# that received more than this many payments is a shared destination (a merchant's, a processor's), no owner
POSTMIX_DEFAULTS: dict[str, Any] = {"postmix": True, "postmix_hops": 6, "postmix_max_receipts": 20}


def mixer_address_mask(ws: Workspace, g: BtcGraph, mixer, clusters: bool = True) -> tuple[np.ndarray, dict]:
    """Bool per address id: the mixer's addresses. `mixer`: one or several references (a custodial mixer's
    deposit addresses and reserve rarely share a cluster), each an address (with its cluster when `clusters`
    and clusters are built) or a cluster id (needs clusters)."""
    refs = [mixer] if isinstance(mixer, str) else list(mixer)
    if not refs:
        raise UserError("--mixer: give at least one address or cluster id")
    mask = np.zeros(g.n_addresses, np.bool_)
    have = False
    if clusters:
        from chaintrace.store.clusters.storage import ClusterStore

        have = bool(ClusterStore(ws).exists)
    c = None
    if have:
        from chaintrace.graph.cluster.reader import Clusters

        c = Clusters(ws)
    refs = [str(r).strip() for r in refs]
    ids = address_ids(ws, [r for r in refs if not r.isdigit()])  # one lookup for all of them
    cids = []
    for ref in refs:
        if ref.isdigit():
            if c is None:
                raise UserError(f"--mixer {ref}: a cluster id needs clusters (run `chaintrace cluster build` first)")
            cid = int(ref)
            if cid >= c.n or int(np.asarray(c.cluster_of)[cid]) != cid:
                raise UserError(f"--mixer {ref}: not a cluster id (cluster ids are address ids below {c.n} "
                                "that are their cluster's root)")
        elif ref not in ids:
            raise UserError(f"--mixer {ref}: the address never appears in the btc store")
        else:
            cid = ids[ref]
            if c is None or cid >= c.n:
                mask[cid] = True
                continue
            cid = int(np.asarray(c.cluster_of)[cid])
        members = c.members(cid)
        mask[members[members < g.n_addresses]] = True
        cids.append(int(cid))
    return mask, {"mixer": refs, "clusters": cids if c is not None else None, "addresses": int(mask.sum()),
                  "via_cluster": c is not None}


MAX_WALLET = 1000  # a cluster this large is a service, not a customer's own wallet


def wallets(ws: Workspace, g: BtcGraph, mask: np.ndarray) -> np.ndarray | None:
    """Wallet (cluster id) per address id for the same-wallet rule, -1 where the cluster is the mixer's own
    or larger than MAX_WALLET addresses (a service); None without clusters."""
    from chaintrace.store.clusters.storage import ClusterStore

    if not ClusterStore(ws).exists:
        return None
    from chaintrace.graph.cluster.reader import Clusters

    c = Clusters(ws)
    w = np.arange(g.n_addresses, dtype=np.int64)
    n = min(c.n, g.n_addresses)
    w[:n] = np.asarray(c.cluster_of)[:n]
    size = np.bincount(w, minlength=g.n_addresses)
    bad = size[w] > MAX_WALLET
    bad[np.isin(w, np.unique(w[np.asarray(mask, bool)]))] = True
    w[bad] = -1
    return w


def _funder_wallet(g: BtcGraph, outs: np.ndarray, wallet: np.ndarray) -> np.ndarray:
    """The wallet of the first input of the transaction that made each output (-1: none)."""
    t = np.asarray(g.out_tx)[outs]
    tx_in = np.asarray(g.tx_in)
    has = tx_in[t + 1] > tx_in[t]
    src = np.where(has, np.asarray(g.in_output)[np.minimum(tx_in[t], len(g.in_output) - 1)], -1) if len(outs) \
        else np.zeros(0, np.int64)
    a = np.where(src >= 0, np.asarray(g.out_addr)[np.maximum(src, 0)], -1)
    return np.where(a >= 0, wallet[np.maximum(a, 0)], -1)


def flows_and_links(g: BtcGraph, mask: np.ndarray, params: dict, heights: tuple[int, int] | None = None,
                    widened: list | None = None, wallet: np.ndarray | None = None, side: dict | None = None):
    """(deposit output ids, payout output ids, Links); `widened` (a list) receives the mixer's addresses
    widened along its reserve's change (bool per address id). `heights` (lo, hi): only deposits within
    lo - delay_max .. hi + delay_max and payouts within lo .. hi + delay_max (the ones that can matter for
    deposits made between lo and hi). `wallet` (:func:`wallets`): link payouts back to the depositor's own
    wallet (rule same_wallet). `side` (post-mix evidence, :func:`postmix_side`): ``traced`` (the traced
    deposits' output ids), ``account_addr``, ``anchor_addr``, ``stop_addr`` (bool per address), ``hops``;
    its findings are stored in it under ``found``."""
    dep, pay, wide = M.mixer_flows(g.tx_in, g.tx_out, g.in_output, g.out_addr, g.out_value, g.out_type, mask,
                                     out_spender_tx=g.out_spender_tx)
    if widened is not None:
        widened.append(wide)
    h = np.asarray(g.tx_height)
    ot = np.asarray(g.out_tx)
    dh, ph = h[ot[dep]], h[ot[pay]]
    v = np.asarray(g.out_value)
    cal = None
    if params.get("calibrate"):
        # the mixer's own fee range and delay, measured over all its deposits and payouts (not just the window)
        cal = M.calibrate(v[dep], dh, v[pay], ph, **{k: params[k] for k in CALIBRATED})
        params = {**params, **{k: cal[k] for k in CALIBRATED}}
    if heights is not None:
        lo, hi = heights
        dmax = int(params["delay_max"])
        # the deposits that compete with lo..hi for payouts, and every payout those could have made (an edge
        # deposit without its own earlier payouts would claim more than its share of the later ones)
        kd = (dh >= lo - 2 * dmax) & (dh <= hi + dmax)
        kp = (ph >= lo - dmax) & (ph <= hi + 2 * dmax)
        dep, dh, pay, ph = dep[kd], dh[kd], pay[kp], ph[kp]
    dw = pw = None
    if wallet is not None:
        dw = _funder_wallet(g, dep, wallet)
        pa = np.asarray(g.out_addr)[pay]
        pw = np.where(pa >= 0, wallet[np.maximum(pa, 0)], -1)
    sd = spay = None
    if side is not None:
        sd, spay = postmix_side(g, dep, dh, pay, ph, params, side)
    links = M.link_deposits(v[dep], dh, v[pay], ph, dep_wallet=dw, pay_wallet=pw, side_dep=sd, side_pay=spay,
                            **{k: params[k] for k in M.DEFAULTS})
    links.calibration = cal
    return dep, pay, links


CALIBRATED = ("fee_min", "fee_max", "delay_min", "delay_max")


def owner_groups(accounts: list[list[int]], spends: list[list[int]]) -> np.ndarray:
    """Group id per walked output (the smallest index in its group): outputs whose walks
    (:func:`chaintrace.detect.postmix.owner_walks`) pay the same account address (an exchange deposit address
    is one customer's account) or meet in one transaction (co-spent: the common-input-ownership heuristic) have
    one owner; transitively (:class:`chaintrace.graph.unionfind.UnionFind`: the root is the smallest index)."""
    first: dict[tuple[int, int], int] = {}
    a, b = [], []
    for i, (acc, txs) in enumerate(zip(accounts, spends)):
        for key in [(0, x) for x in acc] + [(1, t) for t in txs]:
            a.append(i)
            b.append(first.setdefault(key, i))
    uf = UnionFind(len(accounts))
    uf.union_pairs(np.array(a, np.int64), np.array(b, np.int64))
    return uf.cluster_ids().astype(np.int64)


def postmix_side(g: BtcGraph, dep, dh, pay, ph, params: dict, side: dict) -> tuple[np.ndarray, np.ndarray]:
    """(bool per deposit: traced, post-mix rule per payout) for :func:`chaintrace.detect.mixers.link_deposits`:
    the payouts some traced deposit could have made (in its window, not above ``V x (1 - fee_min)``) are
    walked forward along their change (:func:`chaintrace.detect.postmix.owner_walks`), grouped by owner
    (:func:`owner_groups`: the same account address paid, or co-spent) and
    judged (:func:`~chaintrace.detect.postmix.traced_side`). ``side["found"]`` receives the counts and, per
    linked payout (output id), its rule and the account addresses its walk paid."""
    from chaintrace.detect import postmix as P

    v = np.asarray(g.out_value)
    traced = np.isin(dep, side["traced"])
    dv, pv = v[dep], v[pay]
    cand = np.zeros(len(pay), bool)
    if traced.any():
        order = np.argsort(ph, kind="stable")
        hs = ph[order]
        lo_d, hi_d = int(params["delay_min"]), int(params["delay_max"])
        for d in np.flatnonzero(traced).tolist():
            a, b = np.searchsorted(hs, dh[d] + lo_d), np.searchsorted(hs, dh[d] + hi_d, "right")
            k = order[a:b]
            cand[k[(pv[k] > 0) & (pv[k] <= dv[d] * (1.0 - params["fee_min"]))]] = True
    idx = np.flatnonzero(cand)
    acc, spends = P.owner_walks(np.asarray(g.tx_out), np.asarray(g.tx_in), np.asarray(g.out_addr),
                                np.asarray(g.out_spender_tx), np.asarray(g.in_output), pay[idx],
                                side["account_addr"], side["stop_addr"], int(side["hops"]))
    anchor = side["anchor_addr"]
    anchored = np.array([any(anchor[a] for a in x) for x in acc], bool)
    group = owner_groups(acc, spends)
    rule = P.traced_side(group, anchored, pv[idx], ph[idx], dv, dh, traced, fee_min=float(params["fee_min"]),
                         delay_min=int(params["delay_min"]), delay_max=int(params["delay_max"]),
                         max_parts=int(params["max_parts"]))
    side_pay = np.zeros(len(pay), np.int64)
    side_pay[idx] = rule
    side["found"] = {"payouts_walked": int(len(idx)), "owner_groups": int(len(np.unique(group))),
                     "payouts_common_owner": int((rule == P.COMMON_OWNER).sum()),
                     "payouts_deposit_reuse": int((rule == P.DEPOSIT_REUSE).sum()),
                     "evidence": {int(pay[i]): (int(r), sorted(set(a))) for i, r, a in zip(idx.tolist(), rule.tolist(),
                                                                                        acc) if r}}
    return traced, side_pay


def check_params(p: dict) -> dict:
    """The linking parameters with defaults filled in; ``calibrate`` (the fee range and delay measured from the
    mixer itself, :func:`chaintrace.detect.mixers.calibrate`) is on unless a fee or delay bound is given (or
    ``calibrate`` is given false): the defaults are then the range the calibration searches."""
    out: dict[str, Any] = {k: p.get(k) if p.get(k) is not None else d for k, d in M.DEFAULTS.items()}
    cal = p.get("calibrate")
    out["calibrate"] = bool(cal) if cal is not None else all(p.get(k) is None for k in CALIBRATED)
    for k, d in POSTMIX_DEFAULTS.items():
        out[k] = (bool(p[k]) if k == "postmix" else int(p[k])) if p.get(k) is not None else d
    if out["postmix_hops"] < 1 or out["postmix_max_receipts"] < 1:
        raise UserError(f"postmix_hops {out['postmix_hops']}, postmix_max_receipts {out['postmix_max_receipts']}: "
                        "need at least 1")
    if not 0.0 <= out["fee_min"] <= out["fee_max"] < 1.0:
        raise UserError(f"--fee-min/--fee-max {out['fee_min']}..{out['fee_max']}: fees are fractions, "
                        "0 <= min <= max < 1")
    if not 0 <= out["delay_min"] <= out["delay_max"]:
        raise UserError(f"--delay-min/--delay-max {out['delay_min']}..{out['delay_max']}: need 0 <= min <= max "
                        "(blocks)")
    if not 1 <= out["max_parts"] <= 12:
        raise UserError(f"--max-parts {out['max_parts']}: between 1 and 12")
    return out


def mixer_links(ws: Workspace, mixer=None, *, clusters: bool = True, **params) -> dict:
    """Candidate links between the deposits into `mixer` and its payouts (docs/detection.md). Without
    `mixer`: the custodial mixer recognised by behaviour with the highest confidence (:func:`detected_mixers`;
    the answer's ``mixer.detected`` says so, with its confidence and features)."""
    p = {k: v for k, v in check_params(params).items() if k not in POSTMIX_DEFAULTS}  # no traced side here
    ws.require_chain("btc")
    g = load_btc_graph(ws)
    if not mixer:
        found = detected_mixers(ws, g) if clusters else []
        if not found:
            raise UserError("--mixer: no mixer given and none recognised by behaviour in this store "
                            "(detection needs clusters: run `chaintrace cluster build`; see docs/detection.md)")
        mask = found[0]["mask"]
        who = {"mixer": [found[0]["address"]], "clusters": None, "addresses": int(mask.sum()),
               "via_cluster": True, "detected": detection_summary(found[0])}
    else:
        mask, who = mixer_address_mask(ws, g, mixer, clusters)
    dep, pay, L = flows_and_links(g, mask, p, wallet=wallets(ws, g, mask) if clusters else None)
    if L.calibration and L.calibration["calibrated"]:
        p = {**p, **{k: L.calibration[k] for k in CALIBRATED}}  # the window the links were made with
    ot = np.asarray(g.out_tx)
    tx_out = np.asarray(g.tx_out)
    v = np.asarray(g.out_value)
    h = np.asarray(g.tx_height)
    d_o, p_o = dep[L.dep], pay[L.pay]
    tid = txids(ws, set(ot[d_o].tolist()) | set(ot[p_o].tolist()))
    addr = address_strings(ws, set(np.asarray(g.out_addr)[np.concatenate([d_o, p_o])].tolist()))

    def ref(o: int) -> str:
        t = int(ot[o])
        return f"{tid[t]}:{o - int(tx_out[t])}"

    rows = []
    for k in np.argsort(L.dep * (len(pay) + 1) - L.confidence, kind="stable"):
        do, po = int(d_o[k]), int(p_o[k])
        rows.append({"deposit": ref(do), "deposit_value": int(v[do]), "deposit_address": addr.get(int(g.out_addr[do])),
                     "payout": ref(po), "payout_value": int(v[po]), "payout_address": addr.get(int(g.out_addr[po])),
                     "delay_blocks": int(h[ot[po]] - h[ot[do]]), "confidence": round(float(L.confidence[k]), 4),
                     "rule": RULE_NAMES[int(L.rule[k])],
                     "implied_fee": None if np.isnan(L.fee[k]) else round(float(L.fee[k]), 5),
                     "candidate_sets": int(L.n_sets[L.dep[k]])})
    st = np.bincount(L.status, minlength=3) if len(L.status) else np.zeros(3, np.int64)
    return {"mixer": who, "params": p, "calibration": L.calibration, "deposits": int(len(dep)),
            "payouts": int(len(pay)),
            "deposits_linked": int(st[0]), "deposits_unlinked": int(st[1]), "deposits_ambiguous": int(st[2]),
            "links": rows, "probabilistic": True,
            "data": {"commit": int(g.commit), "transactions": int(g.n_tx)},
            "note": "Links are candidates from amount and timing only (probabilistic, never proof): every "
                    "deposit's candidate payout sets share its confidence equally; a deposit with too many "
                    "candidate sets is 'ambiguous' and linked by rule 'window' (a proportional flow over the "
                    "payouts it could have made: an allocation, not a match)."}


def detected_mixers(ws: Workspace, g: BtcGraph, **thresholds) -> list[dict]:
    """Custodial mixers recognised by behaviour (:func:`chaintrace.detect.mixers.detect_mixers`) over the
    store's clusters, most confident first: per mixer ``mask`` (bool per address id: its wallets, deposit
    wallets included), ``address`` (its reserve wallet's root address), ``confidence``, ``features``,
    ``thresholds``. Empty without clusters (the rule is about wallets)."""
    from chaintrace.store.clusters.storage import ClusterStore

    if not ClusterStore(ws).exists:
        return []
    from chaintrace.graph.cluster.reader import Clusters

    c = Clusters(ws)
    w = np.arange(g.n_addresses, dtype=np.int64)
    n = min(c.n, g.n_addresses)
    w[:n] = np.asarray(c.cluster_of)[:n]
    det = M.detect_mixers(g.tx_in, g.tx_out, g.in_output, g.out_addr, g.out_value, w, **thresholds)
    if not len(det):
        return []
    names = address_strings(ws, det.wallet.tolist())
    ent_addr = det.entity_of[w]
    out = []
    for i in range(len(det)):
        r = det.row(i)
        r["mask"] = ent_addr == int(det.wallet[i])
        r["address"] = names.get(int(det.wallet[i]))
        r["features"]["addresses"] = int(r["mask"].sum())
        out.append(r)
    return out


def detection_summary(d: dict) -> dict:
    """A detected mixer as answers show it (no arrays)."""
    return {"detected": True, "kind": "mixer", "address": d["address"], "confidence": d["confidence"],
            "features": d["features"], "thresholds": d["thresholds"],
            "source": "recognised by behaviour (chaintrace.detect.mixers.detect_mixers): no tag names it"}
