"""``${VAR}`` / ``${VAR:-default}`` interpolation of run-spec strings, as a pure function.

The environment is an argument, never read here, so tests pass plain dicts. ``$$`` stands
for a literal ``$``. Like the shell, ``${VAR:-default}`` uses the default when ``VAR`` is
unset *or empty*. A variable whose name contains TOKEN, JWT, SECRET, PASS or KEY is a
secret: its value is reported back so the loader can redact it everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_NAME_PARTS = ("TOKEN", "JWT", "SECRET", "PASS", "KEY")


class UnsetVariable(Exception):
    """A ``${VAR}`` without default whose variable is not set."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class Interpolated:
    value: str
    references: tuple[str, ...] = ()
    secret_values: tuple[str, ...] = field(default=())


def is_secret_name(name: str) -> bool:
    """``PROD_JWT`` -> True, ``LOAD_BASE_URL`` -> False."""
    upper = name.upper()
    return any(part in upper for part in _SECRET_NAME_PARTS)


def interpolate(text: str, env: Mapping[str, str]) -> Interpolated:
    """Replace every reference in ``text``.

    >>> interpolate("${HOST:-localhost}:$${PORT}", {}).value
    'localhost:${PORT}'
    >>> interpolate("Bearer ${PROD_JWT}", {"PROD_JWT": "abc"}).secret_values
    ('abc',)

    Raises ``UnsetVariable`` naming the first variable that is unset and has no default.
    """
    references: list[str] = []
    secrets: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        references.append(name)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise UnsetVariable(name)
            value = default
        if is_secret_name(name) and value:
            secrets.append(value)
        return value

    value = _REFERENCE.sub(substitute, text)
    return Interpolated(value, tuple(references), tuple(secrets))
