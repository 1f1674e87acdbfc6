"""Records of the intelligence registry besides :class:`chaintrace.model.tags.Tag`: actors, incidents,
sanctions entries, rejected rows, and the result of parsing one source file.

Parsers fill these from files; :mod:`chaintrace.intel.registry` stores them in the workspace catalog.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from chaintrace.errors import UserError
from chaintrace.model.tags import Tag

# GraphSense confidence ids (tagpack ``confidence`` taxonomy) and their levels.
CONFIDENCE_LEVELS = {
    "override": 100, "ownership": 100, "ledger_immanent": 100, "manual_transaction": 90, "service_api": 70,
    "forensic_investigation": 70, "authority_data": 60, "trusted_provider": 50, "service_data": 50,
    "forensic": 50, "untrusted_transaction": 40, "web_crawl": 20, "heuristic": 10, "unknown": 5,
}
# The id written back when only a level is known (export of tags from non-TagPack sources).
LEVEL_IDS = {100: "ownership", 90: "manual_transaction", 70: "forensic_investigation", 60: "authority_data",
             50: "service_data", 40: "untrusted_transaction", 20: "web_crawl", 10: "heuristic", 5: "unknown"}


def confidence_id_for(level: int | None) -> str | None:
    if level is None:
        return None
    best = min(LEVEL_IDS, key=lambda lv: (abs(lv - level), -lv))
    return LEVEL_IDS[best]


@dataclass(frozen=True)
class Reject:
    """A row a source file holds but the registry did not take, and why."""

    file: str
    line: int | None
    address: str | None
    chain: str | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f" {self.chain or '?'} {self.address}" if self.address else ""
        return f"{where}:{what} {self.reason}"


@dataclass
class Actor:
    id: str
    name: str
    aliases: list[str] = field(default_factory=list)
    country: str | None = None  # ISO-3166 alpha-2 (KP...)
    categories: list[str] = field(default_factory=list)
    uri: str | None = None
    references: list[str] = field(default_factory=list)
    related: list[tuple[str, str]] = field(default_factory=list)  # (actor id, relation)
    source_ref: str | None = None  # e.g. the MISP galaxy cluster uuid
    lastmod: str | None = None
    line: int | None = None


@dataclass
class Incident:
    id: str
    date: str  # ISO date of the theft (start of the period)
    victim: str
    date_end: str | None = None  # end of the period for campaigns (FASTCash, cryptojacking...)
    title: str | None = None
    kind: str | None = None  # exchange_hack, bridge_exploit, bank_heist, ransomware, ...
    chains: list[str] = field(default_factory=list)
    asset: str | None = None
    amount_asset: str | None = None  # decimal string in whole units of `asset`
    amount_usd: Decimal | None = None  # exact (as reported; cents at most)
    actor: str | None = None  # actor id (lazarusgroup...)
    actor_detail: str | None = None  # the cluster the source names (TraderTraitor, APT38, ...)
    attribution: str | None = None  # confirmed / suspected
    attributed_by: str | None = None
    sources: list[str] = field(default_factory=list)
    notes: str | None = None
    line: int | None = None
    # provenance of an incident another institution shared (STIX/MISP import); None for CSV and built-in rows
    tlp: str | None = None  # TLP 2.0 level (clear, green, amber, amber+strict, red)
    confidence: int | None = None  # 0-100 as the producer stated it
    producer: str | None = None  # the producing organisation's name
    context: str | None = None  # JSON: the STIX ids (incident, victim identity, producer), markings, bundle


@dataclass
class Seed:
    """An address or transaction linked to an incident (attacker, laundering, victim...)."""

    incident: str
    chain: str
    address: str | None = None
    txid: str | None = None
    role: str | None = None
    side: str | None = None  # attacker / victim
    source: str | None = None
    line: int | None = None


@dataclass
class Aggregate:
    """A sourced figure that is not one incident (e.g. a UN panel total over a period)."""

    id: str
    period_start: str
    period_end: str
    scope: str
    amount_usd: Decimal
    actor: str | None
    sources: list[str]
    line: int | None = None


@dataclass
class Sanction:
    """One digital-currency address of a sanctions-list entry, as one list snapshot states it."""

    asset: str  # list ticker (XBT, ETH, USDT...)
    chain: str
    address: str
    uid: str | None = None  # SDN entity id (FixedRef)
    entity: str | None = None
    party_type: str | None = None
    programs: list[str] = field(default_factory=list)
    listed_date: str | None = None  # date the entity was listed (entry event), when the list says
    line: int | None = None


@dataclass
class Parsed:
    """What one source file holds."""

    kind: str
    path: str
    tags: list[Tag] = field(default_factory=list)
    actors: list[Actor] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    seeds: list[Seed] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)
    sanctions: list[Sanction] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # title, creator, description, list name, as_of, assets covered
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)  # rows taken with a correction worth telling


def iso_date(value, where: str) -> str | None:
    """An ISO date string from a YAML/CSV value (date, datetime, 'YYYY-MM-DD', 'YYYY-MM', 'YYYY')."""
    if value is None or value == "":
        return None
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    text = str(value).strip()
    if len(text) > 10 and text[10] in "T ":
        text = text[:10]  # a timestamp: keep its date
    for fmt in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return _dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    raise UserError(f"{where}: {text!r} is not a date (expected YYYY-MM-DD)")


def parse_date_arg(value: str | None, what: str = "--at") -> str | None:
    """Validate a DATE argument (YYYY-MM-DD, YYYY-MM or YYYY) and return it as an ISO date."""
    if value is None:
        return None
    try:
        return iso_date(value, what)
    except UserError:
        raise UserError(f"{what}: {value!r} is not a date (expected YYYY-MM-DD)") from None


def usd(value, where: str) -> Decimal | None:
    """An exact USD amount from text ('81000000', '1,500,000,000', '$23.5M' is refused: no rounding)."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().replace(",", "").replace("_", "").lstrip("$")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise UserError(f"{where}: {value!r} is not an exact USD amount (digits, optional cents)") from None
    if d < 0 or d != d.quantize(Decimal("0.01")):
        raise UserError(f"{where}: {value!r} is not an exact USD amount (digits, optional cents)")
    return d
