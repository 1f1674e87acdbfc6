"""Per-key rate limits: fixed windows of ``window`` seconds allowing ``limit`` requests each.

Answers carry the IETF draft headers ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``
(seconds until the window ends); a request over the limit gets 429 with ``Retry-After``.
:class:`RateLimiter` counts in one process; the service uses :class:`SharedRateLimiter`, whose counters
live in a file mapped by every worker process, so a key's limit holds for the whole server with
``--workers N``.
"""
from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import struct
import threading
import time
from pathlib import Path


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


_SLOT = struct.Struct("<Qdq")  # key hash (0: free), end of its current window (epoch seconds), count
SLOTS = 4096
PROBES = 64


def _key_hash(key_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(key_id.encode("utf-8"), digest_size=8).digest(), "little") or 1


class SharedRateLimiter:
    """:class:`RateLimiter` with its counters in a file every worker process of the server maps
    (``DATA/api/ratelimit.bin``): a key's limit is global to the server, whatever ``--workers``.

    The file is a table of ``SLOTS`` slots (key hash, window end, count), found by linear probing from the
    key's hash; each count is read, incremented and written under an exclusive ``flock`` of the file (a few
    microseconds). Windows are wall-clock (epoch) windows, so counts also survive a server restart within the
    window. A slot whose window is over is reused by another key; with more than ``PROBES`` keys active at once
    in one neighbourhood of the table (far beyond the keys an installation has) a key may take over another's
    slot, which resets that key's count (it can then get up to twice its limit in that window)."""

    def __init__(self, path: str | os.PathLike, clock=time.time, slots: int = SLOTS):
        self.clock = clock
        self.slots = slots
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        size = slots * _SLOT.size
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mm = mmap.mmap(self._fd, size)
        self._lock = threading.Lock()
        self._hashes: dict[str, int] = {}

    def _find(self, h: int, now: float) -> int:
        """Offset of the key's slot, else of the first free or expired slot on its probe path."""
        mm, start, reuse = self._mm, h % self.slots, -1
        for i in range(PROBES):
            off = ((start + i) % self.slots) * _SLOT.size
            kh, end, _n = _SLOT.unpack_from(mm, off)
            if kh == h:
                return off
            if kh == 0:
                return off if reuse < 0 else reuse
            if reuse < 0 and end <= now:
                reuse = off
        return reuse if reuse >= 0 else start * _SLOT.size

    def _count(self, key_id: str, window: int, add: int) -> tuple[int, float, float]:
        """(count in the current window after adding `add`, window end, now)."""
        h = self._hashes.get(key_id)
        if h is None:
            h = self._hashes[key_id] = _key_hash(key_id)
        now = self.clock()
        end = (int(now // window) + 1) * window
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                off = self._find(h, now)
                kh, e, n = _SLOT.unpack_from(self._mm, off)
                if kh != h or e != end:
                    n = 0
                n += add
                if add:
                    _SLOT.pack_into(self._mm, off, h, float(end), n)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return n, end, now

    def hit(self, key_id: str, limit: int, window: int) -> tuple[bool, dict[str, str]]:
        """Count one request of `key_id` across all processes: (allowed, headers to send)."""
        n, end, now = self._count(key_id, window, 1)
        reset = max(1, math.ceil(end - now))
        headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - n)),
                   "RateLimit-Reset": str(reset)}
        if n > limit:
            headers["Retry-After"] = str(reset)
        return n <= limit, headers

    def peek(self, key_id: str, limit: int, window: int) -> dict:
        """The key's quota now, without counting a request (for ``/status``)."""
        n, end, now = self._count(key_id, window, 0)
        return {"limit": limit, "window_seconds": window, "remaining": max(0, limit - n),
                "reset_seconds": max(1, math.ceil(end - now))}

    def close(self) -> None:
        self._mm.close()
        os.close(self._fd)
