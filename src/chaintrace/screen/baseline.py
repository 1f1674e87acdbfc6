"""Screening without the exposure index: a backward haircut trace per request (the benchmark's baseline,
and the tests' cross-check of the index).

:func:`screen_transfer_trace` apportions one output's value backwards over at most ``max_hops``
transactions through the graph arrays, attributing the parts that reach outputs of source addresses to
their groups (and continuing past them, as the forward index does), stopping at services.
:func:`screen_address_trace` does the same for every output an address received (found with SQL).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from chaintrace.intel import addresses as addr
from chaintrace.screen.service import Snapshot, _group_exposure, parse_ref, score
from chaintrace.screen.sources import NO_DAY
from chaintrace.store.workspace import Workspace

_CACHE: dict = {}


def _context(ws: Workspace, snap: Snapshot):
    """(graph, address id -> (group, from day), service address ids), cached per snapshot."""
    key = (str(ws.path), id(snap))
    if key not in _CACHE:
        from chaintrace.graph.btc import address_ids, load_btc_graph

        g = load_btc_graph(ws)
        src = snap.sources["btc"]
        ids = address_ids(ws, src.keys + sorted(src.services))
        grp = {}
        for k, gi, frm in zip(src.keys, src.key_group.tolist(), src.key_from.tolist()):
            if k in ids:
                grp[ids[k]] = (gi, frm)
        stop = {ids[k] for k in src.services if k in ids}
        _CACHE.clear()
        _CACHE[key] = (g, grp, stop)
    return _CACHE[key]


def _apportion(x: int, weights: list[int], total: int) -> list[int]:
    out, prev, cum = [], 0, 0
    for w in weights:
        cum += w
        c = x * cum // total
        out.append(c - prev)
        prev = c
    return out


def trace_output(g, grp: dict, stop: set, o: int, max_hops: int) -> dict[int, list[int]]:
    """group -> [amount, min hop] of the value of output `o`, traced backwards."""
    found: dict[int, list[int]] = {}
    frontier = {o: int(g.out_value[o])}
    for h in range(1, max_hops + 1):
        nxt: dict[int, int] = defaultdict(int)
        by_tx: dict[int, int] = defaultdict(int)
        for oo, x in frontier.items():
            by_tx[int(g.out_tx[oo])] += x
        for t, x in by_tx.items():
            ins = [int(i) for i in g.in_output[g.tx_in[t]:g.tx_in[t + 1]] if i >= 0]
            vals = [int(g.out_value[i]) for i in ins]
            total = max(sum(vals), int(g.out_value[g.tx_out[t]:g.tx_out[t + 1]].sum()))
            if not ins or total == 0:
                continue
            x = min(x, sum(vals))
            for i, share in zip(ins, _apportion(x, vals, sum(vals))):
                if share <= 0:
                    continue
                a = int(g.out_addr[i])
                hit = grp.get(a)
                if hit is not None and (hit[1] == NO_DAY or int(g.tx_time[g.out_tx[i]]) >= hit[1] * 86400):
                    f = found.setdefault(hit[0], [0, h])
                    f[0] += share
                    f[1] = min(f[1], h)
                if a in stop:
                    continue
                nxt[i] += share
        frontier = nxt
        if not frontier:
            break
    return found


def screen_transfer_trace(ws: Workspace, snap: Snapshot, ref: str) -> dict:
    """One transfer screened by a backward trace (no index): the result shape of the indexed answer."""
    chain, txid, vout, why = parse_ref(ref)
    r = {"subject": ref, "chain": chain, "risk": None, "score": None, "exposures": [], "sanctions": [],
         "evidence": [], "warnings": [], "invalid": why}
    if why is not None or chain != "btc":
        return r
    from chaintrace.graph.btc import tx_ids

    g, grp, stop = _context(ws, snap)
    t = tx_ids(ws, [txid]).get(txid)  # SQL per request
    if t is None or vout >= int(g.tx_out[t + 1] - g.tx_out[t]):
        r["warnings"].append("transfer not in the chain data")
        return r
    o = int(g.tx_out[t]) + vout
    value = int(g.out_value[o])
    groups = snap.sources["btc"].groups
    for gi, (amt, hop) in sorted(trace_output(g, grp, stop, o, snap.config.max_hops).items(), key=lambda x: -x[1][0]):
        r["exposures"].append(_group_exposure(groups[gi], "direct" if hop <= 1 else "indirect", "incoming", hop,
                                              amt, amt / value if value else 0.0))
    r["risk"], r["score"], r["rules"] = score(snap.config, "btc", r["exposures"], [])
    return r


def screen_address_trace(ws: Workspace, snap: Snapshot, address: str) -> dict:
    """Incoming exposure of an address by tracing every output it received (SQL + trace per request)."""
    g, grp, stop = _context(ws, snap)
    con = ws.connect()
    outs = [int(x[0]) for x in con.execute("SELECT output_id FROM btc.outputs WHERE address = ?",
                                           [address]).fetchall()]
    total: dict[int, list[int]] = {}
    for o in outs:
        for gi, (amt, hop) in trace_output(g, grp, stop, o, snap.config.max_hops).items():
            f = total.setdefault(gi, [0, hop])
            f[0] += amt
            f[1] = min(f[1], hop)
    received = int(np.sum(g.out_value[outs])) if outs else 0
    groups = snap.sources["btc"].groups
    key = addr.key("btc", address)
    r = {"subject": address, "chain": "btc", "exposures": [], "sanctions": [], "evidence": [], "warnings": [],
         "invalid": None}
    d = snap.sources["btc"].direct.get(key)
    if d:
        r["sanctions"] = d["sanctions"]
    for gi, (amt, hop) in total.items():
        r["exposures"].append(_group_exposure(groups[gi], "direct" if hop <= 1 else "indirect", "incoming", hop,
                                              amt, amt / received if received else 0.0))
    r["risk"], r["score"], r["rules"] = score(snap.config, "btc", r["exposures"], r["sanctions"])
    return r
