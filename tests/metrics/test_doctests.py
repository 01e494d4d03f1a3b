"""The worked examples in the metrics modules' docstrings are run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["counters", "columns", "exposition", "profile", "promapi", "selectors",
           "scrape_window", "prometheus_window", "scrape_edges", "sources"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"phase5site.metrics.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name not in ("scrape_window", "sources"):
        assert result.attempted > 0
