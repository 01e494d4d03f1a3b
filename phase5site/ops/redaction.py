"""Redaction of nested JSON-able data: every secret value replaced by ``***``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from phase5site.runspec import redact


def redact_tree(node: Any, secrets: Iterable[str]) -> Any:
    """Copy of ``node`` (dicts, lists, tuples, strings, scalars) with every secret removed.

    >>> redact_tree({"a": ["x-tok-y", 3]}, {"tok"})
    {'a': ['x-***-y', 3]}
    """
    secret_set = frozenset(secrets)
    if isinstance(node, dict):
        return {str(key): redact_tree(value, secret_set) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [redact_tree(value, secret_set) for value in node]
    if isinstance(node, str):
        return redact(node, secret_set)
    return node
