"""Sanctions list history: was an address sanctioned on a date? true, false, or unknown with the reason.

The registry keeps every imported list snapshot (OFAC SDN advanced XML: its DateOfIssue; plain address lists
and derived CSVs: ``--as-of``). What each source can date:

- a snapshot dates *presence*: the address was listed on its as-of date;
- a later snapshot covering the same asset without the address dates a *removal* (no later than that date);
- the SDN entry's listing date (XML ``EntryEvent``) dates the *entry*, not the address: addresses are added
  to old entries (the Ronin exploiter address joined the 2019 Lazarus Group entry in April 2022), so before
  the first snapshot holding an address the answer is unknown, unless the date precedes the entry itself.

:func:`status_at` turns the periods of one address (rows of ``intel.sanction_periods``) into the answer.
"""
from __future__ import annotations

import datetime as _dt
from typing import Iterable


def _d(x) -> _dt.date | None:  # noqa: D103
    if x is None or isinstance(x, _dt.date):
        return x
    return _dt.date.fromisoformat(str(x)[:10])


def period_state(p: dict, at: _dt.date) -> tuple[bool | None, str]:
    """One period (a row of ``sanction_periods``) at date `at`: (True / False / None, reason)."""
    f = _d(p["valid_from"])
    assert f is not None, "a sanctions period always starts at a snapshot"
    t, listed, absent = _d(p.get("valid_to")), _d(p.get("listed_date")), _d(p.get("absent_before"))
    name = p.get("list_name") or "sanctions list"
    if f <= at and (t is None or at < t):
        seen = _d(p.get("last_seen"))
        span = f"on the {name} snapshots of {f}" + (f" .. {seen}" if seen and seen != f else "")
        return True, span + (f"; removed by {t}" if t else "; no later snapshot drops it")
    if t is not None and at >= t:
        return False, f"removed: not on the {name} snapshot of {t} (listed {f} .. {t})"
    if listed is not None and at < listed:
        return False, f"the {name} entry ({p.get('entity') or 'unnamed'}) was listed on {listed}, after {at}"
    why = f"listed no later than {f}"
    if absent is not None:
        why += f"; not on the snapshot of {absent}"
    if listed is not None:
        why += f"; entry dates from {listed} (the list gives no date per address)"
    elif absent is None:
        why += "; no earlier snapshot imported"
    return None, why


def status_at(periods: Iterable[dict], at: str | _dt.date) -> dict:
    """The sanctions status of one address at date `at` from its periods (all lists and assets):
    ``{"sanctioned": True | False | None, "reason": ...}``. True when any period covers the date; else
    unknown when any period cannot tell; else False. No period: False (on no imported list)."""
    day = _d(at)
    assert day is not None
    best: tuple[bool | None, str] | None = None
    rank = {True: 2, None: 1, False: 0}
    for p in sorted(periods, key=lambda p: str(p["valid_from"])):
        s = period_state(p, day)
        if best is None or rank[s[0]] > rank[best[0]]:
            best = s
    if best is None:
        return {"sanctioned": False, "reason": "on no imported sanctions list snapshot"}
    return {"sanctioned": best[0], "reason": best[1]}
