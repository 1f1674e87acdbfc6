"""What a cluster build does: heuristics, CoinJoin handling, guards, alarm thresholds (:class:`ClusterConfig`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from chaintrace.detect import change as ch
from chaintrace.detect.coinjoin import ALL as CJ_DETECTORS, CoinJoinParams
from chaintrace.errors import UserError

HEURISTICS = ("mih", "change")


@dataclass(frozen=True)
class ClusterConfig:
    """What a build does. ``heuristics``: "mih" (layer 0) and/or "change" (layer 1, off by default)."""

    heuristics: tuple[str, ...] = ("mih",)
    change: tuple[str, ...] = ch.DEFAULT  # change heuristics combined by intersection (unique result)
    change_digits: int = 6
    change_max_outputs: int = 10
    coinjoin: str = "skip"  # skip: no union across a detected CoinJoin; include: naive (for comparison)
    coinjoin_params: CoinJoinParams = field(default_factory=CoinJoinParams)
    max_merge_size: int = 100_000  # refuse a union when both clusters already have this many addresses
    tag_guard: bool = True  # refuse a union of clusters tagged as two different services
    alarm_growth: float = 0.5  # alarm when the largest cluster grows by more than this fraction in a block
    alarm_min_size: int = 1_000  # ... and reaches at least this many addresses

    def __post_init__(self):
        bad = [h for h in self.heuristics if h not in HEURISTICS]
        if bad or not self.heuristics:
            raise UserError(f"unknown heuristic(s) {', '.join(bad) or '(none)'}; use mih and/or "
                            f"change[:{'+'.join(ch.DEFAULT)}]")
        if self.coinjoin not in ("skip", "include"):
            raise UserError(f"--coinjoin must be skip or include, not {self.coinjoin!r}")
        if self.max_merge_size < 0 or self.change_max_outputs < 2 or not 0 <= self.change_digits <= 15:
            raise UserError("max_merge_size must be >= 0 (0: no limit), change_max_outputs >= 2, "
                            "change_digits 0..15")

    @classmethod
    def parse(cls, heuristics: str = "mih", detectors: str | None = None, activation_heights: bool = True,
              **kw) -> "ClusterConfig":
        """From the CLI syntax: ``"mih,change:fresh_address+optimal_change"``; detectors ``"wasabi2,whirlpool"``;
        `activation_heights` False: detect CoinJoins on mainnet below the protocols' launch heights too (for
        simulated chains written with mainnet parameters)."""
        names: list[str] = []
        change = ch.DEFAULT
        for part in heuristics.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, arg = part.partition(":")
            name = name.strip().lower()
            if name not in HEURISTICS:
                raise UserError(f"--heuristics: unknown heuristic {name!r} in {heuristics!r}; use mih and/or "
                                f"change[:H+H...] with H in {', '.join(ch.HEURISTICS)}")
            if name == "change":
                try:
                    change = ch.parse_heuristics(arg)
                except ValueError as e:
                    raise UserError(f"--heuristics: {e}") from None
            if name not in names:
                names.append(name)
        dets = CJ_DETECTORS if detectors is None else tuple(d.strip().lower() for d in detectors.split(",")
                                                            if d.strip())
        try:
            kw["coinjoin_params"] = CoinJoinParams(detectors=dets, mainnet_heights=activation_heights)
        except ValueError as e:
            raise UserError(f"--detectors: {e}") from None
        return cls(heuristics=tuple(names), change=change, **kw)

    @property
    def change_name(self) -> str:
        """The change layer's heuristic name in the evidence tables: ``change:H1+H2...``."""
        return "change:" + "+".join(self.change)

    @property
    def layer_names(self) -> list[str]:
        """The selected layers as named in the evidence tables (``mih``, ``change:...``)."""
        return [self.change_name if h == "change" else h for h in self.heuristics]

    def mih_spec(self) -> dict:
        return {"coinjoin_params": self.coinjoin_params.key()}

    def change_spec(self) -> dict:
        return {"heuristics": list(self.change), "digits": self.change_digits,
                "max_outputs": self.change_max_outputs}

    def describe(self) -> dict:
        return {"heuristics": self.layer_names,
                "change_digits": self.change_digits, "change_max_outputs": self.change_max_outputs,
                "coinjoin": self.coinjoin, "detectors": list(self.coinjoin_params.detectors),
                "activation_heights": self.coinjoin_params.mainnet_heights,
                "max_merge_size": self.max_merge_size, "tag_guard": self.tag_guard,
                "alarm_growth": self.alarm_growth, "alarm_min_size": self.alarm_min_size}


def config_from_state(st: dict) -> ClusterConfig:
    """The configuration the committed clusters were built with (the inverse of :meth:`ClusterConfig.describe`)."""
    c = st.get("config") or {}
    heur = ",".join(c.get("heuristics", ["mih"]))
    return ClusterConfig.parse(heur, detectors=",".join(c.get("detectors", CJ_DETECTORS)),
                               activation_heights=c.get("activation_heights", True),
                               coinjoin=c.get("coinjoin", "skip"), max_merge_size=c.get("max_merge_size", 100_000),
                               change_digits=c.get("change_digits", 6),
                               change_max_outputs=c.get("change_max_outputs", 10),
                               tag_guard=c.get("tag_guard", True), alarm_growth=c.get("alarm_growth", 0.5),
                               alarm_min_size=c.get("alarm_min_size", 1000))
