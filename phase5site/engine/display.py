"""Progress on the terminal: a rich live panel on a TTY, one plain line per second otherwise.

Both are ``ProgressSink``s fed with the status.json snapshot every second, so what the
screen shows is exactly what the heartbeat file says.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from phase5site.engine.heartbeat import process_start_ticks
from phase5site.engine.runner import status_line
from phase5site.errors import StoreError


class PlainProgress:
    """One line per second, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def update(self, status: dict[str, Any]) -> None:
        if status.get("phase"):
            print(status_line(status), file=self.stream, flush=True)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveProgress:
    """A rich Live table: phase, elapsed/planned, target vs achieved rate, in flight,
    dropped, errors by outcome, client p95 so far."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = Console()
        self._live = Live(self._render({}), console=self._console, refresh_per_second=4,
                          transient=False)

    def _render(self, status: dict[str, Any]) -> Any:
        from rich.table import Table

        table = Table(title=f"phase5site run {status.get('run_id', '')}", show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value")
        if not status.get("phase"):
            table.add_row("status", str(status.get("status", "starting")))
            return table
        phases = status.get("phases") or []
        achieved = status.get("achieved_rate")
        p95 = status.get("client_p95_ms")
        errors = ", ".join(f"{k} {v}" for k, v in status.get("errors", {}).items()) or "none"
        table.add_row("phase", f"{status['phase']} ({status.get('phase_index')}/{len(phases)})")
        table.add_row("elapsed", f"{status['elapsed_s']:.0f} s of {status['planned_s']:g} s")
        if status.get("run_left_s") is not None:
            table.add_row("run left", f"{status['run_left_s']:.0f} s of {status.get('run_planned_s', 0):g} s")
        if status.get("samples_planned"):
            table.add_row("samples", f"{status.get('samples_done', 0)}/{status['samples_planned']}")
            table.add_row("SLO so far", f"{status.get('slo_so_far')} (per-sample screen; the verdict pools at the end)")
        table.add_row("rate", f"{'NA' if achieved is None else f'{achieved:.1f}'} of "
                              f"{status['target_rate']:g} req/s")
        table.add_row("sent", f"{status['sent']} of {status['planned_requests']}")
        table.add_row("in flight", str(status["in_flight"]))
        table.add_row("dropped", str(status["dropped"]))
        table.add_row("errors", errors)
        table.add_row("client p95", "NA" if p95 is None else f"{p95:.1f} ms")
        table.add_row("breaker", str(status.get("breaker")))
        table.add_row("status", str(status.get("status")))
        return table

    def update(self, status: dict[str, Any]) -> None:
        self._live.update(self._render(status))

    def __enter__(self) -> LiveProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()


def make_progress(tty: bool) -> LiveProgress | PlainProgress:
    return LiveProgress() if tty else PlainProgress()


def latest_run_dir(results_dir: Path) -> Path:
    """The most recently started run folder (one holding status.json) under ``results_dir``."""
    candidates = [p.parent for p in Path(results_dir).glob("*/status.json")]
    if not candidates:
        raise StoreError(
            f"no run with a status.json under {results_dir}",
            hint="start one with 'phase5site run SPEC', or give the run folder",
        )
    return max(candidates, key=lambda p: (p / "status.json").stat().st_mtime)


def read_status(run_dir: Path | None, results_dir: Path) -> dict[str, Any]:
    """status.json of ``run_dir``, or of the latest run under ``results_dir``."""
    folder = Path(run_dir) if run_dir is not None else latest_run_dir(results_dir)
    path = folder / "status.json"
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path} does not exist", hint="give a run folder made by 'phase5site run'") from None
    except json.JSONDecodeError as error:
        raise StoreError(f"{path} is not valid JSON ({error})") from None
    if status.get("status") == "running":
        # A runner killed with SIGKILL (or by the OOM killer) cannot say so: a 'running'
        # status whose runner is gone is a crash (the run stays readable as 'interrupted').
        alive, why = runner_state(status.get("pid"), status.get("pid_start_ticks"))
        status["runner_alive"] = alive
        if alive is False:
            status["status"], status["crashed_reason"] = "crashed", why
    return status


def runner_state(pid: object, start_ticks: object) -> tuple[bool | None, str | None]:
    """Whether the runner ``pid`` that started at ``start_ticks`` still runs, and if not why.

    None when status.json does not say which process wrote it."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None, None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, f"the runner (pid {pid}) is gone: it died without ending the run"
    except PermissionError:
        pass  # another user's process: it exists
    now_ticks = process_start_ticks(pid)
    if isinstance(start_ticks, int) and now_ticks is not None and now_ticks != start_ticks:
        return False, (f"the runner (pid {pid}) is gone: that pid now belongs to another process "
                       f"(started at tick {now_ticks} since boot, the runner at tick {start_ticks})")
    if now_ticks is not None and _is_zombie(pid):
        return False, f"the runner (pid {pid}) is gone: it died without ending the run (zombie)"
    return True, None


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def run_with_progress(
    loaded: Any,
    *,
    results_dir: Path,
    only_phases: list[str] | None,
    breaker: bool,
    tty: bool,
    live_page: Any = None,
) -> Any:
    """``run_spec`` with the terminal display that suits stdout (the CLI's single call);
    ``live_page`` (a bound ``engine.livepage.LivePage``) is served while the run goes."""
    from phase5site.engine.runner import run_spec

    with make_progress(tty) as progress:
        return run_spec(loaded, results_dir=results_dir, only_phases=only_phases, breaker=breaker,
                        progress=progress, live_page=live_page)
