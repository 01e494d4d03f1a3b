"""The exception tree of phase5site. Every error carries a message meant for a user.

    Phase5Error                  base; ``exit_code`` is what the CLI exits with
    ├── UsageError (2)           a bad command-line value or a combination of options
    ├── SpecError (2)            a run spec that cannot be read or is not valid
    │                            (``problems`` holds one located message per problem)
    ├── HostNotAllowed (2)       the target host is not in ``target.allow_hosts``
    ├── RunError (1)             a run could not start or failed while running
    ├── StoreError (1)           a run folder or DuckDB file is missing, locked or damaged
    ├── ImportFormatError (1)    a legacy metrics.csv or metadata.json cannot be read
    ├── MetricsError (1)         a metrics source answered with something unusable
    │                            (the sampler turns these into NA; they end nothing)
    ├── TargetError (1)          the embedded target could not be started or stopped
    ├── SiteError (1)            the site could not be built or published
    ├── ArchiveError (1)         an archive could not be written or verified
    └── Interrupted (130)        Ctrl-C before a run began (nothing sent, no run folder)

The CLI maps ``Phase5Error`` to a one-line message on stderr and ``exit_code``; nothing
expected ever reaches a user as a traceback.
"""

from __future__ import annotations


class Phase5Error(Exception):
    """Base of every error phase5site raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message


class UsageError(Phase5Error):
    exit_code = 2


class SpecError(Phase5Error):
    """A run spec that cannot be used. ``problems`` lists every problem found, located."""

    exit_code = 2

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems), hint)


class HostNotAllowed(Phase5Error):
    exit_code = 2


class RunError(Phase5Error):
    pass


class StoreError(Phase5Error):
    pass


class ImportFormatError(Phase5Error):
    pass


class MetricsError(Phase5Error):
    pass


class TargetError(Phase5Error):
    pass


class SiteError(Phase5Error):
    pass


class ArchiveError(Phase5Error):
    pass


class Interrupted(Phase5Error):
    exit_code = 130  # 128 + SIGINT, as a shell reports it
