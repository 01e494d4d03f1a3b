"""How one request ended, in the vocabulary of ``phase5site.columns.OUTCOMES``.

Success is 2xx/3xx only. A transport failure is ``timeout`` when the per-request timeout
expired, ``body_too_large`` when the answer's body passed ``target.max_body_bytes`` (the
client closed the connection instead of reading on) and ``connect_error`` for every other
failure to get a response (refused, reset, broken protocol): all count as failures in every
verdict.

Each transport failure also keeps a short message (``error_text``): what the client saw, so
a report can tell "connection refused" from "reset by peer" within ``connect_error``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from phase5site.runspec.redaction import redact

TransportError = Literal["timeout", "connect_error", "body_too_large"]

MAX_ERROR_CHARS = 200  # of a stored message: enough for an errno line, bounded per row
# A URL's query and fragment, however it is quoted: a token may ride there without being
# a declared secret (e.g. a literal ``?token=...`` in a path).
_URL_QUERY = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s?#'\"<>]*)[?#][^\s'\"<>]*")
# Control characters (a terminal escape a broken server echoed): shown as \xNN, never acted on.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def error_text(raw: str | None, secrets: Iterable[str] = ()) -> str | None:
    """The stored message of a transport error: its first line, every secret value ``***``
    (``runspec.redact``, as in every file of the run), a URL's query cut off, control
    characters as ``\\xNN`` (the console prints it), at most ``MAX_ERROR_CHARS`` characters. Redaction comes before the cut, so a secret can never
    survive as a cut-off prefix. None when there is no text.

    >>> error_text("ConnectionResetError: [Errno 104] Connection reset by peer\\nTraceback ...")
    'ConnectionResetError: [Errno 104] Connection reset by peer'
    >>> error_text("GET http://h:1/x?token=s3cr3t-t0ken failed, Bearer s3cr3t-t0ken", {"s3cr3t-t0ken"})
    'GET http://h:1/x?… failed, Bearer ***'
    >>> error_text("bad status line: \\x1b[2J")
    'bad status line: \\\\x1b[2J'
    >>> len(error_text("x" * 500)), error_text("  "), error_text(None)
    (200, None, None)
    """
    if raw is None:
        return None
    lines = raw.strip().splitlines()
    if not lines:
        return None
    text = _URL_QUERY.sub("\\1?…", redact(lines[0].strip(), secrets))
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _plain(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def describe(error: BaseException) -> str:
    """``'Type: text'`` of an exception (the type alone when it has no text), followed by the
    operating system's error it wraps, if any: httpx's ``ReadError`` has no text of its own,
    the reset or refusal is three causes down.

    >>> describe(ConnectionRefusedError(111, "Connection refused")), describe(TimeoutError())
    ('ConnectionRefusedError: [Errno 111] Connection refused', 'TimeoutError')
    >>> try:
    ...     try:
    ...         raise ConnectionResetError(104, "Connection reset by peer")
    ...     except OSError as cause:
    ...         raise EOFError() from cause
    ... except EOFError as wrapped:
    ...     describe(wrapped)
    'EOFError (ConnectionResetError: [Errno 104] Connection reset by peer)'
    """
    text = _plain(error)
    cause, root = error.__cause__ or error.__context__, None
    for _ in range(8):  # chains are short; a cycle must not loop
        if cause is None:
            break
        if isinstance(cause, OSError) and str(cause):
            root = cause
        cause = cause.__cause__ or cause.__context__
    if root is None or str(root) in text:
        return text
    return f"{text} ({_plain(root)})"


def classify(status: int | None, error: TransportError | None, expected: tuple[int, ...] = ()) -> str:
    """Outcome of a request from its HTTP status or transport error; a status the request
    expects (``requests[].expect_status``, e.g. a deliberate 401 without a token) is ok.

    >>> classify(200, None), classify(304, None), classify(404, None), classify(503, None)
    ('ok', 'ok', 'http_4xx', 'http_5xx')
    >>> classify(None, "timeout"), classify(None, "connect_error"), classify(None, "body_too_large")
    ('timeout', 'connect_error', 'body_too_large')
    >>> classify(401, None, (401,))
    'ok'
    """
    if error is not None:
        return error
    if status is None:
        return "connect_error"
    if status in expected or 200 <= status < 400:
        return "ok"
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    # 1xx as a final answer is a protocol failure for a load client.
    return "connect_error"


def is_error(outcome: str) -> bool:
    """True for every outcome that counts against the error rate (not ok, not dropped)."""
    return outcome not in ("ok", "dropped")
