"""phase5site: paced production baselines, SLO verdicts and a publishable static site."""

from __future__ import annotations

__version__ = "0.1.0"
