"""The trace report: one schema for every chain (documented in docs/tracing.md).

A report says where traced value went, in exact integer base units: transfers into sinks (services where
funds are cashed out or leave the public graph), value still held (unspent / not moved), value the trace
stopped following (and why), and fees. The invariant, checked by :func:`check_invariant` before any report
leaves an engine::

    for every asset:  sum(sinks) + sum(holdings) + sum(stopped) + fees == total_seeded

JSON form (:meth:`TraceReport.to_dict`): amounts are decimal strings of base units (exact at any size);
times are Unix seconds (UTC) plus an ISO-8601 copy in ``*_iso`` fields. :meth:`TraceReport.from_dict`
reads it back. Renderers: :mod:`chaintrace.report.text` (text, CSV) and :mod:`chaintrace.report.html`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from chaintrace.errors import ChaintraceError
from chaintrace.model.ids import is_synthetic_txid

SCHEMA = "chaintrace.trace/1"


class InvariantError(ChaintraceError):
    """A report that does not conserve value: a bug in an engine, never a user error."""


def iso(ts: int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Seed:
    """One ``--from`` argument and the value it put into the trace."""

    spec: str  # as given: address, txid or txid:vout (EVM: address or tx hash)
    kind: str  # address | tx | output
    amount: int  # value seeded (value already carrying taint of an earlier seed is not counted twice)
    asset: str
    outputs: int  # outputs / transfers seeded
    nominal: int  # value of those outputs (amount + overlap with earlier seeds)


@dataclass
class Sink:
    """One transfer into a sink (a service address): where stolen value is cashed out."""

    address: str
    label: str
    category: str | None
    actor: str | None
    amount: int  # traced value in this transfer
    asset: str
    hops: int  # transactions between a seed and this transfer (minimum over the traced value)
    txid: str
    time: int | None
    ref: str  # txid:vout (EVM: txid:log index or txid:trace address)
    value: int  # full value of the transfer
    source: str | None = None  # where the attribution comes from
    via_cluster: bool = False  # the address is a sink because its cluster carries the tag
    by_seed: list[int] | None = None  # amount per seed (present when the trace has several seeds)
    actor_name: str | None = None  # the label of `actor` (intelligence registry / ActorPack), when known
    reason: str | None = None  # "service_like": a sink because it behaves like a service (no tag says so)
    detection: dict | None = None  # the service detection (kind, confidence, features, thresholds, hub)
    bridge: list | None = None  # bridge sinks: matched transfers on the other chain (chaintrace.trace.bridges)


@dataclass
class Holding:
    """Traced value still held: an unspent output (EVM: a balance) that carries taint."""

    address: str | None
    amount: int
    asset: str
    ref: str
    hops: int
    time: int | None
    value: int
    label: str | None = None  # attribution of the address, when tagged (e.g. the thief's own address)
    by_seed: list[int] | None = None


@dataclass
class Stopped:
    """Traced value the engine stopped following, aggregated per (reason, address)."""

    reason: str  # below_threshold | max_hops | until | max_txs | unspendable | coinjoin | ...
    amount: int
    asset: str
    address: str | None
    outputs: int  # outputs / transfers aggregated here
    hops: int  # minimum
    ref: str  # the largest of them
    time: int | None  # earliest
    by_seed: list[int] | None = None


@dataclass
class Step:
    """One hop of a path: the output (transfer) that carried traced value."""

    hop: int
    txid: str
    ref: str
    address: str | None
    amount: int  # traced value carried by this output
    value: int  # its full value
    time: int | None
    label: str | None = None


@dataclass
class TracePath:
    """The dominant path from a seed to one report entry: at each step back, the input that contributed
    the most traced value."""

    to: str | None  # address at the end
    kind: str  # sink | holding | stopped reason | passed (an intermediate output)
    amount: int
    asset: str
    steps: list[Step]


@dataclass
class TraceReport:
    chain: str
    network: str
    policy: dict  # {"name": ..., "params": {...}}
    limits: dict
    seeds: list[Seed]
    assets: dict  # asset id (contract address, or the native symbol) -> {"decimals": int, ["address", "symbol"]}
    total_seeded: dict  # asset -> int
    sinks: list[Sink]
    holdings: list[Holding]
    stopped: list[Stopped]
    fees: dict  # asset -> int (taint paid to miners / gas)
    stats: dict
    partial: bool = False
    partial_reason: str | None = None
    paths: list[TracePath] = field(default_factory=list)  # top paths (largest sink transfers)
    explain: list[dict] = field(default_factory=list)  # {"address", "found", "note", "paths": [TracePath]}
    tags: dict = field(default_factory=dict)  # {"files": [...], "registry": bool, "sink_addresses": n, ...}
    coverage: dict = field(default_factory=dict)  # what the data covers (chaintrace.trace.evidence)
    assumptions: dict = field(default_factory=dict)  # policy, thresholds, assumed opening balances
    schema: str = SCHEMA
    # trace --through-mixers: value followed along probabilistic custodial-mixer links, apart from the
    # deterministic taint: {"note", "params", "mixers": [...], "links": [...], "trace": TraceReport | None}
    probabilistic: dict | None = None
    # trace --coinjoins link: value stopped at CoinJoin rounds, followed along the outputs linked to the traced
    # side by their later spending (chaintrace.trace.postmix): {"note", "params", "rules", "rounds", "links",
    # "trace": TraceReport | None}
    coinjoin_links: dict | None = None
    # laundering shapes touching the traced paths (chaintrace.trace.detections): {"thresholds", "data",
    # "counts", "detections": {kind: [...]}, "note"}; None when not computed
    detections: dict | None = None
    # trace --through-bridges: the continuation on the other chain from matched bridge releases
    # (chaintrace.trace.crosschain): {"note", "conversion", "flows": [{..., "trace": TraceReport}], "deposits", ...}
    cross_chain: dict | None = None

    # ------------------------------------------------------------------ totals

    def totals(self, asset: str | None = None) -> dict:
        """Per asset: seeded, sinks, holdings, stopped, fees (ints)."""
        out = {}
        for a in self.assets:
            out[a] = {
                "seeded": self.total_seeded.get(a, 0),
                "sinks": sum(s.amount for s in self.sinks if s.asset == a),
                "holdings": sum(h.amount for h in self.holdings if h.asset == a),
                "stopped": sum(s.amount for s in self.stopped if s.asset == a),
                "fees": self.fees.get(a, 0),
            }
        return out[asset] if asset else out

    @property
    def asset(self) -> str:
        """The main asset (the one with the most seeded value)."""
        return max(self.assets, key=lambda a: self.total_seeded.get(a, 0))

    def asset_label(self, asset: str | None = None) -> str:
        """How people see an asset: amounts are keyed by the asset id (a token's contract address, never its
        symbol: symbols are not unique and scam tokens copy them); a known symbol is shown beside it,
        e.g. ``USDT (0xdac17f958d2ee523a2206206994597c13d831ec7)``."""
        a = asset or self.asset
        info = self.assets.get(a) or {}
        sym = info.get("symbol")
        return f"{sym} ({a})" if sym and sym != a else a

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        def amt(d: dict) -> dict:
            return {k: str(v) for k, v in d.items()}

        def row(obj, amount_keys=("amount", "value", "nominal")) -> dict:
            d = asdict(obj)
            for k in amount_keys:
                if k in d and d[k] is not None:
                    d[k] = str(d[k])
            if d.get("by_seed") is not None:
                d["by_seed"] = [str(x) for x in d["by_seed"]]
            elif "by_seed" in d:
                del d["by_seed"]
            for k in ("reason", "detection"):  # sink rows: present only for services detected by behaviour
                if k in d and d[k] is None:
                    del d[k]
            if "bridge" in d and d["bridge"] is None:
                del d["bridge"]
            if "time" in d:
                d["time_iso"] = iso(d["time"])
            if is_synthetic_txid(d.get("txid")) or is_synthetic_txid(d.get("ref")):
                d["synthetic_id"] = True  # made up by chaintrace for a transfer list: not an on-chain id
            return d

        def path(p: TracePath) -> dict:
            return {"to": p.to, "kind": p.kind, "amount": str(p.amount), "asset": p.asset,
                    "steps": [row(s) for s in p.steps]}

        return {
            "schema": self.schema,
            "chain": self.chain,
            "network": self.network,
            "policy": self.policy,
            "limits": self.limits,
            "seeds": [row(s) for s in self.seeds],
            "assets": self.assets,
            "total_seeded": amt(self.total_seeded),
            "sinks": [row(s) for s in self.sinks],
            "holdings": [row(h) for h in self.holdings],
            "stopped": [row(s) for s in self.stopped],
            "fees": amt(self.fees),
            "partial": self.partial,
            "partial_reason": self.partial_reason,
            "stats": self.stats,
            "tags": self.tags,
            "coverage": self.coverage,
            "assumptions": self.assumptions,
            "entities": [{**e, "amount": str(e["amount"])} for e in entities(self)],
            "paths": [path(p) for p in self.paths],
            "explain": [{**{k: v for k, v in e.items() if k != "paths"}, "paths": [path(p) for p in e["paths"]]}
                        for e in self.explain],
            **({"detections": self.detections} if self.detections is not None else {}),
            **({"probabilistic": {**self.probabilistic, "trace": self.probabilistic["trace"].to_dict()
                                  if self.probabilistic.get("trace") is not None else None}}
               if self.probabilistic is not None else {}),
            **({"coinjoin_links": {**self.coinjoin_links, "trace": self.coinjoin_links["trace"].to_dict()
                                   if self.coinjoin_links.get("trace") is not None else None}}
               if self.coinjoin_links is not None else {}),
            **({"cross_chain": {**self.cross_chain, "flows": [{**f, "trace": f["trace"].to_dict()}
                                                              for f in self.cross_chain["flows"]]}}
               if self.cross_chain is not None else {}),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def write_json(self, path: str | Path) -> Path:
        """Write the JSON report atomically (a temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, d: dict) -> "TraceReport":
        if d.get("schema") != SCHEMA:
            raise ChaintraceError(f"not a {SCHEMA} report (schema {d.get('schema')!r})")

        def load(kind, x: dict, amount_keys=("amount", "value", "nominal")):
            names = {f.name for f in fields(kind)}
            x = {k: v for k, v in x.items() if k in names}
            for k in amount_keys:
                if k in x and x[k] is not None:
                    x[k] = int(x[k])
            if x.get("by_seed") is not None:
                x["by_seed"] = [int(v) for v in x["by_seed"]]
            return kind(**x)

        def path(p: dict) -> TracePath:
            return TracePath(p["to"], p["kind"], int(p["amount"]), p["asset"], [load(Step, s) for s in p["steps"]])

        return cls(
            chain=d["chain"], network=d["network"], policy=d["policy"], limits=d["limits"],
            seeds=[load(Seed, s) for s in d["seeds"]], assets=d["assets"],
            total_seeded={k: int(v) for k, v in d["total_seeded"].items()},
            sinks=[load(Sink, s) for s in d["sinks"]], holdings=[load(Holding, h) for h in d["holdings"]],
            stopped=[load(Stopped, s) for s in d["stopped"]], fees={k: int(v) for k, v in d["fees"].items()},
            stats=d["stats"], partial=d["partial"], partial_reason=d.get("partial_reason"),
            paths=[path(p) for p in d.get("paths", [])],
            explain=[{**e, "paths": [path(p) for p in e["paths"]]} for e in d.get("explain", [])],
            tags=d.get("tags", {}), coverage=d.get("coverage") or {}, assumptions=d.get("assumptions") or {},
            detections=d.get("detections"),
            probabilistic=({**d["probabilistic"], "trace": cls.from_dict(d["probabilistic"]["trace"])
                            if d["probabilistic"].get("trace") else None} if d.get("probabilistic") else None),
            coinjoin_links=({**d["coinjoin_links"], "trace": cls.from_dict(d["coinjoin_links"]["trace"])
                             if d["coinjoin_links"].get("trace") else None} if d.get("coinjoin_links") else None),
            cross_chain=({**d["cross_chain"], "flows": [{**f, "trace": cls.from_dict(f["trace"])}
                                                        for f in d["cross_chain"]["flows"]]}
                         if d.get("cross_chain") else None),
        )

    @classmethod
    def read_json(cls, path: str | Path) -> "TraceReport":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ChaintraceError(f"{path}: not a readable trace report ({e})") from e


def check_invariant(report: TraceReport) -> None:
    """Raise :class:`InvariantError` unless, per asset, sinks + holdings + stopped + fees == seeded exactly,
    the seeds add up to the total, and no amount is negative."""
    for a, t in report.totals().items():
        got = t["sinks"] + t["holdings"] + t["stopped"] + t["fees"]
        if got != t["seeded"]:
            raise InvariantError(
                f"{report.chain} {a}: sinks {t['sinks']} + holdings {t['holdings']} + stopped {t['stopped']} + "
                f"fees {t['fees']} = {got} != total seeded {t['seeded']} (policy {report.policy.get('name')})")
        seeds = sum(s.amount for s in report.seeds if s.asset == a)
        if seeds != t["seeded"]:
            raise InvariantError(f"{report.chain} {a}: seeds add up to {seeds}, total_seeded is {t['seeded']}")
    for rows in (report.sinks, report.holdings, report.stopped, report.seeds):
        for r in rows:
            if r.amount < 0:
                raise InvariantError(f"negative amount in {r}")
    if report.probabilistic:
        check_probabilistic(report)
    if report.coinjoin_links:
        from chaintrace.trace.postmix import check_coinjoin_links

        check_coinjoin_links(report)
    if report.cross_chain:
        from chaintrace.trace.crosschain import check_cross_chain

        check_cross_chain(report)


def check_probabilistic(report: TraceReport) -> None:
    """``trace --through-mixers``: per mixer, traced in == linked out + held (held >= 0); the mixers' linked
    out == the probabilistic trace's seeded total, which satisfies the invariant itself."""
    sec = report.probabilistic or {}
    sub = sec.get("trace")
    seeded = 0
    if sub is not None:
        check_invariant(sub)
        seeded = sub.total_seeded.get(report.asset, 0)
    out = sum(int(m["linked_out"]) for m in sec.get("mixers", []))
    if out != seeded:
        raise InvariantError(f"mixers' linked out {out} != probabilistic trace seeded {seeded}")
    for m in sec.get("mixers", []):
        if int(m["traced_in"]) != int(m["linked_out"]) + int(m["held"]) or int(m["held"]) < 0:
            raise InvariantError(f"mixer {m['entity']}: traced in {m['traced_in']} != linked out "
                                 f"{m['linked_out']} + held {m['held']}")
    in_mixers = sum(s.amount for s in report.sinks if s.category == "mixing_service")
    if sum(int(m["traced_in"]) for m in sec.get("mixers", [])) != in_mixers:
        raise InvariantError(f"mixers' traced in != the trace's transfers into mixers ({in_mixers})")


# ---------------------------------------------------------------------- summaries


def entity_key(s: Sink) -> str:
    """The receiving entity of a sink transfer: its actor id (every tag of one service: deposit addresses,
    hot and cold wallets), else its tag label, else the address."""
    return s.actor or s.label or s.address


def entity_name(s: Sink) -> str:
    """How the receiving entity is shown: the actor's label, else the actor id, else the tag label."""
    return s.actor_name or s.actor or s.label or s.address


def entities(report: TraceReport) -> list[dict]:
    """Per receiving entity (actor, else label; named by :func:`entity_name`): amount, share of the seeded
    value, hop range, first and last time, number of transfers and deposit addresses; largest first."""
    groups: dict[tuple, dict] = {}
    for s in report.sinks:
        key = (entity_key(s), s.category, s.asset)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"entity": entity_name(s), "actor": s.actor, "category": s.category,
                               "asset": s.asset, "amount": 0,
                               "hops_min": s.hops, "hops_max": s.hops, "first_time": s.time,
                               "last_time": s.time, "transfers": 0, "_addr": set()}
        g["amount"] += s.amount
        g["hops_min"] = min(g["hops_min"], s.hops)
        g["hops_max"] = max(g["hops_max"], s.hops)
        if s.time is not None:
            g["first_time"] = s.time if g["first_time"] is None else min(g["first_time"], s.time)
            g["last_time"] = s.time if g["last_time"] is None else max(g["last_time"], s.time)
        g["transfers"] += 1
        g["_addr"].add(s.address)
    out = []
    for g in groups.values():
        total = report.total_seeded.get(g["asset"], 0)
        g["addresses"] = len(g.pop("_addr"))
        g["share"] = round(g["amount"] / total, 6) if total else 0.0
        g["first_time_iso"] = iso(g["first_time"])
        g["last_time_iso"] = iso(g["last_time"])
        out.append(g)
    out.sort(key=lambda g: (-g["amount"], g["entity"]))
    return out


def stopped_by_reason(report: TraceReport) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in report.stopped:
        out[s.reason] = out.get(s.reason, 0) + s.amount
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def compare(reports: list[TraceReport]) -> list[dict]:
    """Per entity, the amount each report sends there (reports of the same seeds under different policies):
    ``{"entity", "actor", "category", "asset", "amounts": [int per report], "spread": max - min}``, largest
    first."""
    rows: dict[tuple, dict] = {}
    for i, r in enumerate(reports):
        for e in entities(r):
            key = (e["actor"] or e["entity"], e["category"], e["asset"])
            row = rows.setdefault(key, {"entity": e["entity"], "actor": e["actor"], "category": key[1],
                                        "asset": key[2],
                                        "amounts": [0] * len(reports), "hops": [None] * len(reports),
                                        "first_time": [None] * len(reports)})
            row["amounts"][i] = e["amount"]
            row["hops"][i] = (e["hops_min"], e["hops_max"])
            row["first_time"][i] = e["first_time"]
    out = list(rows.values())
    for row in out:
        row["spread"] = max(row["amounts"]) - min(row["amounts"])
    out.sort(key=lambda r: (-max(r["amounts"]), r["entity"]))
    return out
