"""The circuit breaker's pure checks: rolling client window and per-sample server values."""

from __future__ import annotations

import pytest

from phase5site.engine.breaker import RollingErrorWindow, check_client, check_server
from phase5site.runspec.models import CircuitBreakerSpec

SPEC = CircuitBreakerSpec(error_rate=0.02, effective_fallback=0.08, window=30, min_requests=50)


def _window(errors: int, requests: int, *, start: float = 1000.0, span_s: float = 10.0):
    window = RollingErrorWindow(window_s=30)
    for i in range(requests):
        window.record(start + i * span_s / requests, error=i < errors)
    return window


def test_trips_above_the_share_with_enough_requests() -> None:
    trip = check_client(_window(errors=3, requests=100), 1010.0, SPEC)
    assert trip is not None
    assert trip.values["errors"] == 3 and trip.values["requests"] == 100
    assert "3 of 100" in trip.reason


def test_exactly_at_the_share_does_not_trip() -> None:
    assert check_client(_window(errors=2, requests=100), 1010.0, SPEC) is None


def test_too_few_requests_never_trip() -> None:
    assert check_client(_window(errors=49, requests=49), 1010.0, SPEC) is None


def test_old_errors_leave_the_window() -> None:
    window = _window(errors=10, requests=100)
    assert check_client(window, 1010.0, SPEC) is not None
    for i in range(100):
        window.record(1045.0 + i / 100, error=False)
    # At 1046 the window is (1016, 1046]: only the 100 clean requests remain.
    assert window.totals(1046.0) == (100, 0)
    assert check_client(window, 1046.0, SPEC) is None


def test_window_spans_its_length_to_a_tenth_of_a_second() -> None:
    window = RollingErrorWindow(window_s=2.0)
    window.record(10.0, error=True)
    window.record(11.95, error=False)
    assert window.totals(11.95) == (2, 1)
    assert window.totals(12.05) == (1, 0)


@pytest.mark.parametrize(
    ("values", "tripped"),
    [
        ({"error_rate": 0.03, "effective_fallback_ratio": 0.0}, "error_rate"),
        ({"error_rate": 0.0, "effective_fallback_ratio": 0.09}, "effective_fallback_ratio"),
        ({"error_rate": 0.02, "effective_fallback_ratio": 0.08}, None),
        ({"error_rate": None, "effective_fallback_ratio": None}, None),
        ({}, None),
    ],
)
def test_server_values(values: dict, tripped: str | None) -> None:
    trip = check_server(values, SPEC)
    assert (trip is None) == (tripped is None)
    if trip is not None:
        assert tripped in trip.values
