"""Exact Prometheus windows (issue 12): a window's server count is that of the interval between
the first and the last scrape Prometheus holds inside it, and the warmup before the first
window does not leak in.

A real Prometheus scrapes the embedded target every second; a warmup at 10 req/s runs right
before a 40 req/s baseline of two 5 s windows. The old rule (``x - x offset T`` at the window
end) read the first window from the last scrape *before* the phase, so up to a second of
warmup at a quarter of the rate stood in for a second of baseline (763 of 800 in the issue).

What the test compares, without any timing assumption: the client's own rows say when each
request was sent (``sent_at``) and answered (``sent_at + service_ms``); the simulator counts a
request before it answers. A request is certainly in the server window ``(a, b]`` when it was
sent after the page of scrape ``a`` was read (``a`` + that scrape's ``scrape_duration_seconds``,
which Prometheus itself recorded) and answered by ``b``; it may be in it when sent by ``b``'s
page read and answered after ``a``. The server count must lie in that range, ±1.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phase5site.engine import run_spec
from phase5site.metrics.local_prometheus import LocalPrometheus
from phase5site.runspec import parse_spec_text
from phase5site.simulator import start_target
from phase5site.runspec.models import EmbeddedSpec
from phase5site.store import RunReader

pytestmark = pytest.mark.prometheus
SPEC = """
version: 1
name: prom-windows
target:
  base_url: {base_url}
  allow_hosts: [127.0.0.1]
metrics:
  source: prometheus
  url: {prometheus}
  selector: '{{job="metasheet-api"}}'
circuit_breaker: {{enabled: false}}
phases:
  - {{name: warmup, rate: 10, concurrency: 5, duration: 3s, observe: false}}
  - {{name: baseline, rate: 40, concurrency: 10, samples: 2, interval: 5s}}
"""


def scrape_durations(prom: LocalPrometheus, at: float, window_s: float) -> dict[float, float]:
    """Prometheus' own record of how long each scrape took, by scrape timestamp."""
    rows = prom.query(f'scrape_duration_seconds{{job="metasheet-api"}}[{round(window_s * 1000)}ms]', at)
    return {round(float(ts), 3): float(value) for row in rows for ts, value in row["values"]}


def client_bounds(reader: RunReader, start: float, end: float, read_start_s: float,
                  read_end_s: float) -> tuple[int, int]:
    """(certainly, possibly) counted by the service in (start, end], from the client rows of
    every phase (a warmup request may still be in flight at the baseline's start)."""
    certain, possible = reader.con.execute(
        """SELECT count(*) FILTER (WHERE sent_at > $a + $da AND sent_at + service_ms / 1000 <= $b),
                  count(*) FILTER (WHERE sent_at <= $b + $db AND sent_at + service_ms / 1000 > $a)
           FROM requests WHERE sent_at IS NOT NULL AND outcome <> 'dropped'""",
        {"a": start, "b": end, "da": read_start_s, "db": read_end_s}).fetchone()
    return int(certain), int(possible)


def test_window_one_counts_only_its_own_scrapes_not_the_warmup(tmp_path: Path) -> None:
    with start_target(EmbeddedSpec(seed=12)) as target:
        with LocalPrometheus([target.base_url.removeprefix("http://")], workdir=tmp_path / "prom",
                             interval_s=1.0) as prom:
            prom.wait_for_series('up{job="metasheet-api"} == 1', timeout_s=60)
            text = SPEC.format(base_url=target.base_url, prometheus=prom.base_url)
            outcome = run_spec(parse_spec_text(text, "prom-windows.yaml", {}), results_dir=tmp_path / "r")
            assert outcome.status == "completed", outcome.exit_reason
            with RunReader(outcome.run_dir) as reader:
                rows = {r["sample_num"]: r for r in reader.samples(phase="baseline", source="prometheus")}
                durations = {k: scrape_durations(prom, r["window_end"], r["window_s"]) for k, r in rows.items()}
                checks = []
                for k, row in sorted(rows.items()):
                    a, b = row["server_window_start"], row["server_window_end"]
                    bounds = client_bounds(reader, a, b, durations[k][round(a, 3)], durations[k][round(b, 3)])
                    checks.append((k, row, bounds))
    assert sorted(rows) == [1, 2]
    for k, row, (certain, possible) in checks:
        a, b, server = row["server_window_start"], row["server_window_end"], row["server_requests"]
        print(f"window {k}: nominal ({row['window_start']:.3f}, {row['window_end']:.3f}] "
              f"client {row['client_requests']}; server window ({a:.3f}, {b:.3f}] = {row['server_window_s']:g} s, "
              f"server {server:g}, client in it: {certain}..{possible}, request_rate {row['request_rate']:.3f}")
        # the edges are scrapes inside the window, and the rate is over the interval they span
        assert row["window_start"] <= a < b <= row["window_end"], (k, a, b)
        assert row["server_window_s"] == pytest.approx(b - a)
        assert row["request_rate"] == pytest.approx(server / (b - a))
        # the done-when of issue 12: the server count is the client's count of that interval
        assert certain - 1 <= server <= possible + 1, (k, server, certain, possible)
