"""Per-key rate limits: fixed windows of ``window`` seconds allowing ``limit`` requests each.

Answers carry the IETF draft headers ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds until the window ends); a request over the limit gets 429 with ``Retry-After``. Counters live in
the server process: with ``--workers N`` each worker counts on its own (a key may get up to N times its
limit); run one worker where the limit must be exact.
"""
from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # key id -> (window number, count)
        self._lock = threading.Lock()

    def hit(self, key_id: str, limit: int, window: int) -> tuple[bool, dict[str, str]]:
        """Count one request of `key_id`: (allowed, headers to send)."""
        now = self.clock()
        w = int(now // window)
        with self._lock:
            cur, n = self._windows.get(key_id, (w, 0))
            if cur != w:
                n = 0
            n += 1
            self._windows[key_id] = (w, n)
        reset = max(1, math.ceil((w + 1) * window - now))
        allowed = n <= limit
        headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - n)),
                   "RateLimit-Reset": str(reset)}
        if not allowed:
            headers["Retry-After"] = str(reset)
        return allowed, headers

    def peek(self, key_id: str, limit: int, window: int) -> dict:
        """The key's quota now, without counting a request (for ``/status``)."""
        now = self.clock()
        w = int(now // window)
        with self._lock:
            cur, n = self._windows.get(key_id, (w, 0))
        used = n if cur == w else 0
        return {"limit": limit, "window_seconds": window, "remaining": max(0, limit - used),
                "reset_seconds": max(1, math.ceil((w + 1) * window - now))}
