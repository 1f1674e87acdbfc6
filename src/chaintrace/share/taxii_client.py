"""TAXII 2.1 client (OASIS ``taxii2-client``): push the shareable registry to a peer's collection, pull a
peer's collection into the registry. Incremental and idempotent:

* pull asks for ``added_after`` = the ``X-TAXII-Date-Added-Last`` of the previous pull of that collection and
  imports what came as one registry import (the same content again is skipped);
* push sends only objects (id, version) not pushed to that collection before, and never an object whose TLP
  forbids it to leave (RED, AMBER+STRICT; AMBER only with ``max_tlp="amber"``).

State lives in ``<workspace>/share/taxii-state.json``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from chaintrace.errors import ChaintraceError, UserError
from chaintrace.share import tlp as rules
from chaintrace.share.export import build_bundle

TAXII = "application/taxii+json;version=2.1"


def _state_path(ws) -> Path:
    return Path(ws.path) / "share" / "taxii-state.json"


def _load_state(ws) -> dict:
    p = _state_path(ws)
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def _save_state(ws, state: dict) -> None:
    p = _state_path(ws)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(p)


def _collection(url: str, collection: str, key: str | None, user: str | None, password: str | None):
    try:
        from taxii2client.v21 import Collection
    except ImportError:  # pragma: no cover - a runtime dependency
        raise UserError("TAXII needs taxii2-client (pip install taxii2-client)") from None
    base = url.rstrip("/") + "/"
    if "/collections/" not in base:
        base = base + "collections/" + collection + "/"
    return Collection(base, user=user or "chaintrace", password=password if password is not None else key)


def _slot(url: str, collection: str) -> str:
    return f"{url.rstrip('/')}#{collection}"


def _wrap(e: Exception, url: str) -> ChaintraceError:
    return ChaintraceError(f"TAXII {url}: {e}")


def pull(ws, url: str, collection: str, *, key: str | None = None, user: str | None = None,
         password: str | None = None, page_size: int = 1000, full: bool = False) -> dict:
    """Fetch the collection's objects added since the last pull (all with `full`) and import them."""
    from chaintrace.share.api import import_bytes

    state = _load_state(ws)
    slot = _slot(url, collection)
    since = None if full else state.get("pull", {}).get(slot)
    col = _collection(url, collection, key, user, password)
    seen_last: list[str] = []

    def hook(resp, *args, **kwargs):  # taxii2-client keeps no response headers: read them as they pass
        v = resp.headers.get("X-TAXII-Date-Added-Last")
        if v:
            seen_last.append(v)

    col._conn.session.hooks["response"].append(hook)
    objects: list[dict] = []
    kwargs = {"added_after": since} if since else {}
    try:
        env = col.get_objects(limit=page_size, **kwargs)
        while True:
            objects += env.get("objects", [])
            if not env.get("more") or not env.get("next"):
                break
            env = col.get_objects(limit=page_size, next=env["next"], **kwargs)
        last = max(seen_last) if seen_last else (_last_added(col, since) if objects else since)
    except Exception as e:  # noqa: BLE001 - requests/taxii2client errors are the peer's answer
        raise _wrap(e, url) from None
    result = {"url": url, "collection": collection, "added_after": since, "objects": len(objects)}
    if objects:
        data = json.dumps({"objects": objects}, sort_keys=True, separators=(",", ":")).encode()
        where = f"taxii:{slot}@{hashlib.sha256(data).hexdigest()[:16]}"
        result["import"] = import_bytes(ws, data, where)
    else:
        result["import"] = None
    state.setdefault("pull", {})[slot] = last
    _save_state(ws, state)
    result["next_added_after"] = last
    return result


def _last_added(col, since: str | None) -> str | None:
    """The newest date_added of the collection after `since` (from the manifest's last page)."""
    last = None
    kwargs = {"added_after": since} if since else {}
    env = col.get_manifest(limit=1000, **kwargs)
    while True:
        for m in env.get("objects", []):
            if last is None or m["date_added"] > last:
                last = m["date_added"]
        if not env.get("more") or not env.get("next"):
            return last
        env = col.get_manifest(limit=1000, next=env["next"], **kwargs)


def pushable(objects: list[dict], max_tlp: str = "green", skip_types=()) -> tuple[list[dict], dict]:
    """The objects that may leave the organisation, and counts of those held back (reason -> n)."""
    out: list[dict] = []
    held: dict[str, int] = {}
    skip = set(skip_types)
    for o in objects:
        if o.get("type") in skip:
            held["skipped type " + o["type"]] = held.get("skipped type " + o["type"], 0) + 1
            continue
        d = rules.may_push(rules.tlp_of(o), max_tlp)
        if d.allowed:
            out.append(o)
        else:
            held[d.reason] = held.get(d.reason, 0) + 1
    return out, held


def push(ws, url: str, collection: str, *, key: str | None = None, user: str | None = None,
         password: str | None = None, max_tlp: str = "green", objects: list[dict] | None = None,
         skip_types=(), batch: int = 500, producer: str = "chaintrace") -> dict:
    """Send the shareable registry (or `objects`) to a TAXII collection: only what was not sent before
    and what TLP lets leave the organisation."""
    if objects is None:
        bundle, _ = build_bundle(ws, producer=producer, include_restricted=True)
        objects = bundle["objects"]
    ok, held = pushable(objects, max_tlp, skip_types)
    state = _load_state(ws)
    slot = _slot(url, collection)
    sent = set(state.get("push", {}).get(slot, []))

    def sig(o):
        return hashlib.sha256(f"{o['id']}|{o.get('modified') or o.get('created') or ''}".encode()).hexdigest()[:20]

    todo = [o for o in ok if sig(o) not in sent]
    col = _collection(url, collection, key, user, password)
    results: dict = {"accepted": 0, "refused": 0, "failures": []}
    try:
        for i in range(0, len(todo), batch):
            part = todo[i:i + batch]
            st = col.add_objects(json.dumps({"objects": part}), wait_for_completion=True, poll_interval=0.2,
                                 timeout=60)
            results["accepted"] += st.success_count
            results["refused"] += st.failure_count
            results["failures"] += list(st.failures or [])[:20]
            failed = {f.get("id") for f in st.failures or ()}
            sent |= {sig(o) for o in part if o["id"] not in failed}
    except Exception as e:  # noqa: BLE001
        state.setdefault("push", {})[slot] = sorted(sent)
        _save_state(ws, state)
        raise _wrap(e, url) from None
    state.setdefault("push", {})[slot] = sorted(sent)
    _save_state(ws, state)
    return {"url": url, "collection": collection, "candidates": len(objects), "held_back": held,
            "already_pushed": len(ok) - len(todo), "pushed": len(todo), **results}
