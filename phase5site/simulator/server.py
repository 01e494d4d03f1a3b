"""Serve the target with uvicorn on a loopback socket, and take it off the network for
outages: the listening socket is closed (connections are refused, open ones are shut) and
a new one is bound to the same port when the outage ends. The app, its counters and its
background loops live on through the outage, as a service behind a failed listener would.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn

from phase5site.errors import TargetError
from phase5site.simulator.app import MetasheetApp, create_app
from phase5site.simulator.config import TargetConfig, check_loopback

OnReady = Callable[[str, int], None]
POLL_S = 0.05
REBIND_TIMEOUT_S = 5.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve_target`` owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does,
    # and without it Nagle + delayed ACK add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Rebinding after an outage finds the server's closed connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as error:
        sock.close()
        raise TargetError(
            f"cannot listen on {host}:{port}: {error.strerror or error}",
            hint="choose another --port, or 0 for any free port",
        ) from error
    sock.setblocking(False)
    return sock


async def _rebind(host: str, port: int) -> socket.socket:
    deadline = time.monotonic() + REBIND_TIMEOUT_S
    while True:
        try:
            return bind_socket(host, port)
        except TargetError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(POLL_S)


def _uvicorn_config(app: MetasheetApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",  # the background loops outlive a listener; serve_target runs them
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        loop="asyncio",
    )


async def _serve_until(server: _Server, sock: socket.socket, leave: Callable[[], bool]) -> None:
    """Run one uvicorn listener until ``leave()`` is true or it dies."""
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not task.done() and not leave():
        await asyncio.sleep(POLL_S)
    server.should_exit = True
    await task


async def serve_target(
    config: TargetConfig, *, on_ready: OnReady, stop: asyncio.Event | None = None
) -> None:
    """Serve until ``stop`` is set or SIGINT/SIGTERM arrives; call ``on_ready(host, port)``
    once the first listener accepts connections."""
    check_loopback(config.host)
    stop = stop or asyncio.Event()
    app = create_app(config)
    sock = bind_socket(config.host, config.port)
    port = sock.getsockname()[1]
    loop = asyncio.get_running_loop()
    # Signal handlers can only be set from the main thread; elsewhere ``stop`` is the way out.
    signals = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    await app.startup()
    ready_told = False
    try:
        while not stop.is_set():
            server = _Server(_uvicorn_config(app))
            serving = asyncio.create_task(
                _serve_until(server, sock, lambda: stop.is_set() or app.faults.outage_active())
            )
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            if server.started and not ready_told:
                on_ready(config.host, port)
                ready_told = True
            await serving
            if not server.started:
                raise TargetError(f"uvicorn could not serve on {config.host}:{port}")
            while app.faults.outage_active() and not stop.is_set():
                await asyncio.sleep(POLL_S)
            if not stop.is_set():
                sock = await _rebind(config.host, port)
    finally:
        sock.close()
        await app.shutdown()
        for signum in signals:
            loop.remove_signal_handler(signum)


def run_foreground(config: TargetConfig, *, on_ready: OnReady) -> None:
    """Serve in this process until Ctrl-C (used by ``phase5site target``)."""
    asyncio.run(serve_target(config, on_ready=on_ready))
