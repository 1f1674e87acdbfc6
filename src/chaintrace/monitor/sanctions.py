"""Sanctions list changes: the registry's answer for every watched address, compared with the last one seen.

The answer for an address is the set of sanctions entries in force today (list name and entry uid, or the
entity when a list has no uids; an entry whose ``state`` is not true -- removed, or unknown -- does not count),
from :func:`chaintrace.intel.api.lookup`. A newly imported snapshot (OFAC
SDN XML, derived CSV, plain address lists) that adds or drops an entry for a watched address raises a
``sanctions_change`` alert (``change``: ``added`` or ``removed``, with the entries and the list snapshots the
registry now holds). The registry is only asked again when its generation changes.

Addresses **screened** recently (``chaintrace screen address`` or ``chaintrace serve``; the record of
:mod:`chaintrace.screen.history`, retention window 90 days by default) and not watched get the same check:
their alert has ``source: "screening"`` (watchlist alerts: ``source: "watchlist"``), no watchlist, and
``last_screened`` / ``screened_generation``. The previous answer is the one the monitor stored at its last
check, else the screening's own (sanctioned or not, at the generation it was screened at): an address first
screened after the change gets no alert (its screening already answered with the new list).
"""
from __future__ import annotations

import datetime as dt
import json

from chaintrace.monitor import alerts as A
from chaintrace.monitor import db


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def _answers(ws, addresses: list[str]) -> list[dict[str, dict]]:
    from chaintrace.intel.api import lookup

    out = []
    for r in lookup(ws, addresses, at=_today()):
        entries = {}
        for s in r["sanctions"]:
            if s.get("state", True) is not True:  # removed, or not known to hold today: not in force
                continue
            k = f"{s['list']}|{s.get('uid') or s.get('entity') or ''}"
            entries[k] = {"list": s["list"], "uid": s.get("uid"), "entity": s.get("entity"),
                          "programs": s.get("programs"), "listed_date": s.get("listed_date"),
                          "valid_from": s.get("valid_from"), "valid_to": s.get("valid_to"),
                          "reason": s.get("reason")}
        out.append(entries)
    return out


def _watched(con) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(
        "SELECT DISTINCT chain, address FROM watched WHERE address IS NOT NULL AND spent_height IS NULL")]


def _generation(ws) -> int:
    from chaintrace.intel.registry import generation

    return generation(ws)


def baseline(ws, con) -> None:
    """Record the current answer for watched addresses not seen before (no alerts)."""
    pairs = [(r[0], r[1]) for r in con.execute(
        "SELECT DISTINCT w.chain, w.address FROM watched w LEFT JOIN sanctions s ON s.chain = w.chain AND "
        "s.address = w.address WHERE w.address IS NOT NULL AND w.spent_height IS NULL AND s.address IS NULL")]
    if not pairs:
        return
    answers = _answers(ws, [a for _, a in pairs])
    with db.tx(con):
        con.executemany("INSERT OR REPLACE INTO sanctions VALUES (?,?,?)",
                        [(c, a, json.dumps(ans, sort_keys=True)) for (c, a), ans in zip(pairs, answers)])


def check(ws, con, channels: list[str], force: bool = False) -> list[dict]:
    """Alerts for watched addresses whose sanctions answer changed since the last check."""
    gen = _generation(ws)
    row = con.execute("SELECT value FROM meta WHERE key = 'registry_generation'").fetchone()
    if row is not None and int(row[0]) == gen and not force:
        baseline(ws, con)
        return []
    pairs = _watched(con)
    answers = _answers(ws, [a for _, a in pairs]) if pairs else []
    lists: dict[tuple[str, str], list[dict]] = {}
    for r in con.execute("SELECT DISTINCT w.chain, w.address, l.* FROM watched w JOIN watchlists l USING (list_id)"
                         " WHERE w.address IS NOT NULL AND w.spent_height IS NULL"):
        lists.setdefault((r["chain"], r["address"]), []).append(dict(r))
    out = []
    with db.tx(con):
        for (chain, address), now in zip(pairs, answers):
            old_row = con.execute("SELECT answer FROM sanctions WHERE chain = ? AND address = ?",
                                  (chain, address)).fetchone()
            con.execute("INSERT OR REPLACE INTO sanctions VALUES (?,?,?)",
                        (chain, address, json.dumps(now, sort_keys=True)))
            if old_row is None:
                continue
            old = json.loads(old_row[0])
            for change, keys in (("added", sorted(set(now) - set(old))), ("removed", sorted(set(old) - set(now)))):
                if not keys:
                    continue
                entries = [(now if change == "added" else old)[k] for k in keys]
                for wl in lists.get((chain, address), []):
                    a = A.make("sanctions_change", (wl["list_id"], chain, address, change, *keys, gen),
                               chain=chain, watchlist=wl, address=address, change=change, entries=entries,
                               sanctioned_now=bool(now), registry_generation=gen, as_of=_today(),
                               source="watchlist")
                    if A.record(ws, con, a, channels, wl["list_id"]):
                        out.append(a)
        out += _check_screened(ws, con, channels, gen, {p for p in pairs})
        con.execute("INSERT OR REPLACE INTO meta VALUES ('registry_generation', ?)", (str(gen),))
    return out


def _check_screened(ws, con, channels: list[str], gen: int, watched: set[tuple[str, str]]) -> list[dict]:
    """Alerts for recently screened, unwatched addresses whose answer changed (inside the caller's
    transaction)."""
    from chaintrace.screen.history import recent

    rows = [r for r in recent(ws) if (r["chain"], r["address"]) not in watched]
    if not rows:
        return []
    out = []
    answers = _answers(ws, [r["address"] for r in rows])
    for r, now in zip(rows, answers):
        chain, address = r["chain"], r["address"]
        old_row = con.execute("SELECT answer FROM sanctions WHERE chain = ? AND address = ?",
                              (chain, address)).fetchone()
        con.execute("INSERT OR REPLACE INTO sanctions VALUES (?,?,?)", (chain, address, json.dumps(now, sort_keys=True)))
        changes: tuple[tuple[str, list[str]], ...]
        if old_row is not None:
            old = json.loads(old_row[0])
            changes = (("added", sorted(set(now) - set(old))), ("removed", sorted(set(old) - set(now))))
        elif r["registry_generation"] is None or int(r["registry_generation"]) >= gen:
            continue  # screened with the current registry: that answer already was the new one
        elif r["sanctioned"] == bool(now):
            continue  # (entries may differ; the screening record keeps only sanctioned or not)
        elif now:
            old, changes = {}, (("added", sorted(now)),)
        else:
            old, changes = {}, (("removed", []),)  # which entries were in force then is not recorded
        for change, keys in changes:
            if not keys and old_row is not None:
                continue
            entries = [(now if change == "added" else old)[k] for k in keys]
            a = A.make("sanctions_change", ("screened", chain, address, change, *keys, gen), chain=chain,
                       watchlist=None, address=address, change=change, entries=entries, sanctioned_now=bool(now),
                       registry_generation=gen, as_of=_today(), source="screening",
                       last_screened=A.iso(r["last_screened"]), screened_generation=r["registry_generation"])
            if A.record(ws, con, a, channels, None):
                out.append(a)
    return out
