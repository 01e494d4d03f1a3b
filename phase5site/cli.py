"""The command line: a thin edge. Each command parses options, calls one library function
and maps ``Phase5Error`` to a message and an exit code. No logic lives here.

Exit codes: 0 GO / success, 1 runtime error, 2 usage or spec error, 3 NO-GO,
4 aborted by the circuit breaker, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from phase5site import __version__
from phase5site.errors import Phase5Error

F = TypeVar("F", bound=Callable[..., Any])

EXIT_GO = 0
EXIT_RUNTIME_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_GO = 3
EXIT_ABORTED = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def handle_errors(func: F) -> F:
    """Turn expected failures into one message on stderr and their exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Phase5Error as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phase5site")
def cli() -> None:
    """Paced production baselines, SLO verdicts and a publishable static site.

    Exit codes: 0 GO or success, 1 runtime error, 2 usage or spec error, 3 NO-GO,
    4 aborted by the circuit breaker, 130/143 interrupted by SIGINT/SIGTERM.
    """


# --- spec: validate, schema (foundation) ---------------------------------------------------

# --- run, status, target (engine) ----------------------------------------------------------

# --- export, import (metrics / store) ------------------------------------------------------

# --- report, summary, slo recommend, slo finalize (slo) ------------------------------------

# --- build, publish (site) -----------------------------------------------------------------

# --- verify, archive, demo (ops) -----------------------------------------------------------


def main() -> None:
    cli(prog_name="phase5site")
