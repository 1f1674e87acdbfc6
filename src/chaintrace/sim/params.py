"""Checks of the parameters every simulator takes."""
from __future__ import annotations

from collections.abc import Iterable

from chaintrace.errors import UserError


def check_params(scenario: str, scenarios: Iterable[str], txs: int, tag_coverage: float) -> None:
    """Raise a :class:`UserError` for an unknown scenario, fewer than 1000 transactions or a tag coverage
    outside [0, 1]."""
    scenarios = list(scenarios)
    if scenario not in scenarios:
        raise UserError(f"unknown scenario {scenario!r}; choose one of {', '.join(scenarios)}")
    if txs < 1000:
        raise UserError(f"--txs {txs}: at least 1000 transactions are needed for a working economy")
    if not 0.0 <= tag_coverage <= 1.0:
        raise UserError(f"--tag-coverage {tag_coverage}: must be between 0 and 1")
