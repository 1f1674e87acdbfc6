"""Bitcoin: spends of watched outputs and addresses in the new blocks of the store, taint propagated with the
trace's policy functions (:func:`chaintrace.trace.policies.split`), one transaction at a time in chain order
(so an output created and spent inside the same batch of blocks is followed too)."""
from __future__ import annotations

from chaintrace.monitor import alerts as A
from chaintrace.monitor import db
from chaintrace.monitor import follow as F
from chaintrace.trace.policies import Segment, TxShape, clean, split, tainted

CHAIN = "btc"
ASSET = "BTC"


def _taint(item: dict | None, value: int) -> list[Segment]:
    if item is None:
        return clean(value)
    amt = value if item["amount"] is None else min(int(item["amount"]), value)
    return [s for s in (Segment(amt, 0, int(item["hops"])), Segment(value - amt, None, 0)) if s.value]


class _Watched:
    """Unspent watched outputs by ``txid:vout`` and watched addresses: ``key -> {list id: item id}`` (light:
    full rows are read only for the items a transaction spends)."""

    def __init__(self, con):
        self.con = con
        self.out: dict[str, dict[int, int]] = {}
        self.addr: dict[str, dict[int, int]] = {}
        for kind, key, lid, iid in con.execute("SELECT kind, key, list_id, item_id FROM watched WHERE chain = ? AND "
                                               "spent_height IS NULL", (CHAIN,)):
            (self.out if kind == "output" else self.addr).setdefault(key, {})[lid] = iid

    def hit(self, ref: str, address: str | None) -> bool:
        return ref in self.out or (address is not None and address in self.addr)

    def hits(self, ref: str, address: str | None) -> dict[int, dict]:
        ids = dict(self.addr.get(address, {})) if address else {}
        ids.update(self.out.get(ref, {}))  # an output item is more precise than its address's
        return {lid: dict(self.con.execute("SELECT * FROM watched WHERE item_id = ?", (iid,)).fetchone())
                for lid, iid in ids.items()}


def follow(ws, con, channels: list[str], tags: A.TagIndex, chunk: int = 50) -> list[dict]:
    """Process the store's Bitcoin blocks above the cursor; returns the alerts raised."""
    lists = F.watchlists(con, CHAIN)
    if not lists or CHAIN not in ws.chains():
        return []
    duck = F.store_con(ws, CHAIN, *F.view_low(con, CHAIN, lists), lazy=("addresses",))
    try:
        out = F.undo_reorg(ws, con, duck, CHAIN, channels)
        tip = duck.execute("SELECT max(height) FROM blocks").fetchone()[0]
        h = F.next_height(con, CHAIN, lists)
        while tip is not None and h <= tip:
            end = min(tip, h + chunk - 1)
            out += _range(ws, con, duck, lists, h, end, channels, tags)
            h = end + 1
        return out
    finally:
        duck.close()


class _Range:
    """The transactions, inputs and outputs of a height range, read once, grouped by transaction."""

    def __init__(self, ws, duck, lo: int, hi: int):
        def q(sql: str) -> list:
            return duck.execute(sql, [lo, hi]).fetchall()
        self.blocks = q("SELECT height, hash, time FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height")
        self.hash_at = {h: bh for h, bh, _ in self.blocks}
        self.tx = {r[0]: r[1:] for r in q("SELECT tx_id, txid, height, time FROM transactions "
                                           "WHERE height BETWEEN ? AND ?")}
        self.ins: dict[int, list] = {}
        for r in q("SELECT tx_id, prev_txid, prev_vout, value, address_id FROM inputs WHERE height BETWEEN ? AND ? "
                   "AND prev_txid IS NOT NULL ORDER BY tx_id, n"):
            self.ins.setdefault(r[0], []).append(list(r[1:]))
        self.outs: dict[int, list] = {}
        for r in q("SELECT tx_id, n, value, address_id FROM outputs WHERE height BETWEEN ? AND ? ORDER BY tx_id, n"):
            self.outs.setdefault(r[0], []).append(list(r[1:]))
        self.ws, self.duck = ws, duck

    def addresses(self, ids) -> dict[int, str]:
        ids = sorted({int(i) for i in ids if i is not None})
        if not ids:
            return {}
        F.ensure_view(self.duck, self.ws, CHAIN, "addresses")
        return dict(self.duck.execute("SELECT address_id, address FROM addresses WHERE address_id BETWEEN ? AND ? "
                                      "AND address_id IN (SELECT unnest(?::BIGINT[]))",
                                      [ids[0], ids[-1], ids]).fetchall())


def _range(ws, con, duck, lists, lo, hi, channels, tags) -> list[dict]:
    r = _Range(ws, duck, lo, hi)
    watched = _Watched(con)
    names = r.addresses(a for ins in r.ins.values() for *_, a in ins) if watched.addr else {}
    out: list[dict] = []
    with db.tx(con):
        for tx_id in sorted(r.ins):
            ins = r.ins[tx_id]
            if any(watched.hit(f"{p}:{n}", names.get(a)) for p, n, _, a in ins):
                out += _spend(ws, con, r, lists, watched, tx_id, channels, tags)
        F.mark_processed(con, CHAIN, [(h, bh) for h, bh, _ in r.blocks])
    return out


def _spend(ws, con, r: _Range, lists, watched: _Watched, tx_id: int, channels, tags) -> list[dict]:
    txid, height, time = r.tx[tx_id]
    block_hash = r.hash_at[height]
    names = r.addresses([a for *_, a in r.ins[tx_id]] + [a for *_, a in r.outs.get(tx_id, [])])
    ins = [(p, n, v, names.get(a)) for p, n, v, a in r.ins[tx_id]]
    outs = [(n, v, names.get(a)) for n, v, a in r.outs.get(tx_id, [])]
    out_values = [int(v) for _, v, _ in outs]
    in_known: list[int | None] = [None if v is None else int(v) for _, _, v, _ in ins]
    assumed = None
    in_values = [0 if v is None else v for v in in_known]
    if any(v is None for v in in_known):  # a spent output the store does not hold (store started later)
        gap = max(0, sum(out_values) - sum(in_values))
        in_values[in_known.index(None)] = gap
        assumed = "some spent outputs are not in the store: their value is taken as what the outputs need (fee 0)"
    refs = [f"{p}:{n}" for p, n, _, _ in ins]
    hits = [watched.hits(ref, a) for ref, (_, _, _, a) in zip(refs, ins)]
    alerts: list[dict] = []
    for lid in sorted({lid for h in hits for lid in h}):
        wl = lists[lid]
        items = [h.get(lid) for h in hits]
        taints = [_taint(it, v) for it, v in zip(items, in_values)]
        outs_t, fee_t = split(wl["policy"], TxShape(in_values, out_values), taints, wl["fee_mode"])
        sources = [it for it in items if it is not None]
        src_rows = [{"address": a, "ref": r, "amount": str(tainted(t))}
                    for (_, _, _, a), r, t, it in zip(ins, refs, taints, items) if it is not None]
        dests, sinks = [], []
        for (n, v, a), t in zip(outs, outs_t):
            amt = tainted(t)
            if amt == 0:
                continue
            hops = min(s.hop for s in t if s.source is not None)
            tag = tags.get(a)
            d: dict = {"address": a, "ref": f"{txid}:{n}", "amount": amt, "value": int(v), "hops": hops,
                 "label": tag.label if tag else None, "category": tag.category if tag else None}
            flagged = int(v) if wl["policy"] == "poison" else amt
            if flagged < int(wl["min_value"]):
                d["followed"] = "below_threshold"
            elif tag is not None and tag.is_service:
                d["followed"] = "sink"
                sinks.append(d)
            elif a is None:
                d["followed"] = "unspendable"
            else:
                d["followed"] = True
                F.add_item(con, CHAIN, lid, "output", d["ref"], a, ASSET, amt, int(v), hops,
                           sources[0], txid, height, time)
            dests.append({**d, "amount": str(amt), "value": str(v)})
        moved = sum(tainted(t) for t in taints)
        alert = A.make("moved", (lid, CHAIN, txid, block_hash), chain=CHAIN, watchlist=wl, height=height,
                   block_hash=block_hash, time=time, txid=txid, asset=ASSET, amount=str(moved),
                   policy=wl["policy"], fee=str(tainted(fee_t)), **{"from": src_rows, "to": dests},
                   assumed=assumed)
        if A.record(ws, con, alert, channels, lid):
            alerts.append(alert)
        for it in sources:
            days = F.woke(it, wl, time)
            if days is not None:
                w = A.make("woke", (lid, CHAIN, txid, it["key"], block_hash), chain=CHAIN, watchlist=wl,
                           height=height, block_hash=block_hash, time=time, txid=txid, asset=ASSET,
                           item=it["key"], address=it["address"], dormant_days=round(days, 2),
                           last_active_iso=A.iso(it["last_time"]),
                           amount=str(sum(tainted(t) for t, i in zip(taints, items) if i is it)))
                if A.record(ws, con, w, channels, lid):
                    alerts.append(w)
            if it["kind"] == "output":
                F.update_item(con, CHAIN, height, it, spent_height=height, spent_txid=txid)
                watched.out.get(it["key"], {}).pop(lid, None)
                if not watched.out.get(it["key"], True):
                    del watched.out[it["key"]]
            else:
                F.update_item(con, CHAIN, height, it, last_time=time)
        for d in sinks:
            s = F.sink_alerts(ws, con, wl, CHAIN, d, tags.get(d["address"]), tags.entity(d["address"]), txid=txid,
                              height=height, block_hash=block_hash, time=time, asset=ASSET, sources=sources,
                              channels=channels)
            if s is not None:
                alerts.append(s)
    # outputs created here may be spent later in the same range
    for row in con.execute("SELECT * FROM watched WHERE chain = ? AND parent_txid = ? AND spent_height IS NULL",
                           (CHAIN, txid)):
        watched.out.setdefault(row["key"], {})[row["list_id"]] = row["item_id"]
    return alerts
