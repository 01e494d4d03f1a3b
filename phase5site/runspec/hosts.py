"""Which hosts a run contacts, and whether ``target.allow_hosts`` covers them (pure).

``allow_hosts`` is the list of hosts a run may contact at all: the target's ``base_url``,
the Prometheus ``metrics.url`` and the metrics page ``metrics.scrape_url`` (or ``metrics.url``
when the source is ``scrape``). The embedded target is excepted: the run starts it on
127.0.0.1 itself. A URL outside the list is refused when the spec is validated and again by
the runner before any request (issue 13 item 5: a scrape URL on another host was contacted,
and sent the load JWT).

Credentials follow the same map: a credential goes only to the URL it was configured for.
The load JWT (``target.auth.bearer``) is the target's, so it goes with the load requests
and ``verify``'s ``/health`` probe to ``target.base_url`` and never to a metrics URL, even
one on the same host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

# The spec models import this module to validate, so it takes them untyped (Any): a
# ``RunSpec`` / ``MetricsSpec`` as runspec.models defines them.


def metrics_urls(metrics: Any) -> list[tuple[str, str]]:
    """(spec key, URL) of every metrics URL the source will contact.

    >>> from phase5site.runspec.models import MetricsSpec
    >>> metrics_urls(MetricsSpec(source="both", url="http://prom:9090", scrape_url="http://api:8900/metrics"))
    [('metrics.url', 'http://prom:9090'), ('metrics.scrape_url', 'http://api:8900/metrics')]
    >>> metrics_urls(MetricsSpec(source="none", url="http://prom:9090"))
    []
    """
    urls: list[tuple[str, str]] = []
    if metrics.source in ("prometheus", "both") and metrics.url:
        urls.append(("metrics.url", metrics.url))
    if metrics.source in ("scrape", "both"):
        if metrics.scrape_url:
            urls.append(("metrics.scrape_url", metrics.scrape_url))
        elif metrics.source == "scrape" and metrics.url:
            urls.append(("metrics.url", metrics.url))  # the page itself in scrape mode
    return urls


def contacted_urls(spec: Any) -> list[tuple[str, str]]:
    """(spec key, URL) of everything the run contacts, the embedded target excepted.

    A scrape page left to its default is ``base_url + /metrics/prom``: the target's host.
    """
    urls = [("target.base_url", spec.target.base_url)] if spec.target.base_url else []
    return urls + metrics_urls(spec.metrics)


def host_of(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def hosts_not_allowed(urls: list[tuple[str, str]], allow_hosts: list[str]) -> list[tuple[str, str, str | None]]:
    """(spec key, URL, host) of every URL whose host is not in ``allow_hosts``."""
    allowed = set(allow_hosts)
    return [(key, url, host_of(url)) for key, url in urls if host_of(url) not in allowed]


def refusal(urls: list[tuple[str, str]], allow_hosts: list[str]) -> str | None:
    """The message refusing the first URL outside ``allow_hosts``, or None.

    >>> refusal([("metrics.url", "http://prom.other.net:9090")], ["api.test"])
    "host 'prom.other.net' of metrics.url is not in target.allow_hosts (allowed: api.test): the run may contact only the hosts listed there; add it if it may"
    """
    outside = hosts_not_allowed(urls, allow_hosts)
    if not outside:
        return None
    key, _, host = outside[0]
    allowed = ", ".join(allow_hosts) or "none"
    more = f" (and {len(outside) - 1} more URL(s))" if len(outside) > 1 else ""
    return (f"host {host!r} of {key} is not in target.allow_hosts (allowed: {allowed}){more}: "
            "the run may contact only the hosts listed there; add it if it may")
