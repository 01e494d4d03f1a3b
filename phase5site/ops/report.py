"""The result of ``phase5site verify``: one line per check, each OK / WARN / FAIL / INFO.

Every check runs, whatever the others found (the old shell script stopped at the first
warning because ``((ERRORS++))`` returns 1 under ``set -e``). The JSON form is described by
``verify-report.schema.json`` beside this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["OK", "WARN", "FAIL", "INFO"]
STATUSES: tuple[Status, ...] = ("OK", "WARN", "FAIL", "INFO")
SCHEMA_PATH = Path(__file__).with_name("verify-report.schema.json")
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class CheckResult:
    """One pre-flight check: a stable id, its status, a one-line reason, JSON-able details."""

    check: str
    status: Status
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "reason": self.reason, "details": self.details}


@dataclass(frozen=True)
class VerifyReport:
    spec_path: str
    spec_sha256: str
    checks: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings do not block a run)."""
        return not any(check.status == "FAIL" for check in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for c in self.checks if c.status == status) for status in STATUSES}

    def get(self, check: str) -> CheckResult:
        """The result of the check named ``check`` (KeyError when it did not run)."""
        for result in self.checks:
            if result.check == check:
                return result
        raise KeyError(check)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "spec": self.spec_path,
            "spec_sha256": self.spec_sha256,
            "ok": self.ok,
            "counts": self.counts(),
            "checks": [check.to_dict() for check in self.checks],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def format_text(self) -> str:
        """Aligned lines for a terminal, then a one-line summary.

        ``OK    health           /health answered 200 in 12 ms``
        """
        width = max((len(check.check) for check in self.checks), default=5)
        lines = [f"{c.status:<5} {c.check:<{width}}  {c.reason}" for c in self.checks]
        counts = self.counts()
        verdict = "ready to run" if self.ok else "NOT ready: fix every FAIL above"
        summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        lines.append(f"verify {self.spec_path}: {summary} -- {verdict}")
        return "\n".join(lines)


def load_report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that ``VerifyReport.to_dict()`` satisfies."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
