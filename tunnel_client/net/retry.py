"""Retry-After and the backoff policy: one value object instead of scattered loops."""

import email.utils
import random
import time
from dataclasses import dataclass
from typing import Optional

RETRY_AFTER_CAP = 60.0


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from delta-seconds or an HTTP-date; None when absent or invalid.

    Values are capped at 60 s; a date in the past or a non-positive value is ignored.
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text) if len(text) < 12 else RETRY_AFTER_CAP
        return min(seconds, RETRY_AFTER_CAP) if seconds > 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return min(delay, RETRY_AFTER_CAP) if delay > 0 else None


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter on the top ``jitter`` fraction of each step."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based)."""
        base = min(self.maximum, self.initial * (self.factor ** max(0, attempt - 1)))
        return base * (1.0 - self.jitter * random.random())
