"""Prometheus window edges, before and after issue 12, on one real run.

A real Prometheus scrapes the embedded target every second; a 20 req/s warmup runs before a
40 req/s baseline of three 10 s windows (the issue's shape). For each window the script
prints what the client sent in the nominal window, what the old rule (``x - x offset T`` at
the window end: the last scrape at or before each edge) reads from the same Prometheus, and
what phase5site now stores (the first and the last scrape inside the window), beside the
client's own count of that interval.

    .venv/bin/python bench/prometheus_windows.py

Bounded: about 40 s of gentle load on 127.0.0.1. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from phase5site.engine import run_spec
from phase5site.metrics.local_prometheus import LocalPrometheus
from phase5site.runspec import parse_spec_text
from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator import start_target
from phase5site.store import RunReader

SPEC = """
version: 1
name: bench-prom-windows
target:
  base_url: {base_url}
  allow_hosts: [127.0.0.1]
metrics:
  source: prometheus
  url: {prometheus}
  selector: '{{job="metasheet-api"}}'
circuit_breaker: {{enabled: false}}
phases:
  - {{name: warmup, rate: 20, concurrency: 5, duration: 5s, observe: false}}
  - {{name: baseline, rate: 40, concurrency: 10, samples: 3, interval: 10s}}
"""
OLD_RULE = 'sum(http_requests_total{{job="metasheet-api"}}) - sum(http_requests_total{{job="metasheet-api"}} offset {ms}ms)'


def client_in(reader: RunReader, start: float, end: float) -> int:
    """Client requests answered in (start, end]: what the service counted between the scrapes."""
    return int(reader.con.execute(
        "SELECT count(*) FROM requests WHERE sent_at IS NOT NULL AND outcome <> 'dropped' "
        "AND sent_at + service_ms / 1000 > ? AND sent_at + service_ms / 1000 <= ?", [start, end]).fetchone()[0])


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, start_target(EmbeddedSpec(seed=21)) as target:
        with LocalPrometheus([target.base_url.removeprefix("http://")], workdir=Path(tmp) / "prom",
                             interval_s=1.0) as prom:
            prom.wait_for_series('up{job="metasheet-api"} == 1', timeout_s=60)
            text = SPEC.format(base_url=target.base_url, prometheus=prom.base_url)
            outcome = run_spec(parse_spec_text(text, "bench.yaml", {}), results_dir=Path(tmp) / "r")
            print(f"run {outcome.status}")
            print("| window | client sent (nominal) | old rule | old rate | stored server | server window s "
                  "| client in server window | stored rate |")
            print("|---|---|---|---|---|---|---|---|")
            with RunReader(outcome.run_dir) as reader:
                for row in reader.samples(phase="baseline", source="prometheus"):
                    old = prom.query(OLD_RULE.format(ms=round(row["window_s"] * 1000)), row["window_end"])
                    old_count = float(old[0]["value"][1]) if old else float("nan")
                    a, b = row["server_window_start"], row["server_window_end"]
                    print(f"| {row['sample_num']} | {row['client_requests']} | {old_count:g} | "
                          f"{old_count / row['window_s']:.2f} | {row['server_requests']:g} | "
                          f"{row['server_window_s']:.3f} | {client_in(reader, a, b)} | {row['request_rate']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
