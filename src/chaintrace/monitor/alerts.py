"""Alerts: what the watcher tells people, each with a stable dedup key, recorded with its outbox rows.

Kinds (``kind``):

``moved``            watched value moved: amount, from (watched inputs/address), to (outputs/receivers), txid
``service``          watched value reached a service or exchange: which one, the deposit address, the amount,
                     and a ready ``freeze_request`` (exchange, deposit address, txid, amount, evidence, case id)
``mixer_bridge``     watched value entered a mixer, CoinJoin coordinator or bridge (by registry tags)
``woke``             funds dormant for at least the list's ``dormant_days`` moved
``sanctions_change`` a sanctions list now answers differently for a watched address (``change``: added/removed)
``retracted``        an earlier alert's block was reorganised away (``retracts``: its dedup key)

The dedup key is a hash of what identifies the event (watchlist, kind, chain, transaction, block hash, ...):
the same event always gets the same key, so receivers can drop repeats of an at-least-once delivery. An
event in a block that is reorganised away is retracted; if the transaction is mined again in the new
branch, that is a new event (another block hash) with its own key.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

from chaintrace.monitor import db

SCHEMA = "chaintrace.alert/1"
MIXER_BRIDGE = frozenset({"mixing_service", "coinjoin", "bridge", "defi_bridge"})


def dedup_key(*parts) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:32]


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return dt.datetime.fromtimestamp(int(t), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TagIndex:
    """Best attribution tag per address of a chain (the trace's sink rule: service categories stop)."""

    def __init__(self, ws, chain: str, extra_files=()):
        from chaintrace.intel.api import actor_names, load_tags
        from chaintrace.trace.sinks import best_tags

        self.best = best_tags(load_tags(ws, chain, tagpack_paths=tuple(extra_files)))
        self.names = actor_names(ws) if any(t.actor for t in self.best.values()) else {}

    def get(self, address: str | None):
        return self.best.get(address) if address else None

    def entity(self, address: str | None) -> str | None:
        """The receiving entity's name: its actor's label when known, else the tag label."""
        t = self.get(address)
        if t is None:
            return None
        return self.names.get(t.actor) or t.label if t.actor else t.label


def make(kind: str, key_parts: tuple, *, chain: str | None, watchlist: dict | None, height: int | None = None,
         block_hash: str | None = None, time: int | None = None, **fields) -> dict:
    """An alert body (plain JSON-able dict; amounts as decimal strings)."""
    body = {"schema": SCHEMA, "dedup_key": dedup_key(kind, *key_parts), "kind": kind, "chain": chain,
            "watchlist": watchlist["name"] if watchlist else None,
            "case_id": watchlist["case_id"] if watchlist else None,
            "height": height, "block_hash": block_hash, "time": time, "time_iso": iso(time)}
    body.update(fields)
    return body


def evidence_dir(ws) -> Path:
    return db.db_path(ws).parent / "evidence"


def record(ws, con, alert: dict, channels: list[str], list_id: int | None = None, evidence: dict | None = None
           ) -> bool:
    """Store `alert` and one outbox row per channel (inside the caller's transaction). Returns False when
    an alert with this dedup key exists already (nothing is queued twice). With `evidence`, the evidence
    file ``DATA/monitor/evidence/<dedup key>.json`` is written first and its path put in the alert."""
    key = alert["dedup_key"]
    if con.execute("SELECT 1 FROM alerts WHERE dedup_key = ?", (key,)).fetchone():
        return False
    if evidence is not None:
        d = evidence_dir(ws)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{key}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"alert": alert, **evidence}, indent=2, default=str))
        tmp.replace(path)
        alert["evidence"] = str(path)
        if isinstance(alert.get("freeze_request"), dict):
            alert["freeze_request"]["evidence"] = str(path)
    seq = (con.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0] or 0) + 1
    con.execute("INSERT INTO alerts (dedup_key, kind, chain, list_id, height, block_hash, created, body)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (key, alert["kind"], alert.get("chain"), list_id, alert.get("height"), alert.get("block_hash"),
                 db.now(), json.dumps(alert, default=str)))
    con.executemany("INSERT INTO outbox (dedup_key, channel, seq, next_try) VALUES (?,?,?,?)",
                    [(key, ch, seq, 0.0) for ch in channels])
    return True


def retract_above(ws, con, chain: str, height: int, new_hashes: dict[int, str], channels: list[str]) -> list[dict]:
    """Retract every alert of `chain` raised on a block at or above `height` (reorganised away): one
    ``retracted`` alert per original, naming it. Inside the caller's transaction."""
    out = []
    rows = con.execute("SELECT dedup_key, body, list_id, height, block_hash FROM alerts WHERE chain = ? AND"
                       " height >= ? AND retracted = 0 AND kind != 'retracted' ORDER BY created",
                       (chain, height)).fetchall()
    for r in rows:
        orig = json.loads(r["body"])
        con.execute("UPDATE alerts SET retracted = 1 WHERE dedup_key = ?", (r["dedup_key"],))
        a = make("retracted", (r["dedup_key"],), chain=chain, watchlist=None, height=r["height"],
                 block_hash=r["block_hash"], time=orig.get("time"), retracts=r["dedup_key"],
                 retracted_kind=orig.get("kind"), txid=orig.get("txid"),
                 reason=(f"block {r['height']} ({r['block_hash']}) was reorganised away; the node's block at that "
                         f"height is now {new_hashes.get(r['height'], 'absent')}"))
        a["watchlist"], a["case_id"] = orig.get("watchlist"), orig.get("case_id")
        if record(ws, con, a, channels, r["list_id"]):
            out.append(a)
    return out


def pending_count(con) -> int:
    return con.execute("SELECT count(*) FROM outbox WHERE delivered IS NULL").fetchone()[0]
