"""JSON text columns: how Python values go in and come out of the VARCHAR JSON columns."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any) -> Any:
    # JSON has no NaN/Infinity: NaN is unmeasurable (null); an infinite histogram bound is
    # written the way Prometheus writes it ("+Inf"), as columns.SERVER_COUNT_COLUMNS says.
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return None
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dump_json(value: Any) -> str | None:
    """Serialise a dict/list for a JSON text column; None stays NULL; str is taken as JSON.

    >>> dump_json({"b": 1, "a": float("nan")}), dump_json([[0.5, 3], [float("inf"), 4]])
    ('{"a": null, "b": 1}', '[[0.5, 3], ["+Inf", 4]]')
    >>> dump_json(None), dump_json('[1, 2]')
    (None, '[1, 2]')
    """
    if value is None:
        return None
    if isinstance(value, str):
        json.loads(value)  # reject text that is not JSON at write time, not at read time
        return value
    return json.dumps(_finite(value), sort_keys=True, default=str)


def load_json(text: str | None) -> Any:
    """Parse a JSON text column; NULL stays None."""
    return None if text is None else json.loads(text)
