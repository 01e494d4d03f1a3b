"""Suite-wide test settings.

Hypothesis runs without deadlines and without its too-slow health check: both time the
test on the machine running it, so a shared or loaded CI machine (issue 13, item 9: a
pacer property took 273 ms against the default 200 ms deadline) would fail tests whose
code is correct. What a property test checks is the property, never how fast it ran.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "phase5site", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("phase5site")
