"""Detections in Bitcoin screening answers (issue 15, points 1 and 5), computed once at index build.

Two kinds of facts, stored compactly beside the exposure index (index format 4): ``meta["facts"]["services"]``
holds one entry per recognised service (its entity, severity, and the detection as its own row and as its
counterparties' rows show it), ``x_off``/``x_blob`` the compact JSON of each touched address's facts (rows
naming a service by its entry, with the address's own value, transfers and txids; its detections without the
thresholds of their kind), ``meta["facts"]["addresses"]`` the addresses. :class:`FactTable` expands them into
the rows below, sharing the service entries; a precomputed answer and a computed one read the same facts:

* **Exposure rows of category** ``unidentified_service`` (services recognised by behaviour,
  :mod:`chaintrace.detect.services`, the trace's cached detections of the store commit): the subject itself
  behaves like a service (``direction: self``, ``hops_min`` 0), or received directly from one (``incoming``:
  the first input of a transaction paying the subject is the service's; ``value``: what those transactions
  paid the subject) or paid one directly (``outgoing``: a transaction spending the subject's coins pays the
  service; ``value``: what those outputs paid the service). Each row carries the detection (kind,
  confidence, hub, features, example txids) and ``txids`` (up to three of the direct transactions).
  Informational: ``amount``/``share`` None, ``severity`` None unless the severity configuration names
  ``detected_<kind>`` (e.g. ``detected_otc_desk: medium``).
* **Detections on the subject** (the answer's ``detections`` list): laundering shapes the address takes part
  in: ``peel-chain`` (role ``peel``: received a peel; ``chain``: held the chain's remainder),
  ``structuring`` (role ``payer``: funded a split into near-equal outputs; ``recipient``: received one),
  ``pass-through`` (``self``: spent what it received within the hold limit), ``dormancy`` (``self``: a coin
  left unspent at least the dormancy limit, then moved). Each: ``{kind, role, confidence, severity, count,
  evidence (up to three instances), thresholds}``; ``confidence`` is None (shapes, not scored), ``severity``
  None unless the configuration names ``detected_<kind>`` (``detected_peel_chain: low``...).
  Fan-out and fan-in are not reported on screened addresses (every exchange withdraws in batches and
  consolidates); services are rows above.

Thresholds: :data:`DEFAULTS`, overridden by the configuration's ``detections:`` section (docs/screening.md);
the run (store commit, thresholds) is in every answer's ``data_version.detections``.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import orjson

from chaintrace.errors import UserError

CATEGORY = "unidentified_service"
EVIDENCE = 3  # instances / txids kept per row
DEFAULTS: dict[str, dict] = {
    "peel-chain": {"min_length": 8},
    "structuring": {"min_outputs": 5, "tolerance": 0.05, "min_share": 0.8},
    "pass-through": {"max_hold_blocks": 1, "min_receipts": 3, "min_share": 1.0},
    "dormancy": {"min_dormant_blocks": 1000},
}
# defaults that differ per chain (blocks are the chain's own: 1000 Bitcoin blocks ~ 50,400 Ethereum blocks ~ a week)
CHAIN_DEFAULTS: dict[str, dict[str, dict]] = {"eth": {"dormancy": {"min_dormant_blocks": 50_400}}}
CHAINS = ("btc", "eth")


def thresholds(config, chain: str = "btc") -> dict[str, dict]:
    """The thresholds of `chain`'s detections: :data:`DEFAULTS` (with :data:`CHAIN_DEFAULTS` of `chain`),
    overridden by the configuration's ``detections`` section (both chains), then by its ``detections.<chain>``
    subsection (that chain only); unknown names, in any chain's subsection, are an error."""
    given = dict(getattr(config, "detections", None) or {})
    per_chain = {c: given.pop(c) for c in CHAINS if c in given}
    out = _defaults(chain)
    _apply(config, out, "detections", given)
    for c, section in per_chain.items():
        _apply(config, out if c == chain else _defaults(c), f"detections.{c}", section)
    return out


def _defaults(chain: str) -> dict[str, dict]:
    out = {k: dict(v) for k, v in DEFAULTS.items()}
    for kind, vals in CHAIN_DEFAULTS.get(chain, {}).items():
        out[kind].update(vals)
    return out


def _apply(config, out: dict[str, dict], where: str, section) -> None:
    if not isinstance(section, dict):
        raise UserError(f"{config.source}: {where}: not a mapping of detection kinds")
    for kind, vals in section.items():
        if kind not in out or not isinstance(vals, dict):
            raise UserError(f"{config.source}: {where}.{kind}: not one of {', '.join(DEFAULTS)}"
                            + (f" or {'/'.join(CHAINS)}" if where == "detections" else "")
                            + " (a mapping of thresholds)")
        bad = set(vals) - set(out[kind])
        if bad:
            raise UserError(f"{config.source}: {where}.{kind}: no threshold {', '.join(sorted(bad))} "
                            f"(it takes {', '.join(out[kind])})")
        out[kind].update({k: type(out[kind][k])(v) for k, v in vals.items()})


def severity(config, kind: str) -> str | None:
    """The configured severity of a detection kind (``detected_<kind>`` in ``severity:``), else None."""
    return config.severity.get("detected_" + kind.replace("-", "_").lower())


def add_detection(det: dict[int, dict[tuple, dict]], a: int, kind: str, role: str, inst: dict, th: dict,
                  sev: str | None) -> None:
    """Count one instance of detection `kind` in role `role` at address/account id `a` (ignored when < 0) in
    `det`, keeping the first EVIDENCE instances as its evidence (shared by the Bitcoin and Ethereum facts)."""
    if a < 0:
        return
    d = det.setdefault(a, {})
    row = d.get((kind, role))
    if row is None:
        row = d[(kind, role)] = {"kind": kind, "role": role, "confidence": None, "severity": sev, "count": 0,
                                 "evidence": [], "thresholds": th}
    row["count"] += 1
    if len(row["evidence"]) < EVIDENCE:
        row["evidence"].append(inst)


class _Facts:
    """Accumulates facts per dense address id (exposure rows and detection rows, resolved)."""

    def __init__(self):
        self.exp: dict[int, list[tuple]] = {}  # (direction order, service address, compact row: see expand_row)
        self.det: dict[int, dict[tuple, dict]] = {}
        self.services: list[dict] = []  # {entity, severity, brief, full} per recognised service (row id)

    def detection(self, a: int, kind: str, role: str, inst: dict, th: dict, sev: str | None) -> None:
        add_detection(self.det, a, kind, role, inst, th, sev)


def _pairs(keys: list[np.ndarray], value: np.ndarray, tx: np.ndarray):
    """Group rows by the key columns: (key columns of each group, value sums, distinct tx count, first txs)."""
    order = np.lexsort([tx] + keys[::-1])
    ks = [k[order] for k in keys]
    v, t = value[order], tx[order]
    if not len(t):
        return [], [], [], []
    first = np.r_[True, np.any([k[1:] != k[:-1] for k in ks], axis=0)]
    starts = np.flatnonzero(first)
    sums = np.add.reduceat(v.astype(np.int64), starts)
    new_tx = first | np.r_[True, t[1:] != t[:-1]]
    n_tx = np.add.reduceat(new_tx.astype(np.int64), starts)
    grp = np.cumsum(first) - 1
    rank = np.cumsum(new_tx) - np.cumsum(new_tx)[starts][grp]  # 0-based rank of a distinct tx in its group
    keep = new_tx & (rank < EVIDENCE)
    firsts: list[list[int]] = [[] for _ in range(len(starts))]
    for gi, tt in zip(grp[keep].tolist(), t[keep].tolist()):
        firsts[gi].append(tt)
    return [k[starts] for k in ks], sums, n_tx, firsts


def _services(g, det, facts: _Facts, config, name: Callable[[int], str | None], txid: Callable[[int], str],
              examples: dict[int, list[str]], mixers: list[dict] | None = None) -> None:
    n_addr = int(g.n_addresses)
    row_of = np.full(n_addr + 1, -1, np.int64)
    row_of[det.address] = np.arange(len(det))
    # custodial mixers recognised by behaviour (wallet level): every address of the service is one (a mixer
    # address that also looks like another kind of service is reported as the mixer)
    mix_rows: list[tuple[int, dict]] = []
    for m in mixers or ():
        f = m["features"]
        feats = {"senders": f.get("depositors"), "recipients": f.get("recipients"), "receipts": f.get("deposits"),
                 "received": f.get("received"), "spends": f.get("payouts"), **f}
        for a in np.flatnonzero(np.asarray(m["mask"])[:n_addr]).tolist():
            row_of[a] = len(det) + len(mix_rows)
            mix_rows.append((a, {"address": a, "kind": "mixer", "confidence": round(float(m["confidence"]), 3),
                                 "hub": m["address"], "features": feats}))
    oa = np.asarray(g.out_addr, np.int64)
    out_tx = np.asarray(g.out_tx, np.int64)
    tx_in = np.asarray(g.tx_in, np.int64)
    in_output = np.asarray(g.in_output, np.int64)
    val = np.asarray(g.out_value, np.int64)

    def is_det(a):
        return row_of[np.where(a >= 0, a, n_addr)] >= 0

    # incoming: the first input's address of each transaction paying the subject
    has_in = tx_in[out_tx + 1] > tx_in[out_tx]
    fo = in_output[np.minimum(tx_in[out_tx], max(len(in_output) - 1, 0))] if len(in_output) else out_tx * 0 - 1
    sender = np.where(has_in & (fo >= 0), oa[np.maximum(fo, 0)], -1)
    m = (oa >= 0) & (sender >= 0) & (sender != oa) & is_det(sender)
    incoming = _pairs([oa[m], sender[m]], val[m], out_tx[m])
    # outgoing: the outputs to a service of each transaction spending the subject's coins
    in_tx = np.repeat(np.arange(len(tx_in) - 1, dtype=np.int64), np.diff(tx_in))
    payer = np.where(in_output >= 0, oa[np.maximum(in_output, 0)], -1)
    pm = payer >= 0
    pt, pa = in_tx[pm], payer[pm]
    u = np.unique(pt * (n_addr + 1) + pa)  # distinct (spending tx, payer)
    pt, pa = u // (n_addr + 1), u % (n_addr + 1)
    dm = (oa >= 0) & is_det(oa)
    d_out = np.flatnonzero(dm)
    d_tx = out_tx[d_out]
    so = np.argsort(d_tx, kind="stable")
    d_out, d_tx = d_out[so], d_tx[so]
    lo, hi = np.searchsorted(d_tx, pt, "left"), np.searchsorted(d_tx, pt, "right")
    cnt = hi - lo
    rep = np.repeat(np.arange(len(pt)), cnt)
    pos = (np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo, cnt)).astype(np.int64)
    q = d_out[pos]
    sa, sd = pa[rep], oa[q]
    keep = sa != sd
    outgoing = _pairs([sa[keep], sd[keep]], val[q][keep], pt[rep][keep])
    # each detection resolved once: in full for the service itself (features, example txids); on its
    # counterparties' rows its identity only (address, kind, confidence, hub: their own direct transactions
    # are their evidence; the features are one screen of the service address away)
    full: dict[int, dict] = {}
    brief: dict[int, dict] = {}
    head: dict[int, tuple] = {}
    for i, (r, a) in enumerate(zip(det.rows(np.arange(len(det))), det.address.tolist())):  # column by column
        kind = r["kind"]
        r["address"], r["hub"] = name(r["address"]), name(r["hub"])
        brief[i] = {k: r[k] for k in ("address", "kind", "confidence", "hub")}
        r["txids"] = examples.get(int(a), [])
        full[i] = r
        head[i] = (f"unidentified {kind} {r['hub']}", severity(config, kind))
    for j, (a, r) in enumerate(mix_rows):
        i = len(det) + j
        r["address"] = name(a)
        brief[i] = {k: r[k] for k in ("address", "kind", "confidence", "hub")}
        r["txids"] = examples.get(a, [])
        full[i] = r
        head[i] = (f"unidentified mixer {r['hub']}", severity(config, "mixer"))

    for i in sorted(full):  # the shared service table: one entry per recognised service
        entity, sev = head[i]
        facts.services.append({"entity": entity, "severity": sev, "brief": brief[i], "full": full[i]})
    for a in np.flatnonzero(row_of[:n_addr] >= 0).tolist():
        i = int(row_of[a])
        facts.exp.setdefault(a, []).append((0, full[i]["address"] or "", [i, 0, 0, None, []]))
    for d, (ks, sums, n_tx, firsts) in ((1, incoming), (2, outgoing)):
        if len(ks):
            for a, x, v, n, f in zip(ks[0].tolist(), ks[1].tolist(), sums.tolist(), n_tx.tolist(), firsts):
                i = int(row_of[x])
                facts.exp.setdefault(a, []).append((d, brief[i]["address"] or "", [i, d, n, str(v),
                                                                                   [txid(t) for t in f]]))


def _flows(g, facts: _Facts, th: dict, config, tx: Callable[[int], str]) -> None:
    from chaintrace.detect import flows, peel

    def output(o: int) -> str:
        t = int(g.out_tx[o])
        return f"{tx(t)}:{o - int(g.tx_out[t])}"

    oa = np.asarray(g.out_addr, np.int64)
    tx_in, tx_out = np.asarray(g.tx_in, np.int64), np.asarray(g.tx_out, np.int64)
    in_output = np.asarray(g.in_output, np.int64)
    p = th["peel-chain"]
    sev = severity(config, "peel-chain")
    for c in peel.peel_chains(peel.looks_like_peeling_chain(g), g.tx_out, g.out_value, g.out_addr,
                              g.out_spender_tx, min_length=p["min_length"]):
        base = {"start": tx(c["start"]), "length": c["length"], "peeled_total": str(c["peeled_total"])}
        got: dict[int, list] = {}
        for x in c["peels"]:
            got.setdefault(x["address"], [[], 0])
            got[x["address"]][0].append(x["tx"])
            got[x["address"]][1] += x["value"]
        for a, (txs, v) in got.items():
            facts.detection(a, "peel-chain", "peel", {**base, "txids": [tx(t) for t in txs[:EVIDENCE]],
                                                       "value": str(v)}, p, sev)
        held: dict[int, list] = {}
        for t in c["txs"]:
            o = int(in_output[tx_in[t]])
            if o >= 0:
                held.setdefault(int(oa[o]), []).append(t)
        held.setdefault(c["remainder"]["address"], [])
        for a, txs in held.items():
            facts.detection(a, "peel-chain", "chain", {**base, "txids": [tx(t) for t in txs[:EVIDENCE]]}, p, sev)
    p = th["structuring"]
    sev = severity(config, "structuring")
    for d in flows.structuring(tx_out, np.asarray(g.out_value), g.tx_coinbase, min_outputs=p["min_outputs"],
                               tolerance=p["tolerance"], min_share=p["min_share"]):
        t = d["tx"]
        inst = {"txid": tx(t), "n_outputs": d["n_outputs"], "near_equal": d["near_equal"],
                "median": str(d["median"]), "total": str(d["total"])}
        ins = in_output[tx_in[t]:tx_in[t + 1]]
        for a in sorted({int(oa[o]) for o in ins if o >= 0}):
            facts.detection(a, "structuring", "payer", inst, p, sev)
        for a in sorted({int(x) for x in oa[tx_out[t]:tx_out[t + 1]]}):
            facts.detection(a, "structuring", "recipient", inst, p, sev)
    p = th["pass-through"]
    sev = severity(config, "pass-through")
    for d in flows.pass_through(np.asarray(g.out_tx), g.out_addr, np.asarray(g.out_value), g.out_spender_tx,
                                g.tx_height, max_hold=p["max_hold_blocks"], min_receipts=p["min_receipts"],
                                min_share=p["min_share"]):
        os_ = d["outputs"][:EVIDENCE]
        txs = sorted({int(g.out_tx[o]) for o in os_} | {int(g.out_spender_tx[o]) for o in os_})
        facts.detection(d["address"], "pass-through", "self",
                        {"receipts": d["receipts"], "received": str(d["received"]), "passed": str(d["passed"]),
                         "max_hold_seen": d["max_hold_seen"], "txids": [tx(t) for t in txs]}, p, sev)
    p = th["dormancy"]
    sev = severity(config, "dormancy")
    for o in flows.dormancy(g.out_tx, g.out_spender_tx, g.tx_height, min_dormant=p["min_dormant_blocks"]).tolist():
        t, s = int(g.out_tx[o]), int(g.out_spender_tx[o])
        facts.detection(int(oa[o]), "dormancy", "self",
                        {"output": output(o), "value": str(int(g.out_value[o])), "moved_txid": tx(s),
                         "blocks_dormant": int(g.tx_height[s] - g.tx_height[t]),
                         "seconds_dormant": int(g.tx_time[s] - g.tx_time[t])}, p, sev)


def build_facts(ws, g, config, names_of: Callable[[list[int]], dict[int, str]],
                txid_of: Callable[[int], str], found: tuple[list[dict], str] | None = None
                ) -> tuple[list[str], np.ndarray, np.ndarray, dict, list[dict]]:
    """Facts of every address of the Bitcoin graph `g` touched by a detection: (address strings, ``x_off``,
    ``x_blob`` (the compact JSON of each address's facts, :func:`expand`), the run's description for
    ``data_version.detections``, the service table). `names_of` resolves dense address ids (one call per
    batch), `txid_of` one dense transaction id, `found` the custodial mixers recognised by behaviour and the
    run's note (:func:`chaintrace.screen.mixer_sources.find_mixers`; run here when not given)."""
    from chaintrace.graph.services import cached_detections

    th = thresholds(config)
    det = cached_detections(ws, "btc", g)
    facts = _Facts()
    if found is None:  # custodial mixers recognised by behaviour: wallet level, only where clusters were built
        from chaintrace.screen.mixer_sources import find_mixers

        found = find_mixers(ws, g)
    mixers, mixer_note = found
    mixer_ids = (np.flatnonzero(np.any([np.asarray(m["mask"]) for m in mixers], axis=0)) if mixers
                 else np.zeros(0, np.int64))
    if len(det) or len(mixer_ids):
        # example txids of each detected service: its first receipts and spends
        oa = np.asarray(g.out_addr, np.int64)
        sel = np.flatnonzero(np.isin(oa, np.concatenate([det.address, mixer_ids])))
        sel = sel[np.argsort(oa[sel], kind="stable")]
        a_sel = oa[sel]
        starts = np.flatnonzero(np.r_[True, a_sel[1:] != a_sel[:-1]]) if len(sel) else np.zeros(0, np.int64)
        ex: dict[int, list[str]] = {}
        for st in starts.tolist():
            os_ = sel[st:st + EVIDENCE]
            ts = set(np.asarray(g.out_tx)[os_].tolist()) | {t for t in np.asarray(g.out_spender_tx)[os_].tolist()
                                                           if t >= 0}
            ex[int(a_sel[st])] = [txid_of(t) for t in sorted(ts)[:EVIDENCE]]
        known = names_of(sorted(set(det.address.tolist()) | set(det.hub.tolist()) | set(mixer_ids.tolist())))
        _services(g, det, facts, config, known.get, txid_of, ex, mixers)
    _flows(g, facts, th, config, txid_of)
    keys: list[str] = []
    ends = [0]
    buf = bytearray()  # one buffer: orjson's result objects keep spare capacity (GBs over 10**5 small ones)
    every = sorted(set(facts.exp) | set(facts.det))
    names = names_of(every)
    for a in every:
        name = names.get(a)
        if name is None:
            continue
        rows = [r for _, _, r in sorted(facts.exp.get(a, ()), key=lambda e: (e[0], e[1]))]
        dets = [{k: v for k, v in d.items() if k != "thresholds"} for _, d in sorted(facts.det.get(a, {}).items())]
        keys.append(name)
        buf += orjson.dumps([rows, dets] if dets else [rows])
        ends.append(len(buf))
    off = np.asarray(ends, np.int64)
    blob = np.frombuffer(bytes(buf), np.uint8) if keys else np.zeros(0, np.uint8)
    run = {"commit": int(g.commit), "services": dict(det.thresholds), "flows": th,
           "n_services": int(len(det)), "n_addresses": len(keys),
           "mixers": {"count": len(mixers), "addresses": int(len(mixer_ids)), "note": mixer_note}}
    return keys, off, blob, run, facts.services


def informational(services: list[dict], config) -> bool:
    """No service of the table and no detection kind has a severity under `config`."""
    return all(x["severity"] is None for x in services) and all(severity(config, k) is None for k in DEFAULTS)


def pack(items: list) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of the JSON of each item: item ``i`` is ``blob[off[i]:off[i+1]]``."""
    buf = bytearray()
    ends = [0]
    for x in items:
        buf += orjson.dumps(x)
        ends.append(len(buf))
    return np.asarray(ends, np.int64), (np.frombuffer(bytes(buf), np.uint8) if items else np.zeros(0, np.uint8))


DIRECTIONS = ("self", "incoming", "outgoing")


class FactTable:
    """The shared parts of an index's detection facts: the service table (arrays ``s_off``/``s_blob``: the JSON
    ``{entity, severity, brief, full}`` of each recognised service, the id the compact facts name it by; read
    on first use) and the thresholds of each detection kind (``data_version.detections.flows``). Expanded rows
    share these objects (answers are read, not edited, by their consumers; :func:`chaintrace.api.tlp.scrub`
    copies). `informational`: no service and no detection kind has a severity (the default configuration): an
    answer holding only these facts is risk ``none``, score 0, no rules."""

    def __init__(self, s_off, s_blob, flows: dict[str, dict], informational: bool = False):
        self.s_off = s_off
        self.s_blob = s_blob
        self.flows = flows
        self.informational = informational
        self._rows: dict[int, dict] = {}  # service * 3 + direction -> the row's fixed fields, in their order

    def service(self, i: int) -> dict:
        """Entry `i` of the service table."""
        return orjson.loads(self.s_blob[int(self.s_off[i]):int(self.s_off[i + 1])])

    def _template(self, i: int, d: int) -> dict:
        t = self._rows.get(i * 3 + d)
        if t is None:
            s = self.service(i)
            for dd in range(3):  # the three rows of a service share its entry's objects
                self._rows[i * 3 + dd] = {
                    "category": CATEGORY, "abuse": None, "entity": s["entity"], "actor": None, "type": "direct",
                    "direction": DIRECTIONS[dd], "hops_min": 0 if dd == 0 else 1, "amount": None, "share": None,
                    "severity": s["severity"], "transfers": 0, "detection": s["full"] if dd == 0 else s["brief"],
                    "value": None, "txids": None}
            t = self._rows[i * 3 + d]
        return t

    def expand(self, compact: bytes | memoryview) -> dict:
        """``{"exposures": [...], "detections": [...]}`` of one address from its compact JSON: ``[rows]`` or
        ``[rows, detections]``; a row is ``[service, direction (0 self, 1 incoming, 2 outgoing), transfers,
        value, txids]`` and becomes the ``unidentified_service`` exposure row of docs/screening.md; a
        detection carries everything but its ``thresholds`` (those of its kind)."""
        got = orjson.loads(compact)
        rows = self._rows
        exps = []
        for i, d, n, v, txs in got[0]:
            t = rows.get(i * 3 + d) or self._template(i, d)
            exps.append({**t, "transfers": n, "value": v, "txids": txs})  # the template's key order
        dets = got[1] if len(got) > 1 else []
        for x in dets:
            x["thresholds"] = self.flows[x["kind"]]
        return {"exposures": exps, "detections": dets}


def changed_facts(base, keys: list[str], off: np.ndarray, blob: np.ndarray, s_off: np.ndarray,
                  s_blob: np.ndarray) -> set[str]:
    """Address keys whose detection facts differ between index `base` and the new facts (`keys`, `off`,
    `blob` compact, `s_off`/`s_blob` their service table): new, changed or gone (an ingest refresh recomputes
    their answers). Equal compact bytes are equal facts when every service they name has the same entry."""
    old = getattr(base, "fact_row", {}) or {}
    ob = base.x_blob if getattr(base, "x_blob", None) is not None else memoryview(b"")
    oo = base.arrays["x_off"] if "x_off" in base.arrays else np.zeros(1, np.int64)
    oso = np.asarray(base.arrays["s_off"]) if "s_off" in base.arrays else np.zeros(1, np.int64)
    osb = np.ascontiguousarray(base.arrays["s_blob"]).tobytes() if "s_blob" in base.arrays else b""
    nsb = np.ascontiguousarray(s_blob).tobytes()
    same_svc = [i + 1 < len(oso) and osb[int(oso[i]):int(oso[i + 1])] == nsb[int(s_off[i]):int(s_off[i + 1])]
                for i in range(len(s_off) - 1)]
    mv = memoryview(np.ascontiguousarray(blob).tobytes())
    out = set(old) - set(keys)
    for i, k in enumerate(keys):
        j = old.get(k)
        cur = mv[int(off[i]):int(off[i + 1])]
        if j is None or ob[int(oo[j]):int(oo[j + 1])] != cur or not all(same_svc[r[0]] for r in orjson.loads(cur)[0]):
            out.add(k)
    return out


def apply(r: dict, facts: dict | None, config) -> None:
    """Put an address's facts into its answer `r` (after its other exposures, before scoring): the
    ``unidentified_service`` rows appended to ``exposures``, ``detections`` set."""
    if not facts:
        return
    r["exposures"] = r["exposures"] + facts["exposures"]
    r["detections"] = facts["detections"]


def score_detections(r: dict, config) -> None:
    """Detections with a configured severity raise the answer's risk and score like a hop-0 exposure."""
    from chaintrace.screen.config import RANK

    best = RANK.get(r.get("risk") or "none", 0)
    points = r.get("score") or 0
    for d in r.get("detections", ()):
        sev = d.get("severity")
        if sev is None:
            continue
        r["rules"] = sorted(set(r.get("rules", [])) | {f"{sev}:detection:{d['kind']}"})
        best = max(best, RANK[sev])
        points = max(points, int(round(config.points[sev] * config.weight(0))))
    if r.get("risk") is not None:
        r["risk"] = {v: k for k, v in RANK.items()}[best]
        r["score"] = points
