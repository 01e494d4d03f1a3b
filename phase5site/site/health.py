"""Generator health and drops on the pages: per phase, per window, and one line per run.

The figures are the evaluation's (``reporting.GeneratorHealth``, handed over by
``verdicts.flatten``); this module only lays them out. Runs recorded before the generator's
own lag was measured say "not measured", never "healthy".
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from phase5site.site.fmt import number, table, utc
from phase5site.site.icons import icon
from phase5site.site.rundata import RunData
from phase5site.site.verdicts import PhaseHealth, get_field

NOT_MEASURED = "not measured"


def ms(value: float | None) -> str:
    """Milliseconds with one decimal. Example: ``ms(612.04)`` -> ``'612.0 ms'``; None -> ``'NA'``."""
    return "NA" if value is None else f"{value:.1f} ms"


def share(value: float | None) -> str:
    return "NA" if value is None else f"{value:.2%}"


def _cpu(value: float | None) -> str:
    return "NA" if value is None else f"{value:.1%} of a core"


def _limited_samples(health: Any) -> list[int]:
    return list(get_field(health, "limited_samples", default=[]) or [])


def _phase_row(item: PhaseHealth) -> tuple[object, ...]:
    health = item.health
    free = get_field(health, "free_slot_sends", default=0) or 0
    own = (f"{ms(get_field(health, 'generator_lag_p99_ms'))} / {ms(get_field(health, 'generator_lag_max_ms'))}"
           if free else NOT_MEASURED)
    limited = ", ".join(f"#{n}" for n in _limited_samples(health))
    if not limited:
        limited = "none" if get_field(health, "measured", default=False) else NOT_MEASURED
    return (item.phase, number(get_field(health, "intended")),
            f"{number(get_field(health, 'dropped'))} ({share(get_field(health, 'dropped_share'))})",
            ms(get_field(health, "send_lag_p50_ms")), ms(get_field(health, "send_lag_p99_ms")),
            ms(get_field(health, "send_lag_max_ms")), own,
            _cpu(get_field(health, "generator_cpu_ratio_max")), ms(get_field(health, "loop_lag_max_ms")),
            limited)


def _window_rows(item: PhaseHealth) -> list[tuple[object, ...]]:
    rows = []
    for window in get_field(item.health, "windows", default=[]) or []:
        limited = get_field(window, "generator_limited")
        badge = NOT_MEASURED if limited is None else Markup(icon("INVALID") if limited else icon("PASS"))
        rows.append((item.phase, get_field(window, "sample_num"), utc(get_field(window, "window_end")),
                     number(get_field(window, "intended")), number(get_field(window, "dropped")),
                     ms(get_field(window, "generator_lag_p99_ms")), ms(get_field(window, "generator_lag_max_ms")),
                     _cpu(get_field(window, "generator_cpu_ratio")), ms(get_field(window, "loop_lag_max_ms")), badge))
    return rows


def health_section(run: RunData) -> str:
    """The run page's "Generator health and drops": a phase table and a window table."""
    phases = run.verdicts.health
    if not phases:
        return "<p>No request was recorded, or the run could not be evaluated.</p>"
    parts = [
        ("<p>Send lag is the actual minus the intended send time. While a slot was free it is the load "
         "generator's <em>own</em> delay; a window whose own-lag p99 exceeds <code>target.max_generator_lag</code> "
         "(default 10 ms) is generator-limited and the phase's client latency is INVALID. Dropped requests "
         "count as failures and rank above every sent request in the client percentiles.</p>"),
        str(table(["Phase", "Intended", "Dropped (share)", "Send lag p50", "Send lag p99", "Send lag max",
                   "Own lag p99 / max (slot free)", "Generator CPU (worst window)", "Loop lag max",
                   "Generator-limited windows"], [_phase_row(item) for item in phases], css="p5-health")),
    ]
    windows = [row for item in phases for row in _window_rows(item)]
    if windows:
        parts.append(str(table(["Phase", "Sample", "Window end (UTC)", "Intended", "Dropped", "Own lag p99",
                                "Own lag max", "Generator CPU", "Loop lag max", "Generator-limited"],
                               windows, css="p5-health-windows")))
    return "\n\n".join(parts)


def _worst_of(phases: list[PhaseHealth], name: str) -> float | None:
    values = [get_field(p.health, name) for p in phases]
    present = [value for value in values if value is not None]
    return max(present) if present else None


def overview_cells(run: RunData) -> tuple[str, str]:
    """(dropped, load generator) cells of the overview's runs table, over every phase.

    Example: 240 dropped of 3,240 and window 4 limited -> ``('240 (7.41%)', 'limited: baseline
    #4; own lag p99 40.0 ms, max 612.0 ms; CPU 97.0% of a core; loop lag 580.0 ms')``.
    """
    phases = run.verdicts.health
    if not phases:
        return "NA", "NA"
    intended = sum(get_field(p.health, "intended", default=0) or 0 for p in phases)
    dropped = sum(get_field(p.health, "dropped", default=0) or 0 for p in phases)
    dropped_cell = f"{number(dropped)} ({share(dropped / intended if intended else None)})"
    if not any(get_field(p.health, "measured", default=False) for p in phases):
        return dropped_cell, NOT_MEASURED
    limited = [f"{p.phase} " + ", ".join(f"#{n}" for n in _limited_samples(p.health))
               for p in phases if _limited_samples(p.health)]
    figures = (f"own lag p99 {ms(_worst_of(phases, 'generator_lag_p99_ms'))}, "
               f"max {ms(_worst_of(phases, 'generator_lag_max_ms'))}; "
               f"CPU {_cpu(_worst_of(phases, 'generator_cpu_ratio_max'))}; "
               f"loop lag {ms(_worst_of(phases, 'loop_lag_max_ms'))}")
    state = "limited: " + "; ".join(limited) if limited else "ok"
    return dropped_cell, f"{state}; {figures}"
