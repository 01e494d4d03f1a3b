"""The static site: pages from every run, Altair charts rendered offline, mkdocs build, publish.

Public API: ``build_site(results_dir, repo_root, *, strict=True) -> BuildResult`` and
``publish_site(site_dir, target, *, dry_run=False) -> PublishPlan``.
"""

from __future__ import annotations

from phase5site.site.build import BuildResult, build_site
from phase5site.site.publish import PublishPlan, publish_site
from phase5site.site.reference import CommandHelp

__all__ = ["BuildResult", "PublishPlan", "build_site", "publish_site"]
