"""A small client of the Prometheus HTTP API (``/api/v1/query``, ``/api/v1/metadata``).

Nothing here raises for a broken endpoint: every call returns an answer carrying either
data or an ``error`` text (HTTP status, timeout, connection refused, bad JSON, Prometheus
``status: error``), so the sampler can record NA with a reason and carry on. The raw body
of every answer is kept for raw-metrics.txt. The transport is injectable
(``httpx.MockTransport`` in unit tests).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx

Vector = list[tuple[dict[str, str], float]]


@dataclass(frozen=True)
class Answer:
    """One API answer: ``data`` (parsed JSON ``data``) or ``error``; ``raw`` for the record."""

    request: str
    data: Any = None
    error: str | None = None
    raw: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class QueryAnswer(Answer):
    vector: Vector = field(default_factory=list)


Matrix = list[tuple[dict[str, str], list[tuple[float, float]]]]


@dataclass(frozen=True)
class MatrixAnswer(Answer):
    """An instant query of a range selector (``x[T]``): each series' raw samples
    ``(timestamp, value)``, exactly as Prometheus stored them (nothing extrapolated)."""

    matrix: Matrix = field(default_factory=list)


def _describe_http_error(response: httpx.Response) -> str:
    try:
        body = response.json()
        detail = f": {body.get('errorType', '')} {body.get('error', '')}".rstrip()
    except (ValueError, AttributeError):
        detail = f": {response.text[:200]!r}" if response.text else ""
    return f"HTTP {response.status_code}{detail}"


def _float(text: Any) -> float:
    # Prometheus encodes sample values as strings, including "NaN", "+Inf", "-Inf".
    return float(text)


def parse_vector(data: Any) -> tuple[Vector, str | None]:
    """``data`` of an instant query → [(labels, value)], or an error for other shapes.

    >>> parse_vector({"resultType": "vector", "result": [{"metric": {"le": "0.1"}, "value": [1, "3"]}]})
    ([({'le': '0.1'}, 3.0)], None)
    >>> parse_vector({"resultType": "scalar", "result": [1, "NaN"]})[0][0][1]
    nan
    """
    try:
        kind = data["resultType"]
        if kind == "scalar":
            return [({}, _float(data["result"][1]))], None
        if kind != "vector":
            return [], f"expected an instant vector, got {kind}"
        return [(dict(item["metric"]), _float(item["value"][1])) for item in data["result"]], None
    except (KeyError, IndexError, TypeError, ValueError) as error:
        return [], f"unexpected answer shape ({error!r})"


def parse_matrix(data: Any) -> tuple[Matrix, str | None]:
    """``data`` of an instant query of a range selector → [(labels, [(ts, value)])].

    >>> parse_matrix({"resultType": "matrix", "result": [
    ...     {"metric": {"job": "api"}, "values": [[1000.5, "1"], [1001.5, "1"]]}]})
    ([({'job': 'api'}, [(1000.5, 1.0), (1001.5, 1.0)])], None)
    """
    try:
        if data["resultType"] != "matrix":
            return [], f"expected a range vector (matrix), got {data['resultType']}"
        return [(dict(item["metric"]), [(float(ts), _float(v)) for ts, v in item["values"]])
                for item in data["result"]], None
    except (KeyError, IndexError, TypeError, ValueError) as error:
        return [], f"unexpected answer shape ({error!r})"


class PrometheusClient:
    """Instant queries and metadata against ``base_url`` (e.g. ``http://127.0.0.1:9090``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout_s, transport=transport, headers=headers or {}
        )
        self.timeout_s = timeout_s

    async def _call(self, method: str, path: str, request: str, **kwargs: Any) -> Answer:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            return Answer(request, error=f"timeout after {self.timeout_s:g}s ({self.base_url})")
        except httpx.HTTPError as error:
            return Answer(request, error=f"Prometheus unreachable at {self.base_url}: {error!r}")
        raw = response.text
        if response.status_code != 200:
            return Answer(request, error=_describe_http_error(response), raw=raw)
        try:
            body = json.loads(raw)
        except ValueError:
            return Answer(request, error=f"answer is not JSON: {raw[:120]!r}", raw=raw)
        if not isinstance(body, dict) or body.get("status") != "success":
            detail = body.get("error", body) if isinstance(body, dict) else body
            return Answer(request, error=f"Prometheus status error: {detail}", raw=raw)
        return Answer(request, data=body.get("data"), raw=raw)

    async def _query(self, expr: str, at: float) -> tuple[str, Answer]:
        """POST /api/v1/query of ``expr`` at UTC epoch ``at`` (POST form: long expressions are
        fine), with the request's description for error text."""
        request = f"query time={at:.3f} expr={expr}"
        return request, await self._call("POST", "/api/v1/query", request, data={"query": expr, "time": f"{at:.3f}"})

    async def instant(self, expr: str, at: float) -> QueryAnswer:
        """Evaluate ``expr`` at UTC epoch ``at``."""
        request, answer = await self._query(expr, at)
        if not answer.ok:
            return QueryAnswer(request, error=answer.error, raw=answer.raw)
        vector, error = parse_vector(answer.data)
        return QueryAnswer(request, data=answer.data, error=error, raw=answer.raw, vector=vector)

    async def raw_samples(self, expr: str, at: float) -> MatrixAnswer:
        """Evaluate a range selector ``expr`` (``up{job="x"}[60000ms]``) at ``at``: the raw
        samples Prometheus holds in that range, with their own timestamps."""
        request, answer = await self._query(expr, at)
        if not answer.ok:
            return MatrixAnswer(request, error=answer.error, raw=answer.raw)
        matrix, error = parse_matrix(answer.data)
        return MatrixAnswer(request, data=answer.data, error=error, raw=answer.raw, matrix=matrix)

    async def metadata(self) -> Answer:
        """``/api/v1/metadata``: family name → [{type, help, unit}] for every scraped target."""
        return await self._call("GET", "/api/v1/metadata", "metadata")

    async def aclose(self) -> None:
        await self._client.aclose()


def finite_sum(vector: Vector) -> float | None:
    """Sum of a vector's values; None when empty or any value is NaN."""
    if not vector or any(math.isnan(value) for _, value in vector):
        return None
    return float(sum(value for _, value in vector))
