"""Services named by tags: the entity key of a tag (:func:`service_entity`) and the per-address service
labels the tag-conflict guard uses (:class:`ServiceLabels`). Tags are never stored with clusters; they are
read when a build runs (the guard) and when a cluster is shown (its label)."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from chaintrace.graph.cluster.lookup import address_ids
from chaintrace.model.tags import Tag
from chaintrace.store.workspace import Workspace

_ROLE_WORDS = ("deposit addresses", "deposit address", "deposit", "hot wallets", "hot wallet", "cold wallets",
               "cold wallet", "reserve wallets", "reserve wallet", "reserves", "reserve", "wallets", "wallet", "payouts",
               "payout", "coinbase", "fee address", "address", "change")
_ROLE_RE = re.compile(r"(?:[\s:,-]+(?:" + "|".join(re.escape(w) for w in _ROLE_WORDS) + r"))+$")


def service_entity(t: Tag) -> str | None:
    """The service a tag names, for the tag-conflict guard and cluster labels: its actor (GraphSense's entity
    id) when given; else its label, lower-cased, without a trailing role ("Arbor Exchange deposit address"
    and "Arbor Exchange hot wallet" both name "arbor exchange"). None for non-service tags."""
    if not t.is_service:
        return None
    if t.actor and t.actor.strip():
        return t.actor.strip().lower()
    return _role_stripped(t.label) or None


def _role_stripped(label: str | None) -> str:
    key = " ".join((label or "").lower().replace("_", " ").split())
    return _ROLE_RE.sub("", key).strip(" -:,") or key


def display_names(ws: Workspace | None, keys, tags: list[Tag] = ()) -> dict[str, str]:
    """Readable name of each service key: the actor's label (built-in actors, the registry's ActorPacks),
    else the label of a tag naming that service without its role ("arbor exchange"), else the key."""
    keys = [k for k in keys if k]
    if not keys:
        return {}
    try:
        from chaintrace.intel.tags import actor_names

        actors = actor_names(ws)
    except Exception:  # no registry, or a registry being written: names are a nicety
        actors = {}
    by_tag: dict[str, str] = {}
    for t in tags:
        e = service_entity(t)
        if e and e not in by_tag and t.label:
            by_tag[e] = _role_stripped(t.label)
    return {k: actors.get(k) or by_tag.get(k) or k for k in keys}


@dataclass
class ServiceLabels:
    entities: list[str]  # label index -> service entity
    by_address: dict[str, int]  # address -> label index (addresses naming a single service)
    ambiguous: list[str]  # addresses tagged as two or more different services (no guard label)
    fingerprint: str

    @classmethod
    def from_tags(cls, tags: list[Tag] | None) -> "ServiceLabels":
        per: dict[str, set[str]] = {}
        for t in tags or ():
            if t.chain != "btc":
                continue
            e = service_entity(t)
            if e:
                per.setdefault(t.address, set()).add(e)
        ambiguous = sorted(a for a, s in per.items() if len(s) > 1)
        single = {a: next(iter(s)) for a, s in per.items() if len(s) == 1}
        entities = sorted(set(single.values()))
        idx = {e: i for i, e in enumerate(entities)}
        h = hashlib.sha256()
        for a in sorted(per):
            h.update(f"{a}\t{','.join(sorted(per[a]))}\n".encode())
        return cls(entities, {a: idx[e] for a, e in single.items()}, ambiguous, h.hexdigest())

    def labels(self, ws: Workspace, n: int, start: int = 0, dtype=np.int32) -> np.ndarray:
        """Label per address id start..n-1 (-1: none)."""
        out = np.full(n - start, -1, dtype)
        if self.by_address and n > start:
            ids = address_ids(ws, list(self.by_address))
            for a, i in ids.items():
                if start <= i < n:
                    out[i - start] = self.by_address[a]
        return out


def load_tags(ws: Workspace, tagpack_paths=()) -> list[Tag]:
    """Every Bitcoin tag of the intelligence registry, plus the TagPack files `tagpack_paths`."""
    try:
        from chaintrace.intel import load_tags as load
    except ImportError:
        from chaintrace.intel.tags import load_tags as load
    return load(ws, "btc", tagpack_paths)
