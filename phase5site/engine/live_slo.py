"""What the live display says about the SLO while a run is on: a per-sample screen.

The verdict is made at the end from pooled counts (``slo``, ``reporting``); during a run a
reader still wants to know whether the samples so far look within the thresholds. This
screen compares each stored sample's own values (client latency, success and error rates;
server error rate, effective fallback and RSS when the source has them) with the spec's
thresholds. It is a screen, not a verdict, and the display says so: the pooled verdict can
differ (it weighs windows by their requests, and judges evidence and significance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phase5site.runspec.models import SloSpec

# (label, sample column, spec field, comparison, scale of the printed value, unit)
SCREENED: tuple[tuple[str, str, str, str, float, str], ...] = (
    ("p95", "client_p95_ms", "latency_p95_ms", "<=", 1.0, " ms"),
    ("p99", "client_p99_ms", "latency_p99_ms", "<=", 1.0, " ms"),
    ("success", "client_success_rate", "success_rate_min", ">=", 100.0, "%"),
    ("errors", "client_error_rate", "error_rate_max", "<=", 100.0, "%"),
    ("server errors", "error_rate", "error_rate_max", "<=", 100.0, "%"),
    ("fallback", "effective_fallback_ratio", "effective_fallback_max", "<=", 100.0, "%"),
    ("rss", "rss_mb", "rss_mean_mb_max", "<=", 1.0, " MiB"),
)


def breaches(row: dict[str, Any], slo: SloSpec) -> list[str]:
    """The thresholds one sample's own values break, e.g. ``['p95 212.0 ms > 150 ms']``.

    >>> breaches({"client_p95_ms": 212.0, "client_success_rate": 0.99}, SloSpec())
    ['p95 212.0 ms > 150 ms']
    >>> breaches({"client_p95_ms": None}, SloSpec())
    []
    """
    found = []
    for label, column, limit_field, comparison, scale, unit in SCREENED:
        value = row.get(column)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        limit = float(getattr(slo, limit_field))
        broken = value > limit if comparison == "<=" else value < limit
        if broken:
            sign = ">" if comparison == "<=" else "<"
            found.append(f"{label} {value * scale:.1f}{unit} {sign} {limit * scale:g}{unit}")
    return found


@dataclass
class SampleScreen:
    """Samples taken so far per phase and the thresholds each broke (for status.json)."""

    done: dict[str, int] = field(default_factory=dict)
    breaking: dict[str, list[str]] = field(default_factory=dict)  # phase -> "#3: p95 ..." lines

    def record(self, phase: str, sample_num: int, row: dict[str, Any], slo: SloSpec) -> None:
        self.done[phase] = max(self.done.get(phase, 0), sample_num)
        broken = breaches(row, slo)
        if broken:
            self.breaking.setdefault(phase, []).append(f"#{sample_num}: {', '.join(broken)}")

    def status(self, phase: str | None) -> str:
        """``'4 of 5 samples within thresholds; #3: p95 212.0 ms > 150 ms'`` (screen)."""
        if phase is None or not self.done.get(phase):
            return "no sample yet"
        done, broken = self.done[phase], self.breaking.get(phase, [])
        text = f"{done - len(broken)} of {done} samples within thresholds"
        return text + (f"; {broken[-1]}" if broken else "")
