"""Importing a legacy run (``metrics.csv`` + optional ``metadata.json``) as a new run.

The new run has source 'import', one phase (named by metadata ``phase``, else
'imported'), one sample per readable CSV row (source 'import'), and a 'warning' event per
finding (renamed or unknown columns, skipped rows, placeholders, cumulative counters).
Values are stored exactly as the file says; timestamps keep their text, and
``window_end`` is that text read in the zone of metadata ``start_time`` (UTC otherwise).
The run folder also receives the redacted ``metadata.json``, a copy of the original CSV
(``legacy-metrics.csv``) and a CSV v3 ``metrics.csv``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from pathlib import Path
from typing import Any

from phase5site import __version__
from phase5site.columns import CSV_V3_COLUMNS
from phase5site.errors import ImportFormatError
from phase5site.store.csv_v3 import export_csv
from phase5site.store.legacy_checks import PLACEHOLDERS, cumulative_columns, placeholder_columns
from phase5site.store.legacy_csv import LegacyTable, read_legacy_csv
from phase5site.store.legacy_metadata import (
    local_zone,
    parse_start_time,
    read_metadata,
    redact_metadata,
)
from phase5site.store.reader import RunReader
from phase5site.store.writer import RunWriter

DEFAULT_PHASE = "imported"
LEGACY_PROFILE = "metasheet-2025"  # phase5site.metrics.profile.LEGACY_PROFILE (store may not import metrics)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class ImportResult:
    run_dir: Path
    samples: int
    warnings: tuple[str, ...]


def import_legacy(
    csv_path: Path | str,
    metadata_path: Path | str | None = None,
    results_dir: Path | str = Path("results"),
) -> Path:
    """Import a legacy metrics.csv as a new run; returns the new run folder."""
    return import_legacy_run(csv_path, metadata_path, results_dir).run_dir


def import_legacy_run(
    csv_path: Path | str,
    metadata_path: Path | str | None = None,
    results_dir: Path | str = Path("results"),
    *,
    clock: Callable[[], float] = time.time,
) -> ImportResult:
    """Import and also return the number of samples and every warning recorded."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ImportFormatError(
            f"legacy metrics file not found: {csv_path}",
            hint="pass the path of a metrics.csv, e.g. results/phase5-20251124-200917/metrics.csv",
        )
    table = read_legacy_csv(csv_path)
    metadata, meta_path, warnings = _load_metadata(csv_path, metadata_path)
    warnings = warnings + table.warnings
    zone = local_zone(metadata)
    if zone is None and table.rows:
        warnings.append("timestamps carry no zone and metadata has no start_time; read as UTC")
    samples = _samples(table, zone or UTC, warnings)
    window_s = _window_s(metadata, samples)
    warnings += _findings(table, metadata)
    for sample in samples:
        if window_s is not None and sample["window_end"] is not None:
            sample["window_start"] = sample["window_end"] - window_s
        sample["window_s"] = window_s
    run_dir = _new_run_dir(Path(results_dir), csv_path)
    try:
        _write_run(run_dir, csv_path, table, metadata, meta_path, samples, window_s, warnings,
                   clock)
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)  # never leave a half-imported run behind
        raise
    return ImportResult(run_dir=run_dir, samples=len(samples), warnings=tuple(warnings))


def _load_metadata(
    csv_path: Path, metadata_path: Path | str | None
) -> tuple[dict[str, Any] | None, Path | None, list[str]]:
    if metadata_path is not None:
        path = Path(metadata_path)
        if not path.is_file():
            raise ImportFormatError(
                f"metadata file not found: {path}",
                hint="omit --metadata to use the metadata.json beside the CSV, if any",
            )
        data, warnings = read_metadata(path, explicit=True)
        return data, path, warnings
    beside = csv_path.parent / "metadata.json"
    if not beside.is_file():
        return None, None, ["no metadata.json beside the CSV; phase named 'imported'"]
    data, warnings = read_metadata(beside, explicit=False)
    return data, (beside if data is not None else None), warnings


def _samples(table: LegacyTable, zone: timezone, warnings: list[str]) -> list[dict[str, Any]]:
    """One sample dict per row: sample_num from the file, window_end from the timestamp."""
    samples: list[dict[str, Any]] = []
    seen: set[int] = set()
    has_sample_num = "sample_num" in table.column_map.values()
    if not has_sample_num:
        warnings.append("no sample_num column; samples numbered 1..N in file order")
    absent = [c for c in CSV_V3_COLUMNS if c not in table.column_map.values()]
    for index, (row, line, reasons) in enumerate(
        zip(table.rows, table.line_numbers, table.na_reasons), start=1
    ):
        number = _sample_number(row.get("sample_num"), index, line, warnings)
        if number in seen:
            warnings.append(f"line {line}: sample_num {number} repeated; row skipped")
            continue
        seen.add(number)
        sample = {k: v for k, v in row.items() if k != "sample_num"}
        sample.update(sample_num=number, source="import")
        sample["window_end"] = _epoch(sample.get("timestamp"), zone, line, warnings)
        why_absent = f"column not in this {len(table.header)}-column legacy layout"
        na = {c: why_absent for c in absent if c != "sample_num"}
        na.update(reasons)
        sample["na_reasons"] = na
        samples.append(sample)
    return samples


def _sample_number(value: object, index: int, line: int, warnings: list[str]) -> int:
    if isinstance(value, float) and value.is_integer() and value >= 1:
        return int(value)
    if value is not None:
        warnings.append(f"line {line}: sample_num {value!r} is not a positive integer")
    return index


def _epoch(text: object, zone: timezone, line: int, warnings: list[str]) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        local = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        warnings.append(f"line {line}: timestamp {text!r} is not 'YYYY-MM-DD HH:MM:SS'")
        return None
    return local.replace(tzinfo=zone).timestamp()


def _window_s(metadata: dict[str, Any] | None, samples: list[dict[str, Any]]) -> float | None:
    """metadata interval_seconds, else the median gap between consecutive timestamps."""
    interval = (metadata or {}).get("interval_seconds")
    if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
        return float(interval)
    ends = [s["window_end"] for s in samples if s["window_end"] is not None]
    gaps = [later - earlier for earlier, later in zip(ends, ends[1:]) if later > earlier]
    return float(statistics.median(gaps)) if gaps else None


def _findings(table: LegacyTable, metadata: dict[str, Any] | None) -> list[str]:
    present = list(table.column_map.values())
    findings = [
        f"{column} is {PLACEHOLDERS[column]} in every row: the old observer's placeholder "
        "for a missing metric, not a measurement (stored as written)"
        for column in placeholder_columns(table.rows, present)
    ]
    findings += [
        f"{column} never decreases over {len(table.rows)} samples: looks like a cumulative "
        "total since process start, not a per-sample count (stored as written)"
        for column in cumulative_columns(table.rows, present)
    ]
    planned = (metadata or {}).get("max_samples", (metadata or {}).get("samples"))
    if isinstance(planned, int) and planned != len(table.rows):
        findings.append(f"metadata planned {planned} samples; the file has {len(table.rows)} rows")
    return findings


def _new_run_dir(results_dir: Path, csv_path: Path) -> Path:
    base = _UNSAFE.sub("-", csv_path.resolve().parent.name).strip("-") or "legacy"
    candidate = results_dir / f"{base}-import"
    suffix = 2
    while candidate.exists():
        candidate = results_dir / f"{base}-import-{suffix}"
        suffix += 1
    return candidate


def _run_span(
    metadata: dict[str, Any] | None, samples: list[dict[str, Any]], window_s: float | None
) -> tuple[float | None, float | None]:
    """(started_at, ended_at) of an imported run; None where nothing says.

    Start: metadata ``start_time`` when it has a zone, else the first window's start
    (first window end minus window_s), else the first window end. End: the last window end.

    >>> _run_span(None, [{"window_end": 100.0}, {"window_end": 105.0}], 5.0)
    (95.0, 105.0)
    >>> _run_span({"start_time": "1970-01-01T08:01:00+08:00"}, [], None)
    (60.0, 60.0)
    """
    ends = [s["window_end"] for s in samples if s["window_end"] is not None]
    start = parse_start_time((metadata or {}).get("start_time"))
    if start is not None and start.tzinfo is not None:
        started_at: float | None = start.timestamp()
    elif ends:
        started_at = ends[0] - window_s if window_s is not None else ends[0]
    else:
        started_at = None
    return started_at, (ends[-1] if ends else started_at)


def _write_run(
    run_dir: Path,
    csv_path: Path,
    table: LegacyTable,
    metadata: dict[str, Any] | None,
    meta_path: Path | None,
    samples: list[dict[str, Any]],
    window_s: float | None,
    warnings: list[str],
    clock: Callable[[], float],
) -> None:
    redacted = redact_metadata(metadata) if metadata is not None else None
    started_at, ended_at = _run_span(metadata, samples, window_s)
    phase = _phase_name(metadata)
    imported_at = clock()
    with RunWriter.create(
        run_dir,
        run_id=run_dir.name,
        name=_UNSAFE.sub("-", csv_path.resolve().parent.name).strip("-") or "legacy",
        spec_path=str(csv_path),
        spec_sha256=hashlib.sha256(csv_path.read_bytes()).hexdigest(),
        spec_redacted=redacted,
        environment=_environment(csv_path, meta_path, table, imported_at),
        tool_version=__version__,
        source="import",
        started_at=started_at,
    ) as writer:
        fields = _phase_fields(metadata, len(samples), window_s)
        writer.begin_phase(phase, **fields, started_at=started_at)
        for sample in samples:
            writer.add_sample({**sample, "phase": phase})
        for message, data in _warning_events(table, warnings):
            writer.add_event("warning", message, at=imported_at, phase=phase, data=data)
        writer.end_phase(phase, ended_at=ended_at, status="completed", requests_sent=None,
                         dropped=None)
        writer.finish("completed", ended_at=ended_at, exit_reason="imported")
    _write_side_files(run_dir, csv_path, redacted)


def _phase_name(metadata: dict[str, Any] | None) -> str:
    name = (metadata or {}).get("phase")
    return name.strip() if isinstance(name, str) and name.strip() else DEFAULT_PHASE


def _number(metadata: dict[str, Any] | None, key: str) -> float | None:
    value = (metadata or {}).get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _phase_fields(
    metadata: dict[str, Any] | None, samples: int, window_s: float | None
) -> dict[str, Any]:
    concurrency = _number(metadata, "concurrency")
    duration = _number(metadata, "duration_seconds")
    planned = _number(metadata, "max_samples")
    if duration is None and planned is not None and window_s is not None:
        duration = planned * window_s
    flags: dict[str, Any] = {}
    if isinstance((metadata or {}).get("cache_miss_counted"), bool):
        flags["COUNT_CACHE_MISS_AS_FALLBACK"] = metadata["cache_miss_counted"]  # type: ignore[index]
    return {
        "ordinal": 1,
        "rate": _number(metadata, "rate"),
        "concurrency": None if concurrency is None else int(concurrency),
        "planned_duration_s": duration,
        "samples": samples,
        "interval_s": window_s,
        "observe": True,
        "flags": flags,
    }


def _environment(
    csv_path: Path, meta_path: Path | None, table: LegacyTable, imported_at: float
) -> dict[str, Any]:
    return {
        "imported_from": str(csv_path),
        "metadata_path": None if meta_path is None else str(meta_path),
        "legacy_header": table.header,
        "legacy_columns": len(table.header),
        "imported_at": imported_at,
        # The 2025 service still exported metasheet_http_adapter_ops_total and two more
        # families (the metasheet profile now says they do not exist): its columns keep the
        # meaning they had, read against the profile of that service.
        "metrics_profile": LEGACY_PROFILE,
    }


def _warning_events(table: LegacyTable, warnings: list[str]) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    for message in warnings:
        data: dict[str, Any] = {}
        for name in table.unknown_columns:
            if message.startswith(f"unknown column {name!r}"):
                data = {
                    "column": name,
                    "values": table.unknown_values[name],
                    "lines": table.line_numbers,
                }
        events.append((message, data))
    return events


def _write_side_files(run_dir: Path, csv_path: Path, redacted: dict[str, Any] | None) -> None:
    shutil.copyfile(csv_path, run_dir / "legacy-metrics.csv")
    if redacted is not None:
        (run_dir / "metadata.json").write_text(
            json.dumps(redacted, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    with RunReader(run_dir) as reader:
        export_csv(reader, run_dir / "metrics.csv")
