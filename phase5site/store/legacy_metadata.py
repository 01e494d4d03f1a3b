"""Reading and redacting a legacy ``metadata.json`` written by the old shell scripts.

The secrets of an old run are unknown, so redaction is by shape: string values under
secret-looking keys, JWT-looking strings anywhere, and passwords in URLs become ``***``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from phase5site.errors import ImportFormatError

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"(token|jwt|secret|passw|auth|bearer|api[_-]?key|cookie|credential|private)", re.I
)
_JWT = re.compile(r"^eyJ[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){0,2}$")


def redact_metadata(node: Any, key: str = "") -> Any:
    """Copy of ``node`` with secret-looking values replaced by ``***``.

    >>> redact_metadata({"jwt": "abc", "jwt_provided": False, "url": "http://u:pw@h/x"})
    {'jwt': '***', 'jwt_provided': False, 'url': 'http://u:***@h/x'}
    """
    if isinstance(node, dict):
        return {str(k): redact_metadata(v, str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [redact_metadata(v, key) for v in node]
    if not isinstance(node, str):
        return node
    if _SECRET_KEY.search(key) or _JWT.match(node.strip()):
        return REDACTED
    return _redact_url_password(node)


def _redact_url_password(text: str) -> str:
    if "://" not in text or "@" not in text:
        return text
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.password is None:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def read_metadata(path: Path, *, explicit: bool) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse ``metadata.json``; returns (data, warnings).

    Some old scripts wrote the JSON with literal ``\\n`` instead of newlines; that is
    repaired with a warning. An unreadable file named by the user is an
    ImportFormatError; one merely found beside the CSV is skipped with a warning.
    """
    warnings: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return _unreadable(path, f"cannot be read ({error})", explicit)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as first_error:
        try:
            data = json.loads(text.replace("\\n", "\n"))
        except json.JSONDecodeError:
            return _unreadable(path, f"is not valid JSON ({first_error})", explicit)
        warnings.append(f"{path}: literal '\\n' sequences instead of newlines; repaired")
    if not isinstance(data, dict):
        return _unreadable(path, f"holds a JSON {type(data).__name__}, not an object", explicit)
    return data, warnings


def _unreadable(
    path: Path, problem: str, explicit: bool
) -> tuple[dict[str, Any] | None, list[str]]:
    if explicit:
        raise ImportFormatError(
            f"metadata file {path} {problem}",
            hint="fix the file, or import without --metadata",
        )
    return None, [f"{path} {problem}; imported without metadata"]


def parse_start_time(value: Any) -> datetime | None:
    """An ISO-8601 start time *with a zone* (``2025-11-24T20:09:17+08:00``), else None.

    >>> parse_start_time("2025-11-24T20:09:17+08:00").utcoffset()
    datetime.timedelta(seconds=28800)
    >>> parse_start_time("20251124-134821") is None
    True
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Without a zone the instant is unknown (Python also reads '20251124-134821' as ISO).
    return parsed if parsed.utcoffset() is not None else None


def local_zone(metadata: dict[str, Any] | None) -> timezone | None:
    """The UTC offset the old scripts wrote local timestamps in, from ``start_time``."""
    start = parse_start_time((metadata or {}).get("start_time"))
    if start is None or start.utcoffset() is None:
        return None
    offset = start.utcoffset()
    assert offset is not None
    return timezone(timedelta(seconds=offset.total_seconds()))
