"""Validation of a submitted tip (JSON object) into its canonical form, or a :class:`TipError` naming the
field. Nothing the tipster sends is trusted: unknown fields, wrong types, oversize text, invalid addresses
(checked per chain), malformed txids, undecodable or oversize attachments are rejected; text is kept
verbatim (it is encrypted, and escaped wherever it is shown)."""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from chaintrace.errors import UserError
from chaintrace.intel import addresses as addr

MAX_BODY = 4 * 1024 * 1024            # bytes of a request body (JSON, attachments base64-encoded)
MAX_ATTACHMENT = 1024 * 1024          # decoded bytes per attachment
MAX_ATTACHMENTS_TOTAL = 2 * 1024 * 1024
MAX_ATTACHMENTS = 3
MAX_NARRATIVE = 20_000
MAX_LIST = 50
CONTENT_TYPES = frozenset({"text/plain", "text/csv", "application/json", "application/pdf", "image/png",
                           "image/jpeg", "image/gif", "image/webp"})
FIELDS = frozenset({"addresses", "txids", "amounts", "time", "narrative", "contact", "anonymous",
                    "attachments", "lang"})
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_ASSET = re.compile(r"^[A-Za-z0-9]{2,10}$")
_NAME = re.compile(r"[^\w.\- ]")


class TipError(UserError):
    """An invalid tip: ``field`` names what is wrong (``addresses[2]``, ``attachments[0].data``...)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _text(v, field: str, limit: int, required: bool = False) -> str | None:
    if v is None or v == "":
        if required:
            raise TipError(field, "required")
        return None
    if not isinstance(v, str):
        raise TipError(field, "must be a string")
    if len(v) > limit:
        raise TipError(field, f"too long ({len(v)} characters, at most {limit})")
    if _CTRL.search(v):
        raise TipError(field, "contains control characters")
    return v


def _address(item, field: str) -> dict:
    chain = None
    if isinstance(item, dict):
        extra = set(item) - {"chain", "address"}
        if extra:
            raise TipError(field, f"unknown key {min(extra)!r}")
        a, chain = item.get("address"), item.get("chain")
    else:
        a = item
    if not isinstance(a, str) or not a or len(a) > 130:
        raise TipError(field, "an address must be a non-empty string of at most 130 characters")
    if chain is not None and (not isinstance(chain, str) or len(chain) > 20):
        raise TipError(field + ".chain", "must be a chain name such as btc or eth")
    c = addr.chain_of(chain, a) if chain else addr.detect(a)
    if c is None:
        raise TipError(field, f"{a[:64]!r} is not a recognised address (give its chain, e.g. "
                              "{\"chain\": \"btc\", \"address\": ...})")
    why = addr.check(c, a)
    if why:
        raise TipError(field, f"not a valid {c} address: {why}")
    return {"chain": c, "address": a}


def _txid(item, field: str) -> dict:
    chain = None
    if isinstance(item, dict):
        extra = set(item) - {"chain", "txid"}
        if extra:
            raise TipError(field, f"unknown key {min(extra)!r}")
        t, chain = item.get("txid"), item.get("chain")
    else:
        t = item
    if not isinstance(t, str):
        raise TipError(field, "a txid must be a string")
    c = (addr.chain_of(chain) if chain else None) or ("eth" if t[:2].lower() == "0x" else "btc")
    body = t[2:] if t[:2].lower() == "0x" else t
    if addr.is_evm(c) and not t[:2].lower() == "0x":
        raise TipError(field, f"a {c} transaction hash is 0x followed by 64 hex digits")
    if not _HEX64.match(body):
        raise TipError(field, f"{t[:80]!r} is not a transaction id (64 hex digits{', 0x-prefixed' if addr.is_evm(c) else ''})")
    return {"chain": c, "txid": t.lower()}


def _amount(item, field: str) -> dict:
    if not isinstance(item, dict) or set(item) - {"value", "asset"}:
        raise TipError(field, "an amount is {\"value\": \"1.5\", \"asset\": \"BTC\"}")
    v, asset = item.get("value"), item.get("asset")
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise TipError(field + ".value", "give the value as a decimal string (\"1.5\") or an integer")
    try:
        d = Decimal(str(v).replace(",", ""))
    except InvalidOperation:
        raise TipError(field + ".value", f"{str(v)[:40]!r} is not a number") from None
    if not d.is_finite() or d < 0 or len(str(v)) > 40:
        raise TipError(field + ".value", "must be a non-negative number")
    if not isinstance(asset, str) or not _ASSET.match(asset):
        raise TipError(field + ".asset", "an asset ticker (BTC, ETH, USDT, USD...)")
    return {"value": str(d), "asset": asset.upper()}


def _attachment(item, field: str) -> dict:
    if not isinstance(item, dict) or set(item) - {"name", "content_type", "data"}:
        raise TipError(field, "an attachment is {\"name\", \"content_type\", \"data\" (base64)}")
    name = _text(item.get("name"), field + ".name", 200, required=True) or ""
    name = _NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(". ") or "attachment"
    ctype = item.get("content_type") or "application/octet-stream"
    if ctype not in CONTENT_TYPES:
        raise TipError(field + ".content_type", f"{str(ctype)[:60]!r} is not accepted (one of "
                                                f"{', '.join(sorted(CONTENT_TYPES))})")
    data = item.get("data")
    if not isinstance(data, str):
        raise TipError(field + ".data", "base64 text required")
    if len(data) > MAX_ATTACHMENT * 4 // 3 + 8:
        raise TipError(field + ".data", f"attachment larger than {MAX_ATTACHMENT} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise TipError(field + ".data", "not valid base64") from None
    if len(raw) > MAX_ATTACHMENT:
        raise TipError(field + ".data", f"attachment of {len(raw)} bytes is larger than {MAX_ATTACHMENT}")
    return {"name": name[:120], "content_type": ctype, "size": len(raw),
            "data": base64.b64encode(raw).decode()}


def _list(v, field: str, fn, limit: int = MAX_LIST) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise TipError(field, "must be a list")
    if len(v) > limit:
        raise TipError(field, f"at most {limit} entries")
    return [fn(x, f"{field}[{i}]") for i, x in enumerate(v)]


def validate_tip(tip) -> dict:
    """The canonical tip, or TipError. At least one address, txid or a narrative is required."""
    if not isinstance(tip, dict):
        raise TipError("body", "a tip is a JSON object")
    extra = set(tip) - FIELDS
    if extra:
        raise TipError(min(extra), "unknown field")
    out: dict[str, Any] = {
        "addresses": _list(tip.get("addresses"), "addresses", _address),
        "txids": _list(tip.get("txids"), "txids", _txid),
        "amounts": _list(tip.get("amounts"), "amounts", _amount, 20),
        "narrative": _text(tip.get("narrative"), "narrative", MAX_NARRATIVE),
        "contact": _text(tip.get("contact"), "contact", 300),
        "attachments": _list(tip.get("attachments"), "attachments", _attachment, MAX_ATTACHMENTS),
    }
    anon = tip.get("anonymous", out["contact"] is None)
    if not isinstance(anon, bool):
        raise TipError("anonymous", "must be true or false")
    if anon and out["contact"]:
        raise TipError("contact", "an anonymous tip carries no contact (leave one of them out)")
    out["anonymous"] = anon
    t = _text(tip.get("time"), "time", 40)
    if t is not None:
        try:
            _dt.datetime.fromisoformat(t)
        except ValueError:
            raise TipError("time", f"{t!r} is not an ISO date or date-time (2024-05-01 or 2024-05-01T13:00Z)") from None
    out["time"] = t
    lang = tip.get("lang", "en")
    if lang not in ("en", "ar"):
        raise TipError("lang", "en or ar")
    out["lang"] = lang
    if sum(a["size"] for a in out["attachments"]) > MAX_ATTACHMENTS_TOTAL:
        raise TipError("attachments", f"more than {MAX_ATTACHMENTS_TOTAL} bytes in all")
    if not (out["addresses"] or out["txids"] or out["narrative"]):
        raise TipError("body", "a tip needs at least an address, a transaction id or a narrative")
    return out
