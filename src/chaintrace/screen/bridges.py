"""Bridges in screening answers (issue 15, points 4 and 5): the *bridge layer*, built after the Bitcoin and the
Ethereum exposure indexes, and what it adds to an address's answer.

A bridge is a set of registry addresses of category ``bridge`` / ``defi_bridge`` (tags with the same actor, or
label, are one bridge: its Bitcoin custodian and its Ethereum contract). :func:`build_layer` lists every deposit
into and release out of each bridge (:func:`chaintrace.graph.bridge_flows.bridge_flows`, the matcher of
``chaintrace detect bridges``) and derives, per address:

* **bridge facts** (answer field ``bridges``): the address paid into the bridge (``direction: into``) or received
  a release from it (``out_of``), with the transfer, the matched counterpart on the other chain (chain, tx, ref,
  address, amount in base units), the rule (``event``: the deposit names its recipient, deterministic;
  ``amount+time``: probabilistic, a confidence split), the thresholds; ``status: unmatched`` when no counterpart
  is in the store (or the other chain is not: ``reason``).
* **cross-chain exposure**: the recipient of a release matched with a deposit that carried exposure on its own
  chain (the index's haircut taint of the deposit output / transfer, per source group) gets an incoming exposure
  row to the same source group: ``amount = floor(release x taint / deposit x confidence)`` in the release's base
  units (the rule of ``trace --through-bridges``), ``hops_min`` = the deposit's hop + 1 (the release is one more
  transfer), ``via: bridge``, ``probabilistic`` unless every contributing match is deterministic, and the path
  evidence across both chains.
* **onward exposure** (:mod:`chaintrace.screen.bridge_onward`): what the releases carried is propagated further
  on their chain by the kernels of that chain's index, within the hops left (``max_hops`` counted across both
  chains), services being sinks: every address it reaches (the thief's cash-out at an exchange) gets a row like
  the recipient's (``via: bridge``, ``bridge.onward``: the release and its recipient), with the path from the
  theft across the bridge to the address. One crossing: the exposure a bridge carried is not carried over a
  second one (see docs/screening.md, "Bridges").

The layer lives in ``DATA/screen/bridges/bridges-v<FORMAT>-<digest>/layer.json``, its name a digest of the two
index names it was built from (their chain commits, registry generations and configuration), the bridges and
the matching thresholds: an index refresh (new blocks, an import) gives a new name, so the layer is built again
whole (cheap: the matcher over the bridges' transfers, one lookup per deposit in the indexes).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np

from chaintrace.errors import UserError
from chaintrace.intel import addresses as A
from chaintrace.screen.config import Config
from chaintrace.screen.sources import Sources
from chaintrace.store.workspace import Workspace
from chaintrace.trace.bridges import BRIDGE_CATEGORIES
from chaintrace.trace.report import InvariantError

FORMAT = 3  # 2: onward exposure (rows of the addresses reached after the release); 3: transfer rows
DEFAULT_MIN_CONFIDENCE = 0.5  # an amount+time candidate splitting a deposit over 3+ releases is informational
MATCH_KEYS = ("fee_min", "fee_max", "fee_fixed", "delay_min", "delay_max")
NOTE = ("bridge facts: deposits into and releases out of addresses tagged bridge/defi_bridge, matched across "
        "chains by chaintrace detect bridges' rules (event = the deposit names its recipient, deterministic; "
        "amount+time = a probabilistic split); exposure carried over one crossing and propagated on from the release "
        "within max_hops counted across both chains")


def layer_root(ws: Workspace) -> Path:
    return ws.path / "screen" / "bridges"


def bridges_in(sources: dict[str, Sources]) -> list[dict]:
    """The bridges of the registry: ``[{name, btc: [addresses], eth: [addresses]}]``, tags of a bridge category
    grouped by actor (else entity / label)."""
    by: dict[str, dict] = {}
    for chain in ("btc", "eth"):
        s = sources.get(chain)
        for k, d in (s.direct if s is not None else {}).items():
            for h in d.get("hits", ()):
                if h.get("category") in BRIDGE_CATEGORIES:
                    name = h.get("actor") or h.get("entity") or h.get("label") or k
                    b = by.setdefault(name, {"name": name, "btc": [], "eth": []})
                    if k not in b[chain]:
                        b[chain].append(k)
    return [{**by[n], "btc": sorted(by[n]["btc"]), "eth": sorted(by[n]["eth"])} for n in sorted(by)]


def layer_name(btc_index: str | None, eth_index: str | None, bridges: list[dict], params: dict) -> str:
    key = json.dumps([FORMAT, btc_index, eth_index, bridges, params], sort_keys=True)
    return f"bridges-v{FORMAT}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


class Layer:
    """A loaded bridge layer: facts, exposure rows and evidence per (chain, address key)."""

    def __init__(self, path: Path | None, doc: dict):
        self.path = path
        self.doc = doc
        self.facts: dict[str, dict[str, list]] = doc["facts"]
        self.rows: dict[str, dict[str, list]] = doc["exposures"]
        self.keys = {k for c in ("btc", "eth") for k in (*self.facts.get(c, {}), *self.rows.get(c, {}))}

    def touches(self, subject: str) -> bool:
        return bool(self.keys) and (subject in self.keys or subject.lower() in self.keys)

    @property
    def data_version(self) -> dict:
        return self.doc["data_version"]


def _taint_of(idx, dep: dict) -> list[tuple[int, int, int, object]]:
    """(group, taint, hop, trail handle) of a deposit in its chain's index."""
    if idx is None:
        return []
    if dep["chain"] == "btc":
        return [(g, t, h, ("btc", dep["id"], g)) for g, t, h, _p in idx.output_entries(int(dep["id"]), 0)]
    return [(g, t, h, ("eth", rec, g)) for g, t, h, rec in idx.entries(int(dep["id"]))]


def _trail(idx, handle) -> list[dict]:
    chain, x, g = handle
    steps = idx.trail(x, g, 0) if chain == "btc" else idx.trail(x)
    return [{**s, "chain": chain} for s in steps]


def _fact(direction: str, bridge: str, x: dict, other: dict | None, m: dict | None, params: dict,
          reason: str | None) -> dict:
    f = {"direction": direction, "bridge": {"entity": bridge, "chain": x["chain"], "address": x.get("bridge_address"),
                                           "via": x["via"]},
         "chain": x["chain"], "tx": x["tx"], "ref": x["ref"], "time": x["time"], "amount": str(x["amount"]),
         "asset": x["asset"], "status": "matched" if m else "unmatched", "counterpart": None, "rule": None,
         "confidence": None, "deterministic": None, "fee_sat": None, "delay_s": None,
         "thresholds": {k: params[k] for k in sorted(params)}}
    if m is not None and other is not None:
        who = other["to"] if direction == "into" else other["from"]
        f["counterpart"] = {"chain": other["chain"], "tx": other["tx"], "ref": other["ref"], "time": other["time"],
                            "address": who, "amount": str(other["amount"]), "asset": other["asset"]}
        f.update(rule=m["rule"], confidence=round(m["confidence"], 6), deterministic=m["deterministic"],
                 fee_sat=str(m["fee_sat"]), delay_s=m["delay_s"])
    else:
        f["reason"] = reason
    return f


def build_layer_doc(ws: Workspace, config: Config, sources: dict[str, Sources], btc_idx, eth_idx,
                    params: dict | None = None) -> dict:
    """The layer document (module doc): ``{format, data_version, facts, exposures, conservation}``."""
    from chaintrace.graph.bridge_flows import bridge_flows

    bridges = bridges_in(sources)
    facts: dict[str, dict[str, list]] = {"btc": {}, "eth": {}}
    contrib: dict[tuple, dict] = {}  # (chain, key, group, asset, deterministic, bridge, from chain) -> one row
    cons: list[dict] = []
    dv: dict = {"layer": None, "format": FORMAT, "btc_index": btc_idx.path.name if btc_idx is not None else None,
                "eth_index": eth_idx.path.name if eth_idx is not None else None, "note": NOTE,
                "bridges": [], "params": None}
    idx_of = {"btc": btc_idx, "eth": eth_idx}
    onward: dict[tuple, dict[int, dict]] = {}  # stream -> release -> {r, x, h0, best, matches, group, key}
    for br in bridges:
        fl = bridge_flows(ws, br["btc"], br["eth"], **(params or {}))
        p = fl["params"]
        dv["params"] = p
        deps, rels, ms = fl["deposits"], fl["releases"], fl["matches"]
        dv["bridges"].append({"entity": br["name"], "addresses": fl["addresses"], "deposits": len(deps),
                              "releases": len(rels), "matches": len(ms),
                              "deterministic": sum(m["deterministic"] for m in ms),
                              "probabilistic": sum(not m["deterministic"] for m in ms), "missing": fl["missing"]})
        by_dep: dict[int, list[dict]] = {}
        by_rel: dict[int, list[dict]] = {}
        for m in ms:
            by_dep.setdefault(m["dep"], []).append(m)
            by_rel.setdefault(m["rel"], []).append(m)
        reason = fl["missing"] or "no release on the other chain matches it within the thresholds (unknown)"
        for i, d in enumerate(deps):
            for who in sorted({w for w in d["from"] if w}):
                lst = facts[d["chain"]].setdefault(A.key(d["chain"], who), [])
                for m in by_dep.get(i) or [None]:  # type: ignore[list-item]
                    lst.append(_fact("into", br["name"], d, rels[m["rel"]] if m else None, m, p, reason))
        rreason = fl["missing"] or "no deposit on the other chain matches it within the thresholds (unknown)"
        for j, r in enumerate(rels):
            if r["to"]:
                lst = facts[r["chain"]].setdefault(A.key(r["chain"], r["to"]), [])
                for m in by_rel.get(j) or [None]:  # type: ignore[list-item]
                    lst.append(_fact("out_of", br["name"], r, deps[m["dep"]] if m else None, m, p, rreason))
        # cross-chain exposure: what each matched release carried of its deposit's taint
        for i, d in enumerate(deps):
            src_idx = idx_of[d["chain"]]
            ents = _taint_of(src_idx, d)
            for gi, taint, hop, handle in ents:
                group = src_idx.groups[gi]
                crossed = 0
                for m in by_dep.get(i, []):
                    r = rels[m["rel"]]
                    if hop + 1 > config.max_hops or not r["to"]:
                        continue
                    cf = Fraction(1) if m["deterministic"] else Fraction(m["confidence"]).limit_denominator(10**6)
                    carried = int(Fraction(r["amount"] * taint, max(d["amount"], 1)) * cf)
                    if carried <= 0:
                        continue
                    crossed += carried * 10 ** d["decimals"] // 10 ** r["decimals"]
                    asset = None
                    if r["chain"] == "eth":
                        asset = (eth_idx.assets[int(eth_idx.arrays["tr_asset"][r["id"]])] if eth_idx is not None
                                 else r["asset"])
                    key = (r["chain"], A.key(r["chain"], r["to"]),
                           tuple(group.get(k) for k in ("category", "abuse", "entity", "actor")), asset,
                           m["deterministic"], br["name"], d["chain"])
                    row = contrib.setdefault(key, {"group": group, "amount": 0, "hops": hop + 1, "matches": [],
                                                   "best": None, "to": r["to"], "chain": r["chain"], "asset": asset,
                                                   "deterministic": m["deterministic"], "source_chain": d["chain"],
                                                   "bridge": br["name"]})
                    row["amount"] += carried
                    row["hops"] = min(row["hops"], hop + 1)
                    mrow = {"deposit": d["ref"], "release": r["ref"], "rule": m["rule"],
                            "confidence": round(m["confidence"], 6), "deposit_taint": str(taint),
                            "deposit_value": str(d["amount"]), "carried": str(carried)}
                    row["matches"].append(mrow)
                    if row["best"] is None or carried > row["best"][0]:
                        row["best"] = (carried, handle, d, r, m, hop)
                    # what the release carried goes on on its chain (screen.bridge_onward): one seed per
                    # (stream, release), the stream being the recipient row's key without the address
                    sd = onward.setdefault((key[0], *key[2:]), {}).setdefault(m["rel"], {
                        "r": r, "x": 0, "h0": hop + 1, "best": None, "matches": [], "group": group, "key": key})
                    sd["x"] += carried
                    sd["h0"] = min(sd["h0"], hop + 1)
                    sd["matches"].append(mrow)
                    if sd["best"] is None or carried > sd["best"][0]:
                        sd["best"] = (carried, handle, d, r, m, hop)
                if crossed > taint:
                    raise InvariantError(f"bridge deposit {d['ref']}: carried {crossed} > its taint {taint}")
                if crossed:
                    cons.append({"deposit": d["ref"], "chain": d["chain"], "entity": group.get("entity"),
                                 "taint": str(taint), "carried_src": str(crossed), "kept": str(taint - crossed)})
    import time

    t0 = time.perf_counter()
    from chaintrace.screen.bridge_onward import onward_rows

    acct, n_reached, transfers = onward_rows(ws, config, sources, idx_of, onward, contrib, _release_path)
    dv["onward"] = {"max_hops": config.max_hops, "streams": len(onward),
                    "releases": sum(len(v) for v in onward.values()), "addresses_reached": n_reached,
                    "seconds": round(time.perf_counter() - t0, 3)}
    exposures, evidence = _rows(ws, contrib, idx_of)
    return {"format": FORMAT, "data_version": dv, "facts": facts, "exposures": exposures, "evidence": evidence,
            "conservation": cons, "onward_conservation": acct, "transfers": transfers}


def _release_path(idx_of: dict, best: tuple, bridge: str) -> list[dict]:
    """The cross-chain path of a release: the deposit's trail on its chain, then the release."""
    carried, handle, d, r, m, hop = best
    path = _trail(idx_of[d["chain"]], handle)
    path.append({"hop": hop + 1, "chain": r["chain"], "txid": r["tx"], "ref": r["ref"], "to": r["to"],
                 "value": str(r["amount"]), "taint": str(carried), "bridge": bridge, "rule": m["rule"],
                 "confidence": round(m["confidence"], 6)})
    return path


def _rows(ws: Workspace, contrib: dict, idx_of: dict) -> tuple[dict, dict]:
    """Exposure rows and their evidence per (chain, key), with shares of what the recipient received."""
    from chaintrace.screen.service import _group_exposure

    rows: dict[str, dict[str, list]] = {"btc": {}, "eth": {}}
    ev: dict[str, dict[str, list]] = {"btc": {}, "eth": {}}
    base = _bases(ws, contrib)
    for (chain, key, _gid, asset, *_rest), c in sorted(contrib.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                           -kv[1]["amount"])):
        rec = base.get((chain, key, asset), 0)
        e = {**_group_exposure(c["group"], "indirect" if c["hops"] > 1 else "direct", "incoming", c["hops"],
                               c["amount"], c["amount"] / rec if rec else 0.0),
             **({"asset": asset} if chain == "eth" else {}),
             "via": "bridge", "bridge": {"entity": c["bridge"], "from_chain": c["source_chain"], "to_chain": chain},
             "probabilistic": not c["deterministic"],
             "confidence": 1.0 if c["deterministic"] else round(max(m["confidence"] for m in c["matches"]), 6),
             "matches": c["matches"][:5], "n_matches": len(c["matches"])}
        if c.get("onward") is not None:
            e["bridge"] = {**e["bridge"], "onward": c["onward"]}
        rows[chain].setdefault(key, []).append(e)
        path = c["path"] if c.get("path") is not None else _release_path(idx_of, c["best"], c["bridge"])
        ev[chain].setdefault(key, []).append({"direction": "incoming", "entity": c["group"].get("entity"),
                                              **({"asset": asset} if chain == "eth" else {}),
                                              "amount": str(c["amount"]), "via": "bridge", "path": path})
    return rows, ev


def _bases(ws: Workspace, contrib: dict) -> dict:
    """(chain, key, asset) -> what the address received in total of that asset (btc: satoshi)."""
    want: dict[str, set] = {"btc": set(), "eth": set()}
    for (chain, _k, _g, asset, *_rest), c in contrib.items():
        want[chain].add((c["to"], asset))
    out: dict = {}
    if want["btc"]:
        from chaintrace.graph.btc import address_ids, load_btc_graph

        bg = load_btc_graph(ws)
        ids = address_ids(ws, sorted({a for a, _ in want["btc"]}))
        names, idv = list(ids), np.array(list(ids.values()), np.int64)
        order = np.argsort(idv)
        hit = np.flatnonzero(np.isin(bg.out_addr, idv))  # one pass over the outputs for every recipient
        pos = order[np.searchsorted(idv[order], bg.out_addr[hit])]
        tot = [0] * len(idv)
        for p_, v in zip(pos.tolist(), bg.out_value[hit].tolist()):  # exact integers
            tot[p_] += int(v)
        for a, t in zip(names, tot):
            out[("btc", A.key("btc", a), None)] = t
    if want["eth"]:
        from chaintrace.graph.eth import load_eth_graph

        eg = load_eth_graph(ws)
        assets = ws.require_chain("eth").read("assets", ["asset_id", "address"]).to_pylist()
        aid = {("ETH" if not a["address"] else a["address"].lower()): a["asset_id"] for a in assets}
        eids = eg.address_ids(sorted({a for a, _ in want["eth"]}))
        hit = np.flatnonzero(np.isin(eg.tr_to, np.array(list(eids.values()), np.int64)))  # one pass
        per: dict[tuple[int, int], int] = {}
        for acct, asset_id, v in zip(eg.tr_to[hit].tolist(), eg.tr_asset[hit].tolist(), eg.amounts(hit)):
            per[(acct, asset_id)] = per.get((acct, asset_id), 0) + int(v)
        for a, asset in want["eth"]:
            acct, asset_id = eids.get(a), aid.get((asset or "ETH").lower() if asset != "ETH" else "ETH")
            if acct is not None and asset_id is not None:
                out[("eth", A.key("eth", a), asset)] = per.get((acct, asset_id), 0)
    return out


def _write(root: Path, name: str, doc: dict) -> Path:
    d = root / name
    tmp = root / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "layer.json").write_text(json.dumps(doc))
    (tmp / "DONE").write_text("")
    try:
        os.replace(tmp, d)
    except OSError:  # built meanwhile by another process: same name, same content
        shutil.rmtree(tmp, ignore_errors=True)
    olds = sorted((p for p in root.glob(f"bridges-v{FORMAT}-*") if (p / "DONE").exists() and p.name != name),
                  key=lambda p: p.stat().st_mtime_ns)
    for p in olds[:-4]:
        shutil.rmtree(p, ignore_errors=True)
    return d


def load_layer(ws: Workspace, config: Config, sources: dict[str, Sources], btc_idx, eth_idx, *,
               build: bool = False, params: dict | None = None) -> Layer | None:
    """The bridge layer of these indexes (built and written first when `build` and missing); None when the
    registry names no bridge, or (without `build`) when the layer of these indexes was not built."""
    bridges = bridges_in(sources)
    if not bridges:
        return None
    from chaintrace.detect.bridges import DEFAULTS

    p = {**DEFAULTS, **{k: v for k, v in config.bridges.items() if k in MATCH_KEYS}, **(params or {})}
    name = layer_name(btc_idx.path.name if btc_idx is not None else None,
                      eth_idx.path.name if eth_idx is not None else None, bridges, p)
    d = layer_root(ws) / name
    if (d / "DONE").exists():
        return Layer(d, json.loads((d / "layer.json").read_text()))
    if not build:
        return None
    doc = build_layer_doc(ws, config, sources, btc_idx, eth_idx, p)
    doc["data_version"]["layer"] = name
    return Layer(_write(layer_root(ws), name, doc), doc)


def apply(r: dict, layer: Layer | None, chain: str, key: str) -> list[tuple[dict, dict]]:
    """Put the layer's facts and exposure rows of address `key` into answer `r` (before scoring); returns
    (exposure row, evidence) pairs for :func:`add_evidence` once the rows are scored."""
    if layer is None:
        return []
    r["bridges"] = [dict(f) for f in layer.facts.get(chain, {}).get(key, [])]
    rows = [dict(e) for e in layer.rows.get(chain, {}).get(key, [])]
    evs = layer.doc["evidence"].get(chain, {}).get(key, [])
    r["exposures"].extend(rows)
    missing = sorted({b["missing"] for b in layer.data_version["bridges"] if b.get("missing")})
    if r["bridges"] and missing:
        r["warnings"].extend(f"bridge: {m}" for m in missing)
    return list(zip(rows, evs))


def transfer_rows(layer: Layer | None, chain: str, tid: int, value: int) -> list[tuple[dict, dict]]:
    """(exposure row, evidence) pairs of what transfer `tid` (a Bitcoin output id, an Ethereum transfer id of the
    index) carried across a bridge: a release matched to a deposit that carried exposure, or a transfer after it
    (onward), one per stream; ``via: bridge``, the match's rule and confidence in ``matches``, share = amount /
    the transfer's value; the evidence path runs from the source on the other chain through the deposit and the
    release to this transfer (a transfer answer's source of funds across the bridge)."""
    from chaintrace.screen.service import _group_exposure

    if layer is None:
        return []
    out = []
    for t in (layer.doc.get("transfers") or {}).get(chain, {}).get(str(tid), ()):
        amount = int(t["amount"])
        e = {**_group_exposure(t["group"], "indirect" if t["hops"] > 1 else "direct", "incoming", t["hops"],
                               amount, amount / value if value else 0.0),
             **({"asset": t["asset"]} if chain == "eth" else {}), "via": "bridge",
             "bridge": {"entity": t["bridge"], "from_chain": t["source_chain"], "to_chain": chain,
                        **({"onward": t["onward"]} if t["onward"] else {})},
             "probabilistic": not t["deterministic"], "confidence": t["confidence"], "matches": t["matches"],
             "n_matches": t["n_matches"]}
        ev = {"direction": "incoming", "entity": t["group"].get("entity"),
              **({"asset": t["asset"]} if chain == "eth" else {}), "amount": t["amount"], "via": "bridge",
              "path": t["path"]}
        out.append((e, ev))
    return out


def add_transfer_rows(r: dict, layer: Layer | None, chain: str, tid: int, value: int) -> list[tuple[dict, dict]]:
    """Put :func:`transfer_rows` into transfer answer `r` (before scoring); the pairs for :func:`add_evidence`."""
    pairs = transfer_rows(layer, chain, tid, value)
    r["exposures"].extend(e for e, _ev in pairs)
    return pairs


def add_evidence(r: dict, pairs: list[tuple[dict, dict]]) -> None:
    """The cross-chain paths behind the bridge exposure rows that fired a rule."""
    for e, ev in pairs:
        if e.get("counts"):
            i = next(i for i, x in enumerate(r["exposures"]) if x is e)
            r["evidence"].append({"exposure": i, **ev})


def _current_indexes(ws: Workspace, config: Config):
    from chaintrace.screen.eth_index import current_name as eth_name, load_eth_index
    from chaintrace.screen.index import current_name, load_index

    cur, ecur = current_name(ws, config), eth_name(ws, config)
    return (load_index(ws, config, cur[0]) if cur else None,
            load_eth_index(ws, config, ecur[0]) if ecur else None)


def build_current_layer(ws: Workspace, config: Config, params: dict | None = None) -> dict | None:
    """Build (or reuse) the bridge layer of the current indexes (``chaintrace screen index`` runs it after
    them); its summary, or None when the registry names no bridge."""
    from chaintrace.screen.sources import read_sources

    btc_idx, eth_idx = _current_indexes(ws, config)
    at = next((i.data_version.get("registry_at") for i in (btc_idx, eth_idx) if i is not None), None)
    sources = {c: read_sources(ws, c, config, at=at) for c in ("btc", "eth")}
    lay = load_layer(ws, config, sources, btc_idx, eth_idx, build=True, params=params)
    return summary(lay) if lay is not None else None


def summary(lay: Layer) -> dict:
    dv = lay.data_version
    return {"path": str(lay.path), "layer": dv["layer"], "btc_index": dv["btc_index"], "eth_index": dv["eth_index"],
            "bridges": dv["bridges"], "addresses_with_facts": sum(len(v) for v in lay.facts.values()),
            "addresses_with_carried_exposure": sum(len(v) for v in lay.rows.values()), "onward": dv.get("onward")}


def snapshot_layer(ws: Workspace, config: Config, sources: dict[str, Sources], btc_idx, eth_idx, dv: dict,
                   warnings: list[str], *, build: bool = False) -> Layer | None:
    """The layer a screening snapshot answers with (built first when `build`); sets ``dv["bridges"]`` and adds a
    warning when the registry names a bridge but the layer of these indexes was not built."""
    try:
        lay = load_layer(ws, config, sources, btc_idx, eth_idx, build=build)
    except (OSError, ValueError, KeyError, UserError, InvariantError) as e:  # said; answers hold no bridge facts
        warnings.append(f"bridge layer not available ({type(e).__name__}: {e}): answers hold no bridge facts")
        dv["bridges"] = {"layer": None, "note": f"{type(e).__name__}: {e}"}
        return None
    if lay is None:
        if bridges_in(sources):
            warnings.append("bridge facts not built for the current indexes (run `chaintrace screen index`): "
                            "answers hold no bridge facts or exposure carried across bridges")
            dv["bridges"] = {"layer": None, "note": "not built"}
        return None
    from chaintrace.screen.service import bridge_min_confidence

    dv["bridges"] = {**lay.data_version, "min_confidence": bridge_min_confidence(config)}
    return lay
