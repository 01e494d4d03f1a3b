"""target.allow_hosts covers every URL a run contacts (issue 13 item 5): the target, the
Prometheus URL and the metrics page, the embedded target excepted; refused when the spec is
validated, with the key and host named."""

from __future__ import annotations

import pytest

from phase5site.errors import SpecError
from phase5site.runspec import parse_spec_text
from phase5site.runspec.hosts import contacted_urls


def spec(metrics: str, *, target: str = "base_url: http://api.test:8900", hosts: str = "[api.test]") -> str:
    return (f"version: 1\nname: x\ntarget:\n  {target}\n  allow_hosts: {hosts}\n"
            f"metrics: {metrics}\nphases: [{{name: a, rate: 1, concurrency: 1, duration: 1s}}]\n")


@pytest.mark.parametrize(
    ("metrics", "target", "message"),
    [
        ("{source: scrape, scrape_url: 'http://other.test:9100/metrics'}", "base_url: http://api.test:8900",
         "6:10: metrics: host 'other.test' of metrics.scrape_url is not in target.allow_hosts (allowed: api.test)"),
        ("{source: prometheus, url: 'http://prom.test:9090'}", "base_url: http://api.test:8900",
         "6:10: metrics: host 'prom.test' of metrics.url is not in target.allow_hosts (allowed: api.test)"),
        ("{source: scrape, url: 'http://other.test/metrics/prom'}", "base_url: http://api.test:8900",
         "6:10: metrics: host 'other.test' of metrics.url is not in target.allow_hosts (allowed: api.test)"),
        ("{source: both, url: 'http://prom.test:9090', scrape_url: 'http://x.test/m'}", "base_url: http://api.test:8900",
         "of metrics.url is not in target.allow_hosts (allowed: api.test) (and 1 more URL(s))"),
        # The embedded target is excepted, a real Prometheus beside it is not.
        ("{source: prometheus, url: 'http://127.0.0.1:9090'}", "embedded: {seed: 1}",
         "6:10: metrics: host '127.0.0.1' of metrics.url is not in target.allow_hosts (allowed: api.test)"),
    ],
)
def test_a_metrics_url_outside_allow_hosts_is_a_located_spec_error(metrics: str, target: str, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec_text(spec(metrics, target=target), "s.yaml", {})
    assert message in str(raised.value), str(raised.value)
    assert "add it if it may" in str(raised.value)


@pytest.mark.parametrize(
    ("metrics", "target", "hosts"),
    [
        ("{source: both, url: 'http://prom.test:9090', scrape_url: 'http://api.test:8900/metrics/prom'}",
         "base_url: http://api.test:8900", "[api.test, prom.test]"),
        ("{source: scrape}", "embedded: {seed: 1}", "[]"),  # the embedded target's own page
        ("{source: none, url: 'http://prom.elsewhere:9090'}", "base_url: http://api.test:8900", "[api.test]"),  # not contacted
    ],
)
def test_allowed_and_uncontacted_urls_pass(metrics: str, target: str, hosts: str) -> None:
    parse_spec_text(spec(metrics, target=target, hosts=hosts), "s.yaml", {})


def test_contacted_urls_name_each_key() -> None:
    loaded = parse_spec_text(spec("{source: both, url: 'http://prom.test:9090', scrape_url: 'http://api.test/m'}",
                                  hosts="[api.test, prom.test]"), "s.yaml", {})
    assert contacted_urls(loaded.spec) == [("target.base_url", "http://api.test:8900"),
                                           ("metrics.url", "http://prom.test:9090"),
                                           ("metrics.scrape_url", "http://api.test/m")]
