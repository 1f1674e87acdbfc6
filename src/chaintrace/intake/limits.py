"""Abuse limiting without storing IP addresses.

Each client is a bucket keyed by ``HMAC-SHA256(day_secret, client address)``: the secret is random, held
in memory only and replaced every UTC day, so a bucket key cannot be turned back into an address (nor
linked across days), and nothing is written to disk. A token bucket per key (``capacity`` tips, refilled at
``per_hour``/hour) answers 429 with Retry-After when empty."""
from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import secrets
import threading
import time


class TipLimiter:
    def __init__(self, capacity: float = 5, per_hour: float = 20, clock=time.monotonic):
        self.capacity = capacity
        self.rate = per_hour / 3600.0
        self.clock = clock
        self._day: _dt.date | None = None
        self._secret = b""
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _key(self, client: str) -> bytes:
        day = _dt.datetime.now(_dt.UTC).date()
        if day != self._day:
            self._day, self._secret, self._buckets = day, secrets.token_bytes(32), {}
        return hmac.new(self._secret, client.encode(), hashlib.sha256).digest()[:16]

    def take(self, client: str) -> float:
        """0 when the client may submit now (a token is taken), else the seconds to wait."""
        with self._lock:
            k = self._key(client)
            now = self.clock()
            tokens, last = self._buckets.get(k, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[k] = (tokens - 1, now)
                return 0.0
            self._buckets[k] = (tokens, now)
            return (1 - tokens) / self.rate if self.rate else float("inf")

    def stored_keys(self) -> list[bytes]:
        return list(self._buckets)
