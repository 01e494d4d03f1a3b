"""Start the embedded target in its own process and talk to it.

    with start_target(EmbeddedSpec(seed=7), bearer=token) as target:
        httpx.get(target.base_url + "/health", headers={"Authorization": f"Bearer {token}"})
        target.set_faults([FaultSpec(kind="outage", at=1, duration=2)])
        served = target.request_count()

The configuration (bearer and a generated admin token included) goes to the child on
stdin, never on its command line, so no secret shows in ``ps``.
"""

from __future__ import annotations

import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

from phase5site.errors import TargetError
from phase5site.runspec.models import EmbeddedSpec, FaultSpec
from phase5site.simulator.app import ADMIN_PREFIX, ADMIN_TOKEN_HEADER
from phase5site.simulator.config import TargetConfig, check_loopback, url_host
from phase5site.simulator.metrics import check_disabled_families

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
ADMIN_TIMEOUT_S = 5.0
STDERR_TAIL_BYTES = 4000


class EmbeddedTarget:
    """A running target process. Stop it with ``stop()`` or use it as a context manager."""

    def __init__(
        self, process: subprocess.Popen[bytes], stderr_file: IO[bytes], host: str, port: int,
        admin_token: str,
    ) -> None:
        self._process = process
        self._stderr_file = stderr_file
        self._admin_token = admin_token
        self.host = host
        self.port = port
        self.base_url = f"http://{url_host(host)}:{port}"
        self.metrics_url = self.base_url + "/metrics/prom"

    def __repr__(self) -> str:
        return f"EmbeddedTarget(base_url={self.base_url!r}, pid={self.pid})"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def _admin(self, method: str, action: str, payload: dict[str, Any] | None = None) -> Any:
        try:
            response = httpx.request(
                method, self.base_url + ADMIN_PREFIX + action, json=payload,
                headers={ADMIN_TOKEN_HEADER: self._admin_token}, timeout=ADMIN_TIMEOUT_S,
            )
        except httpx.HTTPError as error:
            raise TargetError(
                f"the embedded target at {self.base_url} did not answer its admin page: {error}",
                hint="is it in an outage, or stopped?",
            ) from error
        if response.status_code != 200:
            raise TargetError(
                f"the embedded target refused {method} {action}: "
                f"HTTP {response.status_code} {response.text[:300]}"
            )
        return response.json()

    def state(self) -> dict[str, Any]:
        """Requests served, the faults with seconds to start/end, memory ballast held."""
        return dict(self._admin("GET", "state"))

    def request_count(self) -> int:
        """Service requests answered so far (what ``http_requests_total`` sums to)."""
        return int(self.state()["requests_served"])

    def set_faults(self, faults: list[FaultSpec]) -> None:
        """Replace every fault with ``faults``; their ``at`` offsets count from now."""
        payload = {"faults": [fault.model_dump(mode="json") for fault in faults]}
        self._admin("PUT", "faults", payload)

    def set_flags(self, *, count_cache_miss_as_fallback: bool) -> None:
        """Switch the simulated service's COUNT_CACHE_MISS_AS_FALLBACK flag from now on."""
        self._admin("PUT", "flags", {"COUNT_CACHE_MISS_AS_FALLBACK": count_cache_miss_as_fallback})

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL after 5 s) and wait for it."""
        process = self._process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        if not self._stderr_file.closed:
            self._stderr_file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_target(
    embedded: EmbeddedSpec,
    *,
    bearer: str | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    metrics_token: str | None = None,
) -> EmbeddedTarget:
    """Spawn ``python -m phase5site.simulator`` and return once it accepts connections.

    Faults in ``embedded.faults`` count from the moment the target starts. ``metrics_token``
    makes its metrics page want that token (like the service's METRICS_SCRAPE_TOKEN). Raises
    TargetError with the child's stderr tail when it cannot start.
    """
    check_loopback(host)
    check_disabled_families(embedded.disable_families)
    admin_token = secrets.token_urlsafe(24)
    config = TargetConfig(
        embedded=embedded, bearer=bearer, admin_token=admin_token, host=host, port=port,
        metrics_token=metrics_token,
    )
    stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - the target owns it until stop()
    process = subprocess.Popen(
        [sys.executable, "-m", "phase5site.simulator"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_file,
        env=_child_environment(),
        start_new_session=True,  # Ctrl-C goes to the runner, which stops the target itself
    )
    try:
        assert process.stdin is not None
        process.stdin.write(config.to_json().encode() + b"\n")
        process.stdin.flush()  # the pipe stays open: its EOF tells the child we are gone
        announced = _read_announcement(process, STARTUP_TIMEOUT_S)
    except (TargetError, OSError) as error:
        _kill(process)
        tail = _tail(stderr_file)
        stderr_file.close()
        message = error.message if isinstance(error, TargetError) else str(error)
        raise TargetError(
            f"the embedded target did not start: {message}" + (f"\n{tail}" if tail else ""),
            hint="the lines above are the end of its stderr",
        ) from error
    return EmbeddedTarget(process, stderr_file, host, int(announced["port"]), admin_token)


def _child_environment() -> dict[str, str]:
    """Our environment, plus the folder holding this package so the child imports the same
    phase5site even when it is not installed (running from a source checkout)."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def _read_announcement(process: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    """Wait for the child's ``{"port": N}`` line on stdout."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TargetError(f"no port announced within {timeout_s:g} s")
            if selector.select(remaining):
                line = process.stdout.readline()
                if not line:
                    raise TargetError(f"the process exited with code {process.wait()}")
                try:
                    return dict(json.loads(line))
                except ValueError as error:
                    raise TargetError(f"unexpected announcement {line[:200]!r}") from error


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def _tail(stderr_file: IO[bytes]) -> str:
    stderr_file.seek(0, os.SEEK_END)
    size = stderr_file.tell()
    stderr_file.seek(max(0, size - STDERR_TAIL_BYTES))
    return stderr_file.read().decode(errors="replace").strip()
