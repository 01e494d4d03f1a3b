"""Run specs: YAML -> validated, interpolated, secret-aware ``RunSpec``."""

from __future__ import annotations

from phase5site.runspec.durations import format_duration, parse_duration
from phase5site.runspec.interpolate import interpolate, is_secret_name
from phase5site.runspec.loader import LoadedSpec, format_path, load_spec, parse_spec_text
from phase5site.runspec.models import (
    CircuitBreakerSpec,
    EmbeddedSpec,
    FaultSpec,
    FlagsSpec,
    MetricsSpec,
    PhaseSpec,
    RequestSpec,
    RunSpec,
    SloSpec,
    TargetSpec,
)
from phase5site.runspec.redaction import REDACTED, redact, redact_tree
from phase5site.runspec.schema import spec_json_schema

__all__ = [
    "CircuitBreakerSpec",
    "EmbeddedSpec",
    "FaultSpec",
    "FlagsSpec",
    "LoadedSpec",
    "MetricsSpec",
    "PhaseSpec",
    "REDACTED",
    "RequestSpec",
    "RunSpec",
    "SloSpec",
    "TargetSpec",
    "format_duration",
    "format_path",
    "interpolate",
    "is_secret_name",
    "load_spec",
    "parse_duration",
    "parse_spec_text",
    "redact",
    "redact_tree",
    "spec_json_schema",
]
