"""The prometheus-mode window delta, evaluated by Prometheus' own engine (``promtool test
rules``), not compared as a string: a normal window, a reset seen at the boundaries
(``D < 0`` -> the value since the restart) and a restart that regrew past the old value
(``resets > 0``, ``D >= 0`` -> ``increase``), as site_src/columns.md documents them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from phase5site.metrics.profile import window_delta_expr

PROMTOOL = Path("/usr/bin/promtool")


def test_window_delta_expr_in_promtool(tmp_path: Path) -> None:
    assert PROMTOOL.exists(), "promtool is required: apt-get install prometheus"
    series = [
        # 10/min: 100 at 10 min, 200 at 20 min -> 100
        {"series": 'c_total{s="normal"}', "values": "0+10x30"},
        # 100 at 10 min, 140 at 14 min, restart to 0 at 15 min, 50 at 20 min: D = -50 -> 50
        {"series": 'c_total{s="down"}', "values": "0+10x14 0+10x5"},
        # 100 at 10 min, restart to 0 at 11 min, 30/min: 270 at 20 min; D = 170 would miss
        # the restart -> increase() = 270
        {"series": 'c_total{s="regrew"}', "values": "0+10x10 0+30x9"},
        # 5/min all along, no reset -> 50
        {"series": 'c_total{s="slow"}', "values": "0+5x30"},
        # created by its first increment at 14 min (absent at the window start): 1, 3 ... 11
        # at 19 min -> counts from 0 -> 11, as in scrape mode
        {"series": 'c_total{s="new"}', "values": "_x14 1+2x5"},
    ]
    expected = [
        {"labels": '{s="normal"}', "value": 100},
        {"labels": 'c_total{s="down"}', "value": 50},  # keeps its name: harmless under sum()
        {"labels": '{s="regrew"}', "value": 270},
        {"labels": '{s="slow"}', "value": 50},
        {"labels": 'c_total{s="new"}', "value": 11},
    ]
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": window_delta_expr("c_total", 600), "eval_time": "20m", "exp_samples": expected},
                {"expr": f"sum({window_delta_expr('c_total', 600)})", "eval_time": "20m",
                 "exp_samples": [{"labels": "{}", "value": 481}]},
            ],
        }],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([str(PROMTOOL), "test", "rules", "test.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
