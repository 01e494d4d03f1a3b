"""The seam where a request leaves the process: ``Transport.send(request) -> SendResult``.

Each load worker owns one transport, and the httpx transport owns one ``AsyncClient`` with a
pool of its own. One shared client serialises every send through a single connection pool
whose waiting queue grows without bound in an open model (encode/httpx#3215: under 1k req/s
and a run-away queue), while a client per worker keeps sends independent. Tests inject
``httpx.MockTransport`` (or any ``Transport``) instead of opening sockets.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from phase5site.engine.mix import PreparedRequest
from phase5site.engine.outcome import TransportError, describe

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # target.max_body_bytes: far above any API answer


@dataclass(frozen=True, slots=True)
class SendResult:
    """What came back: an HTTP status and body size, or a transport error and its message."""

    status: int | None
    bytes: int | None
    error: TransportError | None = None
    # Seconds the client worked on the request before it went on its way (httpx builds
    # the request, merges headers, picks a connection): the load adds it to the send time,
    # so a heavy client's own delay is send lag (the generator's), not the service's time.
    pre_send_s: float | None = None
    # What the client saw of a transport error, raw (the load stores it through
    # ``outcome.error_text``: first line, redacted, bounded); None for an answer.
    message: str | None = None
    # Bytes the client wrote for the request (request line, headers and body as they went
    # on the connection); None when the client cannot tell.
    bytes_sent: int | None = None


class _HandOffClock(httpx.AsyncBaseTransport):
    """Wraps httpx's network transport to note when the client hands a request to it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.handed_at: float | None = None  # time.perf_counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.handed_at = time.perf_counter()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Transport(Protocol):
    async def send(self, request: PreparedRequest) -> SendResult: ...

    async def aclose(self) -> None: ...


TransportFactory = Callable[[], Transport]


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every worker: building one per client costs ~10 ms."""
    return httpx.create_ssl_context()


class HttpxTransport:
    """Sends with one private ``httpx.AsyncClient`` (keep-alive, ``max_connections``).

    ``bytes_sent`` stays None: httpx hands the request to h11 and the socket without saying
    how many bytes it wrote, and a figure rebuilt from the request object would be a guess
    (header order and casing, chunked framing, retries of a stale connection are httpcore's).
    """

    def __init__(
        self,
        *,
        timeout_s: float,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_connections: int = 1,
        httpx_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_body_bytes = max_body_bytes
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        inner = httpx_transport or httpx.AsyncHTTPTransport(
            verify=_shared_ssl_context(), limits=limits, trust_env=False)
        self._hand_off = _HandOffClock(inner)  # one request at a time per transport (a slot)
        self._client = httpx.AsyncClient(
            verify=_shared_ssl_context(),
            timeout=httpx.Timeout(timeout_s),
            limits=limits,
            transport=self._hand_off,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment must not reroute load
        )

    async def send(self, request: PreparedRequest) -> SendResult:
        started = time.perf_counter()
        self._hand_off.handed_at = None
        try:
            # httpx's timeout applies per phase (connect, read, ...); the outer bound makes
            # it a limit on the whole request, which is what "per-request timeout" means.
            async with asyncio.timeout(self.timeout_s):
                status, size = await self._stream(request)
        except (TimeoutError, httpx.TimeoutException) as error:
            return SendResult(status=None, bytes=None, error="timeout", pre_send_s=self._pre_send(started),
                              message=f"no complete answer within {self.timeout_s:g} s: {describe(error)}")
        except (httpx.HTTPError, OSError) as error:
            return SendResult(status=None, bytes=None, error="connect_error",
                              pre_send_s=self._pre_send(started), message=describe(error))
        if size is None:
            return SendResult(status=None, bytes=None, error="body_too_large", pre_send_s=self._pre_send(started),
                              message=f"the body passed max_body_bytes ({self.max_body_bytes:,} bytes)")
        return SendResult(status=status, bytes=size, pre_send_s=self._pre_send(started))

    async def _stream(self, request: PreparedRequest) -> tuple[int, int | None]:
        """(status, body length), or (status, None) when the body passed ``max_body_bytes``.

        The body is streamed and only counted: ``response.content`` would hold all of it
        (a 1 GiB answer was a MemoryError). Leaving the stream unread closes the connection.
        """
        async with self._client.stream(
            request.method, request.url, headers=request.headers, content=request.body
        ) as response:
            declared = response.headers.get("content-length", "")
            if declared.strip().isdigit() and int(declared) > self.max_body_bytes \
                    and request.method != "HEAD" and response.status_code not in (204, 304):
                return response.status_code, None
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_body_bytes:
                    return response.status_code, None
            return response.status_code, size

    def _pre_send(self, started: float) -> float | None:
        handed_at = self._hand_off.handed_at
        return None if handed_at is None else max(0.0, handed_at - started)

    async def aclose(self) -> None:
        await self._client.aclose()


def httpx_factory(
    timeout_s: float, httpx_transport: httpx.AsyncBaseTransport | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> TransportFactory:
    """A factory making one ``HttpxTransport`` per worker."""

    def make() -> Transport:
        return HttpxTransport(timeout_s=timeout_s, httpx_transport=httpx_transport,
                              max_body_bytes=max_body_bytes)

    return make
