"""A per-client rate limit in memory: a token bucket per key, for public endpoints that cost real work.

Each key (a client address) may spend `per_minute` requests a minute, in bursts of up to `per_minute`. The
table is bounded: when it holds `max_keys` clients, full buckets (clients idle for a minute) are dropped, and
if none is full, the oldest half. Limits are per server process.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from core.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_minute: int, *, code: str, max_keys: int = 10_000) -> None:
        self.capacity = max(1, per_minute)
        self.rate = self.capacity / 60.0  # tokens a second
        self.code = code
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def hit(self, key: str, now: float | None = None) -> None:
        """Spend one request for `key`, or refuse it with 429 `code` and the seconds until one is free."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = _Bucket(float(self.capacity), now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < 1:
            raise RateLimited("too many requests from your address; slow down", code=self.code,
                              retry_after=max(1, math.ceil((1 - bucket.tokens) / self.rate)),
                              details={"per_minute": self.capacity})
        bucket.tokens -= 1

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.capacity]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k].at)[: len(self._buckets) // 2]
            for k in oldest:
                del self._buckets[k]


class RefusalBook:
    """When each refused client (a user, or an address when anonymous) was told it may ask again: the end of
    its last 429's Retry-After. A client that asks again before then ignored it, and its next 429 is held longer
    (web.middleware.hold_refusal). Bounded like the buckets: at `max_keys`, entries already due are dropped,
    and if none is, the oldest half."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self.max_keys = max_keys
        self._due: dict[str, float] = {}

    def ignored(self, key: str, now: float) -> bool:
        """Whether `key` was refused and asked again before its Retry-After had passed."""
        return self._due.get(key, 0.0) > now

    def refused(self, key: str, due: float, now: float) -> None:
        """`key` was refused and may ask again at `due` (monotonic seconds)."""
        self._due.pop(key, None)
        if len(self._due) >= self.max_keys:
            for k in [k for k, d in self._due.items() if d <= now]:
                del self._due[k]
            if len(self._due) >= self.max_keys:
                for k in list(self._due)[: len(self._due) // 2]:  # insertion order: the oldest refusals first
                    del self._due[k]
        self._due[key] = due
