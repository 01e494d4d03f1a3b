"""How much disk a run needs, and whether the results folder can take it.

Bytes per request row were measured with the store's own ``RunWriter.append_requests``:
100,000 realistic rows (three request names, lognormal latencies, 80-row batches as the
engine flushes once a second at 80 req/s) made a ``run.duckdb`` of 4,993,024 bytes, 50 bytes
per row (a bare DuckDB table with 8,000-row batches: 31.5 bytes per row). The budget below
is twice that, for the write-ahead log before a checkpoint, ``load.log`` and ``metrics.csv``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from phase5site.runspec.capacity import format_bytes
from phase5site.runspec.models import RunSpec

__all__ = ["SpaceEstimate", "estimate_run_bytes", "existing_ancestor", "format_bytes", "free_bytes",
           "probe_writable"]

MEASURED_BYTES_PER_REQUEST_ROW = 50
BYTES_PER_REQUEST_ROW = 100
# raw-metrics.txt keeps every scrape or query answer; a MetaSheet scrape is ~17 KB, and a
# sample in "both" mode stores two scrapes plus about twenty query answers.
BYTES_PER_SAMPLE = 256 * 1024
# DuckDB checkpoints its WAL automatically at 16 MiB; logs and metadata come on top.
FIXED_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class SpaceEstimate:
    request_rows: int
    samples: int
    bytes_needed: int


def estimate_run_bytes(spec: RunSpec, only_phases: list[str] | None = None) -> SpaceEstimate:
    """Bytes a run of ``spec`` writes, from its expected request rows and samples.

    Example (day1): warmup 20 req/s x 600 s = 12,000 rows, baseline 80 req/s x 7,200 s =
    576,000 rows and 12 samples: 588,000 x 100 + 12 x 262,144 + 67,108,864
    = 129,054,592 bytes (about 123 MiB).
    """
    phases = spec.enabled_phases(only_phases)
    rows = sum(phase.expected_requests for phase in phases)
    samples = sum(phase.samples or 0 for phase in phases if phase.observe)
    needed = rows * BYTES_PER_REQUEST_ROW + samples * BYTES_PER_SAMPLE + FIXED_BYTES
    return SpaceEstimate(request_rows=rows, samples=samples, bytes_needed=needed)


def existing_ancestor(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing parent."""
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def probe_writable(directory: Path) -> str | None:
    """Create and remove a file in ``directory``; None when that worked, else why not."""
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".phase5site-verify-"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize
