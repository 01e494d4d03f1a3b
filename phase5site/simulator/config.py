"""What the embedded target needs to start, and its JSON form for the child process.

The JSON travels on the child's stdin, never on its command line: the bearer, the metrics
token and the admin token would otherwise show in ``ps`` output.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from phase5site.errors import TargetError
from phase5site.runspec.models import LOOPBACK_HOSTS, EmbeddedSpec


@dataclass(frozen=True)
class TargetConfig:
    """Everything the target process needs: the simulated service and how to serve it."""

    embedded: EmbeddedSpec = field(default_factory=EmbeddedSpec)
    bearer: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    # When set, /metrics/prom wants it as "Authorization: Bearer <t>" or "X-Metrics-Token: <t>"
    # (the service's METRICS_SCRAPE_TOKEN); the API bearer is not accepted there.
    metrics_token: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {
                "embedded": self.embedded.model_dump(mode="json"),
                "bearer": self.bearer,
                "admin_token": self.admin_token,
                "metrics_token": self.metrics_token,
                "host": self.host,
                "port": self.port,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TargetConfig:
        try:
            data = json.loads(text)
            embedded = EmbeddedSpec.model_validate(data.pop("embedded"))
            return cls(embedded=embedded, **data)
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as error:
            raise TargetError(
                f"the target configuration is not valid JSON of a TargetConfig: {error}",
                hint="start the target with start_target() or `phase5site target`",
            ) from error


def check_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address; the target never listens elsewhere."""
    if host not in LOOPBACK_HOSTS:
        raise TargetError(
            f"the embedded target listens on loopback only (got host {host!r})",
            hint=f"use one of: {', '.join(sorted(LOOPBACK_HOSTS))}",
        )
    return host


def url_host(host: str) -> str:
    """Host as written in a URL: IPv6 literals get brackets (RFC 3986 section 3.2.2)."""
    return f"[{host}]" if ":" in host else host
