"""The worked examples in the engine's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["breaker", "clock", "heartbeat", "httpclient", "livepage", "load", "mix", "outcome", "pacer", "sampler"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"phase5site.engine.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
