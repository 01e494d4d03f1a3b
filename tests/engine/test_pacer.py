"""Pacer exactness with a fake clock: absolute schedule, late wake-ups, no drift."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase5site.engine.pacer import Pacer, backlog_capacity, planned_sends


@pytest.mark.parametrize(
    ("rate", "window_s", "expected"),
    [(80, 10, 800), (1, 1, 1), (3, 0.5, 2), (0.5, 5, 3), (0.1, 30, 3), (2000, 10, 20000)],
)
def test_planned_sends(rate: float, window_s: float, expected: int) -> None:
    assert planned_sends(rate, window_s) == expected


def test_every_tick_wakeup_hands_out_each_request_once_at_its_intended_time() -> None:
    pacer = Pacer(rate=80, start_s=50.0, duration_s=10.0)
    handed: list[int] = []
    now = 50.0
    while not pacer.done:
        handed.extend(pacer.due(now))
        next_at = pacer.next_due_at()
        now = next_at if next_at is not None else now
    assert handed == list(range(800))
    assert pacer.intended_at(799) == pytest.approx(50.0 + 799 / 80)


def test_late_wakeup_issues_all_due_sends_together_and_later_ones_keep_the_schedule() -> None:
    pacer = Pacer(rate=10, start_s=0.0, duration_s=2.0)
    assert list(pacer.due(0.0)) == [0]
    # The loop oversleeps by 0.55 s: requests 1..5 are all due and are issued at once.
    assert list(pacer.due(0.55)) == [1, 2, 3, 4, 5]
    # The next request is still intended at 0.6 exactly: nothing drifted.
    assert pacer.next_due_at() == pytest.approx(0.6)
    assert list(pacer.due(0.6)) == [6]


def test_wakeup_before_start_hands_out_nothing() -> None:
    pacer = Pacer(rate=10, start_s=5.0, duration_s=1.0)
    assert list(pacer.due(4.99)) == []
    assert pacer.next_due_at() == 5.0


def test_no_request_is_intended_at_or_after_the_phase_end() -> None:
    pacer = Pacer(rate=4, start_s=0.0, duration_s=1.0)
    assert list(pacer.due(10.0)) == [0, 1, 2, 3]
    assert pacer.done and pacer.next_due_at() is None


@given(
    rate=st.floats(min_value=0.2, max_value=5000),
    duration_s=st.floats(min_value=0.1, max_value=60),
    wakeups=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=50),
)
def test_random_wakeups_never_lose_duplicate_or_anticipate_a_send(
    rate: float, duration_s: float, wakeups: list[float]
) -> None:
    pacer = Pacer(rate=rate, start_s=100.0, duration_s=duration_s)
    handed: list[int] = []
    now = 100.0
    for step in wakeups:
        now += step * duration_s / 10
        for index in pacer.due(now):
            assert pacer.intended_at(index) <= now + 1e-9
            handed.append(index)
    handed.extend(pacer.due(100.0 + duration_s + 1))
    assert handed == list(range(planned_sends(rate, duration_s)))
    assert all(pacer.intended_at(i) < 100.0 + duration_s for i in handed)


def test_backlog_is_thirty_seconds_of_sends_or_ten_thousand() -> None:
    assert backlog_capacity(80) == 10_000
    assert backlog_capacity(2000) == 60_000
    assert backlog_capacity(80, max_backlog=25) == 25
    assert backlog_capacity(80, max_backlog=0) == 1


@given(rate=st.floats(min_value=0.5, max_value=5000), duration_s=st.floats(min_value=0.01, max_value=30),
       workers=st.integers(min_value=1, max_value=9),
       wakeups=st.lists(st.floats(min_value=0, max_value=40), max_size=30))
def test_segments_of_the_workers_are_exactly_the_single_process_schedule(
        rate: float, duration_s: float, workers: int, wakeups: list[float]) -> None:
    """The union of the workers' indices is the single schedule's, each once, same instants,
    however each worker's loop happens to wake up."""
    single = Pacer(rate=rate, start_s=100.0, duration_s=duration_s)
    expected = list(single.due(1e9))
    handed: list[tuple[int, float]] = []
    for offset in range(workers):
        segment = Pacer(rate=rate, start_s=100.0, duration_s=duration_s, offset=offset, stride=workers)
        got: list[int] = []
        for now in sorted(wakeups) + [1e9]:
            got += list(segment.due(100.0 + now))
        assert all(i % workers == offset for i in got)
        assert len(got) == segment.total
        handed += [(i, segment.intended_at(i)) for i in got]
    assert sorted(handed) == [(i, single.intended_at(i)) for i in expected]


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        Pacer(rate=0, start_s=0, duration_s=1)
