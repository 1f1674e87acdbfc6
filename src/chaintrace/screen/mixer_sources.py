"""Custodial mixers recognised by behaviour as source groups of the Bitcoin exposure index (issue 15: "high-risk
categories (mixers...) as their own exposures" within N hops), the Bitcoin side of
:func:`chaintrace.screen.eth_detections.detected_mixers`.

:func:`find_mixers` runs :func:`chaintrace.graph.mixers.detected_mixers` once per index build (the rule is about
wallets: it needs the store's clusters, ``chaintrace cluster build``; without them nothing is recognised and the
run says so). :func:`add_mixer_groups` appends one source group of category ``mixer`` per detection (entity
``unidentified mixer <reserve address>``, severity ``detected_mixer`` of the configuration, null by default:
informational) whose sources are every address of the detected service (its reserve and deposit wallets), so
the index propagates what it paid out (incoming exposure) and what was paid into it (outgoing) within
``max_hops`` like a tagged source's. A detection any of whose addresses carries a mixer tag (category or abuse
``mixer`` or ``mixing_service``) is left to the tag and not added (never counted twice); it is listed in the
run. Other tagged addresses in a detection (an exchange's deposit address taken for the mixer's) are left out
of its group: their tag decides what they are (``features.addresses_tagged_left_out``).
:func:`detected_fields` gives an answer's exposure row to such a group its ``confidence`` and ``detection``
(``{address, kind, confidence, features}``).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from chaintrace.screen.detections import severity
from chaintrace.screen.sources import NO_DAY, Sources

MIXER_CATEGORIES = ("mixer", "mixing_service")  # tag categories (or abuse) that name a mixer


def find_mixers(ws, g) -> tuple[list[dict], str]:
    """(the custodial mixers recognised over the store's clusters, most confident first; a note for the run).
    Each one's ``mask`` is widened along its reserve's change (:func:`chaintrace.detect.mixers.mixer_flows`, as
    ``detect mixer-links`` does): a reserve paying its change to fresh addresses leaves the cluster the
    detection saw, and a payout made after more than ``max_hops`` such spends would otherwise show no
    exposure. ``features.addresses`` counts the widened set, ``features.addresses_recognised`` the wallets'."""
    try:
        from chaintrace.detect.mixers import mixer_flows
        from chaintrace.graph.mixers import detected_mixers

        mixers = detected_mixers(ws, g)
        for m in mixers:
            mask = np.asarray(m["mask"], np.bool_)
            _, _, wide = mixer_flows(g.tx_in, g.tx_out, g.in_output, g.out_addr, g.out_value, g.out_type, mask,
                                     out_spender_tx=g.out_spender_tx)
            wide = np.asarray(wide, np.bool_)[:len(mask)] | mask
            m["features"] = {**m["features"], "addresses": int(wide.sum()), "addresses_recognised": int(mask.sum())}
            m["mask"] = wide
    except Exception as e:  # noqa: BLE001 - clusters of another commit / unreadable: said in the run
        return [], f"not run: {type(e).__name__}: {e}"
    return mixers, ("recognised over the store's clusters, widened along the reserve's change" if mixers
                    else "none recognised (or no clusters built)")


def add_mixer_groups(ws, g, sources: Sources, config, mixers: list[dict]) -> tuple[Sources, list[dict], list[dict]]:
    """(the sources with one ``mixer`` group per untagged detected mixer appended, those groups' detections
    ``{group, address, kind, confidence, features}``, the detections left to a tag ``{address, confidence,
    tagged}``). An address in two detections belongs to the first (the most confident)."""
    from chaintrace.graph.btc import address_strings
    from chaintrace.intel import addresses as A

    if not mixers:
        return sources, [], []
    n = int(g.n_addresses)
    ids = [np.flatnonzero(np.asarray(m["mask"])[:n]) for m in mixers]
    names = address_strings(ws, np.unique(np.concatenate(ids)).tolist())
    tagged = set(sources.keys) | sources.services | set(sources.direct)
    mixer_tagged = {k for k, d in sources.direct.items()
                    if any(h.get("category") in MIXER_CATEGORIES or h.get("abuse") in MIXER_CATEGORIES
                           for h in d.get("hits", ()))}
    groups, keys = list(sources.groups), list(sources.keys)
    kg, kf = sources.key_group.tolist(), sources.key_from.tolist()
    sev = severity(config, "mixer")
    taken: set[str] = set()
    added: list[dict] = []
    left: list[dict] = []
    for m, mi in zip(mixers, ids):
        ks = [A.key("btc", names[i]) for i in mi.tolist() if names.get(i)]
        hit = sorted({k for k in ks if k in mixer_tagged})
        if hit:  # a tagged mixer: the tag names it
            left.append({"address": m["address"], "confidence": round(float(m["confidence"]), 3),
                         "tagged": hit[:3], "n_tagged": len(hit)})
            continue
        n_ks = len(ks)
        ks = [k for k in ks if k not in taken and k not in tagged]  # a tagged address: its tag decides
        if not ks:
            continue
        taken.update(ks)
        gi = len(groups)
        groups.append({"category": "mixer", "abuse": None, "entity": f"unidentified mixer {m['address']}",
                       "actor": None, "severity": sev, "detected": "mixer"})
        keys += ks
        kg += [gi] * len(ks)
        kf += [int(NO_DAY)] * len(ks)
        added.append({"group": gi, "address": m["address"], "kind": "mixer",
                      "confidence": round(float(m["confidence"]), 3),
                      "features": {**m["features"], "addresses_tagged_left_out": n_ks - len(ks)}})
    new = dataclasses.replace(sources, groups=groups, keys=keys, key_group=np.asarray(kg, np.int32),
                              key_from=np.asarray(kf, np.int32))
    return new, added, left


def detected_fields(idx, gi: int) -> dict:
    """``confidence`` and ``detection`` of an exposure row to group `gi` when it is a mixer recognised by
    behaviour (:func:`add_mixer_groups`); nothing for registry groups."""
    d = (idx.meta.get("detected_groups") or {}).get(str(gi))
    return {"confidence": d["confidence"], "detection": d} if d else {}
