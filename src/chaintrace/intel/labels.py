"""Etherscan-style address labels (JSON scrapes of block explorers).

Layouts read (all of ``../shared/datasets/etherscan-labels-brianleect`` and ``eth-labels-dawsbot``):

* by address: ``{"0xabc...": {"name": "KuCoin 2", "labels": ["kucoin", ...]}, ...}``
  (brianleect ``combined*Labels.json``);
* by label: ``{"exchange": {"accounts": [{"address", "nameTag"}], "tokens": [...]}, ...}``
  (dawsbot ``<chain>_labels_<date>.json``);
* a flat list: ``[{"address", "nameTag"}, ...]`` whose label is ``--label`` or the file name
  (dawsbot ``etherscan_phish-hack_2022-08.json`` -> ``phish-hack``).

One tag per address and file: label = the name tag (or the first label slug), category from the slugs
(``ofac-sanctions-lists`` -> sanction, ``heist`` -> service_hack, ``phish-hack`` -> phishing,
``tornado-cash`` -> mixing_service, exchange names -> exchange, ...), all slugs kept in ``concepts``.
The chain comes from ``--chain`` or the explorer named in the path (etherscan -> eth, bscscan -> bsc...).
Confidence is ``web_crawl`` (20): these are scraped attributions.
"""
from __future__ import annotations

import re
from pathlib import Path

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr
from chaintrace.intel.files import read_json
from chaintrace.intel.model import CONFIDENCE_LEVELS, Parsed, Reject
from chaintrace.model.tags import SERVICE_CATEGORIES, Tag

EXCHANGES = frozenset({
    "binance", "coinbase", "kraken", "okx", "okex", "kucoin", "huobi", "htx", "bitfinex", "bittrex", "poloniex",
    "gemini", "bitstamp", "ftx", "crypto-com", "cryptocom", "gate-io", "gateio", "bybit", "bitget", "mexc",
    "upbit", "bithumb", "coinone", "korbit", "bitmex", "deribit", "hitbtc", "bitflyer", "liquid", "zb-com",
    "bitmart", "lbank", "hotbit", "coinex", "wazirx", "bitpanda", "luno", "exmo", "yobit", "cex-io",
    "coinspot", "btcturk", "paribu", "indodax", "bkex", "digifinex", "phemex", "ascendex", "bitvavo",
    "exchange", "centralized-exchange", "cex",
})
# slug -> category, in order of precedence (first match wins)
SLUG_CATEGORIES = (
    (("ofac-sanctions-lists", "ofac-sanctioned", "sanctioned", "ofac"), "sanction"),
    (("heist", "hacker", "hack"), "service_hack"),
    (("exploit", "exploiter"), "exploit"),
    (("phish-hack", "phishing", "fake-phishing"), "phishing"),
    (("scam", "rug-pull", "honeypot"), "scam"),
    (("ponzi", "ponzi-scheme"), "ponzi_scheme"),
    (("tornado-cash", "mixer", "mixing", "privacy"), "mixing_service"),
    (("blocked", "blacklist", "blacklisted"), "black_list"),
    (("bridge", "cross-chain"), "bridge"),
    (("gambling", "casino"), "gambling"),
    (("mev-bot", "mev"), "mev_bot"),
    (("mining", "mining-pool", "miner"), "mining_service"),
    (("dex", "decentralized-exchange"), "defi_dex"),
    (("otc", "otc-desk"), "otc_broker"),
    (("payments", "payment-processor"), "payment_processor"),
)
_EXPLORER_RE = re.compile(r"(etherscan|bscscan|polygonscan|ftmscan|arbiscan|optimism|avalanche|snowtrace|"
                          r"basescan|celoscan|celo|gnosisscan|gnosis|tronscan)", re.I)


# A label that names a token contract or a router: never a service (a trace would stop at the USDT contract,
# which explorers file under "bitfinex" and "stablecoin").
_TOKEN_SLUGS = frozenset({"token-contract", "stablecoin", "token", "erc20", "erc-20", "bep20", "wrapped-token",
                          "tokens"})
_SYMBOL_RE = re.compile(r"\(([A-Za-z0-9.$-]{1,12})\)\s*$")
_ROUTER_RE = re.compile(r"\b(router|aggregator|proxy|multicall)\b", re.I)
# A wallet number or role after a service name: "Coinbase 10", "Binance Hot Wallet 3", "Kraken: Deposit".
_WALLET_SUFFIX = re.compile(r"(\s*[:#-]?\s*(\d+|hot|cold|wallet|deposit|withdrawal|old|new|address|funder|"
                            r"contract|exchange|\(.*?\)))+\s*$", re.I)


def token_or_router(name: str, slugs: list[str]) -> str | None:
    """"token" / "smart_contract" when the label names a token contract or a router, else None."""
    if set(x.lower() for x in slugs) & _TOKEN_SLUGS or _SYMBOL_RE.search(name or ""):
        return "token"
    if _ROUTER_RE.search(name or ""):
        return "smart_contract"
    return None


def service_entity(name: str) -> str | None:
    """The service a wallet label names, as an actor id: "Coinbase 10" -> "coinbase" (None when empty)."""
    base = _WALLET_SUFFIX.sub("", name or "").strip(" :-#")
    slug = "".join(c for c in base.lower() if c.isalnum())
    return slug or None


def category_for(slugs: list[str]) -> str | None:
    s = [x.lower() for x in slugs]
    for names, cat in SLUG_CATEGORIES:
        if any(x in names for x in s):
            return cat
    if any(x in EXCHANGES for x in s):
        return "exchange"
    return None


def _chain_from_path(path: Path) -> str | None:
    for part in reversed(path.parts):
        m = _EXPLORER_RE.search(part)
        if m:
            return addr.chain_of(m.group(1))
    return None


def _label_from_name(path: Path) -> str:
    stem = re.sub(r"_\d{4}-\d{2}(-\d{2})?$", "", path.stem)
    stem = _EXPLORER_RE.sub("", stem).strip("_-")
    return stem or path.stem


def parse_labels(path: str | Path, *, chain: str | None = None, label: str | None = None,
                 tlp: str | None = None) -> Parsed:
    path = Path(path)
    data = read_json(path)
    chain = (addr.chain_of(chain) if chain else None) or _chain_from_path(path)
    if chain is None:
        raise UserError(f"{path}: cannot tell the chain from the path; give --chain (eth, bsc, polygon...)")
    # address -> [name, slugs, where]
    entries: dict[str, list] = {}

    def add(a, name, slugs, where):
        if not isinstance(a, str):
            out.rejects.append(Reject(str(path), None, None, chain, f"{where}: address is not a string"))
            return
        e = entries.setdefault(a, ["", [], where])
        if name and not e[0]:
            e[0] = str(name).strip()
        e[1] += [s for s in slugs if s not in e[1]]

    out = Parsed(kind="labels", path=str(path))
    if isinstance(data, list):
        slug = label or _label_from_name(path)
        for i, item in enumerate(data):
            if not isinstance(item, dict) or "address" not in item:
                raise UserError(f"{path}: item {i}: expected an object with 'address' (and 'nameTag')")
            add(item["address"], item.get("nameTag") or item.get("name"), [slug], f"item {i}")
        layout = "list"
    elif isinstance(data, dict) and data and all(isinstance(v, dict) and ("accounts" in v or "tokens" in v)
                                                 for v in data.values()):
        for slug, v in data.items():
            for part in ("accounts", "tokens"):
                items = v.get(part) or []
                if not isinstance(items, list):
                    raise UserError(f"{path}: label {slug!r}: '{part}' must be a list")
                for i, item in enumerate(items):
                    if not isinstance(item, dict) or "address" not in item:
                        raise UserError(f"{path}: label {slug!r} {part}[{i}]: expected an object with 'address'")
                    add(item["address"], item.get("nameTag") or item.get("name"),
                        [slug] + (["token-contract"] if part == "tokens" else []), f"{slug} {part}[{i}]")
        layout = "by-label"
    elif isinstance(data, dict):
        for a, v in data.items():
            if not isinstance(v, dict):
                raise UserError(f"{path}: entry {a!r}: expected an object with 'name' and 'labels'")
            slugs = v.get("labels") or []
            if not isinstance(slugs, list):
                raise UserError(f"{path}: entry {a!r}: 'labels' must be a list")
            add(a, v.get("name") or v.get("nameTag"), [str(s) for s in slugs], f"entry {a}")
        layout = "by-address"
    else:
        raise UserError(f"{path}: expected a JSON object or array of labels")
    out.meta = {"title": f"{path.name} ({layout} labels, {chain})", "creator": "block-explorer label scrape"}
    seen = set()
    for a, (name, slugs, where) in entries.items():
        why = addr.check(chain, a.strip())
        if why:
            out.rejects.append(Reject(str(path), None, a, chain, f"{where}: {why}"))
            continue
        k = addr.key(chain, a)
        if k in seen:
            out.duplicates += 1
            continue
        seen.add(k)
        category = category_for(slugs)
        actor = None
        if category in SERVICE_CATEGORIES:
            demoted = token_or_router(name, slugs)
            if demoted:  # a scraped service label alone never makes a token contract or router a sink
                category = demoted
            else:
                actor = service_entity(name) or next((x.lower() for x in slugs if x.lower() in EXCHANGES), None)
        out.tags.append(Tag(
            chain=chain, address=k if addr.is_evm(chain) else a.strip(), label=name or (slugs[0] if slugs else "labelled"),
            category=category, actor=actor, source=f"{path.name} (explorer labels: {', '.join(slugs[:5])})",
            confidence=CONFIDENCE_LEVELS["web_crawl"], tlp=tlp, is_public=tlp is None,
            extra={"concepts": slugs, "confidence_id": "web_crawl", "address_as_written": a.strip(),
                   "currency": chain.upper()}))
    return out
