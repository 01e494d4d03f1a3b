"""Prometheus text exposition (format 0.0.4) → a ``Scrape``: samples keyed by series.

Samples are read by ``prometheus_client.parser`` (histograms, summaries, escaped label
values, HELP/TYPE without samples). Two things it does not give us are handled here:

* **Declared families.** A labelled counter that has never been incremented is exported as
  ``# HELP``/``# TYPE`` lines with no sample (prom-client and prometheus_client both do
  this). Such a family is *present with no series*: its window increase is 0, whereas a
  family that is not declared at all is *absent* and its columns are NA. The parser
  renames counter families (drops ``_total``), so declared names are read from the raw
  ``# TYPE``/``# HELP`` lines instead.
* **Lines that are not exposition.** The old observer scripts wrote headers such as
  ``=== Sample 3 at 2025-11-24 13:48:21 ===`` or ``curl`` error text into raw-metrics.txt.
  Rather than failing the whole page, every line that is neither blank, a ``#`` comment
  nor a well-formed sample line is skipped and reported in ``Scrape.skipped_lines`` with
  its line number, so a caller can log it. If the parser still rejects the cleaned text,
  it is parsed line by line and only the rejected lines are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from phase5site.metrics.selectors import LabelMatcher, matches_all

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]

_METRIC_NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"
_LABEL_BLOCK = r'\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}'
_NUMBER = r"[+-]?(?:[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.|Inf|inf|NaN|nan)"
_SAMPLE_LINE = re.compile(rf"^{_METRIC_NAME}\s*(?:{_LABEL_BLOCK})?\s+{_NUMBER}(?:\s+-?[0-9]+)?\s*$")
_DECLARATION = re.compile(rf"^#\s+(HELP|TYPE)\s+({_METRIC_NAME})(?:\s+(\S+))?")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created", "_info")


def labels_key(labels: Mapping[str, str]) -> Labels:
    """Labels as a sorted tuple, so equal label sets give equal keys."""
    return tuple(sorted(labels.items()))


@dataclass(frozen=True)
class Scrape:
    """One parsed metrics page.

    ``samples`` maps (sample name, sorted labels) to value; ``declared`` maps every family
    name written in a ``# TYPE`` or ``# HELP`` line to its type (``untyped`` when only HELP).
    """

    samples: dict[SeriesKey, float]
    declared: dict[str, str] = field(default_factory=dict)
    skipped_lines: tuple[tuple[int, str], ...] = ()

    def series(
        self, name: str, matchers: Iterable[LabelMatcher] = ()
    ) -> dict[Labels, float]:
        """Every series of sample ``name`` whose labels satisfy ``matchers``."""
        wanted = tuple(matchers)
        return {
            labels: value
            for (sample_name, labels), value in self.samples.items()
            if sample_name == name and matches_all(wanted, dict(labels))
        }

    def has_family(self, name: str) -> bool:
        """Is sample ``name`` exported, as samples or as a declared family?

        ``http_server_requests_seconds_bucket`` is present when the page declares
        ``http_server_requests_seconds``, or has any sample of that exact name.
        """
        if any(sample_name == name for sample_name, _ in self.samples):
            return True
        return any(candidate in self.declared for candidate in family_candidates(name))

    def sample_names(self) -> set[str]:
        return {sample_name for sample_name, _ in self.samples}


def family_candidates(sample_name: str) -> list[str]:
    """Family names that may have declared ``sample_name``.

    >>> family_candidates("http_requests_total")
    ['http_requests_total', 'http_requests']
    """
    candidates = [sample_name]
    for suffix in _SUFFIXES:
        if sample_name.endswith(suffix):
            candidates.append(sample_name[: -len(suffix)])
    return candidates


def _split_lines(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]], dict[str, str]]:
    kept: list[tuple[int, str]] = []
    skipped: list[tuple[int, str]] = []
    declared: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            _note_declaration(stripped, declared)
            kept.append((number, stripped))
        elif _SAMPLE_LINE.match(stripped):
            kept.append((number, stripped))
        else:
            skipped.append((number, line))
    return kept, skipped, declared


def _note_declaration(line: str, declared: dict[str, str]) -> None:
    match = _DECLARATION.match(line)
    if match is None:
        return
    kind, name, metric_type = match.groups()
    if kind == "TYPE" and metric_type:
        declared[name] = metric_type
    else:
        declared.setdefault(name, "untyped")


def _collect(text: str, samples: dict[SeriesKey, float]) -> None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, labels_key(sample.labels))] = float(sample.value)


def parse_exposition(text: str) -> Scrape:
    """Parse a metrics page; never raises for malformed lines (they are skipped, listed).

    >>> page = '# TYPE x_total counter\\nx_total{a="1"} 3\\n=== header ===\\n'
    >>> scrape = parse_exposition(page)
    >>> scrape.samples, scrape.skipped_lines
    ({('x_total', (('a', '1'),)): 3.0}, ((3, '=== header ==='),))
    """
    kept, skipped, declared = _split_lines(text)
    samples: dict[SeriesKey, float] = {}
    try:
        _collect("\n".join(line for _, line in kept) + "\n", samples)
    except (ValueError, IndexError, KeyError):
        samples.clear()
        skipped.extend(_parse_line_by_line(kept, samples))
        skipped.sort()
    return Scrape(samples=samples, declared=declared, skipped_lines=tuple(skipped))


def _parse_line_by_line(
    lines: list[tuple[int, str]], samples: dict[SeriesKey, float]
) -> list[tuple[int, str]]:
    # Each sample line alone: the family context (TYPE) is lost, but values and labels,
    # all we keep, are not affected by it.
    rejected: list[tuple[int, str]] = []
    for number, line in lines:
        if line.startswith("#"):
            continue
        try:
            _collect(line + "\n", samples)
        except (ValueError, IndexError, KeyError):
            rejected.append((number, line))
    return rejected
