"""Small formatters shared by the page builders: times, durations, numbers, HTML tables.

Every cell goes through ``html_text`` unless it is a ``Markup`` value built here (icons,
links with escaped text), so run data can never inject markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from markupsafe import Markup

from phase5site.site.escape import html_text


def utc(at: float | None) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM:SS`` UTC; NA for None.

    Example: ``utc(0)`` -> ``'1970-01-01 00:00:00'``.
    """
    if at is None:
        return "NA"
    return dt.datetime.fromtimestamp(float(at), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """Seconds as ``1h 02m 03s`` / ``2m 05s`` / ``4.2s``; NA for None.

    Example: ``duration(3723)`` -> ``'1h 02m 03s'``.
    """
    if seconds is None:
        return "NA"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def number(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; NA for None.

    Example: ``number(0.123456)`` -> ``'0.1235'``; ``number(None)`` -> ``'NA'``.
    """
    if value is None:
        return "NA"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def link(href: str, text: object) -> Markup:
    return Markup(f'<a href="{html_text(href)}">{html_text(text)}</a>')


def cell(value: object) -> str:
    if isinstance(value, Markup):
        return str(value)
    return html_text("NA" if value is None else value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], css: str = "",
          row_css: Sequence[str] = ()) -> Markup:
    """An HTML table on consecutive lines (a blank line would end Markdown's HTML block).

    The table itself stays class-less so Material styles it like a Markdown table; ``css``
    goes on a wrapping div of class ``p5-table`` (phase5.css: the table takes the full width
    and wraps its cells; a table still too wide scrolls sideways inside that div, with a
    shadow at the edge that hides columns, never cut off). ``row_css`` gives each body row its class (e.g.
    ``p5-row-fail``), in order; missing or empty entries leave a row plain.
    """
    head = "".join(f"<th>{html_text(h)}</th>" for h in headers)
    lines = []
    for index, row in enumerate(rows):
        name = row_css[index] if index < len(row_css) else ""
        opening = f'<tr class="{html_text(name)}">' if name else "<tr>"
        lines.append(opening + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>")
    body = "\n".join(["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *lines, "</tbody>", "</table>"])
    return Markup(f'<div class="p5-table {html_text(css)}">\n{body}\n</div>' if css else body)
