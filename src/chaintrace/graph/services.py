"""Services recognised by behaviour over a workspace's Bitcoin or Ethereum graph (``chaintrace detect
services``): runs :mod:`chaintrace.detect.services` over the graph arrays and resolves addresses and example
txids at the edge. :func:`btc_detections` / :func:`eth_detections` are what the tracers use (memoised per
graph within the process).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from chaintrace.detect.services import (BTC_DEFAULTS, ETH_DEFAULTS, KINDS, ServiceDetections, btc_services,
                                        eth_services)
from chaintrace.errors import UserError
from chaintrace.store.workspace import Workspace

_CACHE: dict[tuple, ServiceDetections] = {}
EXAMPLES = 3  # example txids per detection: the first receipts and spends


def btc_detections(g, **thresholds) -> ServiceDetections:
    key = ("btc", id(g.out_value), int(g.commit), int(g.n_tx), tuple(sorted(thresholds.items())))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = btc_services(g.tx_in, g.tx_out, g.out_value, g.out_addr, g.out_tx, g.out_spender_tx,
                                   g.in_output, g.tx_height, g.n_addresses, **thresholds)
    return _CACHE[key]


def eth_amounts(g) -> np.ndarray:
    """Transfer amounts as float64 (only ratios within one account and asset are used by the detector)."""
    lo = np.asarray(g.tr_lo).astype(np.float64)
    hi = np.asarray(g.tr_hi).astype(np.float64)
    return hi * 18446744073709551616.0 + lo


def eth_contracts(g) -> np.ndarray:
    """Account ids that behave like contracts: they move value in a transaction they did not send (internal
    calls, token transfers by a pool or router), or were created by one."""
    from chaintrace.graph.eth import KIND_CODE

    f = np.asarray(g.tr_from, np.int64)
    tx = np.asarray(g.tr_tx, np.int64)
    kind = np.asarray(g.tr_kind)
    ok = (f >= 0) & (tx >= 0)
    moved = ok & (np.asarray(g.tx_from, np.int64)[np.maximum(tx, 0)] != f)
    created = np.asarray(g.tr_to, np.int64)[kind == KIND_CODE["create"]]
    return np.unique(np.concatenate([f[moved], created[created >= 0]]))


def eth_detections(g, **thresholds) -> ServiceDetections:
    """Fee transfers left out; contracts never reported (a DEX pool has many counterparties too, and the
    tracer converts swaps through it)."""
    from chaintrace.graph.eth import FEE_KINDS

    key = ("eth", id(g.tr_from), int(g.commit), int(g.n_transfers), tuple(sorted(thresholds.items())))
    if key not in _CACHE:
        _CACHE.clear()
        keep = ~np.isin(np.asarray(g.tr_kind), np.asarray(FEE_KINDS))
        _CACHE[key] = eth_services(np.asarray(g.tr_from)[keep], np.asarray(g.tr_to)[keep],
                                   np.asarray(g.tr_asset)[keep], eth_amounts(g)[keep],
                                   np.asarray(g.tr_height)[keep], g.n_addresses, exclude=eth_contracts(g),
                                   **thresholds)
    return _CACHE[key]


CACHE_FORMAT = 1


def cached_detections(ws: Workspace, chain: str, g) -> ServiceDetections:
    """The default-threshold detections of the store's current commit, cached on disk next to the graph
    arrays (``DATA/<chain>/cache/services-v<format>-c<commit>.npz``; a new commit invalidates it) so a trace
    pays for the detection once per commit."""
    import os

    from chaintrace.detect.services import FEATURES
    from chaintrace.graph.cache import cache_root

    root = cache_root(ws, chain)
    path = root / f"services-v{CACHE_FORMAT}-c{int(g.commit):06d}.npz"
    defaults = BTC_DEFAULTS if chain == "btc" else ETH_DEFAULTS
    if path.exists():
        try:
            z = np.load(path)
            feats = {k[2:]: z[k] for k in z.files if k.startswith("f_")}
            return ServiceDetections(z["address"], z["kind"], z["confidence"], z["hub"], feats, dict(defaults))
        except (OSError, ValueError, KeyError):
            pass  # unreadable: detect again
    det = btc_detections(g) if chain == "btc" else eth_detections(g)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        arrays: dict[str, Any] = {"address": det.address, "kind": det.kind, "confidence": det.confidence,
                                  "hub": det.hub}
        arrays.update({"f_" + k: v for k, v in det.features.items() if k in FEATURES or k == "volume_approx"})
        np.savez(tmp, **arrays)
        for old in root.glob("services-*.npz"):
            if old != tmp:
                old.unlink(missing_ok=True)
        tmp.replace(path)
    except OSError:
        pass  # a read-only workspace: no cache
    return det


def _first_per_group(keys: np.ndarray, vals: np.ndarray, ids: np.ndarray, k: int) -> dict[int, list[int]]:
    """For each id of `ids`: the first `k` values of `vals` whose key is that id (vectorised)."""
    m = np.isin(keys, ids)
    keys, vals = keys[m], vals[m]
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    if not len(keys):
        return {}
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    rank = np.arange(len(keys)) - np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    out: dict[int, list[int]] = {}
    for a, v in zip(keys[rank < k].tolist(), vals[rank < k].tolist()):
        out.setdefault(a, []).append(v)
    return out


def _btc_examples(ws, g, ids: np.ndarray) -> dict[int, list[str]]:
    from chaintrace.graph.btc import txids

    out_addr = np.asarray(g.out_addr)
    outs = _first_per_group(out_addr, np.arange(len(out_addr), dtype=np.int64), ids, EXAMPLES)
    by: dict[int, list[int]] = {}
    for a, os_ in outs.items():
        ts = [int(g.out_tx[o]) for o in os_] + [int(g.out_spender_tx[o]) for o in os_]
        by[a] = sorted({t for t in ts if t >= 0})
    names = txids(ws, {t for v in by.values() for t in v})
    return {a: [names[t] for t in v] for a, v in by.items()}


def _eth_examples(g, ids: np.ndarray) -> dict[int, list[str]]:
    n = len(g.tr_to)
    keys = np.concatenate([np.asarray(g.tr_to, np.int64), np.asarray(g.tr_from, np.int64)])
    ks = np.concatenate([np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)])
    first = _first_per_group(keys, ks, ids, 2 * EXAMPLES)
    if not first:
        return {}
    every = np.unique(np.concatenate([np.asarray(v, np.int64) for v in first.values()]))
    txid = dict(zip(every.tolist(), g.refs(every)[0]))  # one call: the txids of every example at once
    return {a: sorted({txid[k] for k in v}) for a, v in first.items()}


def detect_services(ws: Workspace, chain: str = "btc", address: str | None = None, kinds=None,
                    limit: int | None = None, **thresholds) -> dict:
    """Addresses of the `chain` store behaving like services no tag may name (exchanges and their deposit
    addresses, OTC desks, payment processors) and mixers (Bitcoin: custodial mixers over the clusters,
    :func:`_mixer_rows`; Ethereum: fixed-denomination mixing pools, :func:`_pool_rows`). Returns ``{kind: "services", chain, thresholds, data, count,
    by_kind, detections}``, each detection with ``address``, ``kind``, ``confidence``, ``hub`` (the service
    address it belongs with), ``features`` and ``txids`` (a few of the transactions it stands on); sorted by
    confidence then received value. `kinds`: keep only these; `address`: only the detection of that
    address (an address absent from the store is a UserError); `limit`: resolve and return only the first
    `limit` rows (``count`` still counts them all)."""
    from chaintrace.model.chains import resolve_chain

    chain = resolve_chain(chain)
    defaults = BTC_DEFAULTS if chain == "btc" else ETH_DEFAULTS if chain == "eth" else None
    if defaults is None:
        raise UserError(f"detect services supports btc and eth, not {chain!r}")
    given = {k: v for k, v in thresholds.items() if v is not None}
    bad = set(given) - set(defaults)
    if bad:
        raise UserError(f"detect services on {chain} has no threshold {', '.join(sorted(bad))} "
                        f"(it takes {', '.join(defaults)})")
    bad_kinds = set(kinds or ()) - set(KINDS)
    if bad_kinds:
        raise UserError(f"unknown service kind(s) {', '.join(sorted(bad_kinds))}; one of {', '.join(KINDS)}")
    if chain == "btc":
        from chaintrace.graph.btc import address_ids, address_strings, load_btc_graph

        g: Any = load_btc_graph(ws)
        det = btc_detections(g, **given)
        data = {"commit": int(g.commit), "transactions": int(g.n_tx)}

        def ids_of(a):
            return address_ids(ws, a)

        def names_of(ids):
            return address_strings(ws, ids)
    else:
        from chaintrace.graph.eth import load_eth_graph

        g = load_eth_graph(ws)
        det = eth_detections(g, **given)
        data = {"commit": int(g.commit), "transfers": int(g.n_transfers), "transactions": int(g.n_tx)}

        def ids_of(a):
            return g.address_ids(a)

        def names_of(ids):
            ids = list(ids)
            return dict(zip(ids, g.address_strings(np.asarray(ids, np.int64))))
    keep = np.ones(len(det), bool)
    address_id = None
    if address is not None:
        key = address.lower() if chain == "eth" else address
        found = ids_of([key])
        if key not in found:
            raise UserError(f"address {address} is not in the {chain} store of {ws.path}")
        address_id = int(found[key])
        keep &= det.address == address_id
    if kinds:
        keep &= np.isin(det.kind, [KINDS.index(k) for k in kinds])
    det = det.take(keep)
    size = det.features.get("received", det.features.get("volume_approx"))
    order = np.lexsort((-np.asarray(size, np.float64), -det.confidence))
    sel = order if limit is None else order[:max(0, int(limit))]  # only the rows returned are resolved
    names = names_of(sorted(set(det.address[sel].tolist()) | set(det.hub[sel].tolist())))
    examples = _btc_examples(ws, g, det.address[sel]) if chain == "btc" else _eth_examples(g, det.address[sel])
    rows = det.rows(sel)
    for r in rows:
        r["txids"] = examples.get(r["address"], [])
        r["address"] = names.get(r["address"])
        r["hub"] = names.get(r["hub"])
    by_kind = {k: int((det.kind == j).sum()) for j, k in enumerate(KINDS)}
    thresholds = dict(det.thresholds)
    count = int(len(order))
    if not kinds or "mixer" in kinds:
        # btc: custodial mixers (wallet level, over the clusters); eth: fixed-denomination mixing pools
        mixers = _mixer_rows(ws, g, address_id) if chain == "btc" else _pool_rows(ws, g, address_id)
        # rows is sorted by confidence, so its first `limit` rows and every mixer hold the merge's first `limit`
        rows = sorted(rows + mixers, key=lambda r: -r["confidence"])
        by_kind["mixer"] = len(mixers)
        count += len(mixers)
        from chaintrace.detect.mixers import DETECT_DEFAULTS
        from chaintrace.detect.pools import DEFAULTS as POOL_DEFAULTS

        thresholds["mixer"] = dict(DETECT_DEFAULTS if chain == "btc" else POOL_DEFAULTS)
    if limit is not None:
        rows = rows[:max(0, int(limit))]
    return {"kind": "services", "chain": chain, "thresholds": thresholds, "data": data,
            "count": count, "by_kind": by_kind, "detections": rows}


def _mixer_rows(ws: Workspace, g, address_id: int | None) -> list[dict]:
    """Custodial mixers recognised by behaviour (wallet level, needs clusters) as `detect services` rows: the
    reserve wallet's root address, its confidence and features (``senders``: depositors, ``receipts``:
    deposits, ``spends``: payouts, and the mixer rule's own), every address of it in ``addresses``."""
    from chaintrace.graph.mixers import detected_mixers

    rows = []
    for d in detected_mixers(ws, g):
        if address_id is not None and not d["mask"][address_id]:
            continue
        f = d["features"]
        feats = {"senders": f["depositors"], "recipients": f["recipients"], "receipts": f["deposits"],
                 "received": f["received"], "spends": f["payouts"], **f}
        rows.append({"address": d["address"], "kind": "mixer", "confidence": d["confidence"], "hub": d["address"],
                     "features": feats, "addresses": int(d["mask"].sum()), "txids": [],
                     "rule": "chaintrace.detect.mixers.detect_mixers"})
    return rows


def _pool_rows(ws: Workspace, g, address_id: int | None) -> list[dict]:
    """Fixed-denomination mixing pools recognised by behaviour on Ethereum
    (:func:`chaintrace.detect.pools.eth_pool_mixers`, defaults; gas fees left out) as `detect services` rows,
    the same pools Ethereum screening turns into ``mixer`` source groups: the pool's account, its confidence
    and features (``senders``: depositors, ``recipients``, ``receipts``: deposits, ``spends``: withdrawals,
    ``asset``, ``denomination`` in base units, ``deposit_share``, ``payout_share``)."""
    from chaintrace.detect.pools import eth_pool_mixers
    from chaintrace.graph.eth import FEE_KINDS

    keep = ~np.isin(np.asarray(g.tr_kind), np.asarray(FEE_KINDS))
    r = eth_pool_mixers(np.asarray(g.tr_from)[keep], np.asarray(g.tr_to)[keep], np.asarray(g.tr_asset)[keep],
                        np.asarray(g.tr_lo)[keep], np.asarray(g.tr_hi)[keep], g.n_addresses)
    sel = np.flatnonzero(r["address"] == address_id) if address_id is not None else np.arange(len(r["address"]))
    if not len(sel):
        return []
    t = ws.require_chain("eth").read("assets", ["asset_id", "address"])
    asset = {int(a): ("ETH" if x is None else x.lower()) for a, x in zip(t["asset_id"].to_pylist(),
                                                                       t["address"].to_pylist())}
    ids = r["address"][sel]
    names = g.address_strings(ids)
    examples = _eth_examples(g, ids)
    rows = []
    for i, name in zip(sel.tolist(), names):
        f = {"senders": int(r["depositors"][i]), "recipients": int(r["recipients"][i]),
             "receipts": int(r["deposits"][i]), "spends": int(r["withdrawals"][i]),
             "asset": asset.get(int(r["asset"][i]), str(int(r["asset"][i]))),
             "denomination": str((int(r["denom_hi"][i]) << 64) | int(r["denom_lo"][i])),
             "deposit_share": round(float(r["deposit_share"][i]), 4),
             "payout_share": round(float(r["payout_share"][i]), 4)}
        rows.append({"address": name, "kind": "mixer", "confidence": round(float(r["confidence"][i]), 3),
                     "hub": name, "features": f, "txids": examples.get(int(r["address"][i]), []),
                     "rule": "chaintrace.detect.pools.eth_pool_mixers"})
    return rows
