"""The worked examples in the quantile module's docstrings are tests too."""

from __future__ import annotations

import doctest

import phase5site.quantiles


def test_docstring_examples() -> None:
    result = doctest.testmod(phase5site.quantiles)
    assert result.attempted > 0
    assert result.failed == 0
