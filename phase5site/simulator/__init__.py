"""The embedded target: a MetaSheet-like service (ASGI, served by uvicorn) with the same
metric families, realistic seeded behaviour and switchable faults.

Public API:

    start_target(embedded, *, bearer=None, port=0, host="127.0.0.1") -> EmbeddedTarget
    EmbeddedTarget.base_url, .metrics_url, .pid, .set_faults(faults), .request_count(),
                   .state(), .stop(); a context manager
    create_app(TargetConfig(...)) -> MetasheetApp   # in-process ASGI app for tests
    run_foreground(config, on_ready=...)              # `phase5site target`
    parse_fault_option("error_burst:10s:5s:0.3") -> FaultSpec

The engine must not import this package's internals beyond ``start_target``.
"""

from __future__ import annotations

from phase5site.simulator.app import MetasheetApp, create_app
from phase5site.simulator.config import TargetConfig
from phase5site.simulator.faults import parse_fault_option
from phase5site.simulator.metrics import KNOWN_FAMILIES, PROFILE_FAMILIES
from phase5site.simulator.process import EmbeddedTarget, start_target
from phase5site.simulator.server import run_foreground

__all__ = [
    "KNOWN_FAMILIES",
    "PROFILE_FAMILIES",
    "EmbeddedTarget",
    "MetasheetApp",
    "TargetConfig",
    "create_app",
    "parse_fault_option",
    "run_foreground",
    "start_target",
]
