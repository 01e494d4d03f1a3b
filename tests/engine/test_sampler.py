"""Sample rows: every server column present, NA with a reason, never a default."""

from __future__ import annotations

import asyncio

from phase5site.columns import CLIENT_COLUMNS, CSV_V3_COLUMNS, SERVER_COUNT_COLUMNS
from phase5site.engine.sampler import (
    NO_SOURCE_REASON,
    SamplePlan,
    sample_row,
    server_columns,
    wait_for_window_completion,
)
from phase5site.runspec.models import PhaseSpec


def test_server_columns_are_csv_v3_without_timestamp_and_sample_num_plus_counts() -> None:
    columns = server_columns()
    assert len(columns) == len(CSV_V3_COLUMNS) - 2 + len(SERVER_COUNT_COLUMNS)
    assert "timestamp" not in columns and "sample_num" not in columns


def test_sample_row_keeps_values_and_gives_every_missing_column_a_reason() -> None:
    client = dict.fromkeys(CLIENT_COLUMNS, 1)
    row = sample_row(
        phase="baseline", sample_num=3, source="scrape", timestamp="2026-11-27 03:00:00",
        window_start=100.0, window_end=700.0,
        values={"http_success_rate": 0.999, "cache_hit_rate": None, "server_requests": 48000},
        na_reasons={"cache_hit_rate": "cache_hits_total absent"}, client=client,
    )
    assert row["http_success_rate"] == 0.999 and row["server_requests"] == 48000
    assert row["cache_hit_rate"] is None
    assert row["na_reasons"]["cache_hit_rate"] == "cache_hits_total absent"
    assert row["na_reasons"]["p99_latency"] == "not reported by source scrape"
    assert "http_success_rate" not in row["na_reasons"]
    assert row["window_s"] == 600.0 and row["sample_num"] == 3
    assert all(row[c] == 1 for c in CLIENT_COLUMNS)


def test_no_source_rows_are_all_na_with_the_reason() -> None:
    reasons = dict.fromkeys(server_columns(), NO_SOURCE_REASON)
    row = sample_row(phase="p", sample_num=1, source="none", timestamp="t", window_start=0.0,
                     window_end=1.0, values={}, na_reasons=reasons, client={})
    assert set(row["na_reasons"].values()) == {NO_SOURCE_REASON}
    assert all(row[c] is None for c in server_columns())


def test_duration_only_observed_phase_is_one_sample() -> None:
    phase = PhaseSpec(name="x", rate=5, concurrency=1, duration=120)
    assert SamplePlan.of(phase) == SamplePlan(1, 120.0)


def test_window_completion_waits_for_older_requests_and_respects_the_deadline() -> None:
    outstanding = {1: 9.5, 2: 10.2}
    now = [10.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    async def scenario() -> tuple[bool, bool]:
        async def finish_soon() -> None:
            await asyncio.sleep(0.05)
            del outstanding[1]  # the request intended inside the window completes

        task = asyncio.create_task(finish_soon())
        done = await wait_for_window_completion(
            lambda: min(outstanding.values(), default=None), 10.0, 99.0, clock)
        await task
        outstanding[3] = 9.9  # never completes: the deadline ends the wait
        late = await wait_for_window_completion(
            lambda: min(outstanding.values(), default=None), 10.0, now[0] + 0.02, clock)
        return done, late

    assert asyncio.run(scenario()) == (True, False)
