"""What ran the measurement: tool, Python, OS, machine, git commit, spec digest, flags, thresholds.

Stored in ``runs.environment`` and shown on the run page, so a number can be traced to the
code and settings that produced it. Never holds a secret or an environment variable's value:
everything passes through the spec's redaction before it is returned.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from phase5site import __version__
from phase5site.runspec import LoadedSpec, redact_tree

LIBRARIES = ("httpx", "duckdb", "pydantic", "prometheus-client", "mkdocs", "mkdocs-material", "altair")


def capture_environment(
    loaded: LoadedSpec, *, spec_path: Path | str, cwd: Path | None = None, now_s: float | None = None
) -> dict[str, Any]:
    """A JSON-able description of the machine, the code and the spec of a run (redacted).

    ``cwd`` is where the git commit is read (default: the current directory).
    """
    spec = loaded.spec
    captured_at = datetime.now(UTC) if now_s is None else datetime.fromtimestamp(now_s, tz=UTC)
    environment: dict[str, Any] = {
        "captured_at": captured_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool": {"name": "phase5site", "version": __version__, "libraries": _library_versions()},
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "os": {"system": platform.system(), "release": platform.release(), "version": platform.version(),
               "machine": platform.machine(), "platform": platform.platform()},
        "host": {"name": socket.gethostname(), "cpu_count": os.cpu_count()},
        "git": git_state(cwd or Path.cwd()),
        "spec": {"path": str(spec_path), "sha256": loaded.sha256, "name": spec.name},
        "flags": {
            "spec": spec.flags.model_dump(),
            "phases": {phase.name: spec.effective_flags(phase).model_dump() for phase in spec.phases},
        },
        "thresholds": {"slo": spec.slo.model_dump(), "circuit_breaker": spec.circuit_breaker.model_dump()},
    }
    return redact_tree(environment, loaded.secrets)


_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def host_memory_bytes() -> int | None:
    """The memory this process may use: the machine's RAM, or its container's (cgroup v2 or
    v1) limit when lower; None when neither can be read."""
    try:
        physical: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        physical = None
    limits = [physical] if physical else []
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limits.append(int(text))
    return min(limits, default=None)


def git_state(directory: Path) -> dict[str, Any]:
    """Commit and dirty flag of the git work tree holding ``directory``; NA (None) outside git."""
    commit = _git(directory, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "branch": None}
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    branch = _git(directory, "rev-parse", "--abbrev-ref", "HEAD")
    return {"commit": commit, "dirty": None if status is None else bool(status), "branch": branch}


def _git(directory: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10, check=False,
            # git status would otherwise refresh the index under .git/index.lock and make a
            # concurrent commit in the same work tree fail.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions

