"""Progress reporting seam: library code reports work through a :class:`Progress`; the CLI shows it with Rich."""
from __future__ import annotations


class Progress:
    """Receives progress events. The base class ignores them (library use, tests)."""

    def start(self, description: str, total: int | None = None, unit: str = "") -> None:
        """Begin a phase of `total` units (None when unknown)."""

    def advance(self, amount: int = 1, **info) -> None:
        """`amount` more units done; `info` may carry counters to display (blocks=, txs=...)."""

    def finish(self) -> None:
        """End the current phase."""


NULL = Progress()
