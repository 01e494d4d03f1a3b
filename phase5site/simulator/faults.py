"""Fault switches of the embedded target: a schedule on an injected clock, and the
arithmetic that turns active faults into what a request or the memory ballast must do.

A fault is active on the half-open interval ``[start, start + duration)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from phase5site.errors import UsageError
from phase5site.runspec.durations import parse_duration
from phase5site.runspec.models import FaultSpec

# Safety cap for memory_growth: the machine is shared, a typo must not eat it all.
MEMORY_GROWTH_CAP_MB = 1024.0
_PARAM_OF_KIND = {"error_burst": "share", "latency_stall": "delay_ms", "memory_growth": "mb_per_s"}


@dataclass(frozen=True)
class ScheduledFault:
    """A fault placed on the target's clock (monotonic seconds)."""

    spec: FaultSpec
    starts_at: float

    @property
    def ends_at(self) -> float:
        return self.starts_at + self.spec.duration

    def active_at(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at


def schedule(faults: Iterable[FaultSpec], origin: float) -> list[ScheduledFault]:
    """Place faults whose ``at`` is an offset from ``origin``.

    >>> [f.starts_at for f in schedule([FaultSpec(kind="outage", at=5, duration=2)], 100.0)]
    [105.0]
    """
    return [ScheduledFault(spec=fault, starts_at=origin + fault.at) for fault in faults]


def error_share(faults: Iterable[ScheduledFault], now: float) -> float:
    """Share of requests answered 503 at ``now``: overlapping bursts act independently.

    A request escapes every burst with probability prod(1 - share_i), so two bursts of
    0.5 give 1 - 0.5 * 0.5 = 0.75.
    """
    escape = 1.0
    for fault in faults:
        if fault.spec.kind == "error_burst" and fault.active_at(now):
            escape *= 1.0 - fault.spec.share
    return 1.0 - escape


def stall_ms(faults: Iterable[ScheduledFault], now: float) -> float:
    """Extra wait per request at ``now``: the delays of active stalls add up (300 + 200 = 500)."""
    return sum(
        fault.spec.delay_ms
        for fault in faults
        if fault.spec.kind == "latency_stall" and fault.active_at(now)
    )


def outage_active(faults: Iterable[ScheduledFault], now: float) -> bool:
    return any(fault.spec.kind == "outage" and fault.active_at(now) for fault in faults)


def memory_target_mb(faults: Iterable[ScheduledFault], now: float) -> float:
    """Ballast the target should hold at ``now``, capped at MEMORY_GROWTH_CAP_MB.

    An active growth at 10 MB/s that started 2.5 s ago wants 25 MB. The ballast is
    released when the fault ends, as a leak is after a restart.
    """
    total_mb = sum(
        fault.spec.mb_per_s * (now - fault.starts_at)
        for fault in faults
        if fault.spec.kind == "memory_growth" and fault.active_at(now)
    )
    return min(total_mb, MEMORY_GROWTH_CAP_MB)


class FaultBoard:
    """The faults of one target, replaced as a whole; reads are against the injected clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._faults: list[ScheduledFault] = []

    def replace(self, faults: Iterable[FaultSpec]) -> None:
        """Put ``faults`` in place of all current ones, offsets counted from now."""
        self._faults = schedule(faults, self._clock())

    @property
    def faults(self) -> list[ScheduledFault]:
        return list(self._faults)

    def error_share(self) -> float:
        return error_share(self._faults, self._clock())

    def stall_ms(self) -> float:
        return stall_ms(self._faults, self._clock())

    def outage_active(self) -> bool:
        return outage_active(self._faults, self._clock())

    def memory_target_mb(self) -> float:
        return memory_target_mb(self._faults, self._clock())

    def describe(self) -> list[dict[str, object]]:
        """JSON-able state: each fault with seconds until start and end (negative = past)."""
        now = self._clock()
        return [
            {
                **fault.spec.model_dump(mode="json"),
                "starts_in_s": round(fault.starts_at - now, 3),
                "ends_in_s": round(fault.ends_at - now, 3),
                "active": fault.active_at(now),
            }
            for fault in self._faults
        ]


class MemoryBallast:
    """Really allocated memory, grown or released towards a target size in MiB."""

    CHUNK_BYTES = 1 << 20

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    @property
    def held_mb(self) -> int:
        return len(self._chunks)

    def adjust(self, target_mb: float) -> None:
        wanted = int(target_mb)
        if wanted <= 0:
            self._chunks.clear()
            return
        while len(self._chunks) < wanted:
            # A non-zero fill touches every page, so the memory is resident, not just mapped.
            self._chunks.append(b"\x5a" * self.CHUNK_BYTES)
        del self._chunks[wanted:]


def parse_fault_option(text: str) -> FaultSpec:
    """Parse ``KIND:AT:DURATION[:PARAM]`` as the CLI's ``--fault`` takes it.

    PARAM is the share for error_burst, delay_ms for latency_stall and mb_per_s for
    memory_growth; outage takes none.

    >>> parse_fault_option("error_burst:10s:5s:0.3").share
    0.3
    """
    parts = text.split(":")
    usage = "expected KIND:AT:DURATION[:PARAM], e.g. error_burst:10s:5s:0.3 or outage:30s:5s"
    if len(parts) not in (3, 4):
        raise UsageError(f"--fault {text!r}: {usage}")
    kind, at_text, duration_text = parts[:3]
    values: dict[str, object] = {"kind": kind}
    try:
        values["at"] = parse_duration(at_text)
        values["duration"] = parse_duration(duration_text)
    except ValueError as error:
        raise UsageError(f"--fault {text!r}: {error}", hint=usage) from error
    if len(parts) == 4:
        param = _PARAM_OF_KIND.get(kind)
        if param is None:
            raise UsageError(f"--fault {text!r}: {kind!r} takes no PARAM", hint=usage)
        values[param] = parts[3]
    try:
        return FaultSpec.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise UsageError(f"--fault {text!r}: {problems}", hint=usage) from error
