"""Client/server reconciliation: did the service count what the client sent? Pure (issue 12).

The real MetaSheet backend times only some routes: its HTTP counters miss every 401/403 of
the JWT gate, every unmatched 404 and all core routers. In one run the server counted 167 of
300 requests and reported a 0.000 % error rate while the client saw 44.3 %. So per window
and per phase this compares

* the requests the client got an answer for on routes the spec declares timed
  (``requests[].timed``, default the profile's rule) with the server's request count, and
* the client-seen errors (4xx, 5xx, transport, dropped, every request) with the
  server-seen ones (4xx + 5xx it counted).

A gap beyond counting noise (more than ``NOISE_SHARE`` of the larger count *and* more than
``NOISE_REQUESTS`` requests: window edges shift a request or two between windows) is a
warning, and the server's success and error rates carry the caveat that they describe only
the requests the service counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

NOISE_SHARE = 0.01
NOISE_REQUESTS = 5


@dataclass(frozen=True)
class WindowCounts:
    """One sample window as both sides saw it (``None``: the server did not measure it)."""

    sample_num: int | None
    client_intended: int
    client_answered: int  # got an HTTP status back: the most the server can have counted
    client_timed: int  # of those, requests the spec declares timed
    client_failures: int  # every outcome but ok, over all intended requests
    client_timed_errors: int  # 4xx/5xx answers to timed requests
    server_requests: float | None
    server_errors: float | None


@dataclass(frozen=True)
class ReconcileRow:
    """``sample_num`` None is the phase total (windows the server measured)."""

    sample_num: int | None
    client_intended: int
    client_answered: int
    client_timed: int
    server_requests: float | None
    count_gap: float | None  # server - client_timed
    client_failures: int
    client_error_rate: float | None
    client_timed_errors: int
    server_errors: float | None
    server_error_rate: float | None
    error_gap: float | None  # server errors - client failures
    count_warning: bool
    error_warning: bool


@dataclass(frozen=True)
class Reconciliation:
    windows: list[ReconcileRow]
    phase: ReconcileRow | None
    untimed: list[str]  # request names the spec (or the profile) says the service does not time
    warnings: list[str] = field(default_factory=list)

    @property
    def caveat(self) -> str | None:
        """The caveat of the server's success and error rates, when its counts disagree
        with the client's or requests go to untimed routes (None: they agree fully)."""
        total = self.phase
        if total is None or total.server_requests is None:
            return None
        if not (total.count_warning or total.error_warning or self.untimed):
            return None
        names = f" (not timed: {', '.join(self.untimed)})" if self.untimed else ""
        return (f"the service counted {total.server_requests:,.0f} of {total.client_answered:,} requests{names}: "
                "its success and error rates describe only the requests it counts (timed routes)")


def beyond_noise(gap: float | None, base: float) -> bool:
    """More than 1 % of the larger count and more than 5 requests.

    >>> beyond_noise(5, 10), beyond_noise(6, 10), beyond_noise(6, 1000), beyond_noise(133, 300)
    (False, True, False, True)
    """
    return gap is not None and abs(gap) > NOISE_REQUESTS and abs(gap) > NOISE_SHARE * base


def _ratio(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def _row(sample_num: int | None, w: Sequence[WindowCounts]) -> ReconcileRow:
    server = [x for x in w if x.server_requests is not None]
    server_requests = sum(x.server_requests for x in server) if server else None  # type: ignore[misc]
    errors = [x.server_errors for x in server if x.server_errors is not None]
    server_errors = sum(errors) if server and len(errors) == len(server) else None
    # Compare only what both sides measured: the windows with a server count.
    compared = server or list(w)
    intended = sum(x.client_intended for x in compared)
    timed = sum(x.client_timed for x in compared)
    failures = sum(x.client_failures for x in compared)
    count_gap = None if server_requests is None else server_requests - timed
    error_gap = None if server_errors is None else server_errors - failures
    return ReconcileRow(
        sample_num=sample_num,
        client_intended=intended,
        client_answered=sum(x.client_answered for x in compared),
        client_timed=timed,
        server_requests=server_requests,
        count_gap=count_gap,
        client_failures=failures,
        client_error_rate=_ratio(failures, intended),
        client_timed_errors=sum(x.client_timed_errors for x in compared),
        server_errors=server_errors,
        server_error_rate=_ratio(server_errors, server_requests),
        error_gap=error_gap,
        count_warning=beyond_noise(count_gap, max(timed, server_requests or 0)),
        error_warning=beyond_noise(error_gap, max(intended, server_requests or 0)),
    )


def _pct(value: float | None) -> str:
    return "NA" if value is None else f"{value * 100:.3f} %"


def reconcile(windows: Sequence[WindowCounts], untimed: Sequence[str] = ()) -> Reconciliation:
    """Per-window and phase rows, and the warnings of the phase total.

    Requests declared untimed explain a count gap by design (the caveat says so); a warning
    is a gap the declarations do not explain, or errors the service did not see.

    >>> w = [WindowCounts(1, 300, 300, 167, 133, 0, 167.0, 0.0)]
    >>> r = reconcile(w, ["no_token"])
    >>> r.warnings[0]
    'client-seen error rate 44.333 % vs server-seen 0.000 %: the service counted 167 of 300 requests and 0 errors, the client saw 133 errors; 401s from its auth gate, unmatched 404s and untimed routers are not in its metrics'
    >>> r.caveat
    'the service counted 167 of 300 requests (not timed: no_token): its success and error rates describe only the requests it counts (timed routes)'
    """
    rows = [_row(x.sample_num, [x]) for x in windows]
    total = _row(None, windows) if windows else None
    warnings: list[str] = []
    if total is not None and total.server_requests is not None:
        if total.count_warning and total.count_gap is not None and total.count_gap < 0:
            warnings.append(
                f"the service counted {total.server_requests:,.0f} of the {total.client_timed:,} requests the client "
                "got an answer to on routes declared timed: some of them are not timed (check requests[].timed "
                "in the spec), or its timer missed them"
            )
        if total.count_warning and total.count_gap is not None and total.count_gap > 0:
            warnings.append(
                f"the service counted {total.count_gap:,.0f} more requests than the client sent to routes "
                "declared timed: check requests[].timed in the spec (or another client loads the service)"
            )
        if total.error_warning:
            warnings.append(
                f"client-seen error rate {_pct(total.client_error_rate)} vs server-seen "
                f"{_pct(total.server_error_rate)}: the service counted {total.server_requests:,.0f} of "
                f"{total.client_answered:,} requests and {total.server_errors:,.0f} errors, the client saw "
                f"{total.client_failures:,} errors; 401s from its auth gate, unmatched 404s and untimed routers "
                "are not in its metrics"
            )
        bad = [row.sample_num for row in rows if row.count_warning or row.error_warning]
        if bad and warnings:
            warnings.append(f"windows with a gap beyond counting noise: {', '.join(f'#{n}' for n in bad)}")
    return Reconciliation(windows=rows, phase=total, untimed=list(untimed), warnings=warnings)
