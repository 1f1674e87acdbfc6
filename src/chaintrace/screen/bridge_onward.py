"""Exposure carried across a bridge, followed on from the release on the destination chain (issue 15, points 4
and 5): the thief's cash-out behind the recipient of a release is flagged like the recipient.

The bridge layer (:mod:`chaintrace.screen.bridges`) knows, per release matched to a deposit that carried a source
group's taint, what the release carried (``floor(release x taint / deposit x confidence)``, release base units)
and the hops used to reach it (the deposit's hop + 1). That amount is propagated forward over the destination
chain's graph arrays by the kernels of that chain's exposure index, with the same rules (haircut, exact
integers, services are sinks), within the hops the source chain left: ``max_hops`` counted across both chains.
The chain indexes are not touched: the layer runs its own propagation and stores its own rows.

* Bitcoin: one run of the index's forward pass (:func:`chaintrace.screen.kernels._fwd_run`) per release output,
  the output holding the carried taint (hop 0 of the run, ``max_hops - hops used`` more transactions).
* Ethereum: one chronological run of the index's account-model kernel
  (:func:`chaintrace.screen.eth_refresh.run_group`) per stream (source group, deterministic or not, bridge,
  source chain), from the first transfer: the balances build up from the chain itself, and right after each
  release's transaction the carried taint is put into the recipient's holding (hop = the hops used), the run
  continuing from that state (runs continued at a transaction boundary equal one run: eth_refresh).

Both account for every carried unit: Bitcoin ``seeded = held (unspent, at a service, hop budget spent) + fees``
(and no transaction passes on more than its inputs carried), Ethereum per asset ``introduced = held + stopped``
(:func:`chaintrace.screen.eth_index.conservation`, which raises when it does not hold).
"""
from __future__ import annotations

import numpy as np

from chaintrace.trace.report import InvariantError


def btc_onward(g, stop: np.ndarray, max_hops: int, seeds: list[tuple[int, int, int]]) -> list[dict]:
    """One forward run per seed ``(release output, carried taint <= its value, hops used to reach it)``: the
    touched outputs (the seed first), their taint, hops counted across (the seed's hops + the run's), parents,
    and the run's account ``{seeded, held: {unspent, service, max_hops}, fees}``."""
    from chaintrace.screen import kernels as K

    ro = {n: np.ascontiguousarray(getattr(g, n)) for n in ("tx_out", "tx_in", "out_value", "out_addr",
                                                              "out_spender_tx", "in_output")}
    n_out, n_tx = len(ro["out_value"]), len(ro["tx_out"]) - 1
    taint = np.zeros(n_out, np.int64)
    hop = np.full(n_out, -1, np.int64)
    parent = np.full(n_out, -1, np.int64)
    queued = np.zeros(n_tx, np.bool_)
    runs = []
    for o, x, h0 in seeds:
        if not 0 < x <= int(ro["out_value"][o]):
            raise InvariantError(f"bridge release output {o}: carried {x} is not within its value")
        budget = max_hops - h0
        taint[o], hop[o], parent[o] = x, 0, -1
        buf = np.empty(16, np.int64)
        buf[0] = o
        s = int(ro["out_spender_tx"][o])
        lo, hi = n_tx, -1
        if s >= 0 and budget > 0:
            queued[s] = True
            lo = hi = s
        touched, nt, _ = K._fwd_run(ro["tx_out"], ro["tx_in"], ro["out_value"], ro["out_addr"],
                                    ro["out_spender_tx"], ro["in_output"], stop, np.int64(budget), taint, hop,
                                    parent, queued, buf, 1, lo, hi)
        t = touched[:nt].copy()
        run = {"out": t, "taint": taint[t].copy(), "hop": hop[t] + h0, "parent": parent[t].copy(), "seed": o}
        K.reset(t, taint, hop, parent)
        run["account"] = _btc_account(ro, stop, budget, run, x, h0)
        runs.append(run)
    return runs


def _btc_account(ro: dict, stop: np.ndarray, budget: int, run: dict, x: int, h0: int) -> dict:
    """Where the carried units of one run ended: outputs whose taint went no further (unspent, at a service, the
    hop budget spent) and fees (what a transaction's outputs did not get of its tainted inputs)."""
    by = dict(zip(run["out"].tolist(), run["taint"].tolist()))
    khop = dict(zip(run["out"].tolist(), (run["hop"] - h0).tolist()))
    sp, addr = ro["out_spender_tx"], ro["out_addr"]
    proc: set[int] = set()  # the transactions the kernel processed: spent by an output it queues from
    for o, h in khop.items():
        s, a = int(sp[o]), int(addr[o])
        if s >= 0 and ((h == 0 and budget > 0) or (0 < h < budget and not (a >= 0 and stop[a]))):
            proc.add(s)
    fees = 0
    for t in sorted(proc):
        ins = sum(by.get(int(i), 0) for i in ro["in_output"][ro["tx_in"][t]:ro["tx_in"][t + 1]] if i >= 0)
        outs = sum(by[o] for o in range(int(ro["tx_out"][t]), int(ro["tx_out"][t + 1])) if o in by and khop[o] > 0)
        if outs > ins:
            raise InvariantError(f"bridge onward propagation: transaction {t} passed on {outs} > its tainted "
                                 f"inputs {ins}")
        fees += ins - outs
    held = {"unspent": 0, "service": 0, "max_hops": 0}
    for o, v in by.items():
        s, a = int(sp[o]), int(addr[o])
        if s >= 0 and s in proc:
            continue
        why = "service" if a >= 0 and stop[a] else "unspent" if s < 0 else "max_hops"
        held[why] += v
    if sum(held.values()) + fees != x:
        raise InvariantError(f"bridge onward propagation from output {run['seed']}: seeded {x}, held {held}, "
                             f"fees {fees}")
    return {"seeded": x, "held": held, "fees": fees}


def eth_onward(g, stop: np.ndarray, burn: int, max_hops: int, injections: list[tuple[int, int, int]]) -> dict:
    """One stream's run: `injections` ``(release transfer, carried taint, hops used)``. Returns the kept kernel
    records ``{k, lo, hi, hop, par, code, inj}`` (``inj``: the injected release itself, parents numbered into
    these records) and ``conservation`` per asset id (introduced = held + stopped, checked)."""
    from chaintrace.model import u128 as U
    from chaintrace.screen import eth_refresh as R
    from chaintrace.screen.eth_index import conservation
    from chaintrace.trace import eth_kernels as K

    n = g.n_transfers
    tr_tx = np.asarray(g.tr_tx)
    at: dict[int, list[tuple[int, int, int]]] = {}
    for k, x, h0 in injections:
        e = k + 1
        while e < n and tr_tx[k] >= 0 and tr_tx[e] == tr_tx[k]:  # the end of the release's transaction
            e += 1
        at.setdefault(e, []).append((k, x, h0))
    st = R.empty_state(g.n_holdings)
    bal = (np.zeros(g.n_holdings, np.uint64), np.zeros(g.n_holdings, np.uint64))
    parts: dict[str, list] = {c: [] for c in ("k", "lo", "hi", "hop", "par", "code", "inj")}
    n_kept, start = 0, 0
    base: dict[int, dict] = {}
    cons: dict[int, dict] = {}
    none = np.zeros(0, np.int64)
    for e in [*sorted(at), n]:  # a last run after the last injection (empty when it is at the tip)
        res, b = R.run_group(g, none, start, stop, burn, max_hops, bal, st, n_kept, end_k=e)
        bal = (b["lo"], b["hi"])
        cons = conservation(g, res, base)
        base = {a: {"introduced": c["introduced"], "stopped": dict(c["stopped"])} for a, c in cons.items()}
        keep = res["keep"]
        nk = int(keep.sum())
        for c, v in (("k", res["rec_k"][keep]), ("lo", res["rec_amt"].lo[keep]), ("hi", res["rec_amt"].hi[keep]),
                     ("hop", res["rec_hop"][keep]), ("par", res["rec_par"][keep]),
                     ("code", res["rec_code"][keep].astype(np.int64)), ("inj", np.zeros(nk, np.bool_))):
            parts[c].append(np.asarray(v))
        n_kept += nk
        for k, x, h0 in at.get(e, ()):
            h = int(g.tr_to_h[k])
            if h < 0:
                continue
            t = U.to_ints(st["t_lo"][h:h + 1], st["t_hi"][h:h + 1])[0] + x
            st["t_lo"][h], st["t_hi"][h] = np.uint64(t & (2**64 - 1)), np.uint64(t >> 64)
            st["hop"][h] = min(int(st["hop"][h]), h0)
            if st["src"][h] < 0 or U.to_ints(st["s_lo"][h:h + 1], st["s_hi"][h:h + 1])[0] < x:
                st["src"][h] = n_kept
                st["s_lo"][h], st["s_hi"][h] = np.uint64(x & (2**64 - 1)), np.uint64(x >> 64)
            a = int(g.tr_asset[k])
            base.setdefault(a, {"introduced": 0, "stopped": {}})["introduced"] += x
            for c, v in (("k", k), ("lo", x & (2**64 - 1)), ("hi", x >> 64), ("hop", h0), ("par", -1),
                         ("code", K.PASS), ("inj", True)):
                parts[c].append(np.array([v]))
            n_kept += 1
        start = e
    dts = {"k": np.int64, "lo": np.uint64, "hi": np.uint64, "hop": np.int64, "par": np.int64, "code": np.int64,
           "inj": np.bool_}
    out: dict = {c: (np.concatenate([np.asarray(x).astype(dts[c]) for x in v]) if v else np.zeros(0, dts[c]))
                 for c, v in parts.items()}
    out["conservation"] = cons
    return out


# ------------------------------------------------------------------------------------------ the layer's rows


def onward_rows(ws, config, sources: dict, idx_of: dict, onward: dict, contrib: dict, release_path) -> tuple[list, int,
                                                                                                          dict]:
    """Run every stream of `onward` (``(chain, group, asset, deterministic, bridge, source chain)`` -> release
    index -> ``{r, x, h0, best, matches, group}``, what the bridge layer found) on its chain and add one row per
    (address reached, stream) to `contrib`, keyed like the recipients' rows with ``"onward"`` last: the amount
    (exact base units, the confidence factor of the matches already in the carried amounts), the fewest hops
    counted across, the matches of the releases behind it and the path from the theft through the release to the
    address (`release_path(idx_of, best, bridge)` gives the part up to the release). Returns (the runs'
    accounts, the number of addresses reached, the *transfer rows*: chain -> output / transfer id (the graph's,
    the index's) -> one row per stream of what that transfer carried, the release itself included, for transfer
    answers)."""
    accounts: list[dict] = []
    reached: set[tuple[str, str]] = set()
    transfers: dict[str, dict[str, list]] = {"btc": {}, "eth": {}}
    for chain, run in (("btc", _btc_streams), ("eth", _eth_streams)):
        streams = [(s, rels) for s, rels in sorted(onward.items(), key=lambda kv: repr(kv[0])) if s[0] == chain]
        if streams:
            run(ws, config, sources, idx_of, streams, contrib, release_path, accounts, reached, transfers[chain])
    return accounts, len(reached), transfers


def _tally(d: dict, key, amount: int, hops: int, item: int, best) -> None:
    """Add `amount` reached at `hops` through stream item `item` to ``d[key]``: the sum, the fewest hops, the
    items behind it, and `best` (a record naming the path) of its largest single amount."""
    p = d.get(key)
    if p is None:
        p = d[key] = {"amount": 0, "hops": hops, "best": best, "top": amount, "items": set()}
    p["amount"] += amount
    p["hops"] = min(p["hops"], hops)
    p["items"].add(item)
    if amount > p["top"]:
        p["top"], p["best"] = amount, best


def _matches(rels: list[dict]) -> list[dict]:
    return [m for v in rels for m in v["matches"]]


def _add(contrib: dict, chain: str, addr: str, stream: tuple, amount: int, hops: int, path: list[dict],
         rels: list[dict], best: dict, reached: set) -> None:
    from chaintrace.intel import addresses as A

    key = A.key(chain, addr)
    reached.add((chain, key))
    contrib[(chain, key, *stream[1:], "onward")] = {
        "group": best["group"], "amount": amount, "hops": hops, "matches": _matches(rels), "best": None,
        "path": path, "to": addr, "chain": chain, "asset": stream[2], "deterministic": stream[3],
        "source_chain": stream[5], "bridge": stream[4], "onward": {"release": best["r"]["ref"],
                                                                   "recipient": best["r"]["to"]}}


def _transfer_row(stream: tuple, amount: int, hops: int, rels: list[dict], best: dict, path: list[dict],
                  release: bool) -> dict:
    """What one transfer carried of one stream (:func:`chaintrace.screen.bridges.transfer_rows` makes the answer's
    exposure row of it)."""
    ms = _matches(rels)
    return {"group": best["group"], "amount": str(amount), "hops": hops, "asset": stream[2],
            "deterministic": stream[3], "bridge": stream[4], "source_chain": stream[5],
            "confidence": 1.0 if stream[3] else round(max(m["confidence"] for m in ms), 6),
            "matches": ms[:5], "n_matches": len(ms),
            "onward": None if release else {"release": best["r"]["ref"], "recipient": best["r"]["to"]},
            "path": path}


def _btc_streams(ws, config, sources, idx_of, streams, contrib, release_path, accounts, reached, transfers) -> None:
    from chaintrace.graph.btc import address_ids, load_btc_graph

    g = load_btc_graph(ws)
    svc = address_ids(ws, sorted(sources["btc"].services)) if sources.get("btc") is not None else {}
    n_addr = max(int(g.out_addr.max(initial=-1)), max(svc.values(), default=-1)) + 1
    stop = np.zeros(n_addr, np.bool_)
    stop[np.array(sorted(svc.values()), np.int64)] = True
    for stream, rels in streams:
        _btc_stream(ws, g, stop, config, idx_of, stream, rels, contrib, release_path, accounts, reached, transfers)


def _eth_streams(ws, config, sources, idx_of, streams, contrib, release_path, accounts, reached, transfers) -> None:
    from chaintrace.graph.eth import load_eth_graph

    g = load_eth_graph(ws)
    if idx_of.get("eth") is not None:
        names = list(idx_of["eth"].assets)
    else:
        from chaintrace.trace.eth import asset_names

        names = asset_names(ws)[0]
    svc = g.address_ids(sorted(sources["eth"].services)) if sources.get("eth") is not None else {}
    stop = np.full(g.n_addresses, -1, np.int32)
    stop[np.array(sorted(svc.values()), np.int64)] = 0
    burn = g.address_ids(["0x" + "0" * 40])
    for stream, rels in streams:
        _eth_stream(ws, g, stop, burn, names, config, idx_of, stream, rels, contrib, release_path, accounts, reached,
                    transfers)


def _btc_stream(ws, g, stop, config, idx_of, stream, rels, contrib, release_path, accounts, reached,
                transfers) -> None:
    """One Bitcoin stream: its runs, the rows of the addresses and outputs they reached."""
    from chaintrace.graph.btc import address_strings, txids

    items = sorted(rels.items())
    runs = btc_onward(g, stop, config.max_hops, [(int(v["r"]["id"]), v["x"], v["h0"]) for _, v in items])
    per: dict[int, dict] = {}  # address id -> {amount, hops, best (taint, run, output), items: runs} (_tally)
    outs: dict[int, dict] = {}  # output -> the same (the release outputs too)
    for ri, ((_j, v), run) in enumerate(zip(items, runs)):
        accounts.append({"chain": "btc", "bridge": stream[4], "entity": v["group"].get("entity"),
                         "deterministic": stream[3], "release": v["r"]["ref"],
                         **{k: (str(x) if isinstance(x, int) else {a: str(b) for a, b in x.items()})
                            for k, x in run["account"].items()}})
        for i, (o, t, h) in enumerate(zip(run["out"].tolist(), run["taint"].tolist(), run["hop"].tolist())):
            a = int(g.out_addr[o])
            for d, key in ((outs, o), (per, a)):
                if key < 0 or (d is per and i == 0):  # the seed: the recipient's own row (bridges.py)
                    continue
                _tally(d, key, t, h, ri, (t, ri, o))
    trails: dict[int, list[tuple[int, int, int]]] = {}
    for _t, ri, o in [p["best"] for p in (*per.values(), *outs.values())]:
        if o in trails:
            continue
        run = runs[ri]
        at = {int(x): i for i, x in enumerate(run["out"].tolist())}
        steps: list[tuple[int, int, int]] = []
        x = o
        while x >= 0 and x != run["seed"] and len(steps) < 32:
            i = at[x]
            steps.append((x, int(run["hop"][i]), int(run["taint"][i])))
            x = int(run["parent"][i])
        trails[o] = steps[::-1]
    tx_of = txids(ws, sorted({int(g.out_tx[o]) for s in trails.values() for o, _h, _t in s}))
    step_addr = address_strings(ws, sorted({int(g.out_addr[o]) for s in trails.values() for o, _h, _t in s}))
    names = address_strings(ws, sorted(per))

    def path_to(best: tuple) -> list[dict]:
        _t, ri, o = best
        path = release_path(idx_of, items[ri][1]["best"], stream[4])
        for x, h, t in trails[o]:
            tx = int(g.out_tx[x])
            path.append({"hop": h, "chain": "btc", "txid": tx_of.get(tx), "vout": x - int(g.tx_out[tx]),
                         "to": step_addr.get(int(g.out_addr[x])), "value": str(int(g.out_value[x])),
                         "taint": str(t)})
        return path

    for a, p in per.items():
        if names.get(a) is not None:
            _add(contrib, "btc", names[a], stream, p["amount"], p["hops"], path_to(p["best"]),
                 [items[r][1] for r in sorted(p["items"])], items[p["best"][1]][1], reached)
    for o, p in outs.items():
        best = items[p["best"][1]][1]
        transfers.setdefault(str(o), []).append(_transfer_row(
            stream, p["amount"], p["hops"], [items[r][1] for r in sorted(p["items"])], best, path_to(p["best"]),
            o == int(best["r"]["id"])))


def _eth_stream(ws, g, stop, burn, names, config, idx_of, stream, rels, contrib, release_path, accounts, reached,
                transfers) -> None:
    """One Ethereum stream: its run, the rows of the addresses and transfers it reached."""
    from chaintrace.model.ids import is_synthetic_txid

    items = sorted(rels.items())
    out = eth_onward(g, stop, next(iter(burn.values())) if burn else -1, config.max_hops,
                     [(int(v["r"]["id"]), v["x"], v["h0"]) for _, v in items])
    accounts.append({"chain": "eth", "bridge": stream[4], "entity": items[0][1]["group"].get("entity"),
                     "deterministic": stream[3], "releases": [v["r"]["ref"] for _, v in items],
                     "conservation": {names[a]: {"introduced": str(c["introduced"]), "held": str(c["held"]),
                                                 "stopped": {k: str(x) for k, x in c["stopped"].items()}}
                                      for a, c in sorted(out["conservation"].items())}})
    item_of = {int(v["r"]["id"]): i for i, (_j, v) in enumerate(items)}
    ks, inj, par = out["k"], out["inj"], out["par"]
    amt = [(int(h) << 64) | int(lo) for lo, h in zip(out["lo"].tolist(), out["hi"].tolist())]
    root = np.full(len(ks), -1, np.int64)  # the injection record each record's taint came from (the most)
    for r in range(len(ks)):  # parents come first
        root[r] = r if inj[r] else (root[par[r]] if par[r] >= 0 else -1)
    per: dict = {}  # (account, asset) -> {amount, hops, best record, items} (_tally)
    trs: dict = {}  # transfer -> the same (the releases too)
    for r in range(len(ks)):
        k = int(ks[r])
        a = int(g.tr_to[k])
        if amt[r] <= 0:
            continue
        for d, key in ((trs, k), (per, (a, int(g.tr_asset[k])))):
            if (d is per and (inj[r] or a < 0)) or root[r] < 0:
                continue
            _tally(d, key, amt[r], int(out["hop"][r]), item_of[int(ks[root[r]])], r)

    def path_to(r: int) -> tuple[list[dict], dict]:
        recs: list[int] = []
        while r >= 0 and not inj[r] and len(recs) < 32:
            recs.append(r)
            r = int(par[r])
        best = items[item_of[int(ks[r])]][1]
        path = release_path(idx_of, best["best"], stream[4])
        recs = recs[::-1]
        if recs:
            rk = ks[np.array(recs, np.int64)]
            txs, refs, _ = g.refs(rk)
            frm, to = g.address_strings(g.tr_from[rk]), g.address_strings(g.tr_to[rk])
            for i, rr in enumerate(recs):
                k = int(ks[rr])
                path.append({"hop": int(out["hop"][rr]), "chain": "eth", "txid": txs[i], "ref": refs[i],
                             "from": frm[i], "to": to[i], "asset": names[int(g.tr_asset[k])],
                             "value": str(g.amount(k)), "taint": str(amt[rr]),
                             "synthesised": is_synthetic_txid(txs[i])})
        return path, best

    accts = sorted({a for a, _ in per})
    addrs = dict(zip(accts, g.address_strings(np.array(accts, np.int64)))) if accts else {}
    for (a, asset), p in per.items():
        if addrs.get(a) is None:
            continue
        path, best = path_to(p["best"])
        _add(contrib, "eth", str(addrs[a]), (stream[0], stream[1], names[asset], *stream[3:]), p["amount"],
             p["hops"], path, [items[i][1] for i in sorted(p["items"])], best, reached)
    for k, p in trs.items():
        path, best = path_to(p["best"])
        transfers.setdefault(str(k), []).append(_transfer_row(
            (stream[0], stream[1], names[int(g.tr_asset[k])], *stream[3:]), p["amount"], p["hops"],
            [items[i][1] for i in sorted(p["items"])], best, path, bool(inj[p["best"]])))
