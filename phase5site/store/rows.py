"""``RequestRows``: the engine's columnar buffer of request results between two flushes.

One Python list per column, so appending a request costs one list append per column and a flush
turns the buffer into one ``pyarrow.Table`` that DuckDB inserts in a single statement
(row-by-row ``executemany`` is about a thousand times slower). ``RunWriter.append_requests``
clears the buffer after a successful insert, so memory stays flat however long the run.
"""

from __future__ import annotations

import pyarrow as pa

from phase5site.columns import OUTCOMES
from phase5site.errors import StoreError

REQUEST_ARROW_SCHEMA = pa.schema(
    [
        ("phase", pa.string()),
        ("seq", pa.int64()),
        ("request_name", pa.string()),
        ("intended_at", pa.float64()),
        ("sent_at", pa.float64()),
        ("latency_ms", pa.float64()),
        ("service_ms", pa.float64()),
        ("status", pa.int16()),
        ("outcome", pa.string()),
        ("bytes", pa.int32()),
        # Whether one of the load worker's slots was free when the request fell due: a send
        # lag while a slot was free is the generator's own delay (DESIGN.md, generator health).
        ("slot_free", pa.bool_()),
        ("worker", pa.int16()),  # the load worker process that paced it (seq mod workers)
        # A transport error's message (engine.outcome.error_text: first line, redacted,
        # bounded); NULL for an answer, a drop, or a client that gave none.
        ("error", pa.string()),
        # Bytes the client wrote for the request (request line, headers, body; twice when
        # retried on a stale connection); NULL when the client cannot tell (httpx) or unsent.
        ("bytes_sent", pa.int32()),
    ]
)
_OUTCOME_SET = frozenset(OUTCOMES)


class RequestRows:
    """Columnar buffer of request rows; NA values are ``None``.

    >>> rows = RequestRows()
    >>> rows.append("baseline", 0, "health", 100.0, 100.001, 12.5, 11.0, 200, "ok", 17)
    >>> rows.append("baseline", 1, "hello", 100.0125, None, None, None, None, "dropped", None)
    >>> len(rows), rows.to_arrow().column("outcome").to_pylist()
    (2, ['ok', 'dropped'])
    """

    __slots__ = tuple(f"_{name}" for name in REQUEST_ARROW_SCHEMA.names)

    def __init__(self) -> None:
        for name in REQUEST_ARROW_SCHEMA.names:
            setattr(self, f"_{name}", [])

    def append(
        self,
        phase: str,
        seq: int,
        request_name: str,
        intended_at: float,
        sent_at: float | None,
        latency_ms: float | None,
        service_ms: float | None,
        status: int | None,
        outcome: str,
        bytes: int | None,  # noqa: A002 - the column's name in the contract
        slot_free: bool | None = None,
        worker: int | None = None,
        error: str | None = None,
        bytes_sent: int | None = None,
    ) -> None:
        """Buffer one request. ``outcome`` must be one of ``columns.OUTCOMES``."""
        if outcome not in _OUTCOME_SET:
            raise StoreError(
                f"unknown request outcome {outcome!r}",
                hint=f"use one of: {', '.join(OUTCOMES)}",
            )
        self._phase.append(phase)
        self._seq.append(seq)
        self._request_name.append(request_name)
        self._intended_at.append(intended_at)
        self._sent_at.append(sent_at)
        self._latency_ms.append(latency_ms)
        self._service_ms.append(service_ms)
        self._status.append(status)
        self._outcome.append(outcome)
        self._bytes.append(bytes)
        self._slot_free.append(slot_free)
        self._worker.append(worker)
        self._error.append(error)
        self._bytes_sent.append(bytes_sent)

    def __len__(self) -> int:
        return len(self._seq)

    def clear(self) -> None:
        """Forget every buffered row (called by the writer after each flush)."""
        for name in REQUEST_ARROW_SCHEMA.names:
            getattr(self, f"_{name}").clear()

    def to_arrow(self) -> pa.Table:
        """The buffered rows as one Arrow table with the ``requests`` column types."""
        arrays = [
            pa.array(getattr(self, f"_{field.name}"), type=field.type)
            for field in REQUEST_ARROW_SCHEMA
        ]
        return pa.Table.from_arrays(arrays, schema=REQUEST_ARROW_SCHEMA)
