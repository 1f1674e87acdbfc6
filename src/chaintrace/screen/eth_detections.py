"""Detections in Ethereum screening answers (issue 15, points 1 and 5), computed once at ``screen index``
and stored in the Ethereum index (``x_off``/``x_blob``: the JSON of each account's facts; ``meta["facts"]``:
the accounts), the Ethereum side of :mod:`chaintrace.screen.detections` (same rows, same configuration).

* **Exposure rows of category** ``unidentified_service``: accounts behaving like services no tag names
  (:func:`chaintrace.detect.services.eth_services`: ``exchange``, ``exchange_deposit``, ``otc_desk``; the
  detections of the store commit, cached by :func:`chaintrace.graph.services.cached_detections`). The subject
  is the service (``direction: self``, ``hops_min`` 0, the detection in full: features, example refs), or it
  received from one directly (``incoming``: transfers whose sender is the service) or paid one (``outgoing``),
  ``hops_min`` 1. ``transfers``: how many such transfers (gas fees left out), ``values``: their exact sums per
  asset (``ETH`` or the token contract, base units, strings), ``txids``: the transactions of the first three.
  ``value`` is null (amounts of different assets do not add up). Informational: ``amount``/``share`` null,
  ``severity`` null unless the severity configuration names ``detected_<kind>``.
* **Detections on the subject** (``detections``), the flow shapes :mod:`chaintrace.detect.flows` finds,
  over the account model:

  - ``structuring`` (role ``payer``: the account paying, and the transaction's sender; ``recipient``): one
    transaction in which one account pays at least ``min_outputs`` transfers of one asset (token mints from
    the zero address left out: an issuer distributing supply), at least
    ``min_share`` of them within ``tolerance`` of the median (:func:`chaintrace.detect.flows.structuring_arrays`
    over those transfers: a disperse-style split);
  - ``dormancy`` (role ``self``): an account sends value after at least ``min_dormant_blocks`` blocks without
    any transfer in or out (the account model has no coins: the account's own silence is the dormancy).

  Peel chains (Bitcoin's change-output rule) and pass-through (spent outputs' hold times) have no
  account-model detector in :mod:`chaintrace.detect`; they are not reported on Ethereum. Each row:
  ``{kind, role, confidence (null), severity, count, evidence (up to three), thresholds}``.

* **Mixing pools no tag names** (:func:`detected_mixers`, :func:`chaintrace.detect.pools.eth_pool_mixers`):
  source groups of category ``mixer`` added to the registry's before propagation, so exposure to them is
  measured within ``max_hops`` like any source's (rows with ``confidence`` and ``detection``); the pool itself
  gets a ``self`` row of kind ``mixer`` with its features.

Thresholds: :func:`chaintrace.screen.detections.thresholds` with ``chain="eth"`` (in Ethereum blocks: the
dormancy default is 50,400, about a week, as Bitcoin's 1000; the configuration's ``detections:`` section
applies to both chains, its ``detections.eth:`` subsection to Ethereum only). The run is in
``data_version.detections`` (``data_version.eth_detections`` when Bitcoin data is screened too).
"""
from __future__ import annotations

import numpy as np
import orjson

from chaintrace.detect.pools import DEFAULTS as DEFAULTS_POOLS
from chaintrace.screen.detections import CATEGORY, EVIDENCE, add_detection, severity, thresholds
from chaintrace.screen.sources import Sources

FLOWS = ("structuring", "dormancy")
_ORDER = {"self": 0, "incoming": 1, "outgoing": 2}


class _Facts:
    """Facts per account id: exposure rows and detection rows keyed by (kind, role)."""

    def __init__(self) -> None:
        self.exp: dict[int, list[dict]] = {}
        self.det: dict[int, dict[tuple, dict]] = {}

    def detection(self, a: int, kind: str, role: str, inst: dict, th: dict, sev: str | None) -> None:
        add_detection(self.det, a, kind, role, inst, th, sev)


def _exact(g, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) limbs of transfers `ks`, zero for the big ones (>= 10**38: added from ``big_values``)."""
    big = np.asarray(g.tr_big)[ks]
    lo = np.where(big, np.uint64(0), np.asarray(g.tr_lo)[ks]).astype(np.uint64)
    hi = np.where(big, np.uint64(0), np.asarray(g.tr_hi)[ks]).astype(np.uint64)
    return lo, hi


def _pair_rows(g, subj: np.ndarray, serv: np.ndarray, ks: np.ndarray, assets: list[str]):
    """Per (subject, service): (subject, service, transfers, {asset: exact sum}, first transfer ids)."""
    from chaintrace.screen.eth_index import u128_sums

    if not len(ks):
        return []
    asset = np.asarray(g.tr_asset, np.int64)[ks]
    o = np.lexsort((ks, asset, serv, subj))
    subj, serv, asset, ks = subj[o], serv[o], asset[o], ks[o]
    pair = np.r_[True, (subj[1:] != subj[:-1]) | (serv[1:] != serv[:-1])]
    trip = pair | np.r_[True, asset[1:] != asset[:-1]]
    ts = np.flatnonzero(trip)
    lo, hi = _exact(g, ks)
    sums = u128_sums(lo, hi, ts)
    ps = np.flatnonzero(pair).tolist() + [len(ks)]
    trip_of = np.cumsum(trip) - 1
    big: dict[int, list[int]] = {}  # pair -> positions of its transfers of 10**38 and more (exact elsewhere)
    jb = np.flatnonzero(np.asarray(g.tr_big)[ks])
    for j, i in zip(jb.tolist(), (np.cumsum(pair) - 1)[jb].tolist()):
        big.setdefault(i, []).append(j)
    out = []
    ts_l, asset_l = ts.tolist(), asset.tolist()
    for i in range(len(ps) - 1):
        a, b = ps[i], ps[i + 1]
        vals: dict[str, int] = {}
        for t in range(int(trip_of[a]), int(trip_of[b - 1]) + 1):
            vals[assets[asset_l[ts_l[t]]]] = sums[t]
        for j in big.get(i, ()):
            name = assets[asset_l[j]]
            vals[name] = vals.get(name, 0) + g.big_values[int(ks[j])]
        out.append((int(subj[a]), int(serv[a]), b - a, {k: str(v) for k, v in sorted(vals.items())},
                    np.sort(ks[a:b])[:EVIDENCE]))
    return out


def _services(g, det, facts: _Facts, config, assets: list[str], examples: dict[int, list[str]]) -> None:
    from chaintrace.detect.services import KINDS
    from chaintrace.graph.eth import FEE_KINDS

    n = int(g.n_addresses)
    row_of = np.full(n + 1, -1, np.int64)
    row_of[det.address] = np.arange(len(det))
    f = np.asarray(g.tr_from, np.int64)
    t = np.asarray(g.tr_to, np.int64)
    live = ~np.isin(np.asarray(g.tr_kind), np.asarray(FEE_KINDS)) & (f >= 0) & (t >= 0) & (f != t)
    m_in = live & (row_of[np.where(f >= 0, f, n)] >= 0)
    m_out = live & (row_of[np.where(t >= 0, t, n)] >= 0)
    k_in, k_out = np.flatnonzero(m_in), np.flatnonzero(m_out)
    pairs = {"incoming": _pair_rows(g, t[k_in], f[k_in], k_in, assets),
             "outgoing": _pair_rows(g, f[k_out], t[k_out], k_out, assets)}
    ids = sorted(set(det.address.tolist()) | set(det.hub.tolist()))
    names = dict(zip(ids, g.address_strings(np.asarray(ids, np.int64))))
    full: dict[int, dict] = {}
    brief: dict[int, dict] = {}
    head: dict[int, tuple] = {}
    for i in range(len(det)):
        r = det.row(i)
        kind = KINDS[int(det.kind[i])]
        r["address"], r["hub"] = names.get(r["address"]), names.get(r["hub"])
        brief[i] = {k: r[k] for k in ("address", "kind", "confidence", "hub")}
        r["txids"] = examples.get(int(det.address[i]), [])
        full[i] = r
        head[i] = (f"unidentified {kind} {r['hub']}", severity(config, kind))
    first = sorted({int(k) for rows in pairs.values() for *_x, ks in rows for k in ks.tolist()})
    txid_of = dict(zip(first, g.refs(np.asarray(first, np.int64))[0])) if first else {}

    def add(a: int, i: int, direction: str, n_tr: int, values: dict | None, txids: list[str]) -> None:
        entity, sev = head[i]
        facts.exp.setdefault(a, []).append(
            {"category": CATEGORY, "abuse": None, "entity": entity, "actor": None, "type": "direct",
             "direction": direction, "hops_min": 0 if direction == "self" else 1, "amount": None, "share": None,
             "severity": sev, "transfers": n_tr, "detection": full[i] if direction == "self" else brief[i],
             "value": None, "values": values, "txids": txids, "asset": None})

    for i, a in enumerate(det.address.tolist()):
        add(int(a), i, "self", 0, None, [])
    for direction, rows in pairs.items():
        for a, x, n_tr, vals, ks in rows:
            add(a, int(row_of[x]), direction, n_tr, vals, list(dict.fromkeys(txid_of[k] for k in ks.tolist())))


def _structuring(g, facts: _Facts, p: dict, sev: str | None, assets: list[str]) -> None:
    """One account paying many near-equal transfers of one asset in one transaction (module doc)."""
    from chaintrace.detect.flows import structuring_arrays
    from chaintrace.graph.eth import FEE_KINDS

    f = np.asarray(g.tr_from, np.int64)
    tx = np.asarray(g.tr_tx, np.int64)
    zero = g.address_ids(["0x" + "0" * 40]).get("0x" + "0" * 40, -2)  # mints: an issuer, not a payer
    ks = np.flatnonzero(~np.isin(np.asarray(g.tr_kind), np.asarray(FEE_KINDS)) & (f >= 0) & (f != zero) & (tx >= 0)
                        & (np.asarray(g.tr_to, np.int64) >= 0) & ((np.asarray(g.tr_lo) > 0) | (np.asarray(g.tr_hi) > 0)))
    if not len(ks):
        return
    asset = np.asarray(g.tr_asset, np.int64)[ks]
    o = np.lexsort((ks, asset, f[ks], tx[ks]))
    ks, asset = ks[o], asset[o]
    key_change = np.r_[True, (tx[ks][1:] != tx[ks][:-1]) | (f[ks][1:] != f[ks][:-1]) | (asset[1:] != asset[:-1])]
    starts = np.flatnonzero(key_change)
    off = np.r_[starts, len(ks)].astype(np.int64)
    size = np.diff(off)
    if not (size >= p["min_outputs"]).any():
        return
    # near-equal is relative: amounts scaled per group by a power of two below 2**52 are compared exactly enough
    amt = np.asarray(g.tr_hi)[ks].astype(np.float64) * 18446744073709551616.0 + np.asarray(g.tr_lo)[ks].astype(np.float64)
    amt = np.where(np.asarray(g.tr_big)[ks], 1e38, amt)
    top = np.maximum.reduceat(amt, starts)
    shift = np.maximum(0, np.ceil(np.log2(np.maximum(top, 1.0))) - 52)
    scaled = np.floor(amt / np.repeat(np.exp2(shift), size)).astype(np.int64)
    got = structuring_arrays(off, scaled, np.zeros(len(starts), np.bool_), min_outputs=p["min_outputs"],
                             tolerance=p["tolerance"], min_share=p["min_share"])
    tx_from = np.asarray(g.tx_from, np.int64)
    for gi, near in zip(got["tx"].tolist(), got["near_equal"].tolist()):
        grp = ks[off[gi]:off[gi + 1]]
        vals = sorted(g.amounts(grp))
        h = len(vals) // 2
        med = vals[h] if len(vals) % 2 else (vals[h - 1] + vals[h]) // 2
        t = int(tx[grp[0]])
        inst = {"txid": g.refs(grp[:1])[0][0], "asset": assets[int(g.tr_asset[grp[0]])], "n_outputs": len(grp),
                "near_equal": int(near), "median": str(med), "total": str(sum(vals))}
        for a in sorted({int(f[grp[0]]), int(tx_from[t])}):
            facts.detection(a, "structuring", "payer", inst, p, sev)
        for a in sorted(set(np.asarray(g.tr_to, np.int64)[grp].tolist())):
            facts.detection(a, "structuring", "recipient", inst, p, sev)


def _dormancy(g, facts: _Facts, p: dict, sev: str | None, assets: list[str]) -> None:
    """An account sending value after at least ``min_dormant_blocks`` blocks without a transfer (module doc)."""
    from chaintrace.graph.eth import FEE_KINDS

    f = np.asarray(g.tr_from, np.int64)
    t = np.asarray(g.tr_to, np.int64)
    h = np.asarray(g.tr_height, np.int64)
    n = len(f)
    # every (account, transfer) event, in chain order per account
    acct = np.concatenate([f, t])
    k = np.concatenate([np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)])
    sends = np.concatenate([np.ones(n, np.bool_), np.zeros(n, np.bool_)])
    ok = acct >= 0
    acct, k, sends = acct[ok], k[ok], sends[ok]
    o = np.lexsort((k, acct))
    acct, k, sends = acct[o], k[o], sends[o]
    if not len(k):
        return
    # the previous activity: the last event of the account in an earlier block (a transaction's own fee
    # transfers and the other transfers of its block are no activity before it)
    run = np.r_[True, (acct[1:] != acct[:-1]) | (h[k][1:] != h[k][:-1])]
    rs = np.maximum.accumulate(np.where(run, np.arange(len(k)), 0))
    prev = rs - 1
    same = (prev >= 0) & (acct[np.maximum(prev, 0)] == acct)
    gap = np.where(same, h[k] - h[k[np.maximum(prev, 0)]], -1)
    fee = np.isin(np.asarray(g.tr_kind), np.asarray(FEE_KINDS))
    moving = (np.asarray(g.tr_lo)[k] > 0) | (np.asarray(g.tr_hi)[k] > 0)
    cand = np.flatnonzero(sends & same & ~fee[k] & moving & (gap >= p["min_dormant_blocks"]))
    _, first = np.unique(rs[cand], return_index=True)  # one per wake-up: its first transfer sent
    hit = cand[first]
    if not len(hit):
        return
    last = k[prev[hit]]
    ks = np.unique(np.concatenate([k[hit], last]))
    ref = dict(zip(ks.tolist(), g.refs(ks)[0]))
    tm = np.asarray(g.time_of_height(h[ks]), np.int64)
    when = dict(zip(ks.tolist(), tm.tolist()))
    for j, kp in zip(hit.tolist(), last.tolist()):
        kk = int(k[j])
        facts.detection(int(acct[j]), "dormancy", "self",
                        {"moved_txid": ref[kk], "asset": assets[int(g.tr_asset[kk])], "value": str(g.amount(kk)),
                         "last_active_txid": ref[kp], "blocks_dormant": int(gap[j]),
                         "seconds_dormant": int(when[kk] - when[kp])}, p, sev)


def detected_mixers(g, sources: Sources, config) -> tuple[Sources, list[dict]]:
    """Mixing pools recognised by behaviour (:func:`chaintrace.detect.pools.eth_pool_mixers`) that no tag
    names, added to the registry's `sources` as source groups of category ``mixer`` (entity ``unidentified
    mixer <address>``, severity ``detected_mixer`` of the configuration, null by default: informational), so
    that the index follows what they paid out (and what was paid into them) within ``max_hops`` like any
    source. Returns (the sources with those groups appended, one dict per detection: ``group``, ``address``,
    ``kind``, ``confidence``, ``features``)."""
    import dataclasses

    from chaintrace.detect.pools import eth_pool_mixers
    from chaintrace.graph.eth import FEE_KINDS
    from chaintrace.screen.sources import NO_DAY

    keep = ~np.isin(np.asarray(g.tr_kind), np.asarray(FEE_KINDS))
    tagged = g.address_ids(list(sources.keys) + sorted(sources.services) + list(sources.direct))
    r = eth_pool_mixers(np.asarray(g.tr_from)[keep], np.asarray(g.tr_to)[keep], np.asarray(g.tr_asset)[keep],
                        np.asarray(g.tr_lo)[keep], np.asarray(g.tr_hi)[keep], g.n_addresses,
                        exclude=np.asarray(sorted(tagged.values()), np.int64))
    if not len(r["address"]):
        return sources, []
    names = g.address_strings(r["address"])
    groups, keys = list(sources.groups), list(sources.keys)
    kg, kf = sources.key_group.tolist(), sources.key_from.tolist()
    out = []
    sev = severity(config, "mixer")
    for i, name in enumerate(names):
        if name is None:
            continue
        name = name.lower()
        gi = len(groups)
        groups.append({"category": "mixer", "abuse": None, "entity": f"unidentified mixer {name}", "actor": None,
                       "severity": sev, "detected": "mixer"})
        keys.append(name)
        kg.append(gi)
        kf.append(NO_DAY)
        denom = (int(r["denom_hi"][i]) << 64) | int(r["denom_lo"][i])
        out.append({"group": gi, "address": name, "kind": "mixer", "confidence": round(float(r["confidence"][i]), 3),
                    "features": {"asset_id": int(r["asset"][i]), "denomination": str(denom),
                                 **{k: int(r[k][i]) for k in ("deposits", "depositors", "withdrawals", "recipients")},
                                 **{k: round(float(r[k][i]), 4) for k in ("deposit_share", "payout_share")}}})
    new = dataclasses.replace(sources, groups=groups, keys=keys, key_group=np.asarray(kg, np.int32),
                              key_from=np.asarray(kf, np.int32))
    return new, out


def build_eth_facts(ws, g, config, assets: list[str],
                    mixers: list[dict] | None = None) -> tuple[list[str], np.ndarray, np.ndarray, dict]:
    """Facts of every account of the Ethereum graph `g` a detection touches: (lower-case addresses, ``x_off``,
    ``x_blob`` (JSON ``{"exposures": [...], "detections": [...]}`` per account), the run for
    ``data_version.detections``). `assets`: the asset keys by asset id (``ETH``, token contracts)."""
    from chaintrace.graph.services import _eth_examples, cached_detections

    th = thresholds(config, "eth")
    det = cached_detections(ws, "eth", g)
    facts = _Facts()
    if len(det):
        _services(g, det, facts, config, assets, _eth_examples(g, det.address))
    ids = g.address_ids([m["address"] for m in mixers or ()])
    for m in mixers or ():  # the pool itself (what it paid out: its group's exposure rows, within max_hops)
        feats = {**m["features"], "asset": assets[m["features"]["asset_id"]]}
        feats.pop("asset_id")
        det_row = {"address": m["address"], "kind": "mixer", "confidence": m["confidence"], "hub": m["address"],
                   "features": feats, "txids": []}
        facts.exp.setdefault(ids[m["address"]], []).append(
            {"category": CATEGORY, "abuse": None, "entity": f"unidentified mixer {m['address']}", "actor": None,
             "type": "direct", "direction": "self", "hops_min": 0, "amount": None, "share": None,
             "severity": severity(config, "mixer"), "transfers": 0, "detection": det_row, "value": None,
             "values": None, "txids": [], "asset": None})
    _structuring(g, facts, th["structuring"], severity(config, "structuring"), assets)
    _dormancy(g, facts, th["dormancy"], severity(config, "dormancy"), assets)
    every = sorted(set(facts.exp) | set(facts.det))
    names = g.address_strings(np.asarray(every, np.int64))
    keys: list[str] = []
    ends = [0]
    buf = bytearray()
    for a, name in sorted(zip(every, names), key=lambda x: x[1] or ""):
        if name is None:
            continue
        exps = sorted(facts.exp.get(a, ()), key=lambda e: (_ORDER[e["direction"]], e["detection"]["address"] or ""))
        dets = [d for _, d in sorted(facts.det.get(a, {}).items())]
        keys.append(name.lower())
        buf += orjson.dumps({"exposures": exps, "detections": dets})
        ends.append(len(buf))
    off = np.asarray(ends, np.int64)
    blob = np.frombuffer(bytes(buf), np.uint8).copy() if keys else np.zeros(0, np.uint8)
    run = {"chain": "eth", "commit": int(g.commit), "services": dict(det.thresholds),
           "flows": {k: th[k] for k in FLOWS}, "n_services": int(len(det)), "n_addresses": len(keys),
           "mixers": {"count": len(mixers or ()), "thresholds": dict(DEFAULTS_POOLS),
                      "groups": [m["group"] for m in mixers or ()]},
           "not_run": {"peel-chain": "no account-model detector", "pass-through": "no account-model detector"}}
    return keys, off, blob, run


def facts_of(idx, key: str) -> dict | None:
    """The detection facts of address `key` in the Ethereum index `idx`, or None."""
    i = idx.fact_row.get(key)
    if i is None or "x_blob" not in idx.arrays:
        return None
    off = idx.arrays["x_off"]
    return orjson.loads(memoryview(idx.arrays["x_blob"])[int(off[i]):int(off[i + 1])])
