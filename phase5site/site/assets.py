"""The offline chart runtime: Vega, Vega-Lite and vega-embed from the vl-convert package.

``vl_convert.javascript_bundle()`` returns one ES script whose top level declares thousands
of ``const``/``function`` names. Loaded as-is beside Material's own bundle those globals could
collide, so it is wrapped in an IIFE; the bundle's default snippet still assigns
``window.vegaEmbed``, ``window.vega`` and ``window.vegaLite``, which is all charts.js needs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import altair as alt
import vl_convert

BUNDLE_NAME = "vega-bundle.js"


def vegalite_version() -> str | None:
    """The Vega-Lite ``major.minor`` Altair writes specs for, if vl-convert ships it.

    Example: Altair's schema ``v6.4.1`` -> ``'6.4'`` (None when vl-convert lacks it: its default).
    """
    major_minor = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return major_minor if major_minor in vl_convert.get_vegalite_versions() else None


def bundle_header() -> str:
    """First line of the bundle file; it names every version, so it doubles as a cache key."""
    return (f"/* Vega {vl_convert.get_vega_version()}, Vega-Lite {vegalite_version() or 'default'}, "
            f"vega-embed {vl_convert.get_vega_embed_version()}: bundled by vl-convert-python "
            f"{vl_convert.__version__}; wrapped so its top-level names stay private. */\n")


@functools.lru_cache(maxsize=1)
def vega_bundle_js() -> str:
    """The wrapped bundle, built once per process (building it takes about a second)."""
    body = vl_convert.javascript_bundle(vl_version=vegalite_version())
    return bundle_header() + "(function () {\n" + body + "\n})();\n"


def _is_current(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
    except OSError:
        return False
    return first == bundle_header() and path.read_text(encoding="utf-8").rstrip().endswith("})();")


def write_bundle(assets_dir: Path) -> Path:
    """Write the bundle unless one from the same versions is already there (saves ~1 s a build)."""
    assets_dir.mkdir(parents=True, exist_ok=True)
    path = assets_dir / BUNDLE_NAME
    if not _is_current(path):
        temporary = path.with_suffix(".tmp")
        temporary.write_text(vega_bundle_js(), encoding="utf-8")
        temporary.replace(path)  # never leave a half-written bundle that looks current
    return path


def static_svg(spec: dict, width_px: int = 800) -> str:
    """A static SVG of a chart for the run's archive folder (no browser involved)."""
    fixed = {**spec, "width": width_px}
    return vl_convert.vegalite_to_svg(fixed, vl_version=vegalite_version())
