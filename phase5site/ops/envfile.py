"""The environment a command sees: the process environment over a ``.env.phase5`` file.

The dotenv parser itself is ``phase5site.envfile`` (shared with ``validate`` and ``run``);
this module only decides which file applies and how the two sources merge.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from phase5site.envfile import read_env_file
from phase5site.errors import UsageError

DEFAULT_ENV_FILE = Path(".env.phase5")


def load_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=value`` pairs of a dotenv file (UsageError naming the file if unreadable)."""
    try:
        return read_env_file(path)
    except UnicodeDecodeError as error:
        raise UsageError(f"cannot read env file {path}: not UTF-8 text ({error.reason} at byte {error.start})",
                         hint="Save it as UTF-8 KEY=value lines, as .env.phase5.template.") from error


def merged_environment(
    env_file: Path | None, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None
) -> dict[str, str]:
    """``environ`` (default ``os.environ``) over ``env_file``; without one, over
    ``.env.phase5`` in ``cwd`` when it exists. Process values win, so CI can override a file.
    """
    base = dict(os.environ if environ is None else environ)
    path = env_file if env_file is not None else (cwd or Path.cwd()) / DEFAULT_ENV_FILE
    if env_file is None and not path.exists():
        return base
    return {**load_env_file(path), **base}
