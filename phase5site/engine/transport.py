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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from phase5site.engine.mix import PreparedRequest
from phase5site.engine.outcome import TransportError


@dataclass(frozen=True)
class SendResult:
    """What came back: an HTTP status and body size, or a transport error."""

    status: int | None
    bytes: int | None
    error: TransportError | None = None


class Transport(Protocol):
    async def send(self, request: PreparedRequest) -> SendResult: ...

    async def aclose(self) -> None: ...


TransportFactory = Callable[[], Transport]


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every worker: building one per client costs ~10 ms."""
    return httpx.create_ssl_context()


class HttpxTransport:
    """Sends with one private ``httpx.AsyncClient`` (keep-alive, ``max_connections``)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_connections: int = 1,
        httpx_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._client = httpx.AsyncClient(
            verify=_shared_ssl_context(),
            timeout=httpx.Timeout(timeout_s),
            limits=limits,
            transport=httpx_transport,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment must not reroute load
        )

    async def send(self, request: PreparedRequest) -> SendResult:
        try:
            # httpx's timeout applies per phase (connect, read, ...); the outer bound makes
            # it a limit on the whole request, which is what "per-request timeout" means.
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.request(
                    request.method, request.url, headers=request.headers, content=request.body
                )
        except (TimeoutError, httpx.TimeoutException):
            return SendResult(status=None, bytes=None, error="timeout")
        except httpx.HTTPError:
            return SendResult(status=None, bytes=None, error="connect_error")
        except OSError:
            return SendResult(status=None, bytes=None, error="connect_error")
        return SendResult(status=response.status_code, bytes=len(response.content))

    async def aclose(self) -> None:
        await self._client.aclose()


def httpx_factory(
    timeout_s: float, httpx_transport: httpx.AsyncBaseTransport | None = None
) -> TransportFactory:
    """A factory making one ``HttpxTransport`` per worker."""

    def make() -> Transport:
        return HttpxTransport(timeout_s=timeout_s, httpx_transport=httpx_transport)

    return make
