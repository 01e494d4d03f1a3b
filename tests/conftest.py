"""Suite-wide test settings.

Hypothesis runs without deadlines and without its too-slow health check: both time the
test on the machine running it, so a shared or loaded CI machine (issue 13, item 9: a
pacer property took 273 ms against the default 200 ms deadline) would fail tests whose
code is correct. What a property test checks is the property, never how fast it ran.

SIGINT: a suite started as a background job of a non-interactive shell (`cmd &` in a CI
script) inherits SIGINT ignored, and so would every child the tests start: the tests
that press Ctrl-C on a `phase5site run` child then wait for an exit that never comes (a
process started with SIGINT ignored rightly keeps ignoring it). The suite gives itself,
and so its children, the default Ctrl-C.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "phase5site", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("phase5site")

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _site_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Site builds keep their per-user cache (the chart bundle, compiled templates) in a
    folder of this session, not in the user's ~/.cache: a test never reads a cache an
    earlier test run left behind, and leaves none."""
    previous = os.environ.get("PHASE5SITE_CACHE_DIR")
    os.environ["PHASE5SITE_CACHE_DIR"] = str(tmp_path_factory.mktemp("site-cache"))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PHASE5SITE_CACHE_DIR", None)
        else:
            os.environ["PHASE5SITE_CACHE_DIR"] = previous
