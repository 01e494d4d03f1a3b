"""Network probes of ``verify``: /health and an authenticated read with the token,
Prometheus ``up``, metric names.

Each probe returns a ``CheckResult`` and never raises for a network problem: a refused
connection, a timeout or a malformed answer is a FAIL naming the URL. The bearer token is
sent only to ``target.base_url`` (``/health``, the profile's authenticated read route), never
to a metrics URL: a credential goes only where it was configured for (``runspec.hosts``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from phase5site.ops.report import CheckResult


class ProbeFailed(Exception):
    """A probe could not get a usable answer; the message is the user-facing reason."""


def describe_transport_error(error: httpx.HTTPError, url: str) -> str:
    """One line saying why ``url`` gave no answer (the exception text may be multi-line)."""
    if isinstance(error, httpx.ConnectError):
        detail = str(error).splitlines()[0] if str(error) else "connection failed"
        if "refused" in detail.lower() or "errno 111" in detail.lower():
            detail = "connection refused"
        return f"cannot connect to {url} ({detail})"
    if isinstance(error, httpx.TimeoutException):
        return f"no answer from {url} within the timeout ({type(error).__name__})"
    return f"request to {url} failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"


def get(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
    try:
        return client.get(url, **kwargs)
    except httpx.HTTPError as error:
        raise ProbeFailed(describe_transport_error(error, url)) from error


def bearer_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _timed_get(client: httpx.Client, check: str, url: str,
               token: str | None) -> CheckResult | tuple[httpx.Response, dict[str, Any]]:
    """``GET url`` with the token: the answer and its details (url, status, elapsed_ms), or
    the check's FAIL when nothing answered."""
    started = time.perf_counter()
    try:
        response = get(client, url, headers=bearer_headers(token))
    except ProbeFailed as failed:
        return CheckResult(check, "FAIL", str(failed), {"url": url})
    elapsed_ms = (time.perf_counter() - started) * 1000
    return response, {"url": url, "status": response.status_code, "elapsed_ms": round(elapsed_ms, 1)}


def probe_health(client: httpx.Client, base_url: str, token: str | None) -> CheckResult:
    """``GET <base_url>/health`` with the token: 200 is OK, 401/403 mean the token is rejected."""
    url = base_url.rstrip("/") + "/health"
    answered = _timed_get(client, "health", url, token)
    if isinstance(answered, CheckResult):
        return answered
    response, details = answered
    if response.status_code in (401, 403):
        why = "no token was sent" if not token else "token rejected"
        return CheckResult("health", "FAIL", f"{why}: {url} answered {response.status_code}", details)
    if response.status_code != 200:
        return CheckResult("health", "FAIL", f"{url} answered {response.status_code}, expected 200", details)
    return CheckResult("health", "OK", f"{url} answered 200 in {details['elapsed_ms']:g} ms", details)


def probe_auth(client: httpx.Client, base_url: str, path: str, token: str) -> CheckResult:
    """``GET <base_url><path>`` with the token, ``path`` an authenticated read route of the
    service (``Profile.authenticated_read_path``): 2xx is OK, 401/403 mean the service
    rejects the token (a FAIL: every authenticated request of the run would be refused)."""
    url = base_url.rstrip("/") + path
    answered = _timed_get(client, "auth", url, token)
    if isinstance(answered, CheckResult):
        return answered
    response, details = answered
    if response.status_code in (401, 403):
        return CheckResult("auth", "FAIL", f"the token was rejected: GET {url} answered {response.status_code}; "
                           "every request the run sends with it would be refused (is it signed with the "
                           "deployment's JWT_SECRET, unexpired, for an active user?)", details)
    if not 200 <= response.status_code < 300:
        return CheckResult("auth", "WARN", f"the token could not be checked: GET {url} answered "
                           f"{response.status_code} (expected 2xx, or 401/403 for a rejected token)", details)
    return CheckResult("auth", "OK", f"the token was accepted: GET {url} answered {response.status_code} "
                       f"in {details['elapsed_ms']:g} ms", details)


def _prometheus_data(response: httpx.Response, url: str) -> Any:
    """The ``data`` of a Prometheus API answer, or ProbeFailed with what was wrong."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ProbeFailed(f"{url} answered {response.status_code} without JSON: not a Prometheus API") from error
    if not isinstance(body, dict) or body.get("status") != "success":
        error_text = body.get("error") if isinstance(body, dict) else None
        raise ProbeFailed(f"{url} answered {response.status_code} with status "
                          f"{body.get('status') if isinstance(body, dict) else None!r}: {error_text or 'no data'}")
    return body.get("data")


def probe_prometheus_up(client: httpx.Client, prometheus_url: str, selector: str) -> CheckResult:
    """``GET /api/v1/query?query=up<selector>`` must answer status success.

    Targets reported down (``up == 0``) or no target matching the selector are a WARN: the
    API works but the service's metrics will be NA.
    """
    check = "metrics:prometheus"
    url = prometheus_url.rstrip("/") + "/api/v1/query"
    query = "up" + selector
    try:
        data = _prometheus_data(get(client, url, params={"query": query}), url)
    except ProbeFailed as failed:
        return CheckResult(check, "FAIL", str(failed), {"url": url, "query": query})
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        return CheckResult(check, "FAIL", f"{url} answered success without a result list", {"url": url})
    up = sum(1 for series in result if _sample_value(series) == 1.0)
    details = {"url": url, "query": query, "targets": len(result), "targets_up": up}
    if not result:
        return CheckResult(check, "WARN", f"Prometheus answers, but no scrape target matches {query}", details)
    if up < len(result):
        return CheckResult(check, "WARN", f"Prometheus answers; {len(result) - up} of {len(result)} targets of {query} are down", details)
    return CheckResult(check, "OK", f"Prometheus answers {query}: {up} target(s) up", details)


def _sample_value(series: Any) -> float | None:
    try:
        return float(series["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def prometheus_series_names(
    client: httpx.Client, prometheus_url: str, selector: str, *, now_s: float, lookback_s: float = 900.0
) -> set[str]:
    """Metric names with series in the last ``lookback_s`` (``/api/v1/label/__name__/values``)."""
    url = prometheus_url.rstrip("/") + "/api/v1/label/__name__/values"
    params: dict[str, str] = {"start": f"{now_s - lookback_s:.3f}", "end": f"{now_s:.3f}"}
    if selector:
        params["match[]"] = selector
    data = _prometheus_data(get(client, url, params=params), url)
    if not isinstance(data, list):
        raise ProbeFailed(f"{url} answered success without a list of names")
    return {str(name) for name in data}


def prometheus_declared_families(client: httpx.Client, prometheus_url: str) -> set[str]:
    """Family names Prometheus holds metadata for (``/api/v1/metadata``): declared by a
    ``# TYPE`` line of a scraped page, with or without series. The run decides presence the
    same way (``metrics.prometheus_window.Presence``), so verify must too: prom-client shows
    a labelled family as HELP/TYPE only until its first event."""
    url = prometheus_url.rstrip("/") + "/api/v1/metadata"
    data = _prometheus_data(get(client, url), url)
    if not isinstance(data, dict):
        raise ProbeFailed(f"{url} answered success without a map of families")
    return {str(name) for name in data}


def fetch_scrape_page(client: httpx.Client, scrape_url: str, headers: dict[str, str] | None = None,
                      *, credential: str | None = None) -> tuple[CheckResult, str | None]:
    """``GET`` the service's metrics page with the credential configured for it (``headers``,
    from ``metrics.auth``; never the load token): 200 with text is OK.

    ``credential`` names the spec key the headers come from (``metrics.auth.bearer``). With
    one, the page is also asked without it: a page that answers anyone is "open", and the
    token is then not checked by the service (a WARN: the run works, the page is public).
    """
    check = "metrics:scrape"
    try:
        response = get(client, scrape_url, headers=headers or {})
    except ProbeFailed as failed:
        return CheckResult(check, "FAIL", str(failed), {"url": scrape_url}), None
    details: dict[str, Any] = {"url": scrape_url, "status": response.status_code,
                               "bytes": len(response.content), "credential": credential}
    if response.status_code in (401, 403):
        return CheckResult(check, "FAIL", _refused(scrape_url, response, credential), details), None
    if response.status_code != 200:
        return CheckResult(check, "FAIL", f"{scrape_url} answered {response.status_code}, expected 200", details), None
    size = f"{len(response.content)} bytes"
    if not headers:
        return CheckResult(check, "OK", f"{scrape_url} answered 200 ({size}); the page is open "
                           "(no credential configured or needed)", details), response.text
    try:
        without = get(client, scrape_url).status_code
    except ProbeFailed:
        without = None
    details["status_without_credential"] = without
    if without == 200:
        return CheckResult(check, "WARN", f"metrics token accepted by {scrape_url} ({size}), but the page is "
                           "open: it answers 200 without the token too, so the service does not check it "
                           "(METRICS_SCRAPE_TOKEN unset there?)", details), response.text
    return CheckResult(check, "OK", f"metrics token ({credential}) accepted: {scrape_url} answered 200 "
                       f"({size}); without it {without}", details), response.text


def _refused(scrape_url: str, response: httpx.Response, credential: str | None) -> str:
    challenge = response.headers.get("www-authenticate")
    asked = f" ({'WWW-Authenticate: ' + challenge})" if challenge else ""
    if credential:
        return (f"metrics token rejected: {scrape_url} answered {response.status_code}{asked} to "
                f"{credential}; check METRICS_SCRAPE_TOKEN against the service's value")
    return (f"the metrics page wants a credential: {scrape_url} answered {response.status_code}{asked}; set "
            "metrics.auth.x_metrics_token (or .bearer) to ${METRICS_SCRAPE_TOKEN}; the load token "
            "(target.auth.bearer) is never sent to it")


def scrape_interval_s(client: httpx.Client, prometheus_url: str, selector: str, *, now_s: float,
                      lookback_s: float = 300.0) -> float | None:
    """The longest median gap between successful scrapes of any target matching ``selector``
    over the last ``lookback_s`` (raw ``up`` samples), or None without two scrapes."""
    url = prometheus_url.rstrip("/") + "/api/v1/query"
    query = f"up{selector}[{round(lookback_s)}s]"
    data = _prometheus_data(get(client, url, params={"query": query, "time": f"{now_s:.3f}"}), url)
    result = data.get("result") if isinstance(data, dict) else None
    medians = []
    for series in result if isinstance(result, list) else []:
        try:
            times = sorted(float(ts) for ts, value in series["values"] if float(value) == 1.0)
        except (KeyError, TypeError, ValueError):
            continue
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        if gaps:
            medians.append(gaps[len(gaps) // 2])
    return max(medians) if medians else None


def probe_scrape_interval(client: httpx.Client, prometheus_url: str, selector: str, *, now_s: float,
                          shortest_window_s: float | None) -> CheckResult:
    """Prometheus mode diffs the first and the last scrape *inside* each sample window
    (metrics.scrape_edges): a window needs two, so the scrape interval must be at most half
    the shortest sample interval, and each window's server counts cover up to two scrape
    intervals less than the window."""
    check = "scrape_interval"
    try:
        interval = scrape_interval_s(client, prometheus_url, selector, now_s=now_s)
    except ProbeFailed as failed:
        return CheckResult(check, "INFO", f"not checked: {failed}")
    if interval is None:
        return CheckResult(check, "INFO", f"not checked: no target of up{selector} was scraped twice in the last 5 minutes")
    details = {"scrape_interval_s": round(interval, 3), "shortest_window_s": shortest_window_s}
    if shortest_window_s is None:
        return CheckResult(check, "INFO", f"Prometheus scrapes every {interval:g} s; no phase takes samples", details)
    if 2 * interval > shortest_window_s:
        return CheckResult(check, "WARN", f"Prometheus scrapes every {interval:g} s, more than half the shortest "
                           f"sample interval ({shortest_window_s:g} s): a window needs two scrapes inside it, so "
                           "some will be NA; sample less often or scrape more often", details)
    return CheckResult(check, "OK", f"Prometheus scrapes every {interval:g} s: each {shortest_window_s:g} s window "
                       f"holds about {shortest_window_s / interval:.0f} scrapes, and its server counts cover the "
                       f"time between the first and the last (up to {2 * interval:g} s less than the window)", details)
