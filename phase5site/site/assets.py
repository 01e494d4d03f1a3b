"""The offline chart runtime: Vega, Vega-Lite and vega-embed from the vl-convert package.

``vl_convert.javascript_bundle()`` returns one ES script whose top level declares thousands
of ``const``/``function`` names. Loaded as-is beside Material's own bundle those globals could
collide, so it is wrapped in an IIFE (``vlrender.wrap_bundle``); the bundle's default snippet still assigns
``window.vegaEmbed``, ``window.vega`` and ``window.vegaLite``, which is all charts.js needs.
The bundle and the SVGs are made by ``vlrender.py`` in a side process (see there why).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import altair as alt
import vl_convert

from phase5site.site.cache import cache_dir

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


def _is_current(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline()
    except OSError:
        return False
    return first == bundle_header() and path.read_text(encoding="utf-8").rstrip().endswith("})();")


def _cached_bundle() -> Path | None:
    folder = cache_dir("bundle")
    if folder is None:
        return None
    return folder / f"vega-bundle-{hashlib.sha256(bundle_header().encode()).hexdigest()[:16]}.js"


def bundle_job(assets_dir: Path) -> dict | None:
    """The side renderer's job for the bundle, or None when one from the same versions is
    already there, or in the per-user cache (``site.cache``: copied over). Making it costs
    vl-convert about a second of CPU; the job also leaves a copy in the cache."""
    path = assets_dir / BUNDLE_NAME
    if _is_current(path):
        return None
    cached = _cached_bundle()
    if cached is not None and _is_current(cached):
        assets_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        shutil.copyfile(cached, temporary)
        temporary.replace(path)
        return None
    return {"kind": "bundle", "path": str(path), "header": bundle_header(), "vl_version": vegalite_version(),
            "also": None if cached is None else str(cached)}


SVG_WIDTH_PX = 800


def svg_job(spec: dict, path: Path, width_px: int = SVG_WIDTH_PX) -> dict:
    """The side renderer's job for a chart's static SVG (the archive copy, and the one-file
    report's chart): a fixed width, since there is no container to fill."""
    return {"kind": "svg", "path": str(path), "spec": {**spec, "width": width_px}, "vl_version": vegalite_version()}
