"""Run ``mkdocs build`` as a library call and collect its warnings.

mkdocs reports problems through the ``mkdocs`` logger; in strict mode it counts warnings and
aborts at the end with only a count. A handler on that logger keeps the text of each warning
so ``SiteError`` can list them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from phase5site.errors import SiteError
from phase5site.site.cache import cache_dir


class _TemplateCache:
    """A plugin object for one build: gives the theme's Jinja environment a bytecode cache,
    so Material's templates are not compiled again at every build (about a fifth of
    mkdocs' time in a profile of a one-run site)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_env(self, env: Any, /, *, config: Any, files: Any) -> Any:
        import jinja2

        env.bytecode_cache = jinja2.FileSystemBytecodeCache(str(self.folder))
        return env


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


def run_mkdocs(config_file: Path, site_dir: Path, *, strict: bool, site_url: str | None = None) -> list[str]:
    """Build the site; return the warnings (non-strict) or raise ``SiteError`` listing them."""
    from mkdocs import exceptions
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    logger = logging.getLogger("mkdocs")
    collector = _Collect()
    logger.addHandler(collector)
    try:
        overrides = {"site_url": site_url} if site_url else {}
        config = load_config(config_file=str(config_file), strict=strict, site_dir=str(site_dir), **overrides)
        folder = cache_dir("jinja")
        if folder is not None:
            config.plugins["phase5site-template-cache"] = _TemplateCache(folder)  # type: ignore[assignment]
        build(config)
    except (exceptions.Abort, exceptions.ConfigurationError, exceptions.BuildError) as error:
        listed = "\n".join(f"  {m}" for m in collector.messages) or f"  {error}"
        raise SiteError(f"mkdocs build failed ({error}):\n{listed}",
                        "fix the pages or mkdocs.yml named above, or build with --no-strict to see the site") from error
    finally:
        logger.removeHandler(collector)
    if strict and collector.messages:  # a warning mkdocs did not count still fails the build
        raise SiteError("mkdocs build warned:\n" + "\n".join(f"  {m}" for m in collector.messages),
                        "fix the pages or mkdocs.yml named above")
    return collector.messages
