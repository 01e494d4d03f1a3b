"""A lean HTTP/1.1 keep-alive client transport on asyncio streams, for pacing fidelity.

httpx costs about a millisecond of CPU per request on this class of machine (request and
response models, anyio, httpcore's pool); at 80 req/s that alone is ~10 % of a core and it
caps one process near 1k req/s. This transport encodes each entry of the mix once, writes
it on the worker's own connection and parses only what the measurement needs: the status
code and the body length (Content-Length, chunked, or until close). One connection per
worker, reopened when the server closes it; redirects are not followed (3xx is a success,
as in the release criteria); no compression is asked for.

Errors map to the two transport outcomes: the per-request timeout expiring is ``timeout``,
anything else that prevents a complete response is ``connect_error``.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

from phase5site import __version__
from phase5site.engine.mix import PreparedRequest
from phase5site.engine.transport import SendResult, TransportFactory, _shared_ssl_context

_NO_BODY_STATUSES = frozenset({204, 304})


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as we can read it."""


def encode_request(request: PreparedRequest) -> tuple[tuple[str, str, int], bytes]:
    """((scheme, host, port), request bytes) of a prepared request.

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


class RawHttpTransport:
    """One keep-alive connection, one request at a time (a load worker's transport)."""

    def __init__(self, *, timeout_s: float, ssl_context: ssl.SSLContext | None = None) -> None:
        self.timeout_s = timeout_s
        self._ssl_context = ssl_context
        self._encoded: dict[int, tuple[PreparedRequest, tuple[str, str, int], bytes]] = {}
        self._key: tuple[str, str, int] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def _encode(self, request: PreparedRequest) -> tuple[tuple[str, str, int], bytes]:
        cached = self._encoded.get(id(request))
        if cached is None or cached[0] is not request:
            key, wire = encode_request(request)
            self._encoded[id(request)] = (request, key, wire)
            return key, wire
        return cached[1], cached[2]

    async def send(self, request: PreparedRequest) -> SendResult:
        key, wire = self._encode(request)
        try:
            async with asyncio.timeout(self.timeout_s):
                status, size = await self._exchange(key, wire, request.method)
        except TimeoutError:
            self._close()
            return SendResult(status=None, bytes=None, error="timeout")
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ProtocolError, ValueError, ssl.SSLError):
            self._close()
            return SendResult(status=None, bytes=None, error="connect_error")
        return SendResult(status=status, bytes=size)

    async def _exchange(self, key: tuple[str, str, int], wire: bytes, method: str) -> tuple[int, int]:
        reused = self._writer is not None and self._key == key and not self._writer.is_closing()
        if not reused:
            await self._connect(key)
        assert self._reader is not None and self._writer is not None
        self._writer.write(wire)
        status_line = await self._reader.readline()
        if not status_line and reused:
            # The server closed the idle keep-alive connection: retry once on a new one.
            await self._connect(key)
            self._writer.write(wire)
            status_line = await self._reader.readline()
        if not status_line:
            raise EOFError("connection closed before a status line")
        return await self._read_response(status_line, method)

    async def _connect(self, key: tuple[str, str, int]) -> None:
        self._close()
        scheme, host, port = key
        context = None
        if scheme == "https":
            context = self._ssl_context or _shared_ssl_context()
        self._reader, self._writer = await asyncio.open_connection(
            host, port, ssl=context, server_hostname=host if context else None)
        self._key = key

    async def _read_response(self, status_line: bytes, method: str) -> tuple[int, int]:
        assert self._reader is not None
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(parts[1])
        length: int | None = None
        chunked = False
        close = parts[0] == b"HTTP/1.0"
        while True:
            line = await self._reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise EOFError("connection closed inside the headers")
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                token = value.strip().lower()
                close = token == b"close" or (close and token != b"keep-alive")
        if method == "HEAD" or status in _NO_BODY_STATUSES or status < 200:
            size = 0
        elif chunked:
            size = await self._read_chunked()
        elif length is not None:
            await self._reader.readexactly(length)
            size = length
        else:
            size = len(await self._reader.read())  # body runs until the server closes
            close = True
        if close:
            self._close()
        return status, size

    async def _read_chunked(self) -> int:
        assert self._reader is not None
        size = 0
        while True:
            line = await self._reader.readline()
            chunk = int(line.split(b";", 1)[0].strip(), 16)
            if chunk == 0:
                break
            await self._reader.readexactly(chunk + 2)
            size += chunk
        while (await self._reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return size

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        self._key = None

    async def aclose(self) -> None:
        writer = self._writer
        self._close()
        if writer is not None:
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass


def raw_factory(timeout_s: float) -> TransportFactory:
    """A factory making one ``RawHttpTransport`` (one connection) per worker."""

    def make() -> RawHttpTransport:
        return RawHttpTransport(timeout_s=timeout_s)

    return make
