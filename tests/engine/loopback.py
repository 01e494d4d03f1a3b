"""A minimal HTTP/1.1 server on 127.0.0.1 in a thread, with fixed routes, for engine tests.

Routes: ``/ok`` 200, ``/missing`` 404, ``/fail`` 503, ``/slow`` waits ``delay_s`` then 200,
``/metrics/prom`` an empty exposition, ``/chunked`` a chunked body, ``/close`` a body that
runs until the server closes the connection. For the transport's edge cases: ``/no-content``
204, ``/continue`` a 100 Continue before the 200, ``/big`` a body of ``BIG_BODY_BYTES`` written
in 64 KiB pieces, ``/hang`` never answers, ``/garbage`` is not HTTP, ``/truncated`` closes
inside its body, ``/drop`` closes without answering, and ``/then-drop`` answers, then reads the connection's next request and
closes without answering it (a keep-alive connection the server gave up on while a request
was on the wire), ``/reset`` resets the connection (RST, SO_LINGER 0) without answering. HEAD
gets the headers of GET and no body. It counts every request it reads, so a test can assert
that nothing was sent, and the bytes it read off the sockets for each (``request_bytes``:
(path, head + body bytes) in the order read), so a test can check what a client says it wrote.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import Counter

BIG_BODY_BYTES = 64 * 1024 * 1024
_PIECE = b"x" * 65536


class LoopbackServer:
    def __init__(self, *, delay_s: float = 1.0, ssl_context: object | None = None) -> None:
        self.delay_s = delay_s
        self.ssl_context = ssl_context
        self.paths: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.request_bytes: list[tuple[str, int]] = []  # (path, bytes read off the socket) per request
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def request_count(self) -> int:
        return sum(self.paths.values())

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        handlers = asyncio.all_tasks(self._loop)
        for task in handlers:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*handlers, return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        drop_next = False
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                read = len(head)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    self.bodies.append(await reader.readexactly(length))
                    read += length
                path = target.split("?", 1)[0]
                self.request_bytes.append((path, read))
                self.paths[path] += 1
                self.headers_seen.append(headers)
                if drop_next or not await self._answer(method, path, writer):
                    break
                drop_next = path == "/then-drop"
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, writer: asyncio.StreamWriter) -> bool:
        """Write the answer of one request; False when the connection is to be closed."""
        fixed = _FIXED_ANSWERS.get(path)
        if fixed is not None:
            writer.write(fixed[0])
            await writer.drain()
            return fixed[1]
        if path == "/hang":
            await asyncio.Event().wait()
        if path == "/drop":
            return False
        if path == "/reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # closed with linger 0: the peer gets an RST
            return False
        if path == "/big":
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {BIG_BODY_BYTES}\r\n\r\n".encode())
            for _ in range(BIG_BODY_BYTES // len(_PIECE)):
                writer.write(_PIECE)
                await writer.drain()
            return True
        status, body = await self._route(path)
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
            f"Content-Type: text/plain\r\n\r\n".encode() + (b"" if method == "HEAD" else body)
        )
        await writer.drain()
        return True

    async def _route(self, path: str) -> tuple[int, bytes]:
        if path in ("/ok", "/then-drop"):
            return 200, b"ok"
        if path == "/missing":
            return 404, b"missing"
        if path == "/fail":
            return 503, b"unavailable"
        if path == "/slow":
            await asyncio.sleep(self.delay_s)
            return 200, b"slow"
        if path == "/metrics/prom":
            return 200, b""
        return 404, b"no route"


# path -> (the whole answer, keep the connection open afterwards)
_FIXED_ANSWERS = {
    "/chunked": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n", True),
    "/close": (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close", False),
    "/no-content": (b"HTTP/1.1 204 No Content\r\n\r\n", True),
    "/continue": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                  True),
    "/garbage": (b"HELLO THERE\r\n\r\n", True),
    "/truncated": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", False),
}


def free_port() -> int:
    """A port nobody listens on (bound then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
