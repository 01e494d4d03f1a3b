"""The runner with metrics source 'both' against the real Prometheus scraping the embedded
target: one sample row per source, the Prometheus row is the one metrics.csv carries."""

from __future__ import annotations

from pathlib import Path

import pytest

from phase5site.engine import run_spec
from phase5site.metrics.local_prometheus import LocalPrometheus
from phase5site.runspec import parse_spec_text
from phase5site.runspec.models import EmbeddedSpec
from phase5site.store import RunReader
from phase5site.simulator import start_target


@pytest.mark.prometheus
def test_both_sources_sampled_per_window_with_prometheus_primary(tmp_path: Path) -> None:
    with start_target(EmbeddedSpec(seed=9)) as target:
        host_port = target.base_url.removeprefix("http://")
        with LocalPrometheus([host_port], workdir=tmp_path / "prom", interval_s=0.5) as prom:
            prom.wait_for_series('up{job="metasheet-api"} == 1', timeout_s=60)
            text = f"""
version: 1
name: both
target:
  base_url: {target.base_url}
  allow_hosts: [127.0.0.1]
metrics:
  source: both
  url: {prom.base_url}
  scrape_url: {target.metrics_url}
  selector: '{{job="metasheet-api"}}'
phases:
  - {{name: main, rate: 20, concurrency: 4, samples: 2, interval: 3s}}
"""
            outcome = run_spec(parse_spec_text(text, "both.yaml", {}), results_dir=tmp_path / "r")
    assert outcome.status == "completed", outcome.exit_reason
    with RunReader(outcome.run_dir) as reader:
        rows = reader.samples(phase="main")
        assert sorted((r["sample_num"], r["source"]) for r in rows) == [
            (1, "prometheus"), (1, "scrape"), (2, "prometheus"), (2, "scrape")]
        assert reader.primary_source() == "prometheus"
        for row in rows:
            assert row["client_requests"] == 60
            assert row["rss_mb"] is not None, row["na_reasons"]
    lines = (outcome.run_dir / "metrics.csv").read_text().splitlines()
    assert len(lines) == 3
    raw = (outcome.run_dir / "raw-metrics.txt").read_text()
    assert "source=prometheus" in raw and "source=scrape" in raw
