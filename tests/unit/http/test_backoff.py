"""Full-jitter backoff and the two forms of Retry-After."""

from __future__ import annotations

import random

import pytest

from ledgerlink.http.backoff import Backoff, parse_retry_after

NOW = 1_445_412_400.0  # Wed, 21 Oct 2015 07:26:40 GMT


def test_ceiling_doubles_from_base_and_stops_at_cap() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=5.0)

    assert [backoff.ceiling(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.ceiling(10_000) == 5.0


def test_delay_is_drawn_uniformly_between_zero_and_the_ceiling() -> None:
    backoff = Backoff(base_seconds=1.0, cap_seconds=8.0)
    draws = [backoff.delay(3, random.Random(seed)) for seed in range(200)]

    expected = [random.Random(seed).uniform(0, 8.0) for seed in range(200)]
    assert draws == expected
    assert min(draws) < 1.0 and max(draws) > 7.0


def test_invalid_backoff_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        Backoff(base_seconds=0, cap_seconds=1)
    with pytest.raises(ValueError, match="retry number"):
        Backoff().ceiling(-1)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("2.128", 2.128),  # the fractional shape some versions of Graph's throttling docs show
        ("Wed, 21 Oct 2015 07:28:00 GMT", 80.0),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 80.0),  # obsolete RFC 850 form, still legal to receive
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # in the past: retry now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after_forms(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected
