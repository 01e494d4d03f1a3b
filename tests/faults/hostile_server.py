"""Tiny misbehaving HTTP servers on 127.0.0.1 for the fault matrix (plain sockets, threads).

``HugeBodyServer`` answers every request with a body far beyond any sane limit, framed by
Content-Length, chunked, or read until close, and counts what it managed to write; it writes
at most ``cap_bytes`` per answer and gives up on a peer that stops reading for
``stall_s`` seconds, so a test stays bounded in bytes and time whatever the client does.

``FailAfterServer`` answers 200 to its first ``ok_count`` requests and 503 to every later one
(keep-alive, Content-Length), counting what it answered: a breaker test knows exactly which
requests the service failed.
"""

from __future__ import annotations

import socket
import threading
from typing import Literal

Framing = Literal["length", "chunked", "close"]
_PIECE = b"z" * 65536


def _read_head(conn: socket.socket) -> bytes | None:
    """The request head (up to the blank line), or None when the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


class _ThreadedServer:
    """Accepts connections on 127.0.0.1 and serves each in a daemon thread."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._lock = threading.Lock()
        self._served: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _ThreadedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop accepting, then wait for every connection's thread: what a test reads
        (``sent``, ``answered``) is final only once each has seen its peer close."""
        self._stop.set()
        self._thread.join(10)
        self._listener.close()
        for thread in self._served:
            thread.join(30)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve_guarded, args=(conn,), daemon=True)
            self._served.append(thread)
            thread.start()

    def _serve_guarded(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.serve(conn)
            except OSError:
                pass  # the client closed or reset: what this server is here to see

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError


class HugeBodyServer(_ThreadedServer):
    """Every answer: 200 with a body of ``cap_bytes`` (Content-Length says ``declared``)."""

    def __init__(self, framing: Framing, *, cap_bytes: int = 256 * 1024 * 1024,
                 declared: int = 1024**3, stall_s: float = 10.0) -> None:
        super().__init__()
        self.framing = framing
        self.cap_bytes = cap_bytes
        self.declared = declared
        self.stall_s = stall_s
        self.sent: list[int] = []  # body bytes written per answer (when it ended)
        self.requests = 0

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.stall_s)
        while _read_head(conn) is not None:
            with self._lock:
                self.requests += 1
            head = {"length": f"Content-Length: {self.declared}\r\n",
                    "chunked": "Transfer-Encoding: chunked\r\n",
                    "close": "Connection: close\r\n"}[self.framing]
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{head}\r\n".encode())
            written = 0
            try:
                while written < self.cap_bytes:
                    if self.framing == "chunked":
                        conn.sendall(b"%x\r\n" % len(_PIECE) + _PIECE + b"\r\n")
                    else:
                        conn.sendall(_PIECE)
                    written += len(_PIECE)
            finally:
                with self._lock:
                    self.sent.append(written)
            return  # capped: never a complete answer, so the connection ends here


class FailAfterServer(_ThreadedServer):
    """200 for the first ``ok_count`` requests it reads, 503 for every later one."""

    def __init__(self, ok_count: int) -> None:
        super().__init__()
        self.ok_count = ok_count
        self.answered = {200: 0, 503: 0}

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(30.0)
        while _read_head(conn) is not None:
            with self._lock:
                status = 200 if sum(self.answered.values()) < self.ok_count else 503
                self.answered[status] += 1
            body = b"ok" if status == 200 else b"unavailable"
            reason = "OK" if status == 200 else "Service Unavailable"
            conn.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                         + body)
