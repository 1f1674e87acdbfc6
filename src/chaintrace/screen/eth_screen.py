"""Ethereum screening answers from the Ethereum exposure index (:mod:`chaintrace.screen.eth_index`).

* :func:`screen_eth_address`: direct hits (sanctions, tags) plus the indexed exposure of the address: incoming
  per (source group, asset) within ``max_hops`` transfers, and what it paid directly to a source (outgoing,
  hop 1), with shares of what it received / sent of that asset and the paths behind the largest exposures.
* :func:`screen_eth_transfer`: the source of funds of one transfer, ``0x<txhash>`` (the transaction's one
  value transfer), ``0x<txhash>:log<i>`` or ``0x<txhash>:<i>`` (ERC-20 ``Transfer`` log index),
  ``0x<txhash>:trace<a.b>`` or ``0x<txhash>:<a.b>`` (internal call, its trace address): the haircut part of
  its value from each source group within ``max_hops`` transfers and the paths that carry it.

Exposures carry ``asset`` (``ETH`` or the token's contract address: symbols are not unique) and amounts in
that asset's base units; the configuration's ``min_amount.eth`` (wei) applies to ether only.
"""
from __future__ import annotations

import re

from chaintrace.screen.eth_index import FEE_KIND_NAMES, TOKEN_KIND_NAMES
from chaintrace.screen.service import warnings_for

EVIDENCE_PATHS = 3
_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_LOG = re.compile(r"^(?:log)?([0-9]{1,9})$")
_TRACE = re.compile(r"^(?:trace)?([0-9]{1,6}(?:[.,][0-9]{1,6})*)$")


def _counts_chain(asset: str) -> str:
    """The chain key whose min_amount applies: 'eth' for ether, none for tokens (other units)."""
    return "eth" if asset == "ETH" else f"eth:{asset}"


def _score(snap, exposures: list[dict], sanctions: list[dict]) -> tuple[str, int, list[str]]:
    """:func:`chaintrace.screen.service.score` per asset unit (ether's dust rule applies to ether only)."""
    from chaintrace.screen.config import RANK
    from chaintrace.screen.service import score

    by_unit: dict[str, list[dict]] = {}
    for e in exposures:
        by_unit.setdefault(_counts_chain(e.get("asset") or "ETH"), []).append(e)
    best, rules = ("none", 0), set()
    for unit, exps in (by_unit or {"eth": []}).items():
        risk, sc, rl = score(snap.config, unit, exps, sanctions)
        rules.update(rl)
        if (RANK[risk], sc) > (RANK[best[0]], best[1]):
            best = (risk, sc)
    return best[0], best[1], sorted(rules)


def _detected(idx, gi: int) -> dict:
    """``confidence`` and ``detection`` of an exposure to a source group recognised by behaviour (a mixing
    pool no tag names: :func:`chaintrace.screen.eth_detections.detected_mixers`); nothing for registry groups."""
    d = (idx.meta.get("detected_groups") or {}).get(str(gi))
    return {"confidence": d["confidence"], "detection": d} if d else {}


def screen_eth_address(snap, subject: str, r: dict) -> dict:
    """Fill the answer `r` (made by :func:`chaintrace.screen.service.screen_one_address`) for an eth address."""
    from chaintrace.intel import addresses as addr
    from chaintrace.screen.service import _group_exposure

    idx = snap.eth_index
    key = addr.key("eth", subject)
    src = snap.sources.get("eth")
    d = src.direct.get(key) if src is not None else None
    exposures: list[dict] = []
    if d:
        r["sanctions"] = [dict(s) for s in d["sanctions"]]
        for h in d["hits"]:
            if h["severity"] is not None:
                exposures.append({**_group_exposure(h, "direct", "incoming", 0, 0, 1.0), "amount": None,
                                  "share": None, "asset": None, "label": h.get("label"), "source": h.get("source")})
        r["labels"] = [{k: h.get(k) for k in ("label", "category", "abuse", "actor", "source", "origin")}
                       for h in d["hits"]]
    pending: list[tuple[int, int, dict]] = []
    if idx is None:
        r["warnings"].append("no exposure index for eth (run `chaintrace screen index`): only direct hits are "
                             "reported")
    else:
        row = idx.addr_row.get(key)
        if row is not None:
            a = idx.arrays
            lo, hi = int(idx.e_start[row]), int(idx.e_end[row])
            acct = int(a["a_acct"][row])
            totals: dict[str, dict] = {}
            for gi, asset, di, elo, ehi, hops, rec, share in zip(
                    a["e_group"][lo:hi].tolist(), a["e_asset"][lo:hi].tolist(), a["e_dir"][lo:hi].tolist(),
                    a["e_lo"][lo:hi].tolist(), a["e_hi"][lo:hi].tolist(), a["e_hops"][lo:hi].tolist(),
                    a["e_rec"][lo:hi].tolist(), a["e_share"][lo:hi].tolist()):
                amt = (int(ehi) << 64) | int(elo)
                name = idx.assets[asset]
                e = {**_group_exposure(idx.groups[gi], "direct" if hops <= 1 else "indirect",
                                       "incoming" if di == 0 else "outgoing", hops, amt, share), "asset": name,
                     **_detected(idx, gi)}
                exposures.append(e)
                pending.append((amt, rec, e))
                rs = idx.meta["totals"].get(f"{acct}:{asset}", ["0", "0"])
                totals[name] = {"received": rs[0], "sent": rs[1]}
            r["totals"] = totals
        elif not idx.seen(key):
            r["warnings"].append("address never seen in the eth chain data indexed (up to block "
                                 f"{idx.data_version['chains']['eth']['tip_height']})")
    measured = {(e["category"], e["abuse"], e["entity"], e["actor"]) for e in exposures
                if e["hops_min"] == 0 and e["amount"] is not None}
    exposures = [e for e in exposures if e["amount"] is not None
                 or (e["category"], e["abuse"], e["entity"], e["actor"]) not in measured]
    if idx is not None:  # detections baked into the index (chaintrace.screen.eth_detections)
        facts = idx.facts(key)
        if facts:
            exposures += facts["exposures"]
            r["detections"] = facts["detections"]
    elif getattr(snap, "service_facts", None) is not None:  # no index: services recognised, per request
        exposures += snap.service_facts.exposures(subject)
    r["exposures"] = exposures
    from chaintrace.screen import bridges as B

    bridge_ev = B.apply(r, snap.bridges, "eth", key)
    exposures = r["exposures"]
    r["risk"], r["score"], r["rules"] = _score(snap, exposures, r["sanctions"])
    if r["detections"]:
        from chaintrace.screen.detections import score_detections

        score_detections(r, snap.config)
    if idx is not None:
        pending.sort(key=lambda p: -p[0])
        for amt, rec, e in [p for p in pending if p[2].get("counts") and p[2]["hops_min"] > 0][:EVIDENCE_PATHS]:
            r["evidence"].append({"exposure": next(i for i, x in enumerate(exposures) if x is e),
                                  "direction": e["direction"], "entity": e["entity"], "asset": e["asset"],
                                  "amount": str(amt),
                                  "path": idx.trail(rec) if e["direction"] == "incoming" else idx.trail_out(rec)})
    B.add_evidence(r, bridge_ev)
    if idx is not None and idx.meta.get("outgoing_partial_groups"):
        r["warnings"].append("the outgoing view of some source groups is partial (work limit reached while indexing)")
    r["warnings"].extend(warnings_for(snap, "eth"))
    return r


def resolve_ref(idx, ref: str) -> tuple[int | None, str | None]:
    """(transfer id, None) of an Ethereum transfer reference in the index, or (None, why)."""
    txhash, sep, rest = ref.partition(":")
    if not _HASH.match(txhash):
        return None, "not an Ethereum transfer reference: expected 0x + 64 hex digits[:log<i>|:trace<a.b>]"
    if sep and not rest:
        return None, "empty part after ':' (expected a log index or trace<a.b>)"
    t = idx.tx_of(txhash)
    if t < 0:
        return -1, None
    a = idx.arrays
    ks = list(range(int(a["tx_tr"][t]), int(a["tx_tr"][t + 1])))
    kinds = idx.meta["kinds"]
    fee = {i for i, n in enumerate(kinds) if n in FEE_KIND_NAMES}
    tok = {i for i, n in enumerate(kinds) if n in TOKEN_KIND_NAMES}
    call_create = {i for i, n in enumerate(kinds) if n in ("call", "create")}
    if not sep:
        moving = [k for k in ks if int(a["tr_kind"][k]) not in fee and idx.amount(k) > 0]
        paths = idx.meta["trace_paths"]
        own = [k for k in moving if int(a["tr_kind"][k]) in call_create
               and (int(a["tr_trace"][k]) < 0 or not paths[int(a["tr_trace"][k])])]
        if len(moving) == 1:
            return moving[0], None
        if own:
            return own[0], None
        if not moving:
            return None, "the transaction moved no value (failed, or only paid gas)"
        refs = ", ".join(idx.ref(k)[1] for k in moving[:5])
        return None, (f"the transaction moves {len(moving)} transfers and no ether of its own: name one "
                      f"({refs}{', ...' if len(moving) > 5 else ''})")
    m = _LOG.match(rest)
    if m:
        n = int(m.group(1))
        hit = [k for k in ks if int(a["tr_kind"][k]) in tok and int(a["tr_log"][k]) == n]
        if not hit:
            logs = sorted({int(a["tr_log"][k]) for k in ks if int(a["tr_kind"][k]) in tok})
            return None, (f"no token transfer with log index {n} in this transaction"
                          + (f" (log indexes: {', '.join(map(str, logs))})" if logs else " (it has none)"))
        return hit[0], None
    m = _TRACE.match(rest)
    if m:
        path = m.group(1).replace(".", ",")
        paths = idx.meta["trace_paths"]
        hit = [k for k in ks if int(a["tr_trace"][k]) >= 0 and paths[int(a["tr_trace"][k])] == path
               and int(a["tr_kind"][k]) not in tok]
        if not hit:
            have = sorted({paths[int(a["tr_trace"][k])].replace(",", ".") for k in ks if int(a["tr_trace"][k]) >= 0})
            return None, (f"no internal transfer with trace address {path.replace(',', '.')} in this transaction"
                          + (f" (trace addresses: {', '.join(have[:10])})" if have else " (it has none)"))
        return hit[0], None
    return None, f"bad part after ':' {rest!r}: expected log<i> (token transfer) or trace<a.b> (internal call)"


def screen_eth_transfer(snap, ref: str) -> dict:
    """The source of funds of one Ethereum transfer (see the module docstring)."""
    from chaintrace.model.ids import is_synthetic_txid
    from chaintrace.screen.service import _empty, _group_exposure

    r = _empty(ref, "eth")
    idx = snap.eth_index
    if idx is None:
        if not _HASH.match(ref.partition(":")[0]):
            r.update(chain=None, risk=None, score=None, invalid="not an Ethereum transfer reference: expected "
                     "0x + 64 hex digits[:log<i>|:trace<a.b>]")
            return r
        r["warnings"].append("no exposure index for eth (run `chaintrace screen index`): not screened")
        r["risk"], r["score"] = None, None
        r["warnings"].extend(warnings_for(snap, "eth"))
        return r
    k, why = resolve_ref(idx, ref)
    if why is not None:
        r.update(chain=None if "not an Ethereum" in why else "eth", risk=None, score=None, invalid=why)
        return r
    if k is None or k < 0:
        r["warnings"].append("transaction not in the eth chain data indexed (up to block "
                             f"{idx.data_version['chains']['eth']['tip_height']}): exposure unknown")
        r["risk"], r["score"] = None, None
        r["warnings"].extend(warnings_for(snap, "eth"))
        return r
    a = idx.arrays
    value = idx.amount(k)
    asset = idx.assets[int(a["tr_asset"][k])]
    txid, full = idx.ref(k)
    r["transfer"] = {"txid": txid, "ref": full, "asset": asset, "value": str(value),
                     "from": idx.address(int(a["tr_from"][k])), "to": idx.address(int(a["tr_to"][k])),
                     "synthesised": is_synthetic_txid(txid)}
    ents = sorted(idx.entries(k), key=lambda e: -e[1])
    exposures = []
    for gi, taint, hop, _rec in ents:
        exposures.append({**_group_exposure(idx.groups[gi], "direct" if hop <= 1 else "indirect", "incoming", hop,
                                            taint, taint / value if value else 0.0), "asset": asset,
                          **_detected(idx, gi)})
    for i, (gi, taint, _hop, rec) in enumerate(ents[:EVIDENCE_PATHS]):
        r["evidence"].append({"exposure": i, "direction": "incoming", "entity": idx.groups[gi].get("entity"),
                              "asset": asset, "amount": str(taint), "path": idx.trail(rec)})
    r["exposures"] = exposures
    from chaintrace.screen import bridges as B

    bridge_ev = B.add_transfer_rows(r, snap.bridges, "eth", k, value)  # carried across a bridge (screen.bridges)
    r["policy"] = {"name": snap.config.policy, "max_hops": snap.config.max_hops}
    r["risk"], r["score"], r["rules"] = _score(snap, exposures, [])
    B.add_evidence(r, bridge_ev)
    if r["transfer"]["synthesised"]:
        r["warnings"].append("the transaction hash was synthesised by chaintrace (the source export had none): "
                             "not an on-chain id")
    r["warnings"].extend(warnings_for(snap, "eth"))
    return r
