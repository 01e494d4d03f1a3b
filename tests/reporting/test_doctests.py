"""The worked examples in the per-endpoint reporting docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["phase5site.reporting.endpoint_tables", "phase5site.reporting.endpoints"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0, f"{name} has no worked example"
    assert result.failed == 0
