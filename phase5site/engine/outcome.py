"""How one request ended, in the vocabulary of ``phase5site.columns.OUTCOMES``.

Success is 2xx/3xx only. A transport failure is ``timeout`` when the per-request timeout
expired, ``body_too_large`` when the answer's body passed ``target.max_body_bytes`` (the
client closed the connection instead of reading on) and ``connect_error`` for every other
failure to get a response (refused, reset, broken protocol): all count as failures in every
verdict.
"""

from __future__ import annotations

from typing import Literal

TransportError = Literal["timeout", "connect_error", "body_too_large"]


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
