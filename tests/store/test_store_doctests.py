"""The worked examples in the store's docstrings are tests too."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "phase5site.store.csv_v3",
    "phase5site.store.endpoints",
    "phase5site.store.jsontext",
    "phase5site.store.legacy",
    "phase5site.store.legacy_checks",
    "phase5site.store.legacy_csv",
    "phase5site.store.legacy_metadata",
    "phase5site.store.queries",
    "phase5site.store.reader",
    "phase5site.store.rows",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no worked example"
    assert result.failed == 0
