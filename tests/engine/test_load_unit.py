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


def _run(load: PhaseLoad, *, drop_after_s: float | None = None) -> None:
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
    # A busy host may not send all 100 within the phase's 0.5 s, and what still waits at the
    # phase's end is dropped by design: let them wait (the end bound is not under test here).
    _run(load, drop_after_s=600.0)
    assert sorted(row["seq"] for row in sink.rows) == list(range(100))
    sent = [row for row in sink.rows if row["outcome"] != "dropped"]
    assert len(seen) == len(sent) == 100
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
    _run(load, drop_after_s=600.0)  # a busy host's late sends are not dropped: not under test
    pairs = {(row["request_name"], row["outcome"]) for row in sink.rows}
    assert pairs == {("ok", "connect_error"), ("missing", "timeout"), ("post", "http_5xx")}
    assert all(row["status"] is None for row in sink.rows if row["outcome"] != "http_5xx")
    messages = {row["outcome"]: row["error"] for row in sink.rows}
    assert messages == {"connect_error": "ConnectError: refused",
                        "timeout": "no complete answer within 5 s: ReadTimeout: slow", "http_5xx": None}


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


def test_oldest_outstanding_follows_requests_finishing_out_of_order() -> None:
    # The oldest unfinished request decides when a sample window may close; it is kept in
    # hand-out order (no min() over everything in flight), so check it against the truth
    # while ten in-flight requests finish in a shuffled order.
    import random

    from phase5site.engine.transport import SendResult

    class Held:
        def __init__(self) -> None:
            self.waiting: list[asyncio.Future] = []  # in the order the slots sent them

        async def send(self, request):  # noqa: ANN001, ANN202
            future = asyncio.get_running_loop().create_future()
            self.waiting.append(future)
            return await future

        async def aclose(self) -> None:
            return None

    held = Held()
    sink = ListSink()
    load = PhaseLoad(phase="p", rate=1000, concurrency=10, duration_s=0.01, mix=_mix(),
                     transport_factory=lambda: held, sink_provider=lambda: sink,
                     axis=WallAxis(offset_s=0.0))
    seen: list[tuple[float | None, float | None]] = []

    async def go() -> None:
        start = time.monotonic()  # nothing is dropped at the end (a busy host may be late)
        task = asyncio.create_task(load.run(start, start + 600.0))
        while len(held.waiting) < 10:
            await asyncio.sleep(0.001)
        assert load.pacer is not None and load.pacer.done
        remaining = set(range(10))
        for k in random.Random(7).sample(range(10), 10):
            held.waiting[k].set_result(SendResult(status=200, bytes=2))
            remaining.discard(k)
            while load.stats.completed < 10 - len(remaining):
                await asyncio.sleep(0)
            truth = load.pacer.intended_at(min(remaining)) if remaining else None
            seen.append((load.oldest_outstanding(), truth))
        await task

    asyncio.run(go())
    assert sorted(row["seq"] for row in sink.rows) == list(range(10))  # k-th send is seq k
    assert [got for got, _ in seen] == [truth for _, truth in seen]
    assert seen[-1] == (None, None) and len({truth for _, truth in seen}) > 2
    assert not load._handed_out, "finished requests leave the hand-out order"


def test_the_clients_own_pre_send_work_is_send_lag_not_service_time() -> None:
    # A heavy client (httpx) works on a request before it leaves; that time is the
    # generator's, so the row's send time moves by the pre-send time the transport reports.
    from phase5site.engine.transport import SendResult

    class Heavy:
        async def send(self, request):  # noqa: ANN001, ANN202
            await asyncio.sleep(0.3)
            return SendResult(status=200, bytes=2, pre_send_s=0.2)

        async def aclose(self) -> None:
            return None

    sink = ListSink()
    load = PhaseLoad(phase="p", rate=10, concurrency=2, duration_s=0.2, mix=_mix(),
                     transport_factory=Heavy, sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0))
    _run(load, drop_after_s=600.0)
    assert len(sink.rows) == 2
    for row in sink.rows:
        assert row["sent_at"] - row["intended_at"] >= 0.2
        assert row["latency_ms"] - row["service_ms"] >= 200.0 - 1e-6
        assert row["service_ms"] >= 0


def test_httpx_transport_reports_its_pre_send_time() -> None:
    from phase5site.engine.mix import PreparedRequest
    from phase5site.engine.transport import HttpxTransport

    transport = HttpxTransport(timeout_s=5.0, httpx_transport=httpx.MockTransport(
        lambda request: httpx.Response(200, text="ok")))

    async def go():  # noqa: ANN202
        try:
            return await transport.send(PreparedRequest("ok", "GET", "http://svc.test/ok", (), None))
        finally:
            await transport.aclose()

    result = asyncio.run(go())
    assert (result.status, result.bytes) == (200, 2)
    assert result.pre_send_s is not None and result.pre_send_s >= 0.0


def test_a_stored_error_message_is_one_redacted_bounded_line() -> None:
    # What a client says may carry the token (a URL, a header echoed back): the row keeps the
    # first line, the run's secrets as ***, no URL query, at most MAX_ERROR_CHARS characters.
    from phase5site.engine.outcome import MAX_ERROR_CHARS
    from phase5site.engine.transport import SendResult

    token = fake_token()
    raw = (f"refused by http://svc.test/ok?sig={token}&x=1 for 'Bearer {token}' " + "x" * 300
           + "\nTraceback (most recent call last): ...")

    class Failing:
        async def send(self, request):  # noqa: ANN001, ANN202
            return SendResult(status=None, bytes=None, error="connect_error", message=raw, bytes_sent=0)

        async def aclose(self) -> None:
            return None

    sink = ListSink()
    load = PhaseLoad(phase="p", rate=100, concurrency=2, duration_s=0.1, mix=_mix(),
                     transport_factory=Failing, sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0),
                     secrets=frozenset({token}))
    _run(load, drop_after_s=600.0)
    assert len(sink.rows) == 10
    (stored,) = {row["error"] for row in sink.rows}
    assert stored.startswith("refused by http://svc.test/ok?… for 'Bearer ***' xxx")
    assert len(stored) == MAX_ERROR_CHARS and stored.endswith("…") and token not in stored
    assert "Traceback" not in stored and {row["bytes_sent"] for row in sink.rows} == {0}


def test_an_unexpected_client_error_is_a_connect_error_with_its_message() -> None:
    class Broken:
        async def send(self, request):  # noqa: ANN001, ANN202
            raise RuntimeError("the client broke")

        async def aclose(self) -> None:
            return None

    sink = ListSink()
    load = PhaseLoad(phase="p", rate=100, concurrency=1, duration_s=0.05, mix=_mix(),
                     transport_factory=Broken, sink_provider=lambda: sink, axis=WallAxis(offset_s=0.0))
    _run(load, drop_after_s=600.0)
    assert [(r["outcome"], r["error"], r["bytes_sent"]) for r in sink.rows] == [
        ("connect_error", "unexpected client error: RuntimeError: the client broke", None)] * 5
