"""Small helpers for the engine tests (a list-backed row sink, spec text builders)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class ListSink:
    """Keeps request rows as dicts, in the order the engine appended them."""

    rows: list[dict] = field(default_factory=list)

    def append(self, phase, seq, request_name, intended_at, sent_at, latency_ms, service_ms,
               status, outcome, bytes, slot_free=None, worker=None, error=None,  # noqa: A002 - the store's column name
               bytes_sent=None):
        self.rows.append(dict(phase=phase, seq=seq, request_name=request_name,
                              intended_at=intended_at, sent_at=sent_at, latency_ms=latency_ms,
                              service_ms=service_ms, status=status, outcome=outcome, bytes=bytes,
                              slot_free=slot_free, worker=worker, error=error, bytes_sent=bytes_sent))


def fake_token() -> str:
    return "eyJ" + secrets.token_urlsafe(24)
