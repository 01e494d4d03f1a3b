"""The load workers' HTTP/1.1 client: llhttp (``httptools``) on an ``asyncio.Protocol``.

One connection per transport, one request at a time, kept alive across requests and reopened
when the server closes it. Why not streams: at 3-6k req/s a profile of the stream-based client
spent 40-60 % of its busy samples in ``StreamReader`` line reads and writer plumbing, and
~10 % in the per-request ``asyncio.timeout`` (whose ``get_running_loop`` calls ``getpid`` on
CPython 3.11). Here the bytes go straight from ``data_received`` into llhttp (the parser
uvicorn and Node.js use), the body is only counted in the slices llhttp hands over (never
joined: memory per request does not grow with the body), and the timeout is one
``loop.call_at`` handle that fails the response's future. See bench/http_capacity.py.

Only what the measurement needs is kept: the status code and the body length (Content-Length,
chunked, or until close; none for HEAD, 1xx, 204 and 304). Redirects are not followed (3xx is
a success, as in the release criteria) and no compression is asked for.

Errors map to the transport outcomes, each with a message saying where the exchange stood
(``SendResult.message``): the per-request timeout expiring (connect included)
is ``timeout``; a body longer than ``target.max_body_bytes`` (declared by Content-Length, or
counted as chunks or a read-until-close body arrive) is ``body_too_large`` and its
connection is closed at once, so a hostile or broken server cannot make a worker read
gigabytes; anything else that prevents a complete response is ``connect_error``. A server
may close an idle keep-alive connection just as a request crosses the wire (RFC 9112, 9.3.1): an idempotent request (RFC 9110, 9.2.2) is then sent once
more on a new connection, while POST and PATCH end as ``connect_error``, since the server
may have acted on them.

``SendResult.bytes_sent`` is the length of what was handed to the connection for the request
(request line, headers, body: ``encode_request``'s bytes; twice when it was sent once more on
a new connection; 0 when no connection could be made). Over TLS it counts the HTTP bytes, not
the TLS records that carried them.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

import httptools

from phase5site import __version__
from phase5site.engine.mix import PreparedRequest
from phase5site.engine.outcome import describe
from phase5site.engine.transport import (
    DEFAULT_MAX_BODY_BYTES,
    SendResult,
    TransportFactory,
    _shared_ssl_context,
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_CLOSE_WAIT_S = 1.0  # how long aclose waits for a TLS close_notify before aborting

Endpoint = tuple[str, str, int]  # (scheme, host, port)


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as llhttp reads it."""


class StaleConnection(EOFError):
    """The server closed the connection before sending a byte of the answer."""


class BodyTooLarge(Exception):
    """The answer's body is longer than the client's ``max_body_bytes``."""


class _HeadersSufficed(Exception):
    """Raised inside llhttp's callback to stop it reading a body a HEAD answer never has."""


def encode_request(request: PreparedRequest) -> tuple[Endpoint, bytes]:
    """((scheme, host, port), request bytes) of a prepared request.

    Header values were validated when the spec was loaded, so they are written as given.

    >>> from phase5site.engine.mix import PreparedRequest
    >>> key, wire = encode_request(PreparedRequest("h", "GET", "http://127.0.0.1:8900/health?x=1",
    ...                                            (("Authorization", "Bearer t"),), None))
    >>> key
    ('http', '127.0.0.1', 8900)
    >>> wire.split(b"\\r\\n")[:2]
    [b'GET /health?x=1 HTTP/1.1', b'Host: 127.0.0.1:8900']
    """
    parts = urlsplit(request.url)
    scheme = parts.scheme
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not default_port:  # IPv6 literal
        host_header = f"[{host}]:{port}"
    lines = [f"{request.method} {target} HTTP/1.1", f"Host: {host_header}",
             f"User-Agent: phase5site/{__version__}", "Accept: */*"]
    names = {name.lower() for name, _ in request.headers}
    lines += [f"{name}: {value}" for name, value in request.headers]
    body = request.body or b""
    if body or request.method in ("POST", "PUT", "PATCH"):
        if "content-length" not in names:
            lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return (scheme, host, port), head + body


class _Connection(asyncio.Protocol):
    """One connection's protocol: feeds llhttp and resolves one future per exchange with
    ``(status, body bytes)``, or fails it with ``ProtocolError``, ``EOFError``
    (``StaleConnection`` when not a byte came back) or ``TimeoutError``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body_bytes: int) -> None:
        self.loop = loop
        self.max_body_bytes = max_body_bytes
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.exchanges = 0  # answers completed on this connection
        self.lost: asyncio.Future[None] = loop.create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, int]] | None = None
        self._head = False
        self._answered = False  # a byte of the current answer has arrived
        self._status = 0  # of the current final (non-1xx) answer; 0 before its headers
        self._size = 0
        self._framed = False  # the answer has Content-Length or Transfer-Encoding
        self._declared = 0  # its Content-Length
        self._keep_alive = True

    # --- the transport's side ------------------------------------------------------------

    def exchange(self, wire: bytes, *, head: bool) -> asyncio.Future[tuple[int, int]]:
        """Write one request; the future resolves when its answer is complete."""
        self._waiter = waiter = self.loop.create_future()
        self._head = head
        self._answered = False
        self._status = 0
        assert self.transport is not None
        self.transport.write(wire)
        return waiter

    @property
    def usable(self) -> bool:
        """Open, and not closing (a FIN from the server closes the transport at once)."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def expire(self) -> None:
        """The per-request deadline passed (a ``loop.call_at`` callback). An answer that
        completed while its task had not resumed yet keeps its connection."""
        if self._waiter is not None:
            self._fail(TimeoutError(self._where()))

    def _where(self) -> str:
        """How far the current answer got (for the message of a timeout)."""
        if not self._answered:
            return "the request was written, no byte of the answer came"
        if not self._status:
            return "the answer's headers did not complete"
        return f"the answer's body did not complete ({self._size:,} bytes read)"

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def aclose(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(self.lost), _CLOSE_WAIT_S)
            except TimeoutError:
                self.transport.abort()

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols unasked"))
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, BodyTooLarge):
                self._fail(error.__context__)
            elif isinstance(error.__context__, _HeadersSufficed):
                # llhttp stopped after a HEAD answer's headers; it cannot resume, and the
                # next answer starts on a fresh parser.
                self._parser = httptools.HttpResponseParser(self)
            else:
                self._fail(ProtocolError(f"unreadable answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        if self._waiter is None:
            return
        if self._status and not self._framed and exc is None:
            self._finish()  # the body ran until the server closed: that is its end
            return
        how = "the server closed the connection" if exc is None else f"the connection was lost ({describe(exc)})"
        if not self._answered:
            self._fail(StaleConnection(f"{how} before the answer started"))
        else:
            self._fail(EOFError(f"{how} inside the answer"))

    # --- llhttp callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            raise ProtocolError("an answer nobody asked for")
        self._size = 0
        self._declared = 0
        self._framed = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._framed and len(name) in (14, 17):  # cheap pre-check of the two names
            lowered = name.lower()
            self._framed = lowered in (b"content-length", b"transfer-encoding")
            if lowered == b"content-length" and value.strip().isdigit():
                self._declared = int(value)

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            return  # 100 Continue, 103 Early Hints: llhttp ends it, the final answer follows
        self._status = status
        self._keep_alive = self._parser.should_keep_alive()
        if self._head:
            self._finish()
            raise _HeadersSufficed
        if self._declared > self.max_body_bytes and status not in (204, 304):
            # Declared too long: refused before a byte of it is read.
            raise BodyTooLarge(f"Content-Length {self._declared} > {self.max_body_bytes}")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body_bytes:  # chunked or until close: counted as it comes
            raise BodyTooLarge(f"body longer than {self.max_body_bytes} bytes")

    def on_message_complete(self) -> None:
        if self._status:
            self._finish()

    # --- outcomes ------------------------------------------------------------------------

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        self.exchanges += 1
        if not self._keep_alive:
            self.closed = True
            assert self.transport is not None
            self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, self._size))

    def _fail(self, error: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        self.abort()  # the stream's position is unknown now: never reuse it
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


class HttpToolsTransport:
    """One keep-alive connection, one request at a time (a load worker's transport)."""

    def __init__(self, *, timeout_s: float, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        self._ssl_context = ssl_context
        self._written = 0  # bytes handed to a connection for the request being sent
        self._encoded: dict[int, tuple[PreparedRequest, Endpoint, bytes]] = {}
        self._endpoint: Endpoint | None = None
        self._connection: _Connection | None = None

    def _encode(self, request: PreparedRequest) -> tuple[Endpoint, bytes]:
        cached = self._encoded.get(id(request))
        if cached is None or cached[0] is not request:
            endpoint, wire = encode_request(request)
            self._encoded[id(request)] = (request, endpoint, wire)
            return endpoint, wire
        return cached[1], cached[2]

    async def send(self, request: PreparedRequest) -> SendResult:
        endpoint, wire = self._encode(request)
        self._written = 0
        try:
            status, size = await self._send_once_or_twice(endpoint, wire, request.method)
        except TimeoutError as error:
            self._drop()
            return SendResult(None, None, "timeout", None,
                              f"no complete answer within {self.timeout_s:g} s: {error}", self._written)
        except BodyTooLarge as error:
            self._drop()
            return SendResult(None, None, "body_too_large", None, str(error), self._written)
        except (OSError, EOFError, ProtocolError) as error:  # ssl.SSLError is an OSError
            self._drop()
            text = describe(error) if isinstance(error, OSError) else str(error)
            return SendResult(None, None, "connect_error", None, text, self._written)
        return SendResult(status, size, None, None, None, self._written)

    async def _send_once_or_twice(self, endpoint: Endpoint, wire: bytes, method: str) -> tuple[int, int]:
        connection = self._connection
        if connection is None or not connection.usable or self._endpoint != endpoint:
            loop = asyncio.get_running_loop()  # only here: it calls getpid on CPython 3.11
            deadline = loop.time() + self.timeout_s
            connection = await self._connect(endpoint, deadline)
        else:
            deadline = connection.loop.time() + self.timeout_s
        try:
            return await self._exchange(connection, wire, method, deadline)
        except StaleConnection:
            if connection.exchanges == 0 or method not in IDEMPOTENT_METHODS:
                raise
        connection = await self._connect(endpoint, deadline)  # the one retry
        return await self._exchange(connection, wire, method, deadline)

    async def _exchange(self, connection: _Connection, wire: bytes, method: str,
                        deadline: float) -> tuple[int, int]:
        answer = connection.exchange(wire, head=method == "HEAD")
        self._written += len(wire)
        timer = connection.loop.call_at(deadline, connection.expire)
        try:
            return await answer
        except asyncio.CancelledError:
            connection.abort()  # the answer may still come: the connection is unusable
            raise
        finally:
            timer.cancel()

    async def _connect(self, endpoint: Endpoint, deadline: float) -> _Connection:
        self._drop()
        scheme, host, port = endpoint
        context = None
        if scheme == "https":
            context = self._ssl_context or _shared_ssl_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):  # connects are rare: the context manager is fine
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self.max_body_bytes), host, port, ssl=context,
                    server_hostname=host if context else None)
        except TimeoutError:
            raise TimeoutError(f"connecting to {host}:{port}{' (TLS)' if context else ''} did not finish") from None
        self._connection, self._endpoint = connection, endpoint
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.abort()
        self._connection = self._endpoint = None

    async def aclose(self) -> None:
        connection, self._connection, self._endpoint = self._connection, None, None
        if connection is not None:
            await connection.aclose()


def httptools_factory(timeout_s: float,
                      max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> TransportFactory:
    """A factory making one ``HttpToolsTransport`` (one connection) per worker."""

    def make() -> HttpToolsTransport:
        return HttpToolsTransport(timeout_s=timeout_s, max_body_bytes=max_body_bytes)

    return make
