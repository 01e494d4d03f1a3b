"""Durations as people write them in run specs: ``600``, ``600s``, ``10m``, ``2h5m``, ``1.5s``."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Return seconds for a duration value.

    >>> parse_duration("2h5m")
    7500.0
    >>> parse_duration(600)
    600.0
    >>> parse_duration("1.5s")
    1.5

    Raises ``ValueError`` with the accepted forms when the value is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got {value!r})")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError(f"must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got {value!r})")
    if not math.isfinite(seconds):  # "inf", ".inf", "1e400", "nan": no plan can be made from them
        raise ValueError(f"must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got {value!r})")
    if seconds < 0:
        raise ValueError(f"must not be negative (got {value!r})")
    return seconds


def _parse_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    position = 0
    total = 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or not text:
        raise ValueError(f"must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got {text!r})")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds compactly: ``7500`` -> ``2h5m``, ``1.5`` -> ``1.5s``, ``0`` -> ``0s``."""
    if seconds != int(seconds) or seconds < 60:
        return f"{seconds:g}s"
    whole = int(seconds)
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
