"""Escaping for generated pages: every value that came from a run is text, never markup.

Generated pages are Markdown with raw HTML blocks. Python-Markdown passes raw HTML through
untouched, so a request named ``<script>alert(1)</script>`` would become a live script if it
were pasted in as-is. Every run-derived string therefore goes through ``html_text`` (inside
HTML) or ``md_text`` (inside Markdown, where ``*``, ``_``, ``[`` ... also mean something).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]*):[^@\s/]+@")


def scrub_credentials(text: str) -> str:
    """Hide the password of every ``scheme://user:password@host`` URL in ``text``.

    A run stores messages (NA reasons, errors) that quote the URL they failed on; the site
    is published, so a password there must never reach a page even if a writer forgot to
    redact it.

    Example: ``scrub_credentials("scrape of http://u:pw@h/m failed")`` -> ``'scrape of http://u:***@h/m failed'``.
    """
    return _URL_PASSWORD.sub(r"\1:***@", text)


def html_text(value: object) -> str:
    """Text safe inside an HTML element or a double-quoted attribute (URL passwords hidden).

    Example: ``html_text('<b>"x"</b>')`` -> ``'&lt;b&gt;&quot;x&quot;&lt;/b&gt;'``.
    """
    return html.escape(scrub_credentials("" if value is None else str(value)), quote=True)


def md_text(value: object) -> str:
    """Text safe in a Markdown paragraph or heading: HTML-escaped, Markdown punctuation
    backslash-escaped.

    Example: ``md_text('a_b <i>')`` -> ``'a\\_b &lt;i&gt;'``.
    """
    escaped = html.escape(scrub_credentials("" if value is None else str(value)), quote=False)
    # Escape Markdown punctuation, but leave the entities just produced (&lt; ...) intact.
    return _MD_SPECIAL.sub(r"\\\1", escaped).replace("\n", " ")


def json_attribute(value: Any) -> str:
    """JSON for a single-quoted HTML attribute (``data-vega-spec='...'``).

    Only ``&``, ``'``, ``<`` and ``>`` are replaced by entities: double quotes may stay raw
    inside a single-quoted attribute, which keeps a chart with thousands of points small
    (``&quot;`` would make every key six times longer). The browser decodes the entities
    before ``JSON.parse`` sees the text.

    Example: ``json_attribute({"a": "<x>'"})`` -> ``'{"a":"&lt;x&gt;&#39;"}'``.
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (
        text.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
    )
