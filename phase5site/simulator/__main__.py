"""Entry point of the target's own process: ``python -m phase5site.simulator``.

Protocol with ``start_target`` (process.py): the parent writes one line of TargetConfig
JSON on stdin and keeps the pipe open; the child answers one JSON line ``{"port": N}`` on
stdout once it accepts connections, then stops writing to stdout. The child stops on
SIGTERM/SIGINT, and also when stdin reaches EOF, so a parent that dies (even by SIGKILL)
never leaves a target behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading

from phase5site.errors import Phase5Error
from phase5site.simulator.config import TargetConfig
from phase5site.simulator.server import serve_target


def _announce(host: str, port: int) -> None:
    sys.stdout.write(json.dumps({"host": host, "port": port, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    # Nobody reads stdout any more: a full pipe would block the server, so point it elsewhere.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _stop_at_parent_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    loop.call_soon_threadsafe(stop.set)


async def _serve(config: TargetConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_stop_at_parent_eof, args=(loop, stop), daemon=True).start()
    await serve_target(config, on_ready=_announce, stop=stop)


def main() -> int:
    try:
        config = TargetConfig.from_json(sys.stdin.readline())
        asyncio.run(_serve(config))
    except Phase5Error as error:
        sys.stderr.write(f"Error: {error}\n")
        return error.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
