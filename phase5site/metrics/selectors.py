"""Prometheus label selectors: ``{job="api", status=~"5..", route!="/health", x!~"a|b"}``.

The same matchers filter series in scrape mode and are merged into every PromQL query in
prometheus mode, so both sources look at the same series. Semantics follow the Prometheus
docs (querying/basics, "Time series selectors"): regular expressions are fully anchored,
and a missing label matches as the empty string (so ``{x!="a"}`` selects series without
``x``, and ``{x=~""}`` selects only those).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from phase5site.errors import MetricsError

_LABEL_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_MATCHER = re.compile(rf"\s*({_LABEL_NAME})\s*(=~|!~|!=|=)\s*({_QUOTED})\s*(?:,|$)")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass(frozen=True)
class LabelMatcher:
    """One ``name op "value"`` of a selector; ``value`` is unescaped."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Does a series with ``labels`` satisfy this matcher?

        >>> LabelMatcher("status", "=~", "5..").matches({"status": "503"})
        True
        >>> LabelMatcher("status", "=~", "5").matches({"status": "503"})  # anchored
        False
        """
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _compiled(self.value).fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def promql(self) -> str:
        """The matcher as PromQL text, value re-escaped: ``reason="cache_miss"``."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _unescape(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def parse_selector(text: str) -> tuple[LabelMatcher, ...]:
    """Parse ``{a="x", b=~"y.*"}`` (braces optional, empty allowed) into matchers.

    >>> parse_selector('{job="metasheet-api", status!~"2.."}')
    (LabelMatcher(name='job', op='=', value='metasheet-api'), LabelMatcher(name='status', op='!~', value='2..'))
    """
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers: list[LabelMatcher] = []
    position = 0
    while body[position:].strip():
        match = _MATCHER.match(body, position)
        if match is None:
            raise MetricsError(
                f"label selector {text!r} cannot be parsed near {body[position:]!r}",
                hint='write it as {name="value", other=~"regex"}; operators: = != =~ !~',
            )
        name, op, quoted = match.groups()
        matcher = LabelMatcher(name, op, _unescape(quoted))
        if op in ("=~", "!~"):
            _check_regex(text, matcher.value)
        matchers.append(matcher)
        position = match.end()
    return tuple(matchers)


def _check_regex(selector: str, pattern: str) -> None:
    try:
        _compiled(pattern)
    except re.error as error:
        raise MetricsError(
            f"label selector {selector!r}: regular expression {pattern!r} is invalid ({error})",
            hint="use RE2-compatible syntax, as Prometheus does",
        ) from error


def parse_series_ref(text: str) -> tuple[str, tuple[LabelMatcher, ...]]:
    """``metric{matchers}`` → (metric, matchers); used by scrape-mode overrides.

    >>> parse_series_ref('rpc_seconds{quantile="0.95"}')
    ('rpc_seconds', (LabelMatcher(name='quantile', op='=', value='0.95'),))
    """
    match = re.match(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{.*\})?\s*$", text, re.DOTALL)
    if match is None:
        raise MetricsError(
            f"{text!r} is not a metric name with an optional label selector",
            hint='write it as my_metric_total or my_metric_total{reason="x"}',
        )
    return match.group(1), parse_selector(match.group(2) or "")


# Labels Prometheus attaches when it scrapes a target; a service's own page never has them.
TARGET_LABELS = frozenset({"job", "instance"})


def page_matchers(matchers: tuple[LabelMatcher, ...]) -> tuple[LabelMatcher, ...]:
    """The matchers that apply to a metrics page read directly (scrape mode).

    ``{job="metasheet-api"}`` selects the target in Prometheus; on the target's own page
    there is no ``job`` label, and applying the matcher would select nothing. So matchers
    on the target labels ``job`` and ``instance`` are dropped in scrape mode.

    >>> page_matchers(parse_selector('{job="api", route!="/health"}'))
    (LabelMatcher(name='route', op='!=', value='/health'),)
    """
    return tuple(matcher for matcher in matchers if matcher.name not in TARGET_LABELS)


def matches_all(matchers: Iterable[LabelMatcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher accepts ``labels`` (an empty selector accepts everything)."""
    return all(matcher.matches(labels) for matcher in matchers)


def promql_selector(metric: str, matchers: Iterable[LabelMatcher]) -> str:
    """``metric{m1,m2}``, or just ``metric`` with no matchers.

    >>> promql_selector("up", parse_selector('{job="x"}'))
    'up{job="x"}'
    """
    inner = ",".join(matcher.promql() for matcher in matchers)
    return f"{metric}{{{inner}}}" if inner else metric
