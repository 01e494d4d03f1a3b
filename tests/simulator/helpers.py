"""Helpers for the target tests: tokens, an in-process client, exposition parsing."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator import MetasheetApp, TargetConfig, create_app

T = TypeVar("T")


def fake_token() -> str:
    return "eyJ" + secrets.token_urlsafe(24)


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingSleep:
    """Records every simulated wait and yields to the loop without waiting."""

    def __init__(self) -> None:
        self.waits_s: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits_s.append(seconds)
        await asyncio.sleep(0)


def make_app(
    embedded: EmbeddedSpec | None = None, *, bearer: str | None = None,
    admin_token: str | None = None, clock: FakeClock | None = None,
    sleep: RecordingSleep | None = None,
) -> MetasheetApp:
    config = TargetConfig(embedded=embedded or EmbeddedSpec(), bearer=bearer, admin_token=admin_token)
    return create_app(config, clock=clock or FakeClock(), sleep=sleep or RecordingSleep())


def with_client(app: MetasheetApp, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Run ``body(client)`` against the app in-process (no sockets)."""

    async def main() -> T:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://target.test") as client:
            return await body(client)

    return asyncio.run(main())


def families(text: str) -> dict[str, Metric]:
    """Parsed exposition keyed by the exposed family name (counters end in _total)."""
    parsed = {}
    for family in text_string_to_metric_families(text):
        name = f"{family.name}_total" if family.type == "counter" else family.name
        parsed[name] = family
    return parsed


def total(parsed: dict[str, Metric], name: str, sample_suffix: str = "", **labels: str) -> float:
    """Sum of the samples of a family (``_total`` for counters) whose labels match."""
    family = parsed[name]
    wanted = name if family.type == "counter" else name + sample_suffix
    return sum(
        sample.value
        for sample in family.samples
        if sample.name == wanted and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def metrics_of(app: MetasheetApp) -> dict[str, Metric]:
    return families(app.metrics.exposition().decode())


def get_many(paths: list[str], headers: dict[str, str] | None = None) -> Callable[[httpx.AsyncClient], Awaitable[list[httpx.Response]]]:
    async def body(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get(path, headers=headers) for path in paths]

    return body
