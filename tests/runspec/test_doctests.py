"""The worked examples in the run-spec docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["capacity", "durations", "interpolate", "redaction", "syntax"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"phase5site.runspec.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
