"""Attribution tags: the vocabulary shared by the intelligence registry, tracing, clustering and screening.

Categories are the INTERPOL Darkweb & Virtual Assets (DW-VA) taxonomy concepts used by GraphSense TagPacks
(see graphsense-lib ``tagpack/db/concepts.yaml``). :data:`SERVICE_CATEGORIES` are the categories whose
addresses are custodial or otherwise *stop* a trace: funds that reach them are cashed out or leave the
public graph (exchanges, OTC desks, custodial wallets, payment processors, gambling, mixers, bridges...).
"""
from __future__ import annotations

from dataclasses import dataclass, field

# DW-VA / GraphSense concept ids (subset used by the public TagPacks plus the ones tracing relies on).
CATEGORIES = frozenset({
    "exchange", "market", "otc_broker", "payment_processor", "wallet_service", "custodial_wallet",
    "mixing_service", "coinjoin", "bridge", "defi", "defi_dex", "defi_bridge", "defi_lending", "dex",
    "gambling", "mining_service", "miner", "hosting", "atm", "ico_wallet", "donation", "faucet",
    "service_hack", "hacker", "exploit", "sanction", "ransomware", "scam", "phishing", "malware",
    "darkweb", "terrorism", "child_sexual_abuse_material", "smart_contract", "token", "organization",
    "entity", "user", "perpetrator", "victim", "unknown",
    # further DW-VA concepts seen in the public TagPacks and label scrapes
    "service", "black_list", "gov_black_list", "extremism", "terrorism_financing", "sextortion", "extortion",
    "ponzi_scheme", "pyramid_scheme", "investment_fraud", "money_laundering", "account_hack", "data_breach",
    "social_engineering", "hacking", "financial_crime", "drugs", "weapons", "human_trafficking",
    "child_sexual_abuse", "mixing", "bridge_exploit", "mev_bot",
})

# Categories too generic to describe an address on their own: when a tag also names an abuse (GraphSense's
# ``abuse`` field: sanction, service_hack, ransomware...), the abuse becomes the tag's primary category.
GENERIC_CATEGORIES = frozenset({"user", "organization", "entity", "service", "unknown"})

SERVICE_CATEGORIES = frozenset({
    "exchange", "otc_broker", "payment_processor", "wallet_service", "custodial_wallet", "mixing_service",
    "coinjoin", "bridge", "defi_bridge", "gambling", "market", "atm", "mining_service",
})


@dataclass(frozen=True)
class Tag:
    """One attribution of an address."""

    chain: str  # btc, eth, trx, ltc, ... (lower-case ticker of the network)
    address: str  # as the chain writes it (EVM addresses: lower-case)
    label: str
    category: str | None = None
    actor: str | None = None
    source: str | None = None
    confidence: int | None = None  # GraphSense confidence level (5..100)
    tlp: str | None = None
    is_public: bool = True
    valid_from: str | None = None  # ISO date; None = always
    valid_to: str | None = None
    lastmod: str | None = None
    abuse: str | None = None  # GraphSense abuse concept (sanction, service_hack...), when given apart from category
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_service(self) -> bool:
        return self.category in SERVICE_CATEGORIES

    def valid_at(self, date: str | None) -> bool:
        """True when the tag holds on ISO date `date` (``valid_from <= date < valid_to``; None = always)."""
        if date is None:
            return True
        if self.valid_from is not None and date < self.valid_from:
            return False
        return self.valid_to is None or date < self.valid_to


def primary_category(category: str | None, abuse: str | None) -> str | None:
    """The one category a tag is filed under: a specific entity category (exchange, mixing_service...) wins;
    a generic one (user, organization...) gives way to the abuse (sanction, service_hack...)."""
    if category and (category not in GENERIC_CATEGORIES or not abuse):
        return category
    return abuse or category
