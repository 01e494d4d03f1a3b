"""The load engine: open-model pacer, per-worker httpx transports, sampler loop, circuit
breaker and the runner that ties them to the store (see DESIGN.md, "Measurement semantics").
"""

from __future__ import annotations

from phase5site.engine.runner import ProgressSink, RunOutcome, check_allowed_host, run_spec, status_line

__all__ = ["ProgressSink", "RunOutcome", "check_allowed_host", "run_spec", "status_line"]
