"""The weighted request mix: which request of the spec each send uses.

A seeded ``random.Random`` makes the sequence of a run reproducible; the seed is stored in
metadata.json. Each entry is prepared once (URL, headers, encoded JSON body) so that a send
does no per-request encoding work.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import zlib
from dataclasses import dataclass

from phase5site.runspec.models import RequestSpec


@dataclass(frozen=True)
class PreparedRequest:
    """One entry of the mix, ready to send."""

    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


def prepare(
    requests: list[RequestSpec], *, base_url: str, bearer: str | None
) -> list[PreparedRequest]:
    """Build URL, headers and body of each request entry once."""
    prepared = []
    for request in requests:
        headers: dict[str, str] = {}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        headers.update(request.headers)
        body = None
        if request.json_body is not None:
            body = json.dumps(request.json_body, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        prepared.append(
            PreparedRequest(
                name=request.name,
                method=request.method,
                url=base_url.rstrip("/") + request.path,
                headers=tuple(headers.items()),
                body=body,
            )
        )
    return prepared


def mix_seed(run_name: str, phase_name: str) -> int:
    """A stable seed per run name and phase (CRC-32), so reruns draw the same sequence.

    >>> mix_seed("demo", "baseline") == mix_seed("demo", "baseline")
    True
    """
    return zlib.crc32(f"{run_name}/{phase_name}".encode())


class RequestMix:
    """Draws entries in proportion to their weights.

    >>> from phase5site.runspec.models import RequestSpec
    >>> specs = [RequestSpec(name="a", path="/a", weight=1), RequestSpec(name="b", path="/b", weight=3)]
    >>> mix = RequestMix(prepare(specs, base_url="http://x", bearer=None), [1, 3], seed=7)
    >>> draws = [mix.draw().name for _ in range(4000)]
    >>> 0.7 < draws.count("b") / 4000 < 0.8
    True
    """

    def __init__(self, entries: list[PreparedRequest], weights: list[float], *, seed: int) -> None:
        if len(entries) != len(weights) or not entries:
            raise ValueError("the mix needs one weight per entry and at least one entry")
        self.entries = entries
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]
        self._random = random.Random(seed)

    def draw(self) -> PreparedRequest:
        if len(self.entries) == 1:
            return self.entries[0]
        point = self._random.random() * self._total
        return self.entries[bisect.bisect_right(self._cumulative, point)]
