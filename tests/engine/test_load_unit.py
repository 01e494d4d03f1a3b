"""The phase load with an injected httpx.MockTransport: rows, mix, drops, in-flight bound."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx

from phase5site.engine.clock import WallAxis
from phase5site.engine.load import PhaseLoad
from phase5site.engine.mix import RequestMix, prepare
from phase5site.engine.outcome import classify
from phase5site.engine.transport import httpx_factory
from phase5site.runspec.models import RequestSpec
from .helpers import ListSink, fake_token


def _mix(bearer: str | None = None) -> RequestMix:
    specs = [
        RequestSpec(name="ok", path="/ok", weight=1),
        RequestSpec(name="missing", path="/missing", weight=1),
        RequestSpec(name="post", method="POST", path="/post", weight=1, json={"a": 1},
                    headers={"X-Test": "yes"}),
    ]
    return RequestMix(prepare(specs, base_url="http://svc.test", bearer=bearer), [1, 1, 1], seed=3)


def _run(load: PhaseLoad, drop_after_s: float | None = None) -> None:
    """Run the phase now; ``drop_after_s`` moves the end-of-phase drop deadline (a busy
    machine sends late, and a test about rows must not turn into one about drops)."""
    async def go() -> None:
        start = time.monotonic()
        await load.run(start, None if drop_after_s is None else start + drop_after_s)

    asyncio.run(go())


def test_every_intended_request_gets_one_row_with_outcome_and_times() -> None:
    token = fake_token()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404 if request.url.path == "/missing" else 200, text="hello")

    sink = ListSink()
    load = PhaseLoad(
        phase="p", rate=200, concurrency=4, duration_s=0.5, mix=_mix(token),
        transport_factory=httpx_factory(5.0, httpx.MockTransport(handler)),
        sink_provider=lambda: sink, axis=WallAxis(offset_s=1000.0),
    )
    _run(load, drop_after_s=120.0)
    assert sorted(row["seq"] for row in sink.rows) == list(range(100))
    # A request still waiting for a slot at the phase end is dropped, not sent (a busy
    # machine can leave a few): every other row reached the transport exactly once.
    sent = [row for row in sink.rows if row["outcome"] != "dropped"]
    assert len(seen) == len(sent) and len(sent) >= 50
    assert all(r.headers["authorization"] == f"Bearer {token}" for r in seen)
    posts = [r for r in seen if r.method == "POST"]
    assert posts and all(r.content == b'{"a":1}' and r.headers["x-test"] == "yes" for r in posts)
    by_name = Counter((row["request_name"], row["outcome"]) for row in sink.rows)
    assert set(by_name) - {(name, "dropped") for name in ("ok", "missing", "post")} == {
        ("ok", "ok"), ("missing", "http_4xx"), ("post", "ok")}
    for row in sent:
        assert row["latency_ms"] >= row["service_ms"] >= 0
        assert row["sent_at"] >= row["intended_at"]
        assert row["bytes"] == 5
    # Request seq is intended at t0 + seq/rate, on the wall axis (monotonic + offset).
    t0 = min(row["intended_at"] for row in sink.rows)
    assert all(abs(row["intended_at"] - (t0 + row["seq"] / 200)) < 1e-6 for row in sink.rows)
    assert t0 > 1000.0
    intended = sorted(row["intended_at"] for row in sink.rows)
    # Absolute schedule: consecutive intended times are exactly 1/rate apart.
    assert all(abs((b - a) - 0.005) < 1e-9 for a, b in zip(intended, intended[1:]))


def test_a_full_backlog_drops_and_records_instead_of_stalling() -> None:
    in_flight = 0
    most_in_flight = 0

    class SlowTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, most_in_flight
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
            return httpx.Response(200)

    sink = ListSink()
    load = PhaseLoad(
        phase="p", rate=40, concurrency=1, duration_s=2.5, mix=_mix(),
        transport_factory=httpx_factory(5.0, SlowTransport()),
        sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0),
    )
    _run(load)
    outcomes = Counter(row["outcome"] for row in sink.rows)
    assert len(sink.rows) == 100  # every intended request has exactly one row
    assert most_in_flight == 1
    # Not sent by the end of the phase's time: dropped, with the wait so far as a censored
    # latency (the real one is at least that), never silently left out.
    assert outcomes["dropped"] == load.stats.dropped == load.stats.dropped_at_end > 0
    dropped = [row for row in sink.rows if row["outcome"] == "dropped"]
    assert all(row["sent_at"] is None and row["slot_free"] is False for row in dropped)
    end_wall = max(row["intended_at"] for row in sink.rows)
    assert all(row["latency_ms"] >= 0 and row["intended_at"] + row["latency_ms"] / 1000 >= end_wall - 0.05
               for row in dropped)  # each waited until (about) the phase's end
    # Sent ones waited for the single slot: latency includes the wait, service does not.
    sent = [row for row in sink.rows if row["outcome"] == "ok"]
    assert max(row["latency_ms"] - row["service_ms"] for row in sent) > 500


def test_beyond_max_backlog_a_due_request_is_dropped_at_once() -> None:
    class SlowTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.2)
            return httpx.Response(200)

    sink = ListSink()
    load = PhaseLoad(
        phase="p", rate=50, concurrency=1, duration_s=1.0, mix=_mix(),
        transport_factory=httpx_factory(5.0, SlowTransport()),
        sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0), max_backlog=3,
    )
    _run(load)
    assert len(sink.rows) == 50
    backlog_drops = load.stats.dropped - load.stats.dropped_at_end
    assert backlog_drops > 0  # 50 due in 1 s, one slot at 5/s, room for 3 waiting
    assert load.stats.dropped_at_end <= 3
    assert Counter(row["outcome"] for row in sink.rows)["dropped"] == load.stats.dropped


def test_slot_free_is_recorded_per_request() -> None:
    class SlowTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.3)
            return httpx.Response(200)

    sink = ListSink()
    load = PhaseLoad(
        phase="p", rate=20, concurrency=1, duration_s=0.5, mix=_mix(),
        transport_factory=httpx_factory(5.0, SlowTransport()),
        sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0),
    )
    _run(load)
    by_seq = {row["seq"]: row for row in sink.rows}
    assert by_seq[0]["slot_free"] is True  # the only slot was idle when request 0 fell due
    assert by_seq[1]["slot_free"] is False  # 50 ms later request 0 still held it
    assert {row["worker"] for row in sink.rows} == {0}


def test_transport_errors_are_classified() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ok":
            raise httpx.ConnectError("refused", request=request)
        if request.url.path == "/missing":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(503)

    sink = ListSink()
    load = PhaseLoad(
        phase="p", rate=100, concurrency=2, duration_s=0.3, mix=_mix(),
        transport_factory=httpx_factory(5.0, httpx.MockTransport(handler)),
        sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0),
    )
    _run(load, drop_after_s=120.0)
    pairs = {(row["request_name"], row["outcome"]) for row in sink.rows}
    assert pairs == {("ok", "connect_error"), ("missing", "timeout"), ("post", "http_5xx")}
    assert all(row["status"] is None for row in sink.rows if row["outcome"] != "http_5xx")


def test_classify_table() -> None:
    assert [classify(s, None) for s in (200, 204, 301, 399, 400, 404, 499, 500, 503)] == [
        "ok", "ok", "ok", "ok", "http_4xx", "http_4xx", "http_4xx", "http_5xx", "http_5xx"]
    assert classify(None, "timeout") == "timeout"
    assert classify(101, None) == "connect_error"


def test_a_stop_accounts_for_every_request_handed_out() -> None:
    # Cancelled mid-phase behind a slow service: each request the pacer handed out is a row,
    # cancelled in flight, or cancelled while queued for a slot -- none vanishes uncounted.
    class SlowTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0.3)
            return httpx.Response(200)

    sink = ListSink()
    load = PhaseLoad(
        phase="p", rate=50, concurrency=2, duration_s=10, mix=_mix(),
        transport_factory=httpx_factory(5.0, SlowTransport()),
        sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0),
    )

    async def go() -> None:
        task = asyncio.create_task(load.run(time.monotonic()))
        await asyncio.sleep(1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())
    assert load.pacer is not None
    handed_out = load.pacer.next_index
    assert load.stats.cancelled == 2 and load.stats.cancelled_queued > 0
    assert len(sink.rows) + load.stats.cancelled + load.stats.cancelled_queued == handed_out
