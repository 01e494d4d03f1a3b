"""Per-endpoint statistics from the requests table: one row per phase and request name.

Peers show one figure per named request (a k6 tag, a Locust entry) beside the aggregate; a
mix of ``health``, ``hello`` and ``plugins`` can hide one slow route behind two fast ones.
Everything is aggregated inside DuckDB (the table may hold millions of rows).

Semantics are those of the rest of the store (CONTRACTS.md, issue 11):

- ``count`` is every request *intended* for that name, dropped ones included;
  ``success_rate`` = ok / count, so a drop is a failure, as in ``client_rates``;
- latency percentiles and the maximum are nearest-rank over the name's latency ranking:
  every sent request's ``latency_ms`` and each dropped one ranked above them at
  max(its wait, the largest sent latency) (``queries._ranked_ms``); a percentile whose rank
  falls on a drop is censored (``quantiles.rank_is_censored``), a lower bound;
- ``min_ms`` and ``mean_ms`` are over *sent* requests only: a drop has no latency, only a
  lower bound, so a mean with it would be neither a mean nor a bound;
- ``achieved_rate`` = sends / the phase's load span (``load_span_s``: ended - started, at most
  the planned duration: a phase that waits for Prometheus's scrape after its last window sent
  nothing in that wait);
- ``bytes_received`` = sum of the response body bytes the engine counted (NULL rows are
  requests without an answer);
- ``bytes_sent`` = sum of the bytes the client wrote for the name's sent requests (schema 4:
  request line, headers and body), or NA with the reason in ``bytes_sent_na`` when a sent
  request has no record (the httpx client cannot tell; a file before schema 4 has none);
- transport errors (``timeout``, ``connect_error``, ``body_too_large``) are grouped by kind,
  with a count, the number of distinct messages, and as the example the first such request
  that has a message (else the first): its seq, time, latency and message. A file before
  schema 4 kept the kind only: its messages are NA with that reason.
"""

from __future__ import annotations

from typing import Any

import duckdb

from phase5site.quantiles import rank_is_censored
from phase5site.store.queries import _ranked_ms, request_column

ENDPOINT_QUANTILES: tuple[tuple[str, float], ...] = (
    ("p50_ms", 0.5), ("p90_ms", 0.9), ("p95_ms", 0.95), ("p99_ms", 0.99),
)
TRANSPORT_OUTCOMES: tuple[str, ...] = ("timeout", "connect_error", "body_too_large")
_TRANSPORT_IN = "(" + ", ".join(f"'{o}'" for o in TRANSPORT_OUTCOMES) + ")"
TRANSPORT_MESSAGE_NA = "NA: not recorded (a run file before schema 4 kept the kind of a transport error only)"
NO_MESSAGE_NA = "NA: no message recorded (the client gave none, or the rows predate schema 4)"
BYTES_SENT_OLD_FILE = "not recorded (a run file before schema 4)"

_QUANTILES = "[" + ", ".join(str(q) for _, q in ENDPOINT_QUANTILES) + "]"


def _stats_sql(bytes_sent: str) -> str:
    """The per-name figures; ``bytes_sent`` is the column's SQL (a NULL for an old file).
    A stored latency that is not a finite, non-negative number (a damaged file) is left out
    of min and mean, as the ranked figures leave it out (store.queries._ranked_ms)."""
    return f"""
WITH clean AS (
    SELECT phase, request_name, outcome, sent_at, bytes, {bytes_sent} AS bytes_sent,
           CASE WHEN isfinite(latency_ms) AND latency_ms >= 0 THEN latency_ms END AS latency_ms
    FROM requests WHERE ($phase IS NULL OR phase = $phase)
), r AS (
    SELECT phase, request_name, outcome, latency_ms, sent_at, bytes, bytes_sent,
           {_ranked_ms("PARTITION BY phase, request_name")} AS ranked_ms
    FROM clean
)
SELECT phase, coalesce(request_name, '') AS name,
    count(*) AS count,
    count(sent_at) AS sent,
    count(*) FILTER (WHERE outcome = 'ok') AS ok,
    count(*) FILTER (WHERE outcome = 'http_4xx') AS http_4xx,
    count(*) FILTER (WHERE outcome = 'http_5xx') AS http_5xx,
    count(*) FILTER (WHERE outcome IN {_TRANSPORT_IN}) AS transport_errors,
    count(*) FILTER (WHERE outcome = 'dropped') AS dropped,
    min(latency_ms) FILTER (WHERE outcome <> 'dropped') AS min_ms,
    avg(latency_ms) FILTER (WHERE outcome <> 'dropped') AS mean_ms,
    max(ranked_ms) AS max_ms,
    quantile_disc(ranked_ms, {_QUANTILES}) AS quantiles,
    count(ranked_ms) AS ranked,
    count(ranked_ms) FILTER (WHERE outcome = 'dropped') AS censored,
    sum(bytes) AS bytes_received,
    sum(bytes_sent) FILTER (WHERE sent_at IS NOT NULL) AS bytes_sent,
    count(*) FILTER (WHERE sent_at IS NOT NULL AND bytes_sent IS NULL) AS bytes_sent_missing
FROM r GROUP BY phase, request_name
"""

_STATUS_SQL = """
SELECT phase, coalesce(request_name, '') AS name, status, count(*) FROM requests
WHERE status IS NOT NULL AND ($phase IS NULL OR phase = $phase)
GROUP BY phase, request_name, status ORDER BY status
"""


def _transport_sql(error: str) -> str:
    """Per (phase, name, kind): count, then the example (the first with a message, else the
    first: seq, intended_at, latency_ms, message), then the number of distinct messages."""
    return f"""
WITH t AS (
    SELECT phase, coalesce(request_name, '') AS name, outcome, seq, intended_at, latency_ms,
           {error} AS error,
           row_number() OVER (PARTITION BY phase, request_name, outcome
                              ORDER BY {error} IS NULL, intended_at, seq) AS nth
    FROM requests WHERE outcome IN {_TRANSPORT_IN} AND ($phase IS NULL OR phase = $phase)
)
SELECT phase, name, outcome, count(*),
       max(seq) FILTER (WHERE nth = 1), max(intended_at) FILTER (WHERE nth = 1),
       max(latency_ms) FILTER (WHERE nth = 1), max(error) FILTER (WHERE nth = 1),
       count(DISTINCT error)
FROM t GROUP BY phase, name, outcome ORDER BY outcome
"""

_DURATION_SQL = "SELECT name, started_at, ended_at, planned_duration_s FROM phases"


def load_span_s(started: float | None, ended: float | None, planned_s: float | None) -> float | None:
    """Seconds the phase could send in: ended - started, capped at the planned duration.

    A phase ends when its workers are done *and* its last sample is taken; in Prometheus
    mode that sample waits for the first scrape after the window (up to a scrape interval
    and the ingestion delay), when nothing is sent any more. A rate over ended - started
    would then read below the offered rate though every request left on time (measured on
    the real service: 9.35 of 10 req/s over a 45 s phase that ended 3 s after its load).
    No request is sent after the planned duration (the rest are dropped), so the cap is exact
    for a completed phase and changes nothing for one stopped early.

    >>> load_span_s(100.0, 148.1, 45.0), load_span_s(100.0, 120.0, 45.0), load_span_s(100.0, 148.0, None)
    (45.0, 20.0, 48.0)
    """
    if started is None or ended is None or ended <= started:
        return None
    span = ended - started
    return min(span, planned_s) if planned_s is not None and planned_s > 0 else span


def _durations(con: duckdb.DuckDBPyConnection) -> dict[str, float | None]:
    return {name: load_span_s(started, ended, planned)
            for name, started, ended, planned in con.execute(_DURATION_SQL).fetchall()}


def _with_quantiles(row: dict[str, Any]) -> dict[str, Any]:
    values = row.pop("quantiles") or [None] * len(ENDPOINT_QUANTILES)
    ranked, censored = int(row.pop("ranked")), int(row.pop("censored"))
    row["censored"] = []
    for (key, q), value in zip(ENDPOINT_QUANTILES, values):
        row[key] = None if value is None else float(value)
        if value is not None and rank_is_censored(q, ranked, censored):
            row["censored"].append(key)
    if censored and row["max_ms"] is not None:
        row["censored"].append("max_ms")  # the slowest request was never answered
    return row


def endpoint_stats(con: duckdb.DuckDBPyConnection, phase: str | None = None) -> list[dict[str, Any]]:
    """One dict per (phase, request name), phases in run order, names by count (most first).

    Keys: phase, name, count, sent, ok, http_4xx, http_5xx, transport_errors, dropped,
    success_rate, intended_rate, achieved_rate, duration_s, min_ms, mean_ms, p50_ms ...
    p99_ms, max_ms, censored (the keys that are lower bounds), bytes_received, bytes_sent,
    bytes_sent_na (why bytes_sent is NA, else None), bytes_sent_missing (sent requests without
    a count), status_counts {status: n},
    transport [{kind, count, example_seq, example_at, example_latency_ms, message,
    distinct_messages}] (distinct_messages None when messages were not recorded).

    Example: 100 'health' requests of which 2 dropped, 97 answered 200, one 503 ->
    count 100, ok 97, success_rate 0.97, status_counts {200: 97, 503: 1}.
    """
    bytes_sent = request_column(con, "bytes_sent", "INTEGER")
    cursor = con.execute(_stats_sql(bytes_sent), {"phase": phase})
    names = [d[0] for d in cursor.description]
    rows = [_with_quantiles(dict(zip(names, values))) for values in cursor.fetchall()]
    statuses: dict[tuple[str, str], dict[int, int]] = {}
    for phase_name, name, status, n in con.execute(_STATUS_SQL, {"phase": phase}).fetchall():
        statuses.setdefault((phase_name, name), {})[int(status)] = int(n)
    transport = _transport_groups(con, phase)
    old_file = bytes_sent.startswith("CAST(NULL")
    durations = _durations(con)
    ordinals = {name: i for i, (name,) in enumerate(con.execute("SELECT name FROM phases ORDER BY ordinal").fetchall())}
    for row in rows:
        key = (row["phase"], row["name"])
        duration = durations.get(row["phase"])
        row["duration_s"] = duration
        row["success_rate"] = row["ok"] / row["count"] if row["count"] else None
        row["intended_rate"] = row["count"] / duration if duration else None
        row["achieved_rate"] = row["sent"] / duration if duration else None
        row["mean_ms"] = None if row["mean_ms"] is None else float(row["mean_ms"])
        row["bytes_received"] = None if row["bytes_received"] is None else int(row["bytes_received"])
        row["bytes_sent"], row["bytes_sent_na"] = _bytes_sent(row, old_file)
        row["status_counts"] = statuses.get(key, {})
        row["transport"] = transport.get(key, [])
    rows.sort(key=lambda r: (ordinals.get(r["phase"], len(ordinals)), -r["count"], r["name"]))
    return rows


def _transport_groups(con: duckdb.DuckDBPyConnection, phase: str | None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    error = request_column(con, "error", "VARCHAR")
    recorded = not error.startswith("CAST(NULL")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for phase_name, name, kind, n, seq, at, latency, message, distinct in con.execute(
            _transport_sql(error), {"phase": phase}).fetchall():
        groups.setdefault((phase_name, name), []).append({
            "kind": kind, "count": int(n), "example_seq": int(seq), "example_at": float(at),
            "example_latency_ms": None if latency is None else float(latency),
            "message": message if message is not None else (NO_MESSAGE_NA if recorded else TRANSPORT_MESSAGE_NA),
            "distinct_messages": int(distinct) if recorded else None,
        })
    return groups


def _bytes_sent(row: dict[str, Any], old_file: bool) -> tuple[int | None, str | None]:
    """(bytes sent, None) when every sent request of the row has its count, else (None, why).

    >>> _bytes_sent({"sent": 3, "bytes_sent": 300, "bytes_sent_missing": 0}, False)
    (300, None)
    >>> _bytes_sent({"sent": 3, "bytes_sent": 200, "bytes_sent_missing": 1}, False)
    (None, 'not recorded for 1 of 3 sent requests (the httpx client does not report the bytes it writes; rows from before schema 4 have none)')
    >>> _bytes_sent({"sent": 0, "bytes_sent": None, "bytes_sent_missing": 0}, False)
    (0, None)
    """
    missing = row["bytes_sent_missing"] = int(row.get("bytes_sent_missing") or 0)
    if old_file:
        return None, BYTES_SENT_OLD_FILE
    if missing:
        return None, bytes_sent_missing_reason(missing, int(row["sent"]))
    return int(row["bytes_sent"] or 0), None


def bytes_sent_missing_reason(missing: int, sent: int) -> str:
    """Why a sum of bytes sent is NA when ``missing`` of ``sent`` requests have no count."""
    return (f"not recorded for {missing:,} of {sent:,} sent requests "
            "(the httpx client does not report the bytes it writes; rows from before schema 4 have none)")
