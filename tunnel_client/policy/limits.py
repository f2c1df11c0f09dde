"""Token buckets for rate limits: a call over the limit is refused at once with the time
until a token frees up, never queued."""

import threading
import time
from typing import Dict, Optional, Tuple


class TokenBucket:
    def __init__(self, tokens: float, per: float, burst: int, clock=time.monotonic):
        self.rate = tokens / per  # tokens per second
        self.burst = float(burst)
        self.level = float(burst)
        self.clock = clock
        self.stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> Optional[float]:
        """None when a token was taken; else seconds until one will be available."""
        with self._lock:
            now = self.clock()
            self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.level >= 1.0:
                self.level -= 1.0
                return None
            return (1.0 - self.level) / self.rate


class Buckets:
    """Buckets by (channel, rule, rate): a reload that keeps a limit keeps its bucket, so
    SIGHUP is not a way to refill it."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: Dict[Tuple, TokenBucket] = {}

    def bucket(self, channel: str, rule: str, rate: Tuple[float, float, int]) -> TokenBucket:
        key = (channel, rule) + tuple(rate)
        bucket = self._buckets.get(key)
        if bucket is None:
            with self._lock:
                bucket = self._buckets.setdefault(key, TokenBucket(*rate, clock=self.clock))
        return bucket

    def keep_only(self, wanted):
        """Forget buckets no longer configured (after a reload)."""
        with self._lock:
            self._buckets = {k: b for k, b in self._buckets.items() if k in wanted}
