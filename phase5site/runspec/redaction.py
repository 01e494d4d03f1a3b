"""Redaction, once for the whole tool: every secret value in a text or a tree becomes ``***``.

A secret is replaced only where it stands whole: not where its first or last character
continues a word (a letter, digit or ``_`` next to it). Replacing every substring turned
``PROD_JWT=e`` into ``Sp***c:`` and ``api.e***ample.com``, garbling the text while hiding
nothing. A ``%XX`` escape before a secret counts as a boundary (``Bearer%20<token>`` in a
logged URL). Secrets shorter than ``MIN_SECRET_CHARS`` are refused by the loader: such a
value is too likely to be a word, or inside one, to be hidden without garbling text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "***"
MIN_SECRET_CHARS = 8
_WORD = re.compile(r"\w")
_STARTS_WHOLE = r"(?:(?<!\w)|(?<=%[0-9A-Fa-f]{2}))"
_ENDS_WHOLE = r"(?!\w)"


@functools.lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    alternatives = []
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):  # longest first
        head = _STARTS_WHOLE if _WORD.match(secret[0]) else ""
        tail = _ENDS_WHOLE if _WORD.match(secret[-1]) else ""
        alternatives.append(head + re.escape(secret) + tail)
    return re.compile("|".join(alternatives)) if alternatives else None


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every whole occurrence of a secret value in ``text`` by ``***``.

    >>> redact("Bearer s3cr3t-t0ken, url http://u:s3cr3t-t0ken@h/", {"s3cr3t-t0ken"})
    'Bearer ***, url http://u:***@h/'
    >>> redact("fallbacks and Spec: fallback.", {"fallback"})
    'fallbacks and Spec: ***.'
    """
    pattern = _pattern(frozenset(secrets))
    return text if pattern is None else pattern.sub(REDACTED, text)


def redact_tree(node: Any, secrets: Iterable[str]) -> Any:
    """Copy of ``node`` (dicts, lists, tuples, strings, scalars) with every secret removed.

    >>> redact_tree({"a": ["x tok3n-v4lue y", 3]}, {"tok3n-v4lue"})
    {'a': ['x *** y', 3]}
    """
    secret_set = frozenset(secrets)
    if isinstance(node, dict):
        return {str(key): redact_tree(value, secret_set) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return [redact_tree(value, secret_set) for value in node]
    if isinstance(node, str):
        return redact(node, secret_set)
    return node
