"""The builder's end of ``vlrender.py``: start it on the first job, hand it jobs, collect
its answers on a reader thread (so neither side can block on a full pipe), wait for one
file or for all.

If the process cannot start, every job runs here instead, in order: slower, same files.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from phase5site.errors import SiteError
from phase5site.site import vlrender

SCRIPT = Path(vlrender.__file__)


class SideRenderer:
    """Jobs for vl-convert, done in a child process while the build goes on."""

    def __init__(self, *, in_process: bool = False) -> None:
        self._in_process = in_process
        self._child: subprocess.Popen[str] | None = None
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._done: dict[str, dict[str, Any]] = {}
        self._sent: list[str] = []

    def _start(self) -> None:
        try:
            self._child = subprocess.Popen([sys.executable, str(SCRIPT)], stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError:
            self._in_process = True
            return
        threading.Thread(target=self._read, args=(self._child.stdout,), daemon=True).start()

    def _read(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self._answers.put(json.loads(line))
        self._answers.put(None)  # the child is gone

    def submit(self, job: dict[str, Any]) -> None:
        self._sent.append(str(job["path"]))
        if self._child is None and not self._in_process:
            self._start()
        if self._in_process or self._child is None or self._child.stdin is None:
            self._done[str(job["path"])] = vlrender.run_job(job)
            return
        self._child.stdin.write(json.dumps(job) + "\n")
        self._child.stdin.flush()

    def wait_for(self, path: Path) -> dict[str, Any]:
        """The answer for ``path``; raises ``SiteError`` if the child died before giving it."""
        key = str(path)
        while key not in self._done:
            answer = self._answers.get()
            if answer is None:
                raise SiteError(f"the chart renderer stopped before writing {path}: {self._stderr()}",
                                "check that vl-convert-python is installed in this environment")
            self._done[answer["path"]] = answer
        return self._done[key]

    def close(self) -> dict[str, dict[str, Any]]:
        """Wait for every job; returns each path's answer."""
        if self._child is not None and self._child.stdin is not None:
            self._child.stdin.close()
            for path in self._sent:
                self.wait_for(Path(path))
            self._child.wait()
        return dict(self._done)

    def _stderr(self) -> str:
        if self._child is None or self._child.stderr is None:
            return "no output"
        self._child.wait()
        lines = self._child.stderr.read().strip().splitlines()
        return lines[-1] if lines else f"exit code {self._child.returncode}"

    def abort(self) -> None:
        """Stop the child if it still runs (a build that failed half-way); it is ours, by pid."""
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
