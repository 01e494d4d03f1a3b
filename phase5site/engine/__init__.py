"""The load engine: open-model pacer, one transport per worker (the lean HTTP/1.1 client of
``httpclient`` by default, httpx with ``target.client: httpx``), sampler loop, circuit breaker
and the runner that ties them to the store (see DESIGN.md, "Measurement semantics").
"""

from __future__ import annotations

from phase5site.engine.runner import ProgressSink, RunOutcome, check_allowed_host, run_spec, status_line

__all__ = ["ProgressSink", "RunOutcome", "check_allowed_host", "run_spec", "status_line"]
