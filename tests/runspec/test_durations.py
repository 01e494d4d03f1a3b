from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase5site.runspec.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(600, 600.0), ("600", 600.0), ("600s", 600.0), ("10m", 600.0), ("2h5m", 7500.0),
     ("1.5s", 1.5), ("250ms", 0.25), ("1d", 86400.0), ("1h30m15s", 5415.0), (0, 0.0), (2.5, 2.5)],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "10 minutes", "5x", "m", "1h 5m", "s10", True, None, [1],
                                   "inf", "nan", "1e400", float("inf"), float("nan")])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(value)


def test_negative_duration_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(-1)


@given(st.integers(min_value=0, max_value=10**7))
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
