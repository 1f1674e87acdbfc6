"""Laundering shapes on the traced paths (issue 15, point 5): the flow detections of
:mod:`chaintrace.graph.detections` (peel chains, fan-out, fan-in, structuring, rapid pass-through, dormancy
then movement) that touch a Bitcoin trace, with their evidence, for the report's ``detections`` section and
the ``--explain`` notes.

"Touching the traced paths": a detection whose transactions include one that created a traced output (peel
chains, fans, structuring), a pass-through address that passed on traced outputs fast, a traced output that
lay dormant then moved. Thresholds: the ``chaintrace detect`` defaults (``graph.detections.KINDS``), stated
in the section. Services recognised by behaviour are sink rows (``reason: service_like``), custodial-mixer
links the ``probabilistic`` section, bridges the ``bridge`` field of bridge sinks: the section counts them.
"""
from __future__ import annotations

import numpy as np

ORDER = ("peel-chain", "fan-out", "fan-in", "structuring", "pass-through", "dormancy")
MAX_PER_KIND = 50  # detections listed per kind (the count says how many there are)


def _raw_on_paths(g, tainted: np.ndarray, kinds: dict) -> dict[str, list[dict]]:
    from chaintrace.detect import flows
    from chaintrace.graph.detections import on_paths

    out_tx = np.asarray(g.out_tx)
    on_path = np.zeros(int(g.n_tx), np.bool_)
    on_path[out_tx[tainted]] = True
    is_tainted = np.zeros(len(out_tx), np.bool_)
    is_tainted[tainted] = True
    res: dict[str, list[dict]] = {}
    for kind in ("peel-chain", "fan-out", "fan-in", "structuring"):
        res[kind] = on_paths(g, kind, kinds[kind], on_path, is_tainted)
    p = kinds["pass-through"]
    addrs = np.unique(np.asarray(g.out_addr)[tainted])
    pt = flows.pass_through(out_tx, g.out_addr, np.asarray(g.out_value), g.out_spender_tx, g.tx_height,
                            max_hold=p["max_hold_blocks"], min_receipts=p["min_receipts"], min_share=p["min_share"],
                            addresses=addrs[addrs >= 0])
    res["pass-through"] = []
    for d in pt:
        fast = np.asarray(d["outputs"], np.int64)
        if not is_tainted[fast].any():
            continue
        d["txs"] = sorted({int(out_tx[o]) for o in fast} | {int(g.out_spender_tx[o]) for o in fast})
        d["addresses"] = [d["address"]]
        res["pass-through"].append(d)
    res["dormancy"] = on_paths(g, "dormancy", kinds["dormancy"], on_path, is_tainted)
    return res


def detections_on_paths(ws, g, tainted: np.ndarray, explain_ids: dict[str, int]) -> tuple[dict, dict[str, list]]:
    """(the report's ``detections`` section, per explained address the detections touching it).

    Section: ``{thresholds, data, counts, detections: {kind: [resolved detection, ...]}, note}``; each
    detection as ``chaintrace detect KIND --format json`` prints it (txids, features, outputs)."""
    from chaintrace.graph.detections import KINDS, resolve

    kinds = {k: dict(KINDS[k]) for k in ORDER}
    raw = _raw_on_paths(g, np.asarray(tainted, np.int64), kinds)
    counts = {k: len(raw[k]) for k in ORDER}
    listed = {k: raw[k][:MAX_PER_KIND] for k in ORDER}
    wanted = {int(a) for a in explain_ids.values()}
    # detections touching an explained address are listed even past MAX_PER_KIND
    extra = {k: [d for d in raw[k][MAX_PER_KIND:] if wanted & set(d["addresses"])] for k in ORDER}
    flat = [(k, d, True) for k in ORDER for d in listed[k]] + [(k, d, False) for k in ORDER for d in extra[k]]
    resolved = resolve(ws, g, [d for _, d, _ in flat])
    section: dict[str, list] = {k: [] for k in ORDER}
    per_addr: dict[str, list] = {a: [] for a in explain_ids}
    for (k, d, in_section), r in zip(flat, resolved):
        row = {"kind": k, **r}
        if in_section:
            section[k].append(row)
        for a, aid in explain_ids.items():
            if int(aid) in d["addresses"]:
                per_addr[a].append(row)
    return ({"thresholds": kinds, "data": {"commit": int(g.commit), "transactions": int(g.n_tx)},
             "counts": counts, "detections": section,
             "note": ("laundering shapes touching the traced paths (chaintrace detect KIND); shapes, not verdicts: "
                      "exchanges fan out and in, ordinary wallets peel. Services recognised by behaviour are the "
                      "sink rows with reason service_like, custodial-mixer links the probabilistic section, bridge "
                      "matches the bridge field of bridge sinks")}, per_addr)


def describe(d: dict) -> tuple[str, str]:
    """(where, what) of one resolved detection, for the text and HTML reports."""
    k = d.get("kind")
    if k == "peel-chain":
        return d.get("start") or "", (f"{d['length']} hops, peeled {d['peeled_total']} sat of "
                                      f"{d.get('input_value')}, {len(d.get('peels', []))} peels")
    if k in ("fan-out", "fan-in"):
        return d.get("txid") or "", f"{d['n_inputs']} inputs, {d['n_outputs']} outputs, {d['value']} sat"
    if k == "structuring":
        return d.get("txid") or "", (f"{d['near_equal']} of {d['n_outputs']} outputs within tolerance of "
                                     f"{d['median']} sat (total {d['total']})")
    if k == "pass-through":
        return d.get("address") or "", (f"passed {d['passed']} of {d['received']} sat received in {d['receipts']} "
                                        f"output(s) within {d['max_hold_seen']} block(s)")
    if k == "dormancy":
        return d.get("output") or "", (f"{d['value']} sat dormant {d['blocks_dormant']} blocks, moved in "
                                       f"{d.get('moved_txid')}")
    return "", ""
