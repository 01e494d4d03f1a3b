"""What may go on the wire from a run spec: header fields, request paths, URLs, and the
upper bounds of a phase. Pure checks that raise ``ValueError`` with the user's message.

The load workers write the spec's paths and headers into requests as they are, so a value
the protocol does not allow must be refused here: a CR/LF in a header value or a path is
a header *injected* on the wire (the server reads an extra field), a character outside
Latin-1 cannot be encoded at all (every send failed), and a backslash in a URL is read as
``/`` by WHATWG parsers but as a path character by Python's (two tools, two hosts).

Sources: RFC 9110 section 5 (field names are tokens; a field value is visible ASCII,
space, tab and obs-text 0x80-0xFF), RFC 3986 sections 2.1 and 3.3 (characters a path and
query may hold; ``%`` starts a percent-encoded byte).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

# RFC 9110 5.6.2: token = 1*tchar
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# RFC 3986: unreserved / sub-delims / ":" / "@" / "/" / "?"; "%" is checked on its own.
_URI_SAFE = "-._~!$&'()*+,;=:@/?"
_URI_CHARACTER = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]")
_PERCENT_BYTE = re.compile(r"%[0-9A-Fa-f]{2}")

# Upper bounds of a spec: each far above a real baseline (day1: 80 req/s, 20 in flight,
# 2 h, 12 samples of 10 min), each at a point where the tool itself would fail first.
MAX_RATE = 100_000.0  # req/s: below 64 load workers (target.workers' most) at ~2,000 each
MAX_CONCURRENCY = 10_000  # slots: each holds a connection, a task and a read buffer
MAX_PHASE_S = 7 * 86_400.0  # one phase of a week; a longer baseline is several runs
MAX_INTERVAL_S = 86_400.0  # a one-day window: Prometheus increase() over more is rare
MAX_SAMPLES = 10_000
# Node.js (the reference service) refuses a request whose header block exceeds 16 KiB
# (--max-http-header-size); the spec's own headers must leave room for Host and the rest.
MAX_HEADER_BYTES = 16 * 1024


def _blank_or_control(text: str) -> tuple[int, str] | None:
    """Position and character of the first whitespace or control character of ``text``."""
    return next(((position, char) for position, char in enumerate(text)
                 if char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F), None)


def _character(char: str) -> str:
    """``'\\r'`` -> ``"'\\\\r' (U+000D)"``: a character named so that any of them can be printed."""
    return f"{char!r} (U+{ord(char):04X})"


def check_header_name(name: str) -> str:
    """A field name is an RFC 9110 token.

    >>> check_header_name("X-Api-Key")
    'X-Api-Key'
    >>> check_header_name("X Api")
    Traceback (most recent call last):
    ...
    ValueError: header name must be an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~ (got 'X Api')
    """
    if not _TOKEN.match(name):
        raise ValueError(f"header name must be an RFC 9110 token: letters, digits and "
                         f"!#$%&'*+-.^_`|~ (got {name!r})")
    return name


def check_header_value(value: str) -> str:
    """A field value holds visible characters, spaces and tabs, in Latin-1 (RFC 9110 5.5).

    The value is not quoted in the message: it may be a secret.

    >>> check_header_value("Bearer abc")
    'Bearer abc'
    >>> check_header_value("a\\r\\nX-Injected: 1")
    Traceback (most recent call last):
    ...
    ValueError: header value must not contain CR, LF, NUL or other control characters (found '\\r' (U+000D) at position 1)
    """
    for position, char in enumerate(value):
        code = ord(char)
        if (code < 0x20 and char != "\t") or code == 0x7F:
            raise ValueError("header value must not contain CR, LF, NUL or other control characters "
                             f"(found {_character(char)} at position {position})")
        if code > 0xFF:
            raise ValueError("header value must be Latin-1 text, as HTTP/1.1 sends it "
                             f"(found {_character(char)} at position {position})")
    return value


def header_block_bytes(headers: dict[str, str]) -> int:
    """Bytes the headers take on the wire, ``name: value\\r\\n`` each (values are Latin-1, one
    byte per character): 3 + 1 + 4 and 4 + 2 + 4.

    >>> header_block_bytes({"X-A": "1", "X-Bb": "22"})
    18
    """
    return sum(len(name) + len(value) + 4 for name, value in headers.items())


def check_headers_size(headers: dict[str, str]) -> dict[str, str]:
    size = header_block_bytes(headers)
    if size > MAX_HEADER_BYTES:
        raise ValueError(f"must be at most {MAX_HEADER_BYTES} bytes on the wire in all, as Node.js "
                         f"accepts (got {size} bytes)")
    return headers


def check_path(path: str) -> str:
    """A request path (and query) as it goes on the wire: RFC 3986 characters only.

    >>> check_path("/api/v2/hello?x=1&y=%20")
    '/api/v2/hello?x=1&y=%20'
    >>> check_path("/caf\\u00e9")
    Traceback (most recent call last):
    ...
    ValueError: must be percent-encoded outside RFC 3986 characters: write '/caf%C3%A9' (got '/café')
    """
    if not path.startswith("/"):
        raise ValueError(f"must start with '/' (got {path!r})")
    found = _blank_or_control(path)
    if found is not None:
        raise ValueError("must not contain whitespace or control characters; write a space as "
                         f"%20 (found {_character(found[1])} at position {found[0]})")
    for match in re.finditer("%", path):
        if not _PERCENT_BYTE.match(path, match.start()):
            text = path[match.start():match.start() + 3]
            raise ValueError(f"'%' must start a percent-encoded byte such as %20 or %25 for '%' "
                             f"itself (found {text!r} at position {match.start()})")
    if any(not _URI_CHARACTER.match(char) for char in path):
        raise ValueError(f"must be percent-encoded outside RFC 3986 characters: write "
                         f"{quote(path, safe=_URI_SAFE + '%')!r} (got {path!r})")
    return path


def check_url(url: str) -> str:
    """A URL the run contacts: no backslash, whitespace or control character, a valid port.

    >>> check_url("http://127.0.0.1:9090/")
    'http://127.0.0.1:9090/'
    >>> check_url("http://127.0.0.1:99999/")
    Traceback (most recent call last):
    ...
    ValueError: port must be a number from 1 to 65535 (got '99999')
    """
    if "\\" in url:
        raise ValueError(f"must not contain a backslash: URL parsers disagree on what it means "
                         f"(a browser reads it as '/'); write '/' or %5C (got {url!r})")
    found = _blank_or_control(url)
    if found is not None:
        raise ValueError(f"must not contain whitespace or control characters (found "
                         f"{_character(found[1])} in {url!r})")
    port = _port_text(urlsplit(url).netloc)
    if port and not (port.isdigit() and 1 <= int(port) <= 65535):  # empty: the default port
        raise ValueError(f"port must be a number from 1 to 65535 (got {port!r})")
    return url


def _port_text(netloc: str) -> str | None:
    """The port as written in ``netloc`` (``None`` without one).

    >>> _port_text("u:pw@[::1]:8080"), _port_text("host:"), _port_text("host")
    ('8080', '', None)
    """
    host_port = netloc.rpartition("@")[2]
    if host_port.startswith("["):
        host_port = host_port.partition("]")[2]
    if ":" not in host_port:
        return None
    return host_port.rpartition(":")[2]


def check_at_most(value: float, limit: float, shown: str, unit: str = "") -> float:
    """``value`` <= ``limit``; ``shown`` is the limit as the message writes it, ``unit``
    follows the value given.

    >>> check_at_most(1e9, MAX_RATE, "100000 requests/s")
    Traceback (most recent call last):
    ...
    ValueError: must be at most 100000 requests/s (got 1e+09)
    """
    if value > limit:
        raise ValueError(f"must be at most {shown} (got {_number(value)}{unit})")
    return value


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
