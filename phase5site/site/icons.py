"""Verdict icons as inline SVG, drawn here so the site needs no icon font, CDN or emoji
extension. Each icon is a 24x24 path filled with ``currentColor``; the colour comes from
the ``p5-*`` classes in ``site_src/stylesheets/phase5.css``.
"""

from __future__ import annotations

import html

# A circle with a check mark, a circle with a cross, a circle with a bar, a warning triangle;
# INVALID (the load generator limited the measurement) borrows the triangle.
_PATHS: dict[str, str] = {
    "PASS": "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm-1.5 14.5-4.2-4.2 1.4-1.4 2.8 2.8 "
    "6.1-6.1 1.4 1.4-7.5 7.5z",
    "FAIL": "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm4.2 12.8-1.4 1.4L12 13.4l-2.8 2.8-1.4"
    "-1.4 2.8-2.8-2.8-2.8 1.4-1.4 2.8 2.8 2.8-2.8 1.4 1.4-2.8 2.8 2.8 2.8z",
    "NA": "M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm5 11H7v-2h10v2z",
    "WARN": "M1 21h22L12 2 1 21zm12-3h-2v-2h2v2zm0-4h-2v-4h2v4z",
}
_LABELS = {"PASS": "PASS", "FAIL": "FAIL", "NA": "NA", "WARN": "warning",
           "GO": "GO", "NO-GO": "NO-GO", "INVALID": "INVALID", "NOT-EXERCISED": "NOT-EXERCISED",
           "NOT-EVALUATED": "not evaluated"}
# NOT-EXERCISED (the load never moved the category's counters) borrows NA's bar.
_ICON_OF = {"GO": "PASS", "NO-GO": "FAIL", "INVALID": "WARN", "NOT-EXERCISED": "NA", "NOT-EVALUATED": "NA"}


def icon(kind: str, *, not_significant: bool = False) -> str:
    """Inline SVG plus its label for a verdict (PASS, FAIL, NA, INVALID), a decision (GO,
    NO-GO, INVALID) or WARN. A state this module does not know (a newer evaluator's, e.g.
    NOT-EXERCISED) gets the NA shape with its own name as the label, since an unknown
    verdict is not a pass, and a page must not crash or rename it.

    Example: ``icon("PASS")`` -> ``'<span class="p5-verdict p5-pass"><svg ...>...</svg> PASS</span>'``;
    ``not_significant`` labels a PASS whose confidence interval crosses the threshold
    ("PASS, not significant").
    """
    known = kind in _LABELS
    shape = _PATHS[_ICON_OF.get(kind, kind if known else "NA")]
    css = "p5-" + kind.lower().replace("-", "") if known else "p5-other"
    label = _LABELS[kind] if known else html.escape(str(kind))
    return (
        f'<span class="p5-verdict {css}"><svg class="p5-icon" viewBox="0 0 24 24" width="18" '
        f'height="18" aria-hidden="true"><path fill="currentColor" d="{shape}"/></svg> '
        f"{label}{', not significant' if not_significant and kind == 'PASS' else ''}</span>"
    )
