"""The weighted request mix: which request of the spec each send uses.

Request ``seq`` of a phase uses the entry picked by a counter-based generator (SplitMix64 of
the phase's seed and ``seq``): the choice is a pure function of the request's place in the
schedule, so load workers that each pace a segment of it draw exactly what one process
would, and a rerun draws the same sequence. The seed is stored in metadata.json. Each entry
is prepared once (URL, headers, encoded JSON body) so that a send does no per-request
encoding work.
"""

from __future__ import annotations

import bisect
import itertools
import json
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # load workers import this module; they need no pydantic
    from phase5site.runspec.models import RequestSpec

_MASK64 = (1 << 64) - 1


def splitmix64(value: int) -> int:
    """SplitMix64 (Steele, Lea & Flood 2014): a well-mixed 64-bit value of any counter.

    >>> splitmix64(0), splitmix64(1) != splitmix64(2)
    (16294208416658607535, True)
    """
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


@dataclass(frozen=True)
class PreparedRequest:
    """One entry of the mix, ready to send."""

    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    expect: tuple[int, ...] = ()  # statuses that are this request's correct answer (outcome ok)


def prepare(
    requests: list["RequestSpec"], *, base_url: str, bearer: str | None
) -> list[PreparedRequest]:
    """Build URL, headers and body of each request entry once."""
    prepared = []
    for request in requests:
        headers: dict[str, str] = {}
        if bearer and request.auth == "bearer":
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
                expect=tuple(request.expect_status),
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
    """Picks the entry of request ``seq``, in proportion to the weights.

    >>> from phase5site.runspec.models import RequestSpec
    >>> specs = [RequestSpec(name="a", path="/a", weight=1), RequestSpec(name="b", path="/b", weight=3)]
    >>> mix = RequestMix(prepare(specs, base_url="http://x", bearer=None), [1, 3], seed=7)
    >>> draws = [mix.entry(seq).name for seq in range(4000)]
    >>> 0.7 < draws.count("b") / 4000 < 0.8
    True
    >>> mix.entry(123) is mix.entry(123)     # a pure function of seq
    True
    """

    def __init__(self, entries: list[PreparedRequest], weights: list[float], *, seed: int) -> None:
        if len(entries) != len(weights) or not entries:
            raise ValueError("the mix needs one weight per entry and at least one entry")
        self.entries = entries
        self.weights = list(weights)
        self.seed = seed
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]
        self._key = (seed & 0xFFFFFFFF) << 32

    def entry(self, seq: int) -> PreparedRequest:
        if len(self.entries) == 1:
            return self.entries[0]
        point = splitmix64(self._key + seq) / 2.0**64 * self._total
        return self.entries[min(bisect.bisect_right(self._cumulative, point), len(self.entries) - 1)]
