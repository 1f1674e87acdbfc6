"""Tracing stolen funds: taint policies, propagation engines and the chain-neutral trace report.

Library entry point (``chaintrace trace`` calls it)::

    >>> import chaintrace
    >>> from chaintrace.trace import trace
    >>> r = trace(chaintrace.Workspace("chaintrace-data"), ["<txid of the theft>"], policy="fifo")  # doctest: +SKIP
    >>> r.totals("BTC")                                                                          # doctest: +SKIP

Each chain registers a :class:`Tracer` in :data:`TRACERS` (Bitcoin: :mod:`chaintrace.trace.btc`); every tracer
returns the same :class:`~chaintrace.trace.report.TraceReport` (docs/tracing.md), whose value invariant is
checked before it is returned.

Modules: :mod:`.policies` (pure split functions), :mod:`.kernels` (numba engine), :mod:`.sinks` (which
addresses stop a trace), :mod:`.report` (schema, invariant, summaries), :mod:`.render` (text and CSV),
:mod:`chaintrace.report.html` (one-page HTML summary).
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from chaintrace.errors import UserError
from chaintrace.model.chains import resolve_chain
from chaintrace.progress import NULL, Progress
from chaintrace.trace.report import TraceReport, check_invariant

__all__ = ["trace", "read_seed_file", "TraceRequest", "Tracer", "TRACERS", "Bound", "parse_bound", "TraceReport"]


@dataclass(frozen=True)
class Bound:
    """A point on the chain: a block height or a Unix time (seconds, UTC)."""

    kind: str  # "height" | "time"
    value: int

    def __str__(self) -> str:
        if self.kind == "height":
            return f"height {self.value}"
        return datetime.fromtimestamp(self.value, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "value": self.value}


def parse_bound(text: str | int | Bound | None, option: str = "--until") -> Bound | None:
    """``800000`` (a height: integers below 500,000,000, as in nLockTime), ``1700000000`` (Unix time),
    ``2024-03-01`` or ``2024-03-01T12:00:00[Z|+hh:mm]`` (UTC unless a zone is given)."""
    if text is None or isinstance(text, Bound):
        return text
    s = str(text).strip()
    if re.fullmatch(r"\d+", s):
        v = int(s)
        return Bound("height", v) if v < 500_000_000 else Bound("time", v)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{option} {s!r}: expected a block height, a Unix time or a date "
                        "(YYYY-MM-DD[THH:MM:SS])") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return Bound("time", int(dt.timestamp()))


@dataclass
class TraceRequest:
    """Everything a tracer needs; :func:`trace` fills and validates it."""

    seeds: list[str]
    policy: str = "haircut"
    fee_mode: str = "tail"
    max_hops: int | None = None
    min_value: int | None = None  # base units; None: the chain's default
    min_share: float = 0.0  # of the seeded value
    since: Bound | None = None
    until: Bound | None = None
    max_txs: int | None = None
    tag_files: list[str] = field(default_factory=list)
    actor_files: list[str] = field(default_factory=list)  # ActorPacks naming the sinks' actors
    registry: bool = True
    clusters: bool = True
    explain: list[str] = field(default_factory=list)
    top_paths: int = 5
    coinjoins: str = "follow"  # follow | stop (value entering a detected CoinJoin is reported as stopped) | link
    activation_heights: bool = True  # CoinJoin detectors: mainnet activation heights (False: simulated chains)
    follow_services: bool = False  # True: do not stop at services detected by behaviour (service_like sinks)
    through_mixers: bool = False  # follow custodial-mixer payouts linked to traced deposits (probabilistic)
    mixer_params: dict = field(default_factory=dict)  # linking parameters (chaintrace.detect.mixers.DEFAULTS)
    detections: bool = False  # Bitcoin: list the laundering shapes touching the traced paths (trace.detections)


@dataclass(frozen=True)
class Tracer:
    chain: str
    policies: tuple[str, ...]
    fee_modes: tuple[str, ...]
    default_min_value: int
    run: Callable[..., TraceReport]  # run(ws, request, progress) -> TraceReport
    asset: str


TRACERS: dict[str, Tracer] = {}
# Modules that register a tracer when imported (Ethereum adds "chaintrace.trace.eth" or similar).
TRACER_MODULES = {"btc": "chaintrace.trace.btc", "eth": "chaintrace.trace.eth"}


def get_tracer(chain: str) -> Tracer:
    if chain not in TRACERS and chain in TRACER_MODULES:
        try:
            importlib.import_module(TRACER_MODULES[chain])
        except ModuleNotFoundError as e:
            if e.name != TRACER_MODULES[chain]:
                raise
    if chain not in TRACERS:
        known = sorted(set(TRACERS) | {c for c in TRACER_MODULES if c == "btc"})
        raise UserError(f"no tracer for chain {chain!r} (available: {', '.join(known)})")
    return TRACERS[chain]


def trace(ws, seeds: list[str], *, chain: str = "btc", policy: str = "haircut", fee_mode: str = "tail",
          max_hops: int | None = None, min_value: int | None = None, min_share: float = 0.0,
          since=None, until=None, max_txs: int | None = None, tags=(), actors=(), registry: bool = True,
          clusters: bool = True, explain=(), top_paths: int = 5, coinjoins: str = "follow",
          activation_heights: bool = True, follow_services: bool = False, through_mixers: bool = False,
          mixer_params: dict | None = None, through_bridges: bool = False, bridge_params: dict | None = None,
          detections: bool = False,
          progress: Progress = NULL) -> TraceReport:
    """Follow the value of `seeds` forward through the chain under a taint `policy`.

    Seeds (Bitcoin): an address (every output it received, within `since`..`until`), a txid (its outputs)
    or ``txid:vout``. Policies: see :mod:`chaintrace.trace.policies`. Limits: `max_hops`, `min_value`
    (base units; default per chain), `min_share` (fraction of the seeded value), `until` (height or time;
    later spends are not followed), `max_txs` (stop with a partial result). Sinks come from the intelligence
    registry (`registry`) and TagPack files (`tags`); with `clusters`, every member of a tagged cluster is a
    sink when a clustering is available. Sink transfers are grouped per receiving service by the tags' actor
    id, named by the actor's label from the registry (built-in actors, imported ActorPacks) or the ActorPack
    files `actors` (read directly, no import needed); an unknown actor is shown by its id. `explain`:
    addresses whose paths from the seeds the report carries.
    `coinjoins="stop"`: value entering a transaction the CoinJoin detectors recognise is not followed (reason
    ``coinjoin``); ``"follow"`` (default) applies the policy through it like any transaction; ``"link"``
    (Bitcoin) stops there too, then follows the rounds' outputs that their later spending links to the traced
    side (:mod:`chaintrace.trace.postmix`), reported apart in ``report.coinjoin_links``.
    `activation_heights=False` drops the detectors' mainnet activation heights (a simulated ``main`` chain
    starts at genesis, below the height of the first real Wasabi/Whirlpool round), as ``cluster build``.
    `through_mixers` (Bitcoin): value reaching a custodial mixer (a ``mixing_service`` sink) is also followed
    along the mixer's payouts linked to its deposits by amount minus a fee and delay
    (:mod:`chaintrace.trace.mixers`; `mixer_params`: fee_min, fee_max, delay_min, delay_max, max_parts,
    min_confidence, and the post-mix evidence: postmix (on unless false), postmix_hops, postmix_max_receipts),
    reported apart in ``report.probabilistic``.
    `detections` (Bitcoin): ``report.detections`` lists the peel chains, fan-outs/ins, structuring, rapid
    pass-through and dormancy touching the traced paths, and each `explain` entry those touching its address
    (:mod:`chaintrace.trace.detections`; off by default in the library, on by default in ``chaintrace trace``:
    it runs the flow detectors over the whole store, seconds at a few hundred thousand transactions).
    `through_bridges`: value reaching a bridge whose release on the other chain is in the store is followed on
    that chain from the release, carrying the matched share (:mod:`chaintrace.trace.crosschain`; deterministic
    ``event`` matches as taint, ``amount+time`` ones probabilistic), in ``report.cross_chain``. `bridge_params`:
    ``bridges`` (addresses of the bridge on the other chain; default: its ``bridge`` tags), ``min_confidence``
    and the matching thresholds fee_min, fee_max, fee_fixed, delay_min, delay_max (docs/detection.md).

    Raises :class:`~chaintrace.errors.UserError` for bad requests (unknown seed, empty store, unsupported
    policy, contradicting limits). The returned report satisfies the value invariant exactly.
    """
    chain = resolve_chain(chain)
    tracer = get_tracer(chain)
    if not seeds:
        raise UserError("nothing to trace: give at least one seed (--from ADDRESS|TXID|TXID:VOUT)")
    if policy not in tracer.policies:
        raise UserError(f"policy {policy!r} is not supported for {chain} (choose from {', '.join(tracer.policies)})")
    if fee_mode not in tracer.fee_modes:
        raise UserError(f"fee mode {fee_mode!r} is not supported for {chain} "
                        f"(choose from {', '.join(tracer.fee_modes)})")
    if max_hops is not None and max_hops < 0:
        raise UserError(f"--max-hops must be 0 or more, not {max_hops}")
    if min_value is not None and min_value < 0:
        raise UserError(f"--min-value must be 0 or more base units, not {min_value}")
    if not 0.0 <= float(min_share) <= 1.0:
        raise UserError(f"--min-share is a fraction of the seeded value between 0 and 1, not {min_share}")
    if max_txs is not None and max_txs < 1:
        raise UserError(f"--max-txs must be at least 1, not {max_txs}")
    if top_paths < 0:
        raise UserError("top_paths must be 0 or more")
    if coinjoins not in ("follow", "stop", "link"):
        raise UserError(f"--coinjoins must be follow, stop or link, not {coinjoins!r}")
    if coinjoins == "link" and chain != "btc":
        raise UserError(f"--coinjoins link follows CoinJoin outputs on Bitcoin only, not {chain}")
    if through_mixers and chain != "btc":
        raise UserError(f"--through-mixers links custodial-mixer payouts on Bitcoin only, not {chain}")
    if through_mixers:
        from chaintrace.graph.mixers import check_params

        check_params(dict(mixer_params or {}))
        mc = (mixer_params or {}).get("min_confidence")
        if mc is not None and not 0.0 <= float(mc) <= 1.0:
            raise UserError(f"--mixer-min-confidence is between 0 and 1, not {mc}")
    s, u = parse_bound(since, "--since"), parse_bound(until, "--until")
    if s and u and s.kind == u.kind and s.value > u.value:
        raise UserError(f"--since ({s}) is after --until ({u})")
    explain_all = [str(a).strip() for a in explain]  # --through-bridges: the other chain's go to the continuation
    req = TraceRequest(
        seeds=[str(x).strip() for x in seeds], policy=policy, fee_mode=fee_mode, max_hops=max_hops,
        min_value=tracer.default_min_value if min_value is None else int(min_value), min_share=float(min_share),
        since=s, until=u, max_txs=max_txs, tag_files=[str(t) for t in tags],
        actor_files=[str(a) for a in actors], registry=registry,
        clusters=clusters, explain=[a for a in explain_all if not through_bridges
                                    or a.lower().startswith("0x") == (chain == "eth")],
        top_paths=top_paths, coinjoins=coinjoins, activation_heights=bool(activation_heights),
        follow_services=bool(follow_services), through_mixers=bool(through_mixers),
        mixer_params=dict(mixer_params or {}), detections=bool(detections))
    report = tracer.run(ws, req, progress)
    name_actors(ws, report, req.actor_files, req.registry)
    from chaintrace.trace.evidence import describe_evidence

    describe_evidence(ws, report, req)
    from chaintrace.trace.bridges import attach_bridge_matches

    bp = dict(bridge_params or {})
    min_conf = bp.pop("min_confidence", None)
    if min_conf is not None and not 0.0 <= float(min_conf) <= 1.0:
        raise UserError(f"--bridge-min-confidence is between 0 and 1, not {min_conf}")
    # bridge sinks list the matched transfers on the other chain
    attach_bridge_matches(ws, report, tags=req.tag_files, registry=req.registry, **bp)
    if through_bridges:
        from chaintrace.trace.crosschain import through_bridges as cross

        report.cross_chain = cross(ws, report, trace, dict(
            policy=policy, fee_mode=fee_mode, max_hops=max_hops, min_share=min_share, until=u, max_txs=max_txs,
            tags=tags, actors=actors, registry=registry, clusters=clusters, explain=explain_all,
            top_paths=top_paths, coinjoins=coinjoins, activation_heights=activation_heights,
            follow_services=follow_services, detections=detections,
            bridge_params={k: v for k, v in bp.items() if k != "bridges"}), min_conf)
    check_invariant(report)
    return report


def read_seed_file(path) -> list[str]:
    """Seeds listed in a file: one per line (address, txid, ``txid:vout`` or transaction hash); blank lines
    and ``#`` comments are skipped, and only the first field of a line counts (so the first column of a CSV
    works). Raises UserError naming the file and line of a line that is not a seed."""
    from pathlib import Path

    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{p}: cannot read seed file ({e})") from None
    seeds = []
    for n, line in enumerate(lines, 1):
        field_ = re.split(r"[\s,;]", line.split("#", 1)[0].strip(), maxsplit=1)[0].strip().strip('"')
        if not field_:
            continue
        if not re.fullmatch(r"[0-9A-Za-z:]{20,100}", field_):
            raise UserError(f"{p}:{n}: {field_[:60]!r} is not an address, txid or txid:vout")
        seeds.append(field_)
    if not seeds:
        raise UserError(f"{p}: no seeds in the file")
    return seeds


def name_actors(ws, report: TraceReport, files=(), registry: bool = True) -> None:
    """Set ``actor_name`` of every sink transfer whose actor id the intelligence registry (built-in actors and
    imports; only the built-in ones without `registry`) or the ActorPack `files` know; record the files in
    ``report.tags["actor_files"]``."""
    report.tags["actor_files"] = [str(f) for f in files]
    if not any(s.actor for s in report.sinks):
        return
    from chaintrace.intel.tags import actor_names

    names = actor_names(ws if registry else None, files)
    for s in report.sinks:
        if s.actor:
            s.actor_name = names.get(s.actor)


def load_trace_tags(ws, chain: str, files: list[str], registry: bool) -> list:
    """Tags for a trace: the workspace intelligence registry's (unless `registry` is False), the built-in
    incident catalogue's, and those of the TagPack `files` (parsed directly, no import needed)."""
    from chaintrace.intel import load_tags

    return list(load_tags(ws if registry else None, chain, tagpack_paths=tuple(files)))
