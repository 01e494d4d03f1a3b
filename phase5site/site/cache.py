"""The builder's per-user cache: what depends only on the installed packages, never on a run.

Two things live here: the wrapped Vega bundle (vl-convert needs about a second of CPU to
make it, and it changes only with vl-convert's version, which its file name carries), and
the compiled bytecode of the theme's Jinja templates (jinja2 keys each by the template's
source checksum, so a new theme version recompiles). A run's pages, charts and SVGs are
never cached here. ``PHASE5SITE_CACHE_DIR`` names the folder (the benchmark points it at a
scratch folder to measure a fresh install); else ``$XDG_CACHE_HOME/phase5site``, else
``~/.cache/phase5site``. An unusable folder means no cache, never a failed build.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "PHASE5SITE_CACHE_DIR"


def cache_dir(kind: str) -> Path | None:
    """The cache folder for ``kind`` (created), or None when it cannot be made.

    Example: with ``XDG_CACHE_HOME=/tmp/c`` -> ``Path('/tmp/c/phase5site/jinja')`` for ``'jinja'``.
    """
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        root = Path(chosen)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "phase5site"
    folder = root / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None
