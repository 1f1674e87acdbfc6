"""The screening configuration: severities, thresholds and hops, from a versioned YAML/JSON file.

The default ships with chaintrace (``chaintrace/data/screen/severity.yaml``, version
``chaintrace-severity/2``); every answer names the version it was scored with.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from chaintrace.errors import UserError

SEVERITIES = ("severe", "high", "medium", "low")
RISKS = ("severe", "high", "medium", "low", "none")
HACK_ABUSES = ("service_hack", "stolen_funds", "exploit", "bridge_exploit", "hacker")
RANK = {"severe": 4, "high": 3, "medium": 2, "low": 1, "none": 0}


@dataclass(frozen=True)
class Rule:
    max_hops: int
    min_share: float
    direct_max_hops: int = -1  # any amount counts at hops <= this


@dataclass(frozen=True)
class Config:
    version: str
    max_hops: int
    policy: str
    hop_weight: float
    stale_days: int
    points: dict
    severity: dict
    dprk_actors: frozenset
    rules: dict
    min_amount: dict
    digest: str = field(default="")
    source: str = "default"
    detections: dict = field(default_factory=dict)  # detection kind -> thresholds (chaintrace.screen.detections)
    bridges: dict = field(default_factory=dict)  # bridge matching thresholds, min_confidence (screen.bridges)

    def severity_of(self, category: str | None, abuse: str | None, actor: str | None) -> str | None:
        """Severity of a source with this category/abuse/actor, or None (not an illicit or high-risk source)."""
        if abuse in HACK_ABUSES and actor and _norm(actor) in self.dprk_actors:
            return self.severity.get("dprk_hack", "severe")
        for k in (abuse, category):
            if k and _norm(k) in self.severity:
                return self.severity[_norm(k)]
        return None

    def weight(self, hops: int) -> float:
        return 1.0 if hops <= 1 else self.hop_weight ** (hops - 1)

    def counts(self, severity: str, hops: int, share: float, amount: int, chain: str) -> bool:
        """Whether an exposure passes its severity's rule (else it is informational)."""
        if amount < int(self.min_amount.get(chain, 0)) and hops > 0:
            return False
        r = self.rules.get(severity)
        if r is None:
            return False
        if hops <= r.direct_max_hops:
            return True
        return hops <= r.max_hops and share >= r.min_share

    def public(self) -> dict:
        return {"version": self.version, "digest": self.digest, "source": self.source}


def _norm(s: str) -> str:
    return s.strip().lower().replace(" ", "_").replace("-", "_")


def _parse(doc: dict, digest: str, source: str) -> Config:
    try:
        sev = {_norm(k): str(v).lower() for k, v in (doc.get("severity") or {}).items()}
        for k, v in sev.items():
            if v not in SEVERITIES:
                raise ValueError(f"severity.{k}: {v!r} is not one of {', '.join(SEVERITIES)}")
        rules = {}
        for name, r in (doc.get("rules") or {}).items():
            if name not in SEVERITIES:
                raise ValueError(f"rules.{name}: not a severity")
            rules[name] = Rule(max_hops=int(r.get("max_hops", doc.get("max_hops", 4))),
                               min_share=float(r.get("min_share", 0.0)),
                               direct_max_hops=int(r.get("direct_max_hops", -1)))
        points = {k: int(v) for k, v in (doc.get("points") or {}).items()}
        for s in SEVERITIES:
            points.setdefault(s, {"severe": 100, "high": 75, "medium": 50, "low": 25}[s])
        cfg = Config(version=str(doc["version"]), max_hops=int(doc.get("max_hops", 4)),
                     policy=str(doc.get("policy", "haircut")), hop_weight=float(doc.get("hop_weight", 0.5)),
                     stale_days=int(doc.get("stale_days", 30)), points=points, severity=sev,
                     dprk_actors=frozenset(_norm(a) for a in doc.get("dprk_actors") or ()), rules=rules,
                     min_amount={str(k): int(v) for k, v in (doc.get("min_amount") or {}).items()},
                     digest=digest, source=source, detections=dict(doc.get("detections") or {}),
                     bridges=dict(doc.get("bridges") or {}))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{source}: bad screening configuration ({e})") from e
    if cfg.policy != "haircut":
        raise UserError(f"{source}: policy {cfg.policy!r}: only haircut is implemented for screening")
    if not 1 <= cfg.max_hops <= 16:
        raise UserError(f"{source}: max_hops {cfg.max_hops}: expected 1..16")
    return cfg


def default_text() -> bytes:
    return resources.files("chaintrace").joinpath("data/screen/severity.yaml").read_bytes()


def load_config(path: str | Path | None = None) -> Config:
    """The configuration in `path` (YAML or JSON), or the shipped default."""
    if path is None:
        raw, source = default_text(), "default"
    else:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise UserError(f"{p}: cannot read the screening configuration ({e.strerror})") from e
        source = str(p)
    try:
        doc = json.loads(raw) if raw.lstrip()[:1] == b"{" else yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise UserError(f"{source}: not YAML/JSON ({e})") from e
    if not isinstance(doc, dict):
        raise UserError(f"{source}: expected a mapping of settings")
    return _parse(doc, hashlib.sha256(raw).hexdigest()[:16], source)
