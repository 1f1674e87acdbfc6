"""The flow graph of a trace report for the web UI: nodes (seeds, intermediate addresses, sinks, holdings,
stopped value) and edges (traced value, exact base units as decimal strings) with a cheap *preset* layout
(columns by hop, rows in order), so the browser draws a 10,000-node graph without running a force layout.

Pure functions over the report's JSON form (:meth:`chaintrace.trace.report.TraceReport.to_dict`).
Edges along the report's evidence paths carry the transaction id of each step; a sink, holding or stopped
amount that no evidence path reaches is joined to the seeds by a *summary* edge (``kind: "summary"``) whose
amount is the value that arrived there, after ``hops`` transactions.
"""
from __future__ import annotations

COL_W, ROW_H = 220, 46


def _node(nodes: dict, nid: str, **attrs) -> dict:
    n = nodes.get(nid)
    if n is None:
        n = nodes[nid] = {"id": nid, "kind": "pass", "amount": 0, "hop": attrs.get("hop", 0), "label": None,
                          "category": None, "synthetic": False}
    for k, v in attrs.items():
        if k == "hop":
            n["hop"] = min(n["hop"], v)
        elif k == "amount":
            n["amount"] += v
        elif k == "kind":
            if n["kind"] in ("pass", "seed") or v == "seed":
                n["kind"] = v if n["kind"] != "seed" else "seed"
        elif v is not None and v is not False:
            n[k] = v
    return n


def _edge(edges: dict, src: str, dst: str, amount: int, kind: str, txid: str | None, synthetic: bool) -> None:
    e = edges.get((src, dst))
    if e is None:
        e = edges[(src, dst)] = {"source": src, "target": dst, "amount": 0, "kind": kind, "txids": [],
                                 "synthetic": False}
    e["amount"] += amount
    if txid and txid not in e["txids"] and len(e["txids"]) < 5:
        e["txids"].append(txid)
    e["synthetic"] = e["synthetic"] or synthetic
    if kind == "path":
        e["kind"] = "path"


def trace_graph(report: dict) -> dict:
    """``{"nodes": [...], "edges": [...], "asset", "decimals", "partial"}`` of a trace report dict; every
    node has ``x``/``y`` (the preset layout); amounts are decimal strings of base units."""
    nodes: dict[str, dict] = {}
    edges: dict[tuple[str, str], dict] = {}
    seeds = report.get("seeds") or []
    seed_ids = []
    for s in seeds:
        nid = s["spec"]
        _node(nodes, nid, kind="seed", hop=0, amount=int(s["amount"]))
        seed_ids.append(nid)
    root = seed_ids[0] if seed_ids else None
    for p in report.get("paths") or []:
        prev = root
        for st in p.get("steps") or []:
            nid = st.get("address") or st["ref"]
            syn = bool(st.get("synthetic_id"))
            if nid == prev:
                continue
            _node(nodes, nid, hop=int(st["hop"]), label=st.get("label"))
            if prev is not None:
                _edge(edges, prev, nid, int(st["amount"]), "path", st.get("txid"), syn)
            prev = nid
    on_path = {e[1] for e in edges}

    def end(kind: str, rows: list, cat_key: str | None = None) -> None:
        for r in rows:
            nid = r.get("address") or r["ref"]
            _node(nodes, nid, kind=kind, hop=int(r.get("hops") or 0), amount=int(r["amount"]),
                  label=r.get("label") or r.get("actor_name"), category=r.get(cat_key) if cat_key else None,
                  reason=r.get("reason"), synthetic=bool(r.get("synthetic_id")))
            if nid not in on_path and root is not None and nid != root:
                _edge(edges, root, nid, int(r["amount"]), "summary", r.get("txid"), bool(r.get("synthetic_id")))

    end("sink", report.get("sinks") or [], "category")
    end("holding", report.get("holdings") or [])
    end("stopped", report.get("stopped") or [])
    assets = report.get("assets") or {}
    asset = next(iter(report.get("total_seeded") or {}), None)
    return layout({"nodes": list(nodes.values()), "edges": list(edges.values()), "asset": asset,
                   "decimals": (assets.get(asset) or {}).get("decimals", 8) if asset else 8,
                   "partial": bool(report.get("partial")), "chain": report.get("chain")})


def layout(graph: dict) -> dict:
    """Preset positions: column = hop + 1 (seeds in column 0), rows in the order nodes came; amounts to strings."""
    rows: dict[int, int] = {}
    for n in graph["nodes"]:
        h = int(n.get("hop") or 0) + 1 if n.get("kind") != "seed" else 0
        r = rows.get(h, 0)
        rows[h] = r + 1
        n["x"], n["y"] = h * COL_W, r * ROW_H
        n["amount"] = str(n["amount"])
    # stretch the columns so the drawing is about 1.6 times wider than high (tall columns stay readable)
    width, height = max(rows, default=0) * COL_W, max(rows.values(), default=0) * ROW_H
    if width and height * 1.6 > width:
        f = height * 1.6 / width
        for n in graph["nodes"]:
            n["x"] = round(n["x"] * f)
    for e in graph["edges"]:
        e["amount"] = str(e["amount"])
    return graph


def synthetic_graph(n_nodes: int, fanout: int = 3, seed: int = 7) -> dict:
    """A layered random flow graph of `n_nodes` (for the UI benchmark and tests): one seed, each node sends
    value to up to `fanout` nodes of the next layer; value is conserved along edges."""
    import random

    rnd = random.Random(seed)
    nodes = [{"id": "seed", "kind": "seed", "hop": 0, "amount": 10 ** 12, "label": None, "category": None,
              "synthetic": True}]
    edges = []
    layer, k, hop = [0], 1, 1
    cats = (None, None, None, "exchange", "mixer", "sanction")
    while k < n_nodes:
        nxt = []
        for i in layer:
            for _ in range(rnd.randint(1, fanout)):
                if k >= n_nodes:
                    break
                cat = rnd.choice(cats) if hop > 2 else None
                nodes.append({"id": f"n{k}", "kind": "sink" if cat else "pass", "hop": hop, "amount": 0,
                              "label": cat and f"{cat} {k}", "category": cat, "synthetic": True})
                edges.append({"source": nodes[i]["id"], "target": f"n{k}", "amount": rnd.randint(1, 10 ** 8),
                              "kind": "path", "txids": [], "synthetic": True})
                nxt.append(k)
                k += 1
        layer, hop = (nxt or [0]), hop + 1
    return layout({"nodes": nodes, "edges": edges, "asset": "BTC", "decimals": 8, "partial": False,
                   "chain": "btc"})
