"""Backoff with full jitter, and the ``Retry-After`` header in both of its forms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol


class RandomSource(Protocol):
    """What the backoff needs from :class:`random.Random`; tests pass a seeded or scripted one."""

    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class Backoff:
    """``delay(n) = uniform(0, min(cap, base * 2**n))`` for the n-th retry (n = 0 for the first).

    Full jitter (rather than equal or decorrelated jitter) spreads concurrent Lambdas that failed
    together over the whole interval, which is what keeps them from retrying in lock-step.
    """

    base_seconds: float = 0.5
    cap_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.cap_seconds <= 0:
            raise ValueError("backoff base and cap must be positive")

    def ceiling(self, retry_number: int) -> float:
        if retry_number < 0:
            raise ValueError(f"retry number must be >= 0, got {retry_number}")
        # Compare exponents before multiplying so a large retry number cannot overflow.
        if retry_number >= 64:
            return self.cap_seconds
        return min(self.cap_seconds, self.base_seconds * (2**retry_number))

    def delay(self, retry_number: int, rng: RandomSource) -> float:
        return rng.uniform(0.0, self.ceiling(retry_number))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (RFC 9110 §10.2.3), or ``None``.

    Accepts delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), measured
    from ``now`` (epoch seconds). A date in the past means "now" (0). Anything unparseable is ignored
    (``None``) so the caller falls back to its own backoff rather than failing the call.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        # Some servers send fractional seconds although the RFC does not allow it; honour them.
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 dates are always GMT; an offset-less parse means "-0000", i.e. UTC.
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)
