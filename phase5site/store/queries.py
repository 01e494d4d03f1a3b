"""Read queries shared by the writer (live windows) and the reader. Aggregation in DuckDB.

Quantiles use ``quantile_disc`` = nearest-rank, the definition of ``phase5site.quantiles``.
Client latency quantiles rank a set's dropped requests above its sent ones, as
``quantiles.censored_ranking`` does in Python (``_ranked_ms``).
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


# Window columns about the generator's own send lag (columns.GENERATOR_COLUMNS) that the
# request table answers; the engine adds the CPU, loop-lag and generator_limited ones.
WINDOW_GENERATOR_COLUMNS: tuple[str, ...] = ("generator_lag_p99_ms", "generator_lag_max_ms")


def client_rates(
    *, requests: int, ok: int, http_4xx: int, http_5xx: int, transport_errors: int, dropped: int = 0
) -> dict[str, float | None]:
    """Window ratios over every request *intended* in the window, dropped ones included.

    A dropped request was never answered: it is a failure and an error, like a timeout.
    ``requests`` counts it: success = ok / requests,
    error = (4xx + 5xx + transport + dropped) / requests.

    >>> client_rates(requests=100, ok=95, http_4xx=1, http_5xx=2, transport_errors=1, dropped=1)
    {'client_success_rate': 0.95, 'client_error_rate': 0.05, 'client_error_rate_4xx': 0.01, \
'client_error_rate_5xx': 0.02}
    """
    return {
        "client_success_rate": ratio(ok, requests),
        "client_error_rate": ratio(http_4xx + http_5xx + transport_errors + dropped, requests),
        "client_error_rate_4xx": ratio(http_4xx, requests),
        "client_error_rate_5xx": ratio(http_5xx, requests),
    }


_QUANTILE_LIST = "[" + ", ".join(str(q) for _, q in CLIENT_QUANTILES) + "]"
_LAG_MS = "(sent_at - intended_at) * 1000.0"


def _ranked_ms(partition: str = "") -> str:
    """SQL of a request's value in the latency ranking of its set (``quantiles.censored_ranking``):
    ``latency_ms`` when sent; for a dropped one ``max(its wait, the set's largest sent
    latency)``, so drops rank above every sent request (greatest() skips NULLs)."""
    return (
        "CASE WHEN outcome = 'dropped' THEN greatest(latency_ms, "
        f"max(latency_ms) FILTER (WHERE outcome <> 'dropped') OVER ({partition})) "
        "ELSE latency_ms END"
    )


def request_column(con: duckdb.DuckDBPyConnection, name: str, sql_type: str) -> str:
    """SQL of the requests column ``name``, or a typed NULL when the file predates it (an
    older file is opened read-only, unmigrated: its rows did not record that column)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'requests' AND column_name = ?",
        [name],
    ).fetchall()
    return f'"{name}"' if rows[0][0] else f"CAST(NULL AS {sql_type})"


def _slot_free(con: duckdb.DuckDBPyConnection) -> str:
    """``slot_free``, or NULL in a schema-1 file opened read-only (not measured)."""
    return request_column(con, "slot_free", "BOOLEAN")


def _window_sql(slot_free: str) -> str:
    return f"""
WITH w AS (
    SELECT outcome, latency_ms, sent_at, intended_at, {slot_free} AS slot_free
    FROM requests
    WHERE phase = $phase AND intended_at >= $start AND intended_at < $end
), r AS (SELECT *, {_ranked_ms()} AS ranked_ms FROM w)
SELECT
    count(*),
    count(*) FILTER (WHERE outcome = 'ok'),
    count(*) FILTER (WHERE outcome = 'http_4xx'),
    count(*) FILTER (WHERE outcome = 'http_5xx'),
    count(*) FILTER (WHERE outcome IN ('timeout', 'connect_error', 'body_too_large')),
    count(*) FILTER (WHERE outcome = 'dropped'),
    quantile_disc(ranked_ms, {_QUANTILE_LIST}),
    quantile_disc({_LAG_MS}, 0.99) FILTER (WHERE slot_free AND sent_at IS NOT NULL),
    max({_LAG_MS}) FILTER (WHERE slot_free AND sent_at IS NOT NULL)
FROM r
"""


_SENDS_SQL = """
SELECT count(*) FROM requests
WHERE phase = $phase AND sent_at >= $start AND sent_at < $end
"""


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def client_window(
    con: duckdb.DuckDBPyConnection, phase: str, window_start: float, window_end: float
) -> dict[str, Any]:
    """CLIENT_COLUMNS, then ``WINDOW_GENERATOR_COLUMNS``, for the requests of ``phase``
    *intended* in [window_start, window_end).

    Half-open from the left, unlike the server's (t_{k-1}, t_k]: the pacer intends request i
    at exactly t0 + i/rate, so request 0 sits on t0 and request rate*T on t1; [start, end)
    puts every paced request in exactly one window and rate*T of them in each.

    ``client_requests`` counts every request intended in the window, dropped ones
    included; the ratios are over it (``client_rates``). Quantiles are nearest-rank over
    the window's latency ranking: ``latency_ms`` of every sent request that has one, and
    each dropped request as a censored value ranked above them
    (``quantiles.censored_ranking``). Counts are integers (0 when nothing happened);
    quantiles and ratios are None when the window has no request (ratios) or no value
    (quantiles). ``achieved_rate`` = sends with ``sent_at`` in the window / window length;
    None when the window holds no request at all (neither intended nor sent).
    ``generator_lag_p99_ms`` / ``generator_lag_max_ms`` = nearest-rank p99 / max of the send
    lag ``(sent_at - intended_at) * 1000`` over the window's requests that had a free slot
    when due (``slot_free``): the generator's own delay. None when there is none (or the
    file predates slot_free).
    """
    params = {"phase": phase, "start": window_start, "end": window_end}
    # fetchall, never fetchone: DuckDB 2 keeps a fetchone()'d result open, and the next
    # register() on this connection (the engine's batch insert) then raises ResourceInUse.
    (row,) = con.execute(_window_sql(_slot_free(con)), params).fetchall()
    requests, ok, http_4xx, http_5xx, transport, dropped, quantiles, lag_p99, lag_max = row
    ((sends,),) = con.execute(_SENDS_SQL, params).fetchall()
    result: dict[str, Any] = {
        "client_requests": requests,
        "client_ok": ok,
        "client_4xx": http_4xx,
        "client_5xx": http_5xx,
        "client_transport_errors": transport,
    }
    for (column, _), value in zip(CLIENT_QUANTILES, quantiles or [None] * len(CLIENT_QUANTILES)):
        result[column] = _float(value)
    result.update(
        client_rates(
            requests=requests,
            ok=ok,
            http_4xx=http_4xx,
            http_5xx=http_5xx,
            transport_errors=transport,
            dropped=dropped,
        )
    )
    window_s = window_end - window_start
    anything = requests + sends > 0
    result["achieved_rate"] = sends / window_s if anything and window_s > 0 else None
    result["dropped"] = dropped
    result["generator_lag_p99_ms"] = _float(lag_p99)
    result["generator_lag_max_ms"] = _float(lag_max)
    return result


def _send_lag_sql(slot_free: str) -> str:
    return f"""
WITH s AS (
    SELECT {_LAG_MS} AS lag_ms, {slot_free} AS slot_free FROM requests
    WHERE ($phase IS NULL OR phase = $phase) AND sent_at IS NOT NULL
)
SELECT count(*), quantile_disc(lag_ms, [0.5, 0.99]), max(lag_ms),
       count(*) FILTER (WHERE slot_free),
       quantile_disc(lag_ms, [0.5, 0.99]) FILTER (WHERE slot_free),
       max(lag_ms) FILTER (WHERE slot_free)
FROM s
"""


def send_lag(con: duckdb.DuckDBPyConnection, phase: str | None = None) -> dict[str, Any]:
    """Send lag ``(sent_at - intended_at) * 1000`` (ms) of the sent requests of a phase (or
    the run): over all of them, and over those that had a free slot when due (the
    generator's own lag). Nearest-rank p50/p99 and max; None when there is none.

    Keys: ``sends``, ``send_lag_p50_ms``, ``send_lag_p99_ms``, ``send_lag_max_ms``,
    ``free_slot_sends``, ``generator_lag_p50_ms``, ``generator_lag_p99_ms``,
    ``generator_lag_max_ms``. In a file that predates slot_free, ``free_slot_sends`` is 0
    and the generator figures are None (not measured).
    """
    (row,) = con.execute(_send_lag_sql(_slot_free(con)), {"phase": phase}).fetchall()
    sends, lag_q, lag_max, free_sends, own_q, own_max = row
    lag_q, own_q = lag_q or [None, None], own_q or [None, None]
    return {
        "sends": sends,
        "send_lag_p50_ms": _float(lag_q[0]),
        "send_lag_p99_ms": _float(lag_q[1]),
        "send_lag_max_ms": _float(lag_max),
        "free_slot_sends": free_sends,
        "generator_lag_p50_ms": _float(own_q[0]),
        "generator_lag_p99_ms": _float(own_q[1]),
        "generator_lag_max_ms": _float(own_max),
    }


def _per_second_sql(slot_free: str) -> str:
    return f"""
WITH origin AS (
    SELECT r.phase,
           coalesce(any_value(p.started_at), min(r.intended_at)) AS t0,
           coalesce(any_value(p.ordinal), 0) AS ordinal
    FROM requests r LEFT JOIN phases p ON p.name = r.phase
    WHERE $phase IS NULL OR r.phase = $phase
    GROUP BY r.phase
),
placed AS (
    SELECT r.phase, r.outcome, r.latency_ms, r.sent_at, r.intended_at, {slot_free} AS slot_free,
           CAST(floor(r.intended_at - o.t0) AS BIGINT) AS second
    FROM requests r JOIN origin o ON o.phase = r.phase
),
intended AS (
    SELECT phase, second,
           count(*) AS intended,
           count(*) FILTER (WHERE outcome = 'ok') AS ok,
           count(*) FILTER (WHERE outcome = 'http_4xx') AS http_4xx,
           count(*) FILTER (WHERE outcome = 'http_5xx') AS http_5xx,
           count(*) FILTER (WHERE outcome = 'timeout') AS timeout,
           count(*) FILTER (WHERE outcome = 'connect_error') AS connect_error,
           count(*) FILTER (WHERE outcome = 'body_too_large') AS body_too_large,
           count(*) FILTER (WHERE outcome = 'dropped') AS dropped,
           quantile_disc(ranked_ms, [0.5, 0.9, 0.95, 0.99]) AS q,
           max({_LAG_MS}) AS send_lag_max_ms,
           max({_LAG_MS}) FILTER (WHERE slot_free) AS generator_lag_max_ms
    FROM (SELECT *, {_ranked_ms("PARTITION BY phase, second")} AS ranked_ms FROM placed)
    GROUP BY phase, second
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
       coalesce(i.connect_error, 0) AS connect_error,
       coalesce(i.body_too_large, 0) AS body_too_large, coalesce(i.dropped, 0) AS dropped,
       i.send_lag_max_ms, i.generator_lag_max_ms
FROM intended i FULL OUTER JOIN sends s USING (phase, second)
JOIN origin o USING (phase)
ORDER BY o.ordinal, phase, second
"""


def per_second(con: duckdb.DuckDBPyConnection, phase: str | None = None) -> list[dict[str, Any]]:
    """One row per (phase, second) with activity; seconds count from the phase start.

    Second s covers [t0 + s, t0 + s + 1) where t0 is ``phases.started_at`` (or the first
    intended time when the phase row is missing). Outcome counts and latency quantiles
    (nearest-rank, ms, over the second's ranking with its dropped requests censored above
    the sent ones, as ``client_window``) are over requests *intended* in that second;
    ``intended`` includes the dropped ones. ``sends`` counts requests *sent* in it, so
    ``achieved_rate`` = sends / 1 s. ``send_lag_max_ms`` is the largest send lag of the
    second's requests, ``generator_lag_max_ms`` the largest among those that had a free slot
    (None when none, or before slot_free was recorded). Seconds without any request are
    absent.
    """
    cursor = con.execute(_per_second_sql(_slot_free(con)), {"phase": phase})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
