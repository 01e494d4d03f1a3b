"""``run --live``: a page on 127.0.0.1 that shows the run while it goes.

The page is fed from the runner's own once-a-second status snapshot (the content of
status.json, ``heartbeat.snapshot``) and a short ring of per-second points for its charts;
it never opens run.duckdb (the store keeps its single writer, and a reader could not open
the file while the writer holds it anyway). The server runs on the parent's event loop,
not in the load workers; its work is a chart point a second, and the JSON at most once per
second and only while a page asks (about 1.5 ms with a full ring): it does not hold the
parent's work back, and the load itself runs in the workers. It binds 127.0.0.1 only: the
page shows the service's behaviour under test and is nobody else's business; a Host header
that is not the loopback address is refused too (a page elsewhere cannot reach it through
DNS rebinding).

Routes: ``GET /`` (one self-contained HTML page: inline CSS and script, no CDN, allowed
to fetch only from itself by its Content-Security-Policy) and ``GET /state.json``
(``{"status": <snapshot>, "history": [<point>...], "poll_s": 2}``).
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from phase5site.engine.livepage_html import CONTENT_SECURITY_POLICY, PAGE_HTML
from phase5site.errors import UsageError
from phase5site.runspec.redaction import redact

LIVE_HOST = "127.0.0.1"
HISTORY_POINTS = 900  # 15 minutes of per-second points: the charts show the recent run
POLL_S = 2.0  # how often the page asks for /state.json
REQUEST_TIMEOUT_S = 5.0  # a client that does not send its request line in time is dropped
MAX_REQUEST_BYTES = 8192
# After the run's last status: how long the page may take to fetch it (only when a page
# polled lately), so it can say how the run ended instead of losing its server mid-poll.
FINAL_LINGER_S = POLL_S + 1.0


def bind_live_socket(port: int, host: str = LIVE_HOST) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: a free port), made before the run
    starts so a port in use is an error before any load, and the URL can be printed first.
    Any other address is refused."""
    if host != LIVE_HOST:
        raise UsageError(f"the live page binds {LIVE_HOST} only, not {host!r}",
                         hint="open it on this machine; forward the port with ssh -L to view it elsewhere")
    if not 0 <= port <= 65535:
        raise UsageError(f"--live {port}: a port is 0 (any free one) to 65535")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
    except OSError as error:
        sock.close()
        why = "it is in use" if error.errno == errno.EADDRINUSE else (error.strerror or str(error))
        raise UsageError(f"--live {port}: cannot listen on {host}:{port}: {why}",
                         hint="give another port, or --live 0 for any free one") from None
    sock.setblocking(False)
    return sock


def history_point(status: dict[str, Any], previous: dict[str, Any] | None, t: float) -> dict[str, Any] | None:
    """One chart point from a status snapshot taken ``t`` seconds into the run (None
    before the first phase). ``failed_per_s`` is the failures (errors and drops) since the
    previous point of the same phase, per second.

    >>> a = history_point({"phase": "p", "achieved_rate": 20.0, "target_rate": 20, "client_p95_ms": 4.0,
    ...                    "errors": {"http_5xx": 1}, "dropped": 0, "sent": 20}, None, 1.0)
    >>> a["failed"], a["failed_per_s"]
    (1, 1.0)
    >>> b = history_point({"phase": "p", "achieved_rate": 20.0, "target_rate": 20, "client_p95_ms": 5.0,
    ...                    "errors": {"http_5xx": 4}, "dropped": 2, "sent": 40}, a, 3.0)
    >>> b["failed"], b["failed_per_s"]
    (6, 2.5)
    """
    if not status.get("phase"):
        return None
    errors = status.get("errors") or {}
    failed = sum(int(v) for v in errors.values()) + int(status.get("dropped") or 0)
    same_phase = previous is not None and previous["phase"] == status["phase"]
    since = failed - previous["failed"] if same_phase else failed
    span = t - previous["t"] if same_phase and t > previous["t"] else 1.0
    return {"t": round(t, 1), "phase": status["phase"], "rate": status.get("achieved_rate"),
            "target_rate": status.get("target_rate"), "p95_ms": status.get("client_p95_ms"),
            "sent": status.get("sent"), "failed": failed,
            "failed_per_s": round(max(0, since) / span, 2)}


class LivePage:
    """The live page's state and its server. ``update`` (once a second, from the runner's
    heartbeat) records the snapshot and a chart point; the JSON is made at most once per
    update, and only when a page asks for it.

    ``secrets`` are redacted from what is served, as from status.json (the snapshot holds
    none; this is the second lock)."""

    def __init__(self, sock: socket.socket, *, secrets: frozenset[str] = frozenset(),
                 clock: Callable[[], float] = time.monotonic, history_points: int = HISTORY_POINTS) -> None:
        self._sock = sock
        self.secrets = secrets
        self._clock = clock
        self._started = clock()
        self.history: deque[dict[str, Any]] = deque(maxlen=history_points)
        self.status: dict[str, Any] = {"status": "starting"}
        self._state_bytes: bytes | None = None
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task] = set()
        self._final = False
        self._final_served = asyncio.Event()
        self._last_poll: float | None = None
        self.requests_served = 0

    @classmethod
    def bind(cls, port: int, *, secrets: frozenset[str] = frozenset()) -> LivePage:
        return cls(bind_live_socket(port), secrets=secrets)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{LIVE_HOST}:{self.port}/"

    # --- state ----------------------------------------------------------------------------

    def update(self, status: dict[str, Any]) -> None:
        """The runner's snapshot of this second (a ``ProgressSink``)."""
        self.status = dict(status)
        point = history_point(self.status, self.history[-1] if self.history else None,
                              self._clock() - self._started)
        if point is not None and not (self.history and self.history[-1]["t"] == point["t"]):
            self.history.append(point)
        self._final = self.status.get("status") not in (None, "running", "starting")
        self._state_bytes = None  # rendered when asked: no page open, no JSON made

    def _render_state(self) -> bytes:
        text = json.dumps({"status": self.status, "history": list(self.history), "poll_s": POLL_S},
                          default=str, allow_nan=False)
        return (redact(text, self.secrets) if self.secrets else text).encode("utf-8")

    # --- server ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on the running loop (the run's); chart times count from here."""
        self._started = self._clock()
        self._server = await asyncio.start_server(self._handle, sock=self._sock,
                                                  limit=MAX_REQUEST_BYTES)

    async def close(self) -> None:
        """Stop serving. When a page polled in the last few seconds and the run has ended,
        wait (at most ``FINAL_LINGER_S``) until it fetched the last status."""
        if self._server is None:
            self._sock.close()
            return
        recent = self._last_poll is not None and self._clock() - self._last_poll < 2 * POLL_S + 1
        if self._final and recent:
            try:
                await asyncio.wait_for(self._final_served.wait(), FINAL_LINGER_S)
            except TimeoutError:
                pass
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def release(self) -> None:
        """Close the listening socket if the run never served it (idempotent)."""
        if self._server is None:
            self._sock.close()

    async def __aenter__(self) -> LivePage:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            status, headers, body = self._respond(head)
            writer.write(_response(status, headers, body))
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    def _respond(self, head: bytes) -> tuple[str, dict[str, str], bytes]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return "400 Bad Request", {}, b"bad request\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        host = next((line.split(":", 1)[1].strip() for line in lines[1:]
                     if line.lower().startswith("host:")), "")
        if host not in (f"{LIVE_HOST}:{self.port}", f"localhost:{self.port}"):
            return "421 Misdirected Request", {}, b"this page answers on 127.0.0.1 only\n"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", {"Allow": "GET, HEAD"}, b"GET only\n"
        if target == "/":
            body, kind = PAGE_HTML.encode("utf-8"), "text/html; charset=utf-8"
        elif target == "/state.json":
            self._last_poll = self._clock()
            if self._state_bytes is None:  # once per update at most (a full ring: about 1.5 ms)
                self._state_bytes = self._render_state()
            body, kind = self._state_bytes, "application/json"
            if self._final:
                self._final_served.set()
        elif target == "/favicon.ico":  # browsers ask for it; no icon, and no 404 in the console
            return "204 No Content", {}, b""
        else:
            return "404 Not Found", {}, b"not found: / and /state.json only\n"
        self.requests_served += 1
        return "200 OK", {"Content-Type": kind}, b"" if method == "HEAD" else body


def _response(status: str, headers: dict[str, str], body: bytes) -> bytes:
    fields = {"Content-Type": "text/plain; charset=utf-8", **headers,
              "Content-Length": str(len(body)), "Cache-Control": "no-store",
              "Content-Security-Policy": CONTENT_SECURITY_POLICY,
              "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
              "Connection": "close"}
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    return head.encode("latin-1") + body
