"""Pre-flight checks before a run: ``verify_spec`` runs every check and reports each one.

Replaces ``phase5-verify-preconditions.sh``, which stopped at its first warning. Here a
check never stops the others: even a check that crashes is reported as a FAIL line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from phase5site.errors import Phase5Error
from phase5site.ops.disk import (
    estimate_run_bytes,
    existing_ancestor,
    format_bytes,
    free_bytes,
    probe_writable,
)
from phase5site.ops.families import (
    declared_family,
    exposition_names,
    exposition_problem,
    missing_series,
    not_exported_series,
    required_series,
)
from phase5site.metrics.profile import get_profile
from phase5site.ops.probes import (
    ProbeFailed,
    fetch_scrape_page,
    probe_auth,
    probe_scrape_interval,
    probe_health,
    probe_prometheus_up,
    prometheus_declared_families,
    prometheus_series_names,
)
from phase5site.ops.report import CheckResult, VerifyReport
from phase5site.ops.token import check_jwt_shape
from phase5site.runspec import LoadedSpec, format_duration, hosts, redact, redact_tree
from phase5site.runspec.models import FlagsSpec, MetricsSpec, RunSpec

# Flags that must be false in production (FAIL) and those that change a number (WARN).
FLAG_SEVERITY: dict[str, str] = {
    "COUNT_CACHE_MISS_AS_FALLBACK": "WARN",
    "ENABLE_PHASE5_INTERNAL": "FAIL",
    "ENABLE_FALLBACK_TEST": "FAIL",
}
FLAG_CONSEQUENCE: dict[str, str] = {
    "COUNT_CACHE_MISS_AS_FALLBACK": "cache misses count as effective fallback, so effective fallback reads higher",
    "ENABLE_PHASE5_INTERNAL": "internal Phase 5 endpoints must be off in production",
    "ENABLE_FALLBACK_TEST": "forced fallback testing must be off in production",
}
_WITH_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


@dataclass(frozen=True)
class _Target:
    """Where the checks send requests: the production URL or a started embedded target."""

    base_url: str | None
    metrics_url: str | None


def verify_spec(
    loaded: LoadedSpec,
    *,
    env: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
    results_dir: Path = Path("results"),
    only_phases: list[str] | None = None,
    clock: Callable[[], float] = time.time,
    on_check: Callable[[CheckResult], None] | None = None,
) -> VerifyReport:
    """Run every pre-flight check of ``loaded`` and return all results (never stops early).

    ``env`` is the environment the spec was loaded with (process environment over the
    dotenv file); ``transport`` replaces the network in tests. ``on_check`` gets each
    result (redacted) as soon as its check completes: the target and metrics checks take
    seconds, and a silent terminal looks hung.
    """
    spec = loaded.spec
    token = spec.target.auth.bearer.get_secret_value() if spec.target.auth.bearer else None
    secrets = set(loaded.secrets) | ({token} if token else set())
    results: list[CheckResult] = []
    reported = 0

    def report_new() -> None:
        nonlocal reported
        for result in results[reported:]:
            if on_check is not None:
                on_check(_redacted(result, secrets))
        reported = len(results)

    def step(name: str, run: Callable[[], list[CheckResult]]) -> None:
        results.extend(_guard(name, run))
        report_new()

    step("env", lambda: [check_env(loaded, env)])
    step("token", lambda: [check_token(spec, token, now_s=clock())])
    step("flag", lambda: check_flags(spec, env, only_phases))
    step("allow_hosts", lambda: [check_allow_hosts(spec)])
    with _started_target(spec, token, results) as target:
        report_new()
        step("health", lambda: [check_health(target, token, transport, spec.target.timeout)])
        step("auth", lambda: [check_auth(spec, target, token, transport)])
        step("metrics", lambda: check_metrics(spec, target, token, transport, now_s=clock()))
    step("results_dir", lambda: [check_results_dir(results_dir)])
    step("disk_space", lambda: [check_disk_space(spec, results_dir, only_phases)])
    step("wall_time", lambda: [check_wall_time(spec, only_phases)])
    return VerifyReport(
        spec_path=str(loaded.path),
        spec_sha256=loaded.sha256,
        checks=tuple(_redacted(result, secrets) for result in results),
    )


def _guard(name: str, run: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Run one check; a crash becomes a FAIL line so that every other check still runs."""
    try:
        return run()
    except Exception as error:  # noqa: BLE001 -- a broken check must not hide the others
        return [CheckResult(name, "FAIL", f"check could not run: {type(error).__name__}: {error}")]


def check_env(loaded: LoadedSpec, env: Mapping[str, str]) -> CheckResult:
    """Every variable the spec interpolates is set (names only, never values).

    A spec that loaded has every variable without default set, but maybe to ``""`` (as an
    empty ``PROD_JWT=`` line of the template leaves it): that is a WARN. An unset or empty
    variable with a ``${VAR:-default}`` is fine: the default is used and named.
    """
    refs = dict(loaded.env_refs)
    if not refs:
        return CheckResult("env", "OK", "the spec references no environment variables", {"variables": {}})
    with_default = names_with_default(loaded.path)
    defaulted = [name for name in refs if not env.get(name) and name in with_default]
    empty = [name for name in refs if not env.get(name) and name not in with_default]
    set_names = [name for name in refs if env.get(name)]
    details = {"variables": {name: {"line": line, "set": bool(env.get(name)), "default_used": name in defaulted}
                             for name, line in refs.items()}}
    parts = [f"{len(set_names)} variable(s) set" + (f": {', '.join(set_names)}" if set_names else "")]
    if defaulted:
        parts.append(f"spec defaults used for {', '.join(defaulted)}")
    if empty:
        where = ", ".join(f"{name} (line {refs[name]})" for name in empty)
        return CheckResult("env", "WARN", f"set but empty, without default: {where}; " + "; ".join(parts), details)
    return CheckResult("env", "OK", "; ".join(parts), details)


def names_with_default(spec_path: Path) -> set[str]:
    """Variables written as ``${VAR:-default}`` somewhere in the spec file (empty if unreadable)."""
    try:
        text = spec_path.read_text(encoding="utf-8")
    except OSError:
        return set()
    return set(_WITH_DEFAULT.findall(text))


def check_token(spec: RunSpec, token: str | None, *, now_s: float) -> CheckResult:
    if not token:
        if spec.target.embedded is not None:
            return CheckResult("token", "OK", "no bearer token: the embedded target is started without auth")
        return CheckResult("token", "WARN", "no bearer token (target.auth.bearer): requests go unauthenticated")
    shape = check_jwt_shape(token, now_s=now_s)
    return CheckResult("token", "OK" if shape.status == "OK" else "WARN", shape.reason, shape.details)


def parse_flag(value: str) -> bool | None:
    """``"true"``/``"1"``/``"yes"``/``"on"`` -> True, ``"false"``/``"0"``/``""`` -> False, else None."""
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def check_flags(spec: RunSpec, env: Mapping[str, str], only_phases: list[str] | None = None) -> list[CheckResult]:
    """One line per flag, from the spec's flags, each phase's overrides and the environment."""
    results = []
    phases = spec.enabled_phases(only_phases)
    for name in FlagsSpec.model_fields:
        true_in = ["spec flags"] if getattr(spec.flags, name) else []
        true_in += [f"phase {p.name}" for p in phases if getattr(spec.effective_flags(p), name)
                    and not getattr(spec.flags, name)]
        check = f"flag:{name}"
        raw = env.get(name)
        if raw is not None:
            parsed = parse_flag(raw)
            if parsed is None:
                results.append(CheckResult(check, "WARN", f"environment {name}={raw!r} is not a boolean "
                                           "(expected true/false)", {"true_in": true_in}))
                continue
            if parsed:
                true_in.append("environment")
        if true_in:
            severity = FLAG_SEVERITY[name]
            reason = f"{name}=true in {', '.join(true_in)}: {FLAG_CONSEQUENCE[name]}"
            results.append(CheckResult(check, severity, reason, {"true_in": true_in}))  # type: ignore[arg-type]
        else:
            results.append(CheckResult(check, "OK", f"{name} is false (spec, phases, environment)", {"true_in": []}))
    return results


def check_allow_hosts(spec: RunSpec) -> CheckResult:
    """Every URL the run contacts (target, Prometheus, metrics page; the embedded target
    excepted) is on a host in target.allow_hosts (``runspec.hosts``)."""
    target = spec.target
    urls = hosts.contacted_urls(spec)
    details: dict[str, Any] = {"host": "127.0.0.1" if target.embedded is not None else target.host,
                               "allow_hosts": list(target.allow_hosts),
                               "contacted": {key: hosts.host_of(url) for key, url in urls}}
    outside = hosts.hosts_not_allowed(urls, target.allow_hosts)
    if outside:
        allowed = ", ".join(target.allow_hosts) or "none"
        named = ", ".join(f"{host} ({key})" for key, _, host in outside)
        return CheckResult("allow_hosts", "FAIL", f"not in allow_hosts ({allowed}): {named}: the run would be refused", details)
    where = ", ".join(f"{hosts.host_of(url)} ({key})" for key, url in urls)
    if target.embedded is not None:
        return CheckResult("allow_hosts", "OK", "embedded target: load goes to 127.0.0.1 only"
                           + (f"; also contacted, all allowed: {where}" if where else ""), details)
    return CheckResult("allow_hosts", "OK", f"every host the run contacts is in allow_hosts: {where}", details)


@contextmanager
def _started_target(spec: RunSpec, token: str | None, results: list[CheckResult]) -> Iterator[_Target]:
    """Yield where to send probes; for an embedded target, start it and always stop it."""
    metrics = spec.metrics
    if spec.target.embedded is None:
        base_url = spec.target.base_url
        yield _Target(base_url, metrics.scrape_url or (base_url.rstrip("/") + "/metrics/prom" if base_url else None))
        return
    try:
        from phase5site.simulator import start_target

        started = start_target(spec.target.embedded, bearer=token)
    except Exception as error:  # noqa: BLE001 -- reported as a FAIL line; the other checks run
        why = str(error) if isinstance(error, Phase5Error) else f"{type(error).__name__}: {error}"
        results.append(CheckResult("target", "FAIL", f"the embedded target could not start: {why}"))
        yield _Target(None, metrics.scrape_url)
        return
    results.append(CheckResult("target", "OK", f"embedded target started at {started.base_url} for the checks",
                               {"base_url": started.base_url, "pid": started.pid}))
    try:
        yield _Target(started.base_url, metrics.scrape_url or started.metrics_url)
    finally:
        try:
            started.stop()
        except Exception as error:  # noqa: BLE001 -- a stop problem must not hide the results
            results.append(CheckResult("target_stop", "WARN", f"the embedded target did not stop cleanly: {error}"))


def check_health(
    target: _Target, token: str | None, transport: httpx.BaseTransport | None, timeout_s: float
) -> CheckResult:
    if target.base_url is None:
        return CheckResult("health", "FAIL", "not checked: the embedded target did not start")
    with httpx.Client(transport=transport, timeout=timeout_s) as client:
        return probe_health(client, target.base_url, token)


def check_auth(
    spec: RunSpec, target: _Target, token: str | None, transport: httpx.BaseTransport | None
) -> CheckResult:
    """Whether the service accepts the token: ``/health`` is outside the JWT gate and answers
    200 to any token, so the token is sent to the profile's authenticated read route
    (``Profile.authenticated_read_path``; metasheet: ``/api/auth/me``)."""
    if not token:
        return CheckResult("auth", "INFO", "not checked: the spec sends no bearer token (target.auth.bearer)")
    path = get_profile(spec.metrics.profile).authenticated_read_path
    if path is None:
        return CheckResult("auth", "INFO", f"not checked: profile {spec.metrics.profile} names no "
                           "authenticated read route to try the token on")
    if target.base_url is None:
        return CheckResult("auth", "FAIL", "not checked: the embedded target did not start")
    with httpx.Client(transport=transport, timeout=spec.target.timeout) as client:
        return probe_auth(client, target.base_url, path, token)


def check_metrics(
    spec: RunSpec, target: _Target, token: str | None, transport: httpx.BaseTransport | None, *, now_s: float
) -> list[CheckResult]:
    """The metrics source answers, and every family the profile needs is there."""
    metrics = spec.metrics
    if metrics.source == "none":
        return [CheckResult("metrics:none", "WARN", "metrics.source is none: server columns will be NA; "
                            "only client-side values are measured")]
    needed = required_series(metrics.profile, metrics.overrides)
    results: list[CheckResult] = []
    with httpx.Client(transport=transport, timeout=metrics.timeout) as client:
        if metrics.source in ("prometheus", "both"):
            results += _check_prometheus(client, metrics.url or "", metrics.selector, needed, now_s)
            results.append(probe_scrape_interval(client, metrics.url or "", metrics.selector, now_s=now_s,
                                                 shortest_window_s=_shortest_window_s(spec)))
        if metrics.source in ("scrape", "both"):
            # The load token is the target's: never sent to the metrics page (runspec.hosts);
            # only the page's own credential (metrics.auth) is.
            results += _check_scrape(client, target.metrics_url, needed, headers=metrics.auth.headers(),
                                     credential=_credential_key(metrics))
    results.append(_not_exported_result(metrics.profile))
    return results


def _not_exported_result(profile: str) -> CheckResult:
    """Families the profile knows the service does not export: NA by design, not missing."""
    gone = not_exported_series(profile)
    if not gone:
        return CheckResult("families:not_exported", "INFO",
                           f"profile {profile}: the service exports every family the columns read")
    columns = sorted({column for cols in gone.values() for column in cols})
    return CheckResult(
        "families:not_exported", "INFO",
        f"profile {profile}: {len(gone)} families are not exported by this service "
        f"({', '.join(sorted(gone))}); {', '.join(columns)} read NA \"not exported by this service\"",
        {"not_exported": {name: list(cols) for name, cols in sorted(gone.items())}, "na_columns": columns})


def _check_prometheus(
    client: httpx.Client, url: str, selector: str, needed: dict[str, tuple[str, ...]], now_s: float
) -> list[CheckResult]:
    """Prometheus is never sent the service's token: it is another host."""
    up = probe_prometheus_up(client, url, selector)
    if up.status == "FAIL":
        return [up, CheckResult("families:prometheus", "WARN", "not checked: Prometheus did not answer",
                                {"needed": sorted(needed)})]
    try:
        present = prometheus_series_names(client, url, selector, now_s=now_s)
        declared = prometheus_declared_families(client, url)
    except ProbeFailed as failed:
        return [up, CheckResult("families:prometheus", "WARN", f"not checked: {failed}")]
    return [up, _families_result("families:prometheus", needed, present, declared=declared)]


def _shortest_window_s(spec: RunSpec) -> float | None:
    """The shortest sample window of the observed phases (interval, or the whole phase)."""
    windows = [phase.interval or phase.planned_duration_s for phase in spec.enabled_phases() if phase.observe]
    return min(windows) if windows else None


def _credential_key(metrics: MetricsSpec) -> str | None:
    """The spec key of the metrics page's own credential, or None."""
    for key in ("bearer", "x_metrics_token"):
        if getattr(metrics.auth, key) is not None:
            return f"metrics.auth.{key}"
    return None


def _check_scrape(
    client: httpx.Client, scrape_url: str | None, needed: dict[str, tuple[str, ...]], *,
    headers: dict[str, str], credential: str | None = None,
) -> list[CheckResult]:
    if not scrape_url:
        return [CheckResult("metrics:scrape", "FAIL", "no metrics page to scrape: set metrics.scrape_url")]
    page, text = fetch_scrape_page(client, scrape_url, headers, credential=credential)
    if text is None:
        return [page, CheckResult("families:scrape", "WARN", "not checked: the metrics page did not answer",
                                  {"needed": sorted(needed)})]
    problem = exposition_problem(text)
    if problem is not None:  # e.g. an HTML login page: no run could read a number from it
        page = CheckResult(page.check, "FAIL", f"{scrape_url} answered 200 but is not a Prometheus "
                           f"metrics page: {problem}", page.details)
        return [page, CheckResult("families:scrape", "WARN", "not checked: the metrics page is not "
                                  "exposition text", {"needed": sorted(needed)})]
    sampled, declared = exposition_names(text)
    return [page, _families_result("families:scrape", needed, sampled, declared)]


def _families_result(
    check: str, needed: dict[str, tuple[str, ...]], present: set[str], declared: set[str]
) -> CheckResult:
    missing = missing_series(needed, present)
    no_series_yet = sorted(name for name in missing if declared_family(name, declared))
    columns = sorted({column for cols in missing.values() for column in cols})
    details: dict[str, Any] = {
        "needed": sorted(needed),
        "missing": {name: list(cols) for name, cols in sorted(missing.items())},
        "declared_without_series": no_series_yet,
        "na_columns": columns,
    }
    if not missing:
        return CheckResult(check, "OK", f"all {len(needed)} metric families the profile needs are present", details)
    absent = sorted(name for name in missing if name not in no_series_yet)
    if not absent:
        # prom-client declares a labelled family at start but shows no series before its
        # first observation; the service does export it.
        return CheckResult(check, "OK", f"all {len(needed)} metric families are exported; no series yet for "
                           f"{', '.join(no_series_yet)} (NA until the service records one)", details)
    return CheckResult(check, "WARN", f"{len(absent)} of {len(needed)} metric families missing "
                       f"({', '.join(absent)}): their columns will be NA", details)


def check_results_dir(results_dir: Path) -> CheckResult:
    details: dict[str, Any] = {"path": str(results_dir)}
    if results_dir.exists() and not results_dir.is_dir():
        return CheckResult("results_dir", "FAIL", f"{results_dir} exists but is not a folder", details)
    folder = existing_ancestor(results_dir)
    problem = probe_writable(folder)
    if problem is not None:
        return CheckResult("results_dir", "FAIL", f"cannot write in {folder}: {problem}", details)
    if folder != results_dir.absolute():
        return CheckResult("results_dir", "OK", f"{results_dir} will be created in {folder} (writable)", details)
    return CheckResult("results_dir", "OK", f"{results_dir} is writable", details)


def check_disk_space(spec: RunSpec, results_dir: Path, only_phases: list[str] | None = None) -> CheckResult:
    estimate = estimate_run_bytes(spec, only_phases)
    folder = existing_ancestor(results_dir)
    free = free_bytes(folder)
    details = {"bytes_needed": estimate.bytes_needed, "bytes_free": free,
               "request_rows": estimate.request_rows, "samples": estimate.samples, "folder": str(folder)}
    text = (f"{format_bytes(free)} free in {folder}, the run needs about {format_bytes(estimate.bytes_needed)} "
            f"({estimate.request_rows:,} request rows, {estimate.samples} samples)")
    return CheckResult("disk_space", "OK" if free >= estimate.bytes_needed else "FAIL", text, details)


def check_wall_time(spec: RunSpec, only_phases: list[str] | None = None) -> CheckResult:
    phases = spec.enabled_phases(only_phases)
    total_s = sum(phase.planned_duration_s for phase in phases)
    parts = ", ".join(f"{p.name} {format_duration(p.planned_duration_s)}" for p in phases)
    return CheckResult("wall_time", "INFO", f"planned wall time {format_duration(total_s)} ({parts})",
                       {"planned_s": total_s, "phases": {p.name: p.planned_duration_s for p in phases}})


def _redacted(result: CheckResult, secrets: set[str]) -> CheckResult:
    """Remove every secret value and keep the reason on one line."""
    reason = " ".join(redact(result.reason, secrets).split())
    return CheckResult(result.check, result.status, reason or "(no reason)", redact_tree(result.details, secrets))

