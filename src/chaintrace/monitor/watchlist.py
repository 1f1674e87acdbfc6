"""Watchlists: what the monitor watches, and where each watched item came from.

A watchlist belongs to one chain and holds *items*: an ``address`` (every coin or balance it holds is
watched in full: a thief's or sanctioned address) or an ``output`` (``txid:vout`` with the traced amount it
carries: a trace's holdings). Items derived while following the chain (the tainted outputs of a spend of a
watched output) join the same list, with the block that created them, so a reorganisation can undo them.
"""
from __future__ import annotations

from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr
from chaintrace.monitor import db
from chaintrace.trace.policies import FEE_MODES, POLICIES

CHAINS = ("btc", "eth")
DEFAULT_MIN_VALUE = {"btc": 10_000, "eth": 10**12}  # the trace's defaults (satoshi, wei)
ANY_ASSET = "*"


def _chain(chain: str) -> str:
    c = (chain or "").lower()
    if c not in CHAINS:
        raise UserError(f"--chain {chain!r}: the monitor follows {', '.join(CHAINS)}")
    return c


def _norm(chain: str, a: str, where: str) -> str:
    a = a.strip()
    why = addr.check(chain, a)
    if why and not (chain == "btc" and a.lower().startswith("bcrt1")):
        raise UserError(f"{where}: {a!r} is not a {chain} address ({why})")
    return addr.key(chain, a)


def _store_tip(ws, chain: str) -> int:
    if chain not in ws.chains():
        return -1
    tip = ws.chain(chain).manifest.get("tip")
    return int(tip["height"]) if tip else -1


def _items_from_trace(chain: str, path: str | Path) -> tuple[list[dict], dict]:
    from chaintrace.trace.report import TraceReport

    rep = TraceReport.read_json(path)
    if rep.chain != chain:
        raise UserError(f"{path}: a {rep.chain} trace report; this watchlist is for {chain}")
    items = []
    for h in rep.holdings:
        if chain == "btc":
            items.append({"kind": "output", "key": h.ref, "address": h.address, "asset": h.asset,
                          "amount": h.amount, "value": h.value, "hops": h.hops, "last_time": h.time})
        elif h.address:
            items.append({"kind": "address", "key": h.address.lower(), "address": h.address.lower(),
                          "asset": h.asset, "amount": h.amount, "value": None, "hops": h.hops,
                          "last_time": h.time})
    if not items:
        raise UserError(f"{path}: the trace report holds nothing (no holdings) to watch")
    return items, {"policy": rep.policy.get("name"), "fee_mode": (rep.policy.get("params") or {}).get("fee_mode")}


def _address_items(chain: str, addrs: list[str], where: str) -> list[dict]:
    out, seen = [], set()
    for a in addrs:
        k = _norm(chain, a, where)
        if k not in seen:
            seen.add(k)
            out.append({"kind": "address", "key": k, "address": k, "asset": ANY_ASSET, "amount": None,
                        "value": None, "hops": 0, "last_time": None})
    return out


def _incident_addresses(ws, chain: str, incident: str) -> list[str]:
    from chaintrace.intel.api import incident_seed_rows

    rows = [r for r in incident_seed_rows(ws, chain=chain) if (r.get("incident_id") or "").lower() == incident.lower()]
    attacker = [r["address"] for r in rows if not (r.get("side") or "").lower().startswith("victim")]
    if not attacker:
        raise UserError(f"--incident {incident}: no {chain} attacker addresses for this incident in the "
                        f"registry (see `chaintrace intel incidents`)")
    return attacker


def _tagged_addresses(chain: str, path: str) -> list[str]:
    from chaintrace.intel.tagpack import parse_tagpack

    tags = [t for t in parse_tagpack(path).tags if t.chain == chain]
    if not tags:
        raise UserError(f"{path}: no {chain} tags in this TagPack")
    return [t.address for t in tags]


def _sanctioned_addresses(ws, chain: str) -> list[str]:
    import datetime as dt

    from chaintrace.intel.api import load_tags

    today = dt.datetime.now(dt.UTC).date().isoformat()
    found = sorted({t.address for t in load_tags(ws, chain, at=today) if t.category == "sanction"})
    if not found:
        raise UserError(f"--sanctioned: the registry lists no {chain} addresses as sanctioned today "
                        f"(import a list first: `chaintrace intel import ofac-sdn ...`)")
    return found


def add_watchlist(ws, name: str, chain: str, *, addresses=(), from_trace: str | Path | None = None,
                  incident: str | None = None, tags: str | Path | None = None, sanctioned: bool = False,
                  policy: str | None = None, fee_mode: str | None = None, min_value: int | None = None,
                  dormant_days: float = 180.0, case_id: str | None = None) -> dict:
    """Create watchlist `name` on `chain` from exactly one source: `addresses`, a trace report's holdings
    (`from_trace`), an incident's attacker addresses, a TagPack's addresses, or every address the registry
    lists as sanctioned today. Spends are followed under `policy` (default: the trace report's, else
    haircut). Watching starts at the store's current tip for that chain. Returns the list as
    :func:`list_watchlists` shows it."""
    chain = _chain(chain)
    given = [bool(addresses), from_trace is not None, incident is not None, tags is not None, sanctioned]
    if sum(given) != 1:
        raise UserError("give exactly one of --address, --from-trace, --incident, --tags, --sanctioned")
    if not name or not name.strip():
        raise UserError("--name must not be empty")
    pol: dict = {}
    if addresses:
        items, source = _address_items(chain, list(addresses), "--address"), "address"
    elif from_trace is not None:
        items, pol = _items_from_trace(chain, from_trace)
        source = "trace"
    elif incident is not None:
        items, source = _address_items(chain, _incident_addresses(ws, chain, incident), f"incident {incident}"), "incident"
    elif tags is not None:
        items, source = _address_items(chain, _tagged_addresses(chain, str(tags)), str(tags)), "tags"
    else:
        items, source = _address_items(chain, _sanctioned_addresses(ws, chain), "registry"), "sanctioned"
    policy = policy or pol.get("policy") or "haircut"
    fee_mode = fee_mode or pol.get("fee_mode") or "tail"
    if chain == "btc" and policy not in POLICIES:
        raise UserError(f"--policy {policy}: expected one of {', '.join(POLICIES)}")
    if fee_mode not in FEE_MODES:
        raise UserError(f"--fee-mode {fee_mode}: expected one of {', '.join(FEE_MODES)}")
    if min_value is None:
        min_value = DEFAULT_MIN_VALUE[chain]
    con = db.connect(ws)
    try:
        with db.tx(con):
            if con.execute("SELECT 1 FROM watchlists WHERE name = ?", (name,)).fetchone():
                raise UserError(f"--name {name}: a watchlist of that name exists (remove it first)")
            cur = con.execute(
                "INSERT INTO watchlists (name, chain, source, policy, fee_mode, min_value, dormant_days, case_id,"
                " since_height, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (name, chain, source, policy, fee_mode, str(int(min_value)), float(dormant_days),
                 case_id or name, _store_tip(ws, chain), db.now()))
            lid = cur.lastrowid
            con.executemany(
                "INSERT OR IGNORE INTO watched (list_id, chain, kind, key, address, asset, amount, value, hops,"
                " origin, last_time) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(lid, chain, i["kind"], i["key"], i["address"], i["asset"],
                  None if i["amount"] is None else str(int(i["amount"])),
                  None if i["value"] is None else str(int(i["value"])), int(i["hops"] or 0), source,
                  i["last_time"]) for i in items])
        from chaintrace.monitor.sanctions import baseline

        baseline(ws, con)
        return next(w for w in list_watchlists(ws, con) if w["name"] == name)
    finally:
        con.close()


def list_watchlists(ws, con=None) -> list[dict]:
    """Every watchlist: name, chain, source, policy, case id, watched items (active = not yet spent),
    traced amount still watched, alerts raised (retracted ones apart), and the height watching started."""
    own = con is None
    con = con or db.connect(ws)
    try:
        out = []
        for w in con.execute("SELECT * FROM watchlists ORDER BY list_id").fetchall():
            items = con.execute("SELECT kind, amount, spent_height, origin FROM watched WHERE list_id = ?",
                                (w["list_id"],)).fetchall()
            active = [i for i in items if i["spent_height"] is None]
            al = con.execute("SELECT retracted, count(*) FROM alerts WHERE list_id = ? GROUP BY retracted",
                             (w["list_id"],)).fetchall()
            counts = {r[0]: r[1] for r in al}
            out.append({
                "name": w["name"], "chain": w["chain"], "source": w["source"], "policy": w["policy"],
                "fee_mode": w["fee_mode"], "min_value": int(w["min_value"]), "dormant_days": w["dormant_days"],
                "case_id": w["case_id"], "since_height": w["since_height"],
                "items": len(items), "active": len(active),
                "addresses": sum(1 for i in active if i["kind"] == "address"),
                "outputs": sum(1 for i in active if i["kind"] == "output"),
                "derived": sum(1 for i in items if i["origin"] == "moved"),
                "amount": sum(int(i["amount"]) for i in active if i["amount"] is not None),
                "alerts": counts.get(0, 0), "retracted": counts.get(1, 0),
            })
        return out
    finally:
        if own:
            con.close()


def remove_watchlist(ws, name: str) -> dict:
    """Delete watchlist `name` and its items (alerts already raised stay in the outbox and are delivered)."""
    con = db.connect(ws)
    try:
        with db.tx(con):
            w = con.execute("SELECT list_id FROM watchlists WHERE name = ?", (name,)).fetchone()
            if w is None:
                names = [r[0] for r in con.execute("SELECT name FROM watchlists ORDER BY name")]
                raise UserError(f"no watchlist named {name!r} (existing: {', '.join(names) or 'none'})")
            n = con.execute("DELETE FROM watched WHERE list_id = ?", (w[0],)).rowcount
            con.execute("DELETE FROM watchlists WHERE list_id = ?", (w[0],))
        return {"name": name, "removed_items": n}
    finally:
        con.close()
