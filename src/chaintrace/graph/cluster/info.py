"""``chaintrace cluster show``: everything about one cluster (:func:`cluster_info`)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from chaintrace.errors import UserError
from chaintrace.graph.btc import BtcGraph, load_btc_graph
from chaintrace.graph.cluster.explain import explain
from chaintrace.graph.cluster.lookup import address_ids, address_strings, name_rows
from chaintrace.graph.cluster.reader import Clusters
from chaintrace.graph.cluster.services import display_names, load_tags, service_entity
from chaintrace.model.tags import Tag
from chaintrace.store.workspace import Workspace


def resolve_ref(ws: Workspace, c: Clusters, ref: str) -> tuple[int, int | None, str | None]:
    """(cluster id, address id or None, address or None) of an address or cluster id argument."""
    ref = ref.strip()
    if ref.isdigit():
        cid = int(ref)
        if cid >= c.n:
            raise UserError(f"cluster {cid} does not exist (cluster ids are address ids below {c.n})")
        if int(c.cluster_of[cid]) != cid:
            raise UserError(f"{cid} is not a cluster id: address id {cid} belongs to cluster "
                            f"{int(c.cluster_of[cid])}")
        return cid, None, None
    ids = address_ids(ws, [ref])
    if ref not in ids:
        raise UserError(f"address {ref} does not appear in the store")
    aid = ids[ref]
    if aid >= c.n:
        return aid, aid, ref
    return int(c.cluster_of[aid]), aid, ref


def activity(g: BtcGraph, outputs: np.ndarray) -> dict:
    """Money and time of a set of outputs (those paid to a cluster's members): exact integer sums."""
    vals = np.asarray(g.out_value)[outputs]
    spender = np.asarray(g.out_spender_tx)[outputs]
    spent = spender >= 0
    received = int(vals.sum(dtype=np.int64))
    balance = int(vals[~spent].sum(dtype=np.int64))
    txs = np.unique(np.concatenate([np.asarray(g.out_tx)[outputs], spender[spent]])) if len(outputs) \
        else np.zeros(0, np.int64)
    times = np.asarray(g.tx_time)[txs]
    heights = np.asarray(g.tx_height)[txs]
    some = len(txs) > 0
    return {"balance": balance, "received": received, "sent": received - balance,
            "outputs_received": int(len(outputs)), "tx_count": int(len(txs)),
            "first_seen": int(times.min()) if some else None, "last_seen": int(times.max()) if some else None,
            "first_height": int(heights.min()) if some else None,
            "last_height": int(heights.max()) if some else None}


def tag_groups(tags: list[Tag], sample: int) -> list[dict]:
    """Tags on members grouped by (label, category, actor, source): count and a few addresses each."""
    groups: dict[tuple, list[str]] = {}
    conf: dict[tuple, int | None] = {}
    for t in sorted(tags, key=lambda t: (t.address, t.label or "")):
        k = (t.label, t.category, t.actor, t.source)
        groups.setdefault(k, []).append(t.address)
        conf[k] = t.confidence
    out = [{"label": k[0], "category": k[1], "actor": k[2], "source": k[3], "confidence": conf[k],
            "service": service_entity(Tag("btc", "", k[0] or "", k[1], k[2])), "count": len(v),
            "addresses": v[:max(1, min(sample, 5))]} for k, v in groups.items()]
    return sorted(out, key=lambda g: (-g["count"], g["label"] or ""))


def _member_tags(ws: Workspace, tags: list[Tag], mask: np.ndarray) -> list[Tag]:
    btags = [t for t in tags if t.chain == "btc"]
    ids = address_ids(ws, sorted({t.address for t in btags}))
    return [t for t in btags if t.address in ids and ids[t.address] < len(mask) and mask[ids[t.address]]]


def cluster_info(ws: Workspace, ref: str, *, sample: int = 20, tags: list[Tag] | None = None, tagpack_paths=(),
                 why: str | None = None) -> dict:
    """Everything about the cluster of an address (or a cluster id): size, sample of addresses, the tags
    on any member (service conflicts reported, never resolved), balance, received/sent, first/last seen,
    unions by heuristic, refusals touching it, and optionally why `why` is (or is not) in it.

    The money columns cover the current store (outputs paid to members, spent or not, from the graph
    arrays); only the members' outputs are read (:meth:`Clusters.outputs_of`)."""
    c = Clusters(ws)
    cid, aid, addr = resolve_ref(ws, c, ref)
    g = load_btc_graph(ws)
    members = c.members(cid) if cid < c.n else np.array([cid], np.int64)
    mask = c.mask(members, g.n_addresses)
    money = activity(g, c.outputs_of(g, members))
    sample_ids = list(members[:sample])
    if aid is not None and aid not in sample_ids:
        sample_ids = [aid] + sample_ids[:max(0, sample - 1)]
    names = address_strings(ws, sample_ids)
    member_tags = _member_tags(ws, load_tags(ws, tagpack_paths) if tags is None else tags, mask)
    services: dict[str, list[str]] = {}
    for t in member_tags:
        e = service_entity(t)
        if e:
            services.setdefault(e, []).append(t.address)
    shown = display_names(ws, services, member_tags)
    conflicts = [{"service": shown[e], "addresses": sorted(set(v))} for e, v in sorted(services.items())] \
        if len(services) > 1 else []
    unions = c.unions_touching(mask)
    refusals = c.refusals_touching(mask)
    by_heur = Counter(unions["heuristic"].to_pylist()) if len(unions) else Counter()
    ref_reasons = Counter(refusals["reason"].to_pylist()) if len(refusals) else Counter()
    ref_sample = name_rows(ws, refusals.slice(0, 10).to_pylist()) if len(refusals) else []
    out = {
        "cluster_id": int(cid), "size": int(len(members)), "queried_address": addr,
        "built_generation": c.state["generation"], "store_commit": c.state.get("store_commit"),
        "stale": c.state.get("store_commit") != g.commit,
        "addresses": [names.get(int(i), str(i)) for i in sample_ids],
        "tagged_addresses": len({t.address for t in member_tags}),
        "tags": tag_groups(member_tags, sample),
        "services": sorted(services), "conflicts": conflicts,
        "label": (shown[next(iter(services))] if len(services) == 1
                  else ("CONFLICT: " + " / ".join(shown[e] for e in sorted(services)) if services else None)),
        **money,
        "unions_by_heuristic": dict(by_heur), "refusals_by_reason": dict(ref_reasons), "refusals": ref_sample,
        "config": c.state.get("config"),
    }
    if why:
        out["why"] = explain(ws, addr or names.get(int(cid)) or address_strings(ws, [cid])[cid], why, clusters=c)
    return out
