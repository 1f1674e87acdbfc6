"""TLP 2.0 enforcement: pure rules, decided object by object (tested in tests/test_share_tlp.py).

* TLP:RED never leaves the organisation that made it: served only to readers of that organisation, from a
  collection whose members are that organisation alone; never pushed to another server.
* TLP:AMBER+STRICT stays inside the producing organisation (same rule as RED, on a collection that allows it).
* TLP:AMBER goes only to collections whose members the producer permits: the collection must declare
  ``max_tlp`` amber or higher (its administrator vouches that every member may receive AMBER).
* TLP:GREEN and TLP:CLEAR go to any collection a reader may read.
* A collection may hide chosen properties (``amounts``, ``notes`` or property names) before serving.
"""
from __future__ import annotations

from dataclasses import dataclass, field

RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
ANY = "*"
HIDE_GROUPS = {
    "amounts": frozenset({"amount", "amount_usd", "amount_asset", "totals", "fee", "cash_out_total"}),
    "notes": frozenset({"description", "notes", "note", "comment"}),
}
_NEVER_HIDDEN = frozenset({"type", "id", "spec_version", "value", "pattern", "created", "modified", "symbol"})


@dataclass(frozen=True)
class Collection:
    """Who may read and write a TAXII collection, the highest TLP it may carry, what it hides."""

    id: str
    title: str
    description: str = ""
    readers: frozenset[str] = frozenset()  # organisations ("*": every key holder of this server)
    writers: frozenset[str] = frozenset()
    max_tlp: str = "green"
    hidden: frozenset[str] = frozenset()  # property names or groups (amounts, notes)
    kind: str = "exchange"  # exchange | registry (publishes the shareable registry, read-only)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def can_read(self, org: str) -> bool:
        return ANY in self.readers or org in self.readers

    def can_write(self, org: str) -> bool:
        return self.kind != "registry" and (ANY in self.writers or org in self.writers)

    def members(self) -> frozenset[str]:
        return self.readers


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def level(tlp: str | None) -> str:
    return tlp if tlp in RANK else "clear"


def may_store(tlp: str | None, producer_org: str, collection: Collection) -> Decision:
    """May an object marked `tlp`, written by `producer_org`, be added to `collection`?"""
    lv = level(tlp)
    if RANK[lv] > RANK[collection.max_tlp]:
        return Decision(False, f"TLP:{lv.upper()} is above this collection's limit TLP:{collection.max_tlp.upper()}")
    if lv in ("red", "amber+strict") and collection.members() != frozenset({producer_org}):
        return Decision(False, f"TLP:{lv.upper()} stays inside {producer_org}; this collection has other members")
    return Decision(True, "")


def may_serve(tlp: str | None, producer_org: str, collection: Collection, reader_org: str) -> Decision:
    """May an object marked `tlp` (written by `producer_org`) be served to `reader_org` from `collection`?"""
    if not collection.can_read(reader_org):
        return Decision(False, f"{reader_org} may not read collection {collection.id}")
    lv = level(tlp)
    if lv in ("red", "amber+strict"):
        if reader_org != producer_org:
            return Decision(False, f"TLP:{lv.upper()} never leaves {producer_org}")
        if collection.members() != frozenset({producer_org}):
            return Decision(False, f"TLP:{lv.upper()}: collection {collection.id} has members outside {producer_org}")
    if RANK[lv] > RANK[collection.max_tlp]:
        return Decision(False, f"TLP:{lv.upper()} is above collection {collection.id}'s limit "
                               f"TLP:{collection.max_tlp.upper()}")
    return Decision(True, "")


def may_push(tlp: str | None, max_tlp: str = "green") -> Decision:
    """May an object marked `tlp` be sent to another server (another organisation's collection)?
    RED and AMBER+STRICT never; AMBER only when the sender says the destination's members are permitted
    (`max_tlp` amber)."""
    lv = level(tlp)
    if lv in ("red", "amber+strict"):
        return Decision(False, f"TLP:{lv.upper()} never leaves the organisation")
    if RANK[lv] > RANK[level(max_tlp)]:
        return Decision(False, f"TLP:{lv.upper()} is above --max-tlp {max_tlp}")
    return Decision(True, "")


def hidden_names(hidden) -> frozenset[str]:
    out: set[str] = set()
    for h in hidden:
        out |= HIDE_GROUPS.get(h, {h})
    return frozenset(out - _NEVER_HIDDEN)


def redact(obj, names: frozenset[str]):
    """A copy of `obj` without the properties in `names`, at any depth (ids, types, values never)."""
    if not names:
        return obj
    if isinstance(obj, dict):
        return {k: redact(v, names) for k, v in obj.items() if k not in names}
    if isinstance(obj, list):
        return [redact(v, names) for v in obj]
    return obj


def tlp_of(obj: dict) -> str | None:
    """The TLP level of a STIX object from its object_marking_refs (most restrictive wins)."""
    from chaintrace.share.stix import TLP_BY_ID

    levels = [TLP_BY_ID[m] for m in obj.get("object_marking_refs") or () if m in TLP_BY_ID]
    return max(levels, key=RANK.__getitem__) if levels else None
