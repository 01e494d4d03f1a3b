"""Fault arithmetic (pure), the fault board on a fake clock, and fault effects in-process."""

from __future__ import annotations

import pytest

from phase5site.errors import UsageError
from phase5site.runspec.models import EmbeddedSpec, FaultSpec
from phase5site.simulator.faults import (
    MEMORY_GROWTH_CAP_MB,
    FaultBoard,
    MemoryBallast,
    error_share,
    memory_target_mb,
    outage_active,
    parse_fault_option,
    schedule,
    stall_ms,
)

from .helpers import (
    FakeClock,
    RecordingSleep,
    get_many,
    make_app,
    metrics_of,
    total,
    with_client,
)


def _fault(kind: str, at: float, duration: float, **params: float) -> FaultSpec:
    return FaultSpec(kind=kind, at=at, duration=duration, **params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("now", "expected"),
    [(99.9, 0.0), (100.0, 0.5), (101.0, 0.75), (102.0, 0.5), (103.0, 0.0)],
)
def test_error_share_combines_overlapping_bursts(now: float, expected: float) -> None:
    faults = schedule([_fault("error_burst", 0, 3, share=0.5), _fault("error_burst", 1, 1, share=0.5)], 100.0)
    assert error_share(faults, now) == pytest.approx(expected)


def test_stall_outage_and_memory_are_active_on_half_open_intervals() -> None:
    faults = schedule(
        [_fault("latency_stall", 1, 2, delay_ms=300), _fault("latency_stall", 2, 2, delay_ms=200),
         _fault("outage", 5, 1), _fault("memory_growth", 10, 4, mb_per_s=20)],
        0.0,
    )
    assert [stall_ms(faults, t) for t in (0.5, 1.0, 2.5, 3.0, 4.0)] == [0, 300, 500, 200, 0]
    assert [outage_active(faults, t) for t in (4.99, 5.0, 5.99, 6.0)] == [False, True, True, False]
    assert [memory_target_mb(faults, t) for t in (9.0, 10.0, 12.5, 14.0)] == [0, 0, 50.0, 0]


def test_memory_target_is_capped() -> None:
    faults = schedule([_fault("memory_growth", 0, 1000, mb_per_s=100)], 0.0)
    assert memory_target_mb(faults, 500.0) == MEMORY_GROWTH_CAP_MB


def test_fault_board_replaces_everything_with_offsets_from_now() -> None:
    clock = FakeClock(50.0)
    board = FaultBoard(clock)
    board.replace([_fault("outage", 0, 10)])
    clock.advance(1)
    assert board.outage_active()
    board.replace([_fault("error_burst", 2, 1, share=1.0)])
    assert not board.outage_active()
    assert board.error_share() == 0.0
    clock.advance(2)
    assert board.error_share() == 1.0
    [described] = board.describe()
    assert (described["kind"], described["active"], described["ends_in_s"]) == ("error_burst", True, 1.0)


def test_memory_ballast_holds_and_releases_whole_mib() -> None:
    ballast = MemoryBallast()
    ballast.adjust(3.7)
    assert ballast.held_mb == 3
    ballast.adjust(1)
    assert ballast.held_mb == 1
    ballast.adjust(0)
    assert ballast.held_mb == 0


@pytest.mark.parametrize(
    ("text", "kind", "at", "duration", "param"),
    [
        ("error_burst:10s:5s:0.3", "error_burst", 10.0, 5.0, ("share", 0.3)),
        ("latency_stall:1m:2:250", "latency_stall", 60.0, 2.0, ("delay_ms", 250.0)),
        ("memory_growth:0:30s:5", "memory_growth", 0.0, 30.0, ("mb_per_s", 5.0)),
        ("outage:30s:5s", "outage", 30.0, 5.0, None),
    ],
)
def test_parse_fault_option(text: str, kind: str, at: float, duration: float,
                            param: tuple[str, float] | None) -> None:
    fault = parse_fault_option(text)
    assert (fault.kind, fault.at, fault.duration) == (kind, at, duration)
    if param:
        assert getattr(fault, param[0]) == param[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("outage:5s", "expected KIND:AT:DURATION[:PARAM]"),
        ("outage:5s:1s:3", "'outage' takes no PARAM"),
        ("flood:1:1", "kind: Input should be"),
        ("error_burst:1:1:1.5", "share: Input should be less than or equal to 1"),
        ("error_burst:soon:1", "must be a duration"),
        ("latency_stall:1:1:-5", "delay_ms: Input should be greater than or equal to 0"),
    ],
)
def test_parse_fault_option_errors_name_the_value(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_fault_option(text)
    assert repr(text) in str(caught.value)
    assert message in str(caught.value)


def test_error_burst_answers_its_share_with_503_and_ends_on_time() -> None:
    clock = FakeClock()
    app = make_app(EmbeddedSpec(seed=4, faults=[_fault("error_burst", 10, 5, share=0.3)]), clock=clock)
    before = with_client(app, get_many(["/health"] * 200))
    clock.advance(10)
    during = with_client(app, get_many(["/health"] * 2000))
    clock.advance(5)
    after = with_client(app, get_many(["/health"] * 200))
    assert {r.status_code for r in before} == {r.status_code for r in after} == {200}
    share_503 = sum(r.status_code == 503 for r in during) / len(during)
    assert abs(share_503 - 0.3) < 0.05  # sd of 2000 Bernoulli(0.3) draws is 0.010
    parsed = metrics_of(app)
    assert total(parsed, "http_requests_total", status="503") == sum(r.status_code == 503 for r in during)
    assert total(parsed, "http_server_requests_seconds", "_count", route="/health", status="503") > 0


def test_latency_stall_makes_every_request_wait_the_delay() -> None:
    clock, sleep = FakeClock(), RecordingSleep()
    app = make_app(EmbeddedSpec(faults=[_fault("latency_stall", 1, 1, delay_ms=400)]), clock=clock, sleep=sleep)
    with_client(app, get_many(["/health"] * 5))
    assert 0.4 not in sleep.waits_s
    clock.advance(1)
    sleep.waits_s.clear()
    with_client(app, get_many(["/health", "/nope", "/api/v2/hello"]))
    assert sleep.waits_s.count(0.4) == 3


def test_memory_growth_target_follows_the_clock_in_the_app() -> None:
    clock = FakeClock()
    app = make_app(EmbeddedSpec(faults=[_fault("memory_growth", 0, 10, mb_per_s=8)]), clock=clock)
    clock.advance(2.5)
    assert app.faults.memory_target_mb() == 20.0
    clock.advance(10)
    assert app.faults.memory_target_mb() == 0.0
