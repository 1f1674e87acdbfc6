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
    """Unspent watched outputs by ``txid:vout`` and watched addresses, per list (rows as dicts)."""

    def __init__(self, con):
        self.out: dict[str, dict[int, dict]] = {}
        self.addr: dict[str, dict[int, dict]] = {}
        for r in con.execute("SELECT * FROM watched WHERE chain = ? AND spent_height IS NULL", (CHAIN,)):
            d = dict(r)
            (self.out if d["kind"] == "output" else self.addr).setdefault(d["key"], {})[d["list_id"]] = d

    def hits(self, ref: str, address: str | None) -> dict[int, dict]:
        h = dict(self.addr.get(address, {})) if address else {}
        h.update(self.out.get(ref, {}))  # an output item is more precise than its address's
        return h


def follow(ws, con, duck, channels: list[str], tags: A.TagIndex, chunk: int = 50) -> list[dict]:
    """Process the store's Bitcoin blocks above the cursor; returns the alerts raised."""
    lists = F.watchlists(con, CHAIN)
    if not lists or CHAIN not in ws.chains():
        return []
    out = F.undo_reorg(ws, con, duck, CHAIN, channels)
    tip = duck.execute(f"SELECT max(height) FROM {CHAIN}.blocks").fetchone()[0]
    if tip is None:
        return out
    h = F.next_height(con, CHAIN, lists)
    while h <= tip:
        end = min(tip, h + chunk - 1)
        out += _range(ws, con, duck, lists, h, end, channels, tags)
        h = end + 1
    return out


def _range(ws, con, duck, lists, lo, hi, channels, tags) -> list[dict]:
    blocks = duck.execute("SELECT height, hash, time FROM btc.blocks WHERE height BETWEEN ? AND ? ORDER BY height",
                          [lo, hi]).fetchall()
    ins = duck.execute("""SELECT i.tx_id, i.prev_txid, i.prev_vout, a.address FROM btc.inputs_raw i
                          LEFT JOIN btc.addresses a USING (address_id)
                          WHERE i.height BETWEEN ? AND ? AND i.prev_txid IS NOT NULL ORDER BY i.tx_id, i.n""",
                       [lo, hi]).fetchall()
    watched = _Watched(con)
    out: list[dict] = []
    with db.tx(con):
        cur = None
        for tx_id, ptxid, pvout, address in ins + [(None, None, None, None)]:
            if tx_id != cur and cur is not None and hit:
                out += _spend(ws, con, duck, lists, watched, cur, channels, tags)
            if tx_id != cur:
                cur, hit = tx_id, False
            if tx_id is not None and not hit:
                hit = bool(watched.hits(f"{ptxid}:{pvout}", address))
        con.executemany("INSERT OR REPLACE INTO blocks VALUES (?,?,?)", [(CHAIN, h, bh) for h, bh, _ in blocks])
    return out


def _spend(ws, con, duck, lists, watched: _Watched, tx_id: int, channels, tags) -> list[dict]:
    txid, height, time = duck.execute("SELECT txid, height, time FROM btc.transactions WHERE tx_id = ?",
                                      [tx_id]).fetchone()
    block_hash = duck.execute("SELECT hash FROM btc.blocks WHERE height = ?", [height]).fetchone()[0]
    ins = duck.execute("""SELECT i.prev_txid, i.prev_vout, i.value, a.address FROM btc.inputs_raw i
                          LEFT JOIN btc.addresses a USING (address_id) WHERE i.tx_id = ? ORDER BY i.n""",
                       [tx_id]).fetchall()
    outs = duck.execute("""SELECT o.n, o.value, a.address FROM btc.outputs_raw o
                           LEFT JOIN btc.addresses a USING (address_id) WHERE o.tx_id = ? ORDER BY o.n""",
                        [tx_id]).fetchall()
    out_values = [int(v) for _, v, _ in outs]
    in_values = [None if v is None else int(v) for _, _, v, _ in ins]
    assumed = None
    if any(v is None for v in in_values):  # a spent output the store does not hold (store started later)
        known = sum(v for v in in_values if v is not None)
        gap = max(0, sum(out_values) - known)
        first = in_values.index(None)
        in_values = [(gap if k == first else 0) if v is None else v for k, v in enumerate(in_values)]
        assumed = "some spent outputs are not in the store: their value is taken as what the outputs need (fee 0)"
    refs = [f"{p}:{n}" for p, n, _, _ in ins]
    hits = [watched.hits(r, a) for r, (_, _, _, a) in zip(refs, ins)]
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
            d = {"address": a, "ref": f"{txid}:{n}", "amount": amt, "value": int(v), "hops": hops,
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
        a = A.make("moved", (lid, CHAIN, txid, block_hash), chain=CHAIN, watchlist=wl, height=height,
                   block_hash=block_hash, time=time, txid=txid, asset=ASSET, amount=str(moved),
                   policy=wl["policy"], fee=str(tainted(fee_t)), **{"from": src_rows, "to": dests},
                   assumed=assumed)
        if A.record(ws, con, a, channels, lid):
            alerts.append(a)
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
            else:
                F.update_item(con, CHAIN, height, it, last_time=time)
        for d in sinks:
            s = F.sink_alerts(ws, con, wl, CHAIN, d, tags.get(d["address"]), tags.entity(d["address"]), txid=txid, height=height,
                              block_hash=block_hash, time=time, asset=ASSET, sources=sources, channels=channels)
            if s is not None:
                alerts.append(s)
    # outputs created here may be spent later in the same range
    for r in con.execute("SELECT * FROM watched WHERE chain = ? AND parent_txid = ? AND spent_height IS NULL",
                         (CHAIN, txid)):
        watched.out.setdefault(r["key"], {})[r["list_id"]] = dict(r)
    return alerts
