"""Read a dotenv file such as ``.env.phase5`` (KEY=value lines) into a mapping.

Values set in the process environment win over the file (the caller merges), so a CI
secret can override a developer's file. Quotes around a value are removed; ``#`` starts a
comment at the beginning of a line or after whitespace in an unquoted value.
"""

from __future__ import annotations

import re
from pathlib import Path

from phase5site.errors import UsageError

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_env_text(text: str) -> dict[str, str]:
    """Parse dotenv text.

    >>> parse_env_text("A=1\\n# c\\nB='x y'  \\nC=2  # note")
    {'A': '1', 'B': 'x y', 'C': '2'}
    """
    values: dict[str, str] = {}
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        match = _LINE.match(raw)
        if not match:
            continue
        name, value = match.group(1), match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in ("'", '"'):
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        values[name] = value
    return values


def read_env_file(path: Path) -> dict[str, str]:
    try:
        return parse_env_text(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(
            f"cannot read env file {path} ({error.strerror or error})",
            hint="Copy .env.phase5.template to .env.phase5 and fill it in.",
        ) from error
