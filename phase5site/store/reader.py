"""``RunReader``: read-only access to one run file. Aggregations run inside DuckDB.

JSON text columns come back parsed: ``runs.spec_redacted`` / ``environment`` and
``phases.flags`` as dicts, sample bucket columns as lists of ``[upper_bound, delta]``,
``na_reasons`` as a dict, ``events.data`` as the stored dict/list. NA is None.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np

from phase5site.columns import OUTCOMES, SERVER_WINDOW_COLUMNS
from phase5site.errors import StoreError
from phase5site.quantiles import censored_ranking
from phase5site.store import queries
from phase5site.store.connect import open_readonly, resolve_db_path
from phase5site.store.jsontext import load_json
from phase5site.store.schema import JSON_SAMPLE_COLUMNS, check_version, schema_version

SOURCE_PRIORITY: tuple[str, ...] = ("prometheus", "scrape", "import")
Windows = list[tuple[float, float]]


def merged_windows(windows: Windows) -> Windows:
    """The union of half-open windows ``[start, end)`` as sorted, disjoint ones (an empty or
    reversed window holds nothing; adjacent ones join: ``[a, b)`` and ``[b, c)`` are ``[a, c)``).

    >>> merged_windows([(5.0, 8.0), (0.0, 2.0), (2.0, 3.0), (6.0, 7.0), (9.0, 9.0)])
    [(0.0, 3.0), (5.0, 8.0)]
    """
    merged: Windows = []
    for start, end in sorted((float(start), float(end)) for start, end in windows if end > start):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _windowed(phase: str | None, windows: Windows | None) -> tuple[str, dict[str, Any]]:
    """A FROM source (and its parameters): the requests of ``phase`` (any phase when None),
    each with ``inside``: intended in one of ``windows`` (``[start, end)`` each, the client
    window's rule; every request when None).

    The windows are merged first (``merged_windows``), so an ASOF join finds the only one a
    request can lie in, the last starting at or before it: a sort-merge whatever the number
    of windows (an EXISTS over every window was a nested loop, 0.9 s per query at 720
    windows of 576k rows)."""
    params: dict[str, Any] = {"phase": phase}
    mine = "SELECT * FROM requests WHERE ($phase IS NULL OR phase = $phase)"
    if windows is None:
        return f"(SELECT *, TRUE AS inside FROM ({mine}))", params
    merged = merged_windows(windows)
    if not merged:
        return f"(SELECT *, FALSE AS inside FROM ({mine}))", params
    params["starts"] = [start for start, _ in merged]
    params["ends"] = [end for _, end in merged]
    return (f"(SELECT r.*, coalesce(r.intended_at < w.we, FALSE) AS inside FROM ({mine}) r "
            "ASOF LEFT JOIN (SELECT unnest($starts::DOUBLE[]) AS ws, unnest($ends::DOUBLE[]) AS we) w "
            "ON r.intended_at >= w.ws)"), params


class RunReader:
    """Read one run. ``RunReader(path)`` takes a run folder or the ``run.duckdb`` itself.

    Holds a read-only connection until ``close()`` (or the end of a ``with`` block); while
    it is open no writer can open the file.
    """

    def __init__(self, run_dir_or_db_path: Path | str) -> None:
        self.db_path = resolve_db_path(run_dir_or_db_path)
        self.run_dir = self.db_path.parent
        self._con: duckdb.DuckDBPyConnection | None = open_readonly(self.db_path)
        try:
            check_version(schema_version(self._con), str(self.db_path))
        except StoreError:
            self.close()
            raise

    # -- plumbing ------------------------------------------------------------------------

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError(f"reader of {self.db_path} is closed")
        return self._con

    def _dicts(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> RunReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the run, phases, events -------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """The ``runs`` row with ``spec_redacted`` and ``environment`` parsed."""
        rows = self._dicts("SELECT * FROM runs")
        if not rows:
            raise StoreError(f"{self.db_path} holds no run row", hint="the file is incomplete")
        run = rows[0]
        run["spec_redacted"] = load_json(run["spec_redacted"])
        run["environment"] = load_json(run["environment"])
        return run

    def effective_status(self) -> str:
        """The run's status as a report should show it.

        A file that can be opened read-only has no writer, so a run still marked
        'running' was cut short (SIGKILL, power loss): it reads as 'interrupted'.
        """
        status = str(self.run()["status"])
        return "interrupted" if status == "running" else status

    def phases(self) -> list[dict[str, Any]]:
        """Phases in run order, ``flags`` parsed, plus ``effective_status``.

        ``effective_status`` reads a phase left 'running' (its run was cut short) as
        'interrupted', like ``RunReader.effective_status``.
        """
        phases = self._dicts("SELECT * FROM phases ORDER BY ordinal, started_at, name")
        for phase in phases:
            phase["flags"] = load_json(phase["flags"])
            phase["effective_status"] = (
                "interrupted" if phase["status"] == "running" else phase["status"]
            )
        return phases

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Events in time order, optionally of one kind; ``data`` parsed."""
        events = self._dicts(
            'SELECT * FROM events WHERE $kind IS NULL OR kind = $kind ORDER BY "at"',
            {"kind": kind},
        )
        for event in events:
            event["data"] = load_json(event["data"])
        return events

    # -- samples -------------------------------------------------------------------------

    def samples(self, phase: str | None = None, source: str | None = None) -> list[dict[str, Any]]:
        """Sample rows ordered by phase (run order), sample_num, source; JSON parsed."""
        rows = self._dicts(
            """SELECT s.* FROM samples s LEFT JOIN phases p ON p.name = s.phase
               WHERE ($phase IS NULL OR s.phase = $phase)
                 AND ($source IS NULL OR s.source = $source)
               ORDER BY coalesce(p.ordinal, 0), s.phase, s.sample_num, s.source""",
            {"phase": phase, "source": source},
        )
        for row in rows:
            for column in SERVER_WINDOW_COLUMNS:
                row.setdefault(column, None)  # a file before schema 3: not recorded
            for column in JSON_SAMPLE_COLUMNS:
                # Text another tool (or a damaged file) left there stays text: the sample
                # gate (columns.gate_sample) makes it NA with a reason, nothing crashes.
                try:
                    row[column] = load_json(row[column])
                except ValueError:
                    pass
        return rows

    def primary_source(self) -> str | None:
        """The best sample source present: prometheus, then scrape, then import; else None."""
        present = {r[0] for r in self.con.execute("SELECT DISTINCT source FROM samples").fetchall()}
        return next((s for s in SOURCE_PRIORITY if s in present), None)

    # -- requests --------------------------------------------------------------------------

    def request_count(self, phase: str | None = None) -> int:
        """Number of request rows (dropped ones included)."""
        row = self.con.execute(
            "SELECT count(*) FROM requests WHERE $phase IS NULL OR phase = $phase",
            {"phase": phase},
        ).fetchall()
        return int(row[0][0]) if row else 0

    def outcome_counts(self, phase: str | None = None) -> dict[str, int]:
        """Count per outcome; every outcome of ``columns.OUTCOMES`` is present (0 if none)."""
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome, count in self.con.execute(
            "SELECT outcome, count(*) FROM requests WHERE $phase IS NULL OR phase = $phase "
            "GROUP BY outcome",
            {"phase": phase},
        ).fetchall():
            counts[outcome] = int(count)
        return counts

    def sent_latencies_ms(self, phase: str | None = None, windows: Windows | None = None) -> np.ndarray:
        """Sorted ``latency_ms`` of every sent (non-dropped) request that has one (float64);
        with ``windows`` (``[(start, end), ...]``), only requests intended in one of them
        (``[start, end)``, the client window's rule).

        A NaN, infinite or negative latency (a file no engine of this tool wrote) is no
        measurement: it counts as not recorded, like NULL, instead of becoming a NaN
        percentile or confidence bound in every report (issue 13 item 2)."""
        source, params = _windowed(phase, windows)
        columns = self.con.execute(
            f"SELECT latency_ms FROM {source} WHERE inside "
            "AND outcome <> 'dropped' AND latency_ms IS NOT NULL AND isfinite(latency_ms) "
            "AND latency_ms >= 0 ORDER BY latency_ms",
            params,
        ).fetchnumpy()
        return np.asarray(columns["latency_ms"], dtype=np.float64)

    def dropped_waits_ms(self, phase: str | None = None, windows: Windows | None = None) -> list[float | None]:
        """The wait of every dropped request (its ``latency_ms``, censored), sorted; None
        where it was not recorded (runs before the engine stored it). ``windows`` as for
        ``sent_latencies_ms``."""
        source, params = _windowed(phase, windows)
        rows = self.con.execute(
            f"SELECT latency_ms FROM {source} WHERE inside "
            "AND outcome = 'dropped' ORDER BY latency_ms NULLS FIRST",
            params,
        ).fetchall()
        return [None if value is None or not math.isfinite(value) or value < 0 else float(value)
                for (value,) in rows]

    def outside_windows(self, phase: str, windows: Windows) -> dict[str, Any]:
        """The requests of ``phase`` intended outside every one of ``windows``: ``requests``,
        ``ok``, ``errors`` (4xx, 5xx, transport), ``dropped``, ``latency_p95_ms`` (nearest
        rank over the sent ones with a latency; None if none), ``first_at``/``last_at``."""
        source, params = _windowed(phase, windows)
        ((requests, ok, errors, dropped, p95, first, last),) = self.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE outcome = 'ok'), "
            "count(*) FILTER (WHERE outcome NOT IN ('ok', 'dropped')), "
            "count(*) FILTER (WHERE outcome = 'dropped'), "
            "quantile_disc(latency_ms, 0.95) FILTER (WHERE outcome <> 'dropped' AND isfinite(latency_ms) "
            "AND latency_ms >= 0), min(intended_at), max(intended_at) "
            f"FROM {source} WHERE NOT inside",
            params,
        ).fetchall()
        return {"requests": int(requests), "ok": int(ok), "errors": int(errors), "dropped": int(dropped),
                "latency_p95_ms": None if p95 is None else float(p95),
                "first_at": None if first is None else float(first),
                "last_at": None if last is None else float(last)}

    def client_latencies_ms(self, phase: str | None = None) -> np.ndarray:
        """The client latency ranking of a phase (or the run), sorted (float64): every sent
        request's ``latency_ms``, then each dropped one as a censored value
        (``quantiles.censored_ranking``; the last ``len(dropped_waits_ms())`` values, fewer
        when a wait is unknown and nothing was sent).

        Quantiles over it must use the nearest-rank definition (``quantiles.nearest_rank``)
        to agree with the stored ``client_p*_ms`` columns.
        """
        ranking, _ = censored_ranking(self.sent_latencies_ms(phase), self.dropped_waits_ms(phase))
        return np.asarray(ranking, dtype=np.float64)

    def request_name_counts(self, phase: str, window_start: float, window_end: float) -> dict[str, dict[str, int]]:
        """Per request name, over the requests of ``phase`` intended in [window_start,
        window_end) (the client window's rule): ``intended`` (dropped included), ``answered``
        (an HTTP status came back), ``http_errors`` (answered 4xx/5xx) and ``failures``
        (every outcome but ok: 4xx, 5xx, transport, dropped). For the client/server
        reconciliation: the server can only have counted answered requests."""
        rows = self.con.execute(
            "SELECT request_name, count(*), count(status), count(*) FILTER (WHERE status >= 400), "
            "count(*) FILTER (WHERE outcome <> 'ok') FROM requests "
            "WHERE phase = $phase AND intended_at >= $start AND intended_at < $end GROUP BY request_name",
            {"phase": phase, "start": window_start, "end": window_end},
        ).fetchall()
        return {str(name): {"intended": int(n), "answered": int(answered), "http_errors": int(errors),
                            "failures": int(failures)}
                for name, n, answered, errors, failures in rows}

    def send_lag(self, phase: str | None = None) -> dict[str, Any]:
        """Send lag of all sends and the generator's own lag (see ``store.queries.send_lag``)."""
        return queries.send_lag(self.con, phase)

    def client_window(self, phase: str, window_start: float, window_end: float) -> dict[str, Any]:
        """CLIENT_COLUMNS and the window's generator lag for requests intended in
        [window_start, window_end) (as the writer)."""
        return queries.client_window(self.con, phase, window_start, window_end)

    def per_second(self, phase: str | None = None) -> list[dict[str, Any]]:
        """Per-second aggregates (see ``store.queries.per_second``)."""
        return queries.per_second(self.con, phase)

    def endpoint_stats(self, phase: str | None = None) -> list[dict[str, Any]]:
        """Per phase and request name: counts, rates, latency spread, status codes and
        transport errors (see ``store.endpoints.endpoint_stats``)."""
        from phase5site.store.endpoints import endpoint_stats

        return endpoint_stats(self.con, phase)
