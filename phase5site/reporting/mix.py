"""What the run's request mix says about the evidence: which requests the service times, which
are synthetic, what moves each category (the metrics profile), and the client/server
reconciliation of a phase (``slo.reconcile``), read from the stored spec and request rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from phase5site.errors import MetricsError
from phase5site.metrics.profile import Profile, get_profile
from phase5site.runspec.models import default_request_mix
from phase5site.slo.categories import CATEGORIES, number
from phase5site.slo.reconcile import Reconciliation, WindowCounts, reconcile

DEFAULT_PROFILE = "metasheet"


@dataclass(frozen=True)
class MixFacts:
    """``timed``: request name -> whether the service counts it; ``synthetic``: names of
    diagnostics requests (not production traffic), in mix order."""

    profile: Profile | None
    timed: dict[str, bool]
    synthetic: list[str]

    @property
    def untimed(self) -> list[str]:
        return [name for name, timed in self.timed.items() if not timed]

    def moved_by(self) -> dict[str, str]:
        """Per category, the profile's words for what would exercise it."""
        if self.profile is None:
            return {}
        hints: dict[str, str] = {}
        for category in CATEGORIES:
            for key in (category.name, *category.exercise):
                hint = self.profile.moved_by(key)
                if hint:
                    hints[category.name] = hint
                    break
        return hints


def mix_facts(spec: Mapping[str, Any]) -> MixFacts:
    """Read the stored (redacted) spec: its profile and each request's ``timed``/``synthetic``.

    A request without ``timed`` (older runs, or left to the default) is judged by the
    profile's rule for its path; a run without a
    stored mix used the default mix.
    """
    metrics = spec.get("metrics") if isinstance(spec.get("metrics"), Mapping) else {}
    try:
        profile: Profile | None = get_profile(str(metrics.get("profile") or DEFAULT_PROFILE))  # type: ignore[union-attr]
    except MetricsError:
        profile = None
    target = spec.get("target") if isinstance(spec.get("target"), Mapping) else {}
    requests = target.get("requests") if isinstance(target, Mapping) else None  # type: ignore[union-attr]
    if not isinstance(requests, list) or not requests:
        requests = [request.model_dump(by_alias=True) for request in default_request_mix()]
    # The embedded simulator times the same routes as the real service (simulator/app.py), so
    # the profile's path rule holds for both.
    timed: dict[str, bool] = {}
    synthetic: list[str] = []
    for request in requests:
        if not isinstance(request, Mapping) or not request.get("name"):
            continue
        name, declared = str(request["name"]), request.get("timed")
        if isinstance(declared, bool):
            timed[name] = declared
        elif profile is None:
            timed[name] = True
        else:
            timed[name] = profile.timed_path(str(request.get("path") or "/"))
        if request.get("synthetic") is True:
            synthetic.append(name)
    return MixFacts(profile, timed, synthetic)


def phase_reconciliation(reader: Any, phase: str, server_rows: Sequence[Mapping[str, Any]],
                         facts: MixFacts) -> Reconciliation | None:
    """Client vs server counts per server sample window of a phase (None without server
    samples, request rows or window bounds: nothing to compare)."""
    if not server_rows or reader.request_count(phase=phase) == 0:
        return None
    windows: list[WindowCounts] = []
    for row in server_rows:
        # The server's counts cover the interval between its two readings (server_window_*,
        # store schema 3); older runs only know the sample window.
        start = number(row, "server_window_start") or number(row, "window_start")
        end = number(row, "server_window_end") or number(row, "window_end")
        if start is None or end is None:
            continue
        counts = reader.request_name_counts(phase, start, end)
        timed = [c for name, c in counts.items() if facts.timed.get(name, True)]
        server_requests = number(row, "server_requests")
        four, five = number(row, "server_4xx"), number(row, "server_5xx")
        windows.append(WindowCounts(
            sample_num=int(row["sample_num"]) if row.get("sample_num") is not None else None,
            client_intended=sum(c["intended"] for c in counts.values()),
            client_answered=sum(c["answered"] for c in counts.values()),
            client_timed=sum(c["answered"] for c in timed),
            client_failures=sum(c["failures"] for c in counts.values()),
            client_timed_errors=sum(c["http_errors"] for c in timed),
            server_requests=server_requests,
            server_errors=None if server_requests is None or four is None or five is None else four + five,
        ))
    if not windows:
        return None
    present = [name for name in facts.untimed]
    return reconcile(windows, present)
