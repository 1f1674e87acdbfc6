"""Ethereum: value leaving watched accounts in the new blocks of the store (top-level, internal and token
transfers), followed per (account, asset) tainted-first-out — the Ethereum tracer's ``seniority`` policy:
a watched account's traced amount leaves with its first outgoing value (gas included), and the receiver is
watched for what it received. An address watched as a whole (a listed address: ``amount`` NULL) is tainted
in full, in every asset."""
from __future__ import annotations

from chaintrace.monitor import alerts as A
from chaintrace.monitor import db
from chaintrace.monitor import follow as F
from chaintrace.monitor.watchlist import ANY_ASSET

CHAIN = "eth"
FEES = ("fee_burn", "fee_tip")


def follow(ws, con, channels: list[str], tags: A.TagIndex, chunk: int = 200) -> list[dict]:
    """Process the store's Ethereum blocks above the cursor; returns the alerts raised."""
    lists = F.watchlists(con, CHAIN)
    if not lists or CHAIN not in ws.chains():
        return []
    duck = F.store_con(ws, CHAIN, *F.view_low(con, CHAIN, lists))
    try:
        out = F.undo_reorg(ws, con, duck, CHAIN, channels)
        tip = duck.execute("SELECT max(height) FROM blocks").fetchone()[0]
        if tip is None:
            return out
        from chaintrace.trace.eth import asset_names

        names = asset_names(ws)[0]
        h = F.next_height(con, CHAIN, lists)
        while h <= tip:
            end = min(tip, h + chunk - 1)
            out += _range(ws, con, duck, lists, names, h, end, channels, tags)
            h = end + 1
        return out
    finally:
        duck.close()


def _items(con) -> dict[str, dict[tuple[int, str], dict]]:
    by: dict[str, dict[tuple[int, str], dict]] = {}
    for r in con.execute("SELECT * FROM watched WHERE chain = ? AND kind = 'address'", (CHAIN,)):
        by.setdefault(r["key"], {})[(r["list_id"], r["asset"])] = dict(r)
    return by


def _range(ws, con, duck, lists, names, lo, hi, channels, tags) -> list[dict]:
    blocks = {h: (bh, t) for h, bh, t in duck.execute(
        "SELECT height, hash, time FROM blocks WHERE height BETWEEN ? AND ?", [lo, hi]).fetchall()}
    rows = duck.execute("""SELECT r.transfer_id, r.height, t.hash, r.kind, r.asset_id, f.address, o.address,
                                  r.value, r.value_big
                           FROM transfers r
                           JOIN transactions t ON t.tx_id = r.tx_id
                           JOIN addresses f ON f.address_id = r.from_id
                           LEFT JOIN addresses o ON o.address_id = r.to_id
                           WHERE r.height BETWEEN ? AND ? ORDER BY r.transfer_id""", [lo, hi]).fetchall()
    items = _items(con)
    groups: dict[tuple[int, str], dict] = {}  # (list, tx hash) -> what moved
    out: list[dict] = []
    with db.tx(con):
        for tid, height, txh, kind, aid, frm, to, value, big in rows:
            watched = items.get(frm)
            if not watched:
                continue
            x = int(big) if big is not None else int(value)
            asset = names[aid]
            for lid in {k[0] for k in watched}:
                it = watched.get((lid, asset)) or watched.get((lid, ANY_ASSET))
                if it is None or x == 0:
                    continue
                moved = x if it["amount"] is None else min(x, int(it["amount"]))
                if moved == 0:
                    continue
                bh, btime = blocks[height]
                g = groups.setdefault((lid, txh), {"height": height, "hash": bh, "time": btime, "moves": [],
                                                   "sources": [], "woke": [], "fee": {}})
                if kind in FEES:  # gas paid from a traced balance: tainted first out
                    if it["amount"] is not None:
                        F.update_item(con, CHAIN, height, it, amount=str(int(it["amount"]) - moved))
                        g["fee"][asset] = g["fee"].get(asset, 0) + moved
                    continue
                if not any(s is it for s in g["sources"]):
                    days = F.woke(it, lists[lid], btime)
                    if days is not None:
                        g["woke"].append((it, days))
                    g["sources"].append(it)
                left = None if it["amount"] is None else str(int(it["amount"]) - moved)
                F.update_item(con, CHAIN, height, it, amount=left, last_time=btime)
                g["moves"].append(_move(con, lists[lid], it, to, asset, moved, tid, txh, height, btime, tags,
                                        items))
        for (lid, txh), g in groups.items():
            out += _alerts(ws, con, lists[lid], txh, g, channels, tags)
        F.mark_processed(con, CHAIN, [(h, bh) for h, (bh, _) in blocks.items()])
    return out


def _move(con, wl, it, to, asset, moved, tid, txh, height, btime, tags, items) -> dict:
    tag = tags.get(to)
    d = {"address": to, "asset": asset, "amount": moved, "transfer_id": tid, "hops": int(it["hops"]) + 1,
         "label": tag.label if tag else None, "category": tag.category if tag else None}
    if to is None:
        d["followed"] = "destroyed"
    elif asset == "ETH" and moved < int(wl["min_value"]):
        d["followed"] = "below_threshold"
    elif tag is not None and tag.is_service:
        d["followed"] = "sink"
    else:
        d["followed"] = True
        have = items.get(to, {})
        if (wl["list_id"], ANY_ASSET) in have:
            pass  # the receiver is watched in full already
        elif (wl["list_id"], asset) in have:
            r = have[(wl["list_id"], asset)]
            F.update_item(con, CHAIN, height, r, amount=str(int(r["amount"] or 0) + moved))
        else:
            have[(wl["list_id"], asset)] = F.add_item(con, CHAIN, wl["list_id"], "address", to, to, asset, moved,
                                                      None, d["hops"], it, txh, height, btime)
            items[to] = have
    return d


def _alerts(ws, con, wl, txh, g, channels, tags) -> list[dict]:
    out: list[dict] = []
    moves = g["moves"]
    if not moves:
        return out
    by_asset: dict[str, int] = {}
    for m in moves:
        by_asset[m["asset"]] = by_asset.get(m["asset"], 0) + m["amount"]
    first_asset = moves[0]["asset"]
    srcs: list[dict] = []
    for s in g["sources"]:
        if s["key"] not in [x["address"] for x in srcs]:
            srcs.append({"address": s["key"], "watched_asset": s["asset"]})
    a = A.make("moved", (wl["list_id"], CHAIN, txh, g["hash"]), chain=CHAIN, watchlist=wl, height=g["height"],
               block_hash=g["hash"], time=g["time"], txid=txh, asset=first_asset,
               amount=str(by_asset[first_asset]), amounts={k: str(v) for k, v in by_asset.items()},
               policy="seniority", fee={k: str(v) for k, v in g["fee"].items()}, **{"from": srcs, "to": [{**m, "amount": str(m["amount"])} for m in moves]})
    if A.record(ws, con, a, channels, wl["list_id"]):
        out.append(a)
    for it, days in g["woke"]:
        w = A.make("woke", (wl["list_id"], CHAIN, txh, it["key"], g["hash"]), chain=CHAIN, watchlist=wl,
                   height=g["height"], block_hash=g["hash"], time=g["time"], txid=txh, address=it["key"],
                   item=it["key"], dormant_days=round(days, 2), asset=first_asset, amount=str(by_asset[first_asset]))
        if A.record(ws, con, w, channels, wl["list_id"]):
            out.append(w)
    for m in moves:
        if m["followed"] == "sink":
            s = F.sink_alerts(ws, con, wl, CHAIN, {**m, "ref": None}, tags.get(m["address"]),
                              tags.entity(m["address"]), txid=txh, height=g["height"], block_hash=g["hash"],
                              time=g["time"], asset=m["asset"], sources=g["sources"], channels=channels,
                              extra_key=(m["transfer_id"],))
            if s is not None:
                out.append(s)
    return out
