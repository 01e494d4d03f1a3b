"""Read queries shared by the writer (live windows) and the reader. Aggregation in DuckDB.

Quantiles use ``quantile_disc`` = nearest-rank, the definition of ``phase5site.quantiles``.
"""

from __future__ import annotations

from typing import Any

import duckdb

from phase5site.quantiles import ratio

CLIENT_QUANTILES: tuple[tuple[str, float], ...] = (
    ("client_p50_ms", 0.5),
    ("client_p90_ms", 0.9),
    ("client_p95_ms", 0.95),
    ("client_p99_ms", 0.99),
)


def client_rates(
    *, requests: int, ok: int, http_4xx: int, http_5xx: int, transport_errors: int
) -> dict[str, float | None]:
    """Window ratios over requests that were sent (dropped ones excluded).

    Transport errors (timeout, connect_error) are failures *and* errors:
    success = ok / requests, error = (4xx + 5xx + transport) / requests.

    >>> client_rates(requests=100, ok=96, http_4xx=1, http_5xx=2, transport_errors=1)
    {'client_success_rate': 0.96, 'client_error_rate': 0.04, 'client_error_rate_4xx': 0.01, \
'client_error_rate_5xx': 0.02}
    """
    return {
        "client_success_rate": ratio(ok, requests),
        "client_error_rate": ratio(http_4xx + http_5xx + transport_errors, requests),
        "client_error_rate_4xx": ratio(http_4xx, requests),
        "client_error_rate_5xx": ratio(http_5xx, requests),
    }


_QUANTILE_LIST = "[" + ", ".join(str(q) for _, q in CLIENT_QUANTILES) + "]"

_WINDOW_SQL = f"""
SELECT
    count(*) FILTER (WHERE outcome <> 'dropped'),
    count(*) FILTER (WHERE outcome = 'ok'),
    count(*) FILTER (WHERE outcome = 'http_4xx'),
    count(*) FILTER (WHERE outcome = 'http_5xx'),
    count(*) FILTER (WHERE outcome IN ('timeout', 'connect_error')),
    count(*) FILTER (WHERE outcome = 'dropped'),
    quantile_disc(latency_ms, {_QUANTILE_LIST}) FILTER (WHERE outcome <> 'dropped')
FROM requests
WHERE phase = $phase AND intended_at >= $start AND intended_at < $end
"""

_SENDS_SQL = """
SELECT count(*) FROM requests
WHERE phase = $phase AND sent_at >= $start AND sent_at < $end
"""


def client_window(
    con: duckdb.DuckDBPyConnection, phase: str, window_start: float, window_end: float
) -> dict[str, Any]:
    """CLIENT_COLUMNS for the requests of ``phase`` *intended* in [window_start, window_end).

    Half-open from the left, unlike the server's (t_{k-1}, t_k]: the pacer intends request i
    at exactly t0 + i/rate, so request 0 sits on t0 and request rate*T on t1; [start, end)
    puts every paced request in exactly one window and rate*T of them in each.

    Counts are integers (0 when nothing happened). Quantiles (nearest-rank, over
    ``latency_ms`` of every non-dropped request with a latency) and ratios are None when
    no request was sent. ``achieved_rate`` = sends with ``sent_at`` in the window / window
    length; None when the window holds no request at all (neither intended nor sent).
    """
    params = {"phase": phase, "start": window_start, "end": window_end}
    # fetchall, never fetchone: DuckDB 2 keeps a fetchone()'d result open, and the next
    # register() on this connection (the engine's batch insert) then raises ResourceInUse.
    (row,) = con.execute(_WINDOW_SQL, params).fetchall()
    requests, ok, http_4xx, http_5xx, transport, dropped, quantiles = row
    ((sends,),) = con.execute(_SENDS_SQL, params).fetchall()
    result: dict[str, Any] = {
        "client_requests": requests,
        "client_ok": ok,
        "client_4xx": http_4xx,
        "client_5xx": http_5xx,
        "client_transport_errors": transport,
    }
    for (column, _), value in zip(CLIENT_QUANTILES, quantiles or [None] * len(CLIENT_QUANTILES)):
        result[column] = value
    result.update(
        client_rates(
            requests=requests,
            ok=ok,
            http_4xx=http_4xx,
            http_5xx=http_5xx,
            transport_errors=transport,
        )
    )
    window_s = window_end - window_start
    anything = requests + dropped + sends > 0
    result["achieved_rate"] = sends / window_s if anything and window_s > 0 else None
    result["dropped"] = dropped
    return result


_PER_SECOND_SQL = """
WITH origin AS (
    SELECT r.phase,
           coalesce(any_value(p.started_at), min(r.intended_at)) AS t0,
           coalesce(any_value(p.ordinal), 0) AS ordinal
    FROM requests r LEFT JOIN phases p ON p.name = r.phase
    WHERE $phase IS NULL OR r.phase = $phase
    GROUP BY r.phase
),
intended AS (
    SELECT r.phase, CAST(floor(r.intended_at - o.t0) AS BIGINT) AS second,
           count(*) AS intended,
           count(*) FILTER (WHERE outcome = 'ok') AS ok,
           count(*) FILTER (WHERE outcome = 'http_4xx') AS http_4xx,
           count(*) FILTER (WHERE outcome = 'http_5xx') AS http_5xx,
           count(*) FILTER (WHERE outcome = 'timeout') AS timeout,
           count(*) FILTER (WHERE outcome = 'connect_error') AS connect_error,
           count(*) FILTER (WHERE outcome = 'dropped') AS dropped,
           quantile_disc(latency_ms, [0.5, 0.9, 0.95, 0.99])
               FILTER (WHERE outcome <> 'dropped') AS q
    FROM requests r JOIN origin o ON o.phase = r.phase
    GROUP BY ALL
),
sends AS (
    SELECT r.phase, CAST(floor(r.sent_at - o.t0) AS BIGINT) AS second, count(*) AS sends
    FROM requests r JOIN origin o ON o.phase = r.phase
    WHERE r.sent_at IS NOT NULL
    GROUP BY ALL
)
SELECT phase, second, o.t0 + second AS "at",
       coalesce(i.intended, 0) AS intended, coalesce(s.sends, 0) AS sends,
       coalesce(s.sends, 0) / 1.0 AS achieved_rate,
       i.q[1] AS p50_ms, i.q[2] AS p90_ms, i.q[3] AS p95_ms, i.q[4] AS p99_ms,
       coalesce(i.ok, 0) AS ok, coalesce(i.http_4xx, 0) AS http_4xx,
       coalesce(i.http_5xx, 0) AS http_5xx, coalesce(i.timeout, 0) AS timeout,
       coalesce(i.connect_error, 0) AS connect_error, coalesce(i.dropped, 0) AS dropped
FROM intended i FULL OUTER JOIN sends s USING (phase, second)
JOIN origin o USING (phase)
ORDER BY o.ordinal, phase, second
"""


def per_second(con: duckdb.DuckDBPyConnection, phase: str | None = None) -> list[dict[str, Any]]:
    """One row per (phase, second) with activity; seconds count from the phase start.

    Second s covers [t0 + s, t0 + s + 1) where t0 is ``phases.started_at`` (or the first
    intended time when the phase row is missing). Outcome counts and latency quantiles
    (nearest-rank, ms) are over requests *intended* in that second; ``sends`` counts
    requests *sent* in it, so ``achieved_rate`` = sends / 1 s. Seconds without any
    request are absent.
    """
    cursor = con.execute(_PER_SECOND_SQL, {"phase": phase})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
