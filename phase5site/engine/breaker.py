"""The circuit breaker: stop the load when the service suffers.

Client side, a rolling window of ``window_s`` seconds kept as buckets of ``bucket_s``
(0.1 s) holding (requests, errors): recording a completion is O(1), and the window total is
kept as a running sum, so checking is O(1) too. The window at time ``t`` covers the buckets
of ``(t - window_s, t]`` rounded to whole buckets, so it spans between
``window_s - bucket_s`` and ``window_s`` (whole-second buckets would shorten a 2 s window to
as little as 1 s and trip on too few requests).

Server side, each sample's ``error_rate`` and ``effective_fallback_ratio`` are compared with
the spec's thresholds. Both checks are pure; the runner decides what a trip does.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from phase5site.runspec.models import CircuitBreakerSpec


@dataclass(frozen=True)
class Trip:
    """Why the breaker opened, with the values that made it."""

    reason: str
    values: dict[str, float | int]


@dataclass
class RollingErrorWindow:
    """Error share over the last ``window_s`` seconds, in buckets of ``bucket_s``.

    >>> window = RollingErrorWindow(window_s=3, bucket_s=1.0)
    >>> for second in (10.1, 10.5, 11.2):
    ...     window.record(second, error=False)
    >>> window.record(12.0, error=True)
    >>> window.totals(12.5)
    (4, 1)
    >>> window.totals(14.0)      # buckets 12..14 remain: only the error
    (1, 1)
    """

    window_s: float
    bucket_s: float = 0.1
    _buckets: deque[list[int]] = field(default_factory=deque, init=False)  # [bucket, n, errors]
    _requests: int = field(default=0, init=False)
    _errors: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._span = max(1, round(self.window_s / self.bucket_s))

    def _bucket(self, at_s: float) -> int:
        return math.floor(at_s / self.bucket_s)

    def record(self, at_s: float, *, error: bool) -> None:
        index = self._bucket(at_s)
        if self._buckets and self._buckets[-1][0] >= index:
            bucket = self._buckets[-1]  # same bucket, or a late report counted in the newest
        else:
            bucket = [index, 0, 0]
            self._buckets.append(bucket)
        bucket[1] += 1
        bucket[2] += int(error)
        self._requests += 1
        self._errors += int(error)
        self._expire(index)

    def _expire(self, now_index: int) -> None:
        oldest_kept = now_index - self._span + 1
        while self._buckets and self._buckets[0][0] < oldest_kept:
            _, requests, errors = self._buckets.popleft()
            self._requests -= requests
            self._errors -= errors

    def totals(self, now_s: float) -> tuple[int, int]:
        """(requests, errors) completed in the window ending at ``now_s``."""
        self._expire(self._bucket(now_s))
        return self._requests, self._errors


def check_client(window: RollingErrorWindow, now_s: float, spec: CircuitBreakerSpec) -> Trip | None:
    """Trip when errors / requests > error_rate with at least min_requests in the window.

    >>> from phase5site.runspec.models import CircuitBreakerSpec
    >>> spec = CircuitBreakerSpec(error_rate=0.02, window=30, min_requests=50)
    >>> window = RollingErrorWindow(window_s=30)
    >>> for i in range(100):
    ...     window.record(1000 + i / 10, error=i % 20 == 0)   # 5 errors in 100
    >>> check_client(window, 1010.0, spec).values["error_share"]
    0.05
    """
    requests, errors = window.totals(now_s)
    if requests < spec.min_requests or requests == 0:
        return None
    share = errors / requests
    if share > spec.error_rate:
        return Trip(
            reason=(
                f"client error share {share:.2%} over the last {spec.window:g}s "
                f"({errors} of {requests} requests) is above {spec.error_rate:.2%}"
            ),
            values={"error_share": share, "errors": errors, "requests": requests,
                    "threshold": spec.error_rate, "window_s": spec.window},
        )
    return None


def check_server(values: dict[str, object], spec: CircuitBreakerSpec) -> Trip | None:
    """Trip on a sample whose server error_rate or effective_fallback_ratio is too high.

    NA values never trip (nothing is known).

    >>> from phase5site.runspec.models import CircuitBreakerSpec
    >>> check_server({"error_rate": 0.05, "effective_fallback_ratio": None},
    ...              CircuitBreakerSpec()).values
    {'error_rate': 0.05, 'threshold': 0.02}
    >>> check_server({"error_rate": 0.001, "effective_fallback_ratio": 0.01}, CircuitBreakerSpec())
    """
    error_rate = values.get("error_rate")
    if isinstance(error_rate, (int, float)) and error_rate > spec.error_rate:
        return Trip(
            reason=f"server error rate {error_rate:.2%} in the sample is above {spec.error_rate:.2%}",
            values={"error_rate": float(error_rate), "threshold": spec.error_rate},
        )
    fallback = values.get("effective_fallback_ratio")
    if isinstance(fallback, (int, float)) and fallback > spec.effective_fallback:
        return Trip(
            reason=(
                f"server effective fallback {fallback:.2%} in the sample is above "
                f"{spec.effective_fallback:.2%}"
            ),
            values={"effective_fallback_ratio": float(fallback),
                    "threshold": spec.effective_fallback},
        )
    return None
