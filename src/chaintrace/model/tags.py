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
})

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
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_service(self) -> bool:
        return self.category in SERVICE_CATEGORIES
