"""``publish_site``: copy ``site/`` to a docs-host folder, swapping it in by rename and
keeping the replaced version as ``<DIR>.previous`` for rollback.

The copy goes to a sibling temporary folder (same file system, so the rename is a cheap
metadata change); readers see either the old site or the new one, never a half copy. Only
the short moment between the two renames has no folder at ``DIR``.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from phase5site.errors import SiteError


@dataclass(frozen=True)
class PublishPlan:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    published: bool = False
    previous: Path | None = None  # where the replaced version was kept


def _files(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


def plan(site_dir: Path, target: Path) -> PublishPlan:
    """Which files publishing ``site_dir`` onto ``target`` would add, change and remove."""
    new, old = _files(site_dir), _files(target)
    changed = sorted(name for name in new & old
                     if not filecmp.cmp(site_dir / name, target / name, shallow=False))
    return PublishPlan(sorted(new - old), changed, sorted(old - new))


def publish_site(site_dir: Path, target: Path, *, dry_run: bool = False) -> PublishPlan:
    """Publish ``site_dir`` onto ``target`` (or only plan it with ``dry_run``)."""
    if not (site_dir / "index.html").is_file():
        raise SiteError(f"{site_dir} holds no built site (no index.html)", "run phase5site build first")
    target = target.resolve()
    if target == site_dir.resolve() or site_dir.resolve() in target.parents:
        raise SiteError(f"cannot publish {site_dir} into itself ({target})", "choose a folder outside site/")
    if target in site_dir.resolve().parents:
        # Publishing swaps the whole target folder aside (and deletes the one before): with
        # --to . that would be the repository itself, results and all.
        raise SiteError(f"cannot publish into {target}: it holds the site being published ({site_dir})",
                        "choose a docs-host folder of its own, e.g. --to /srv/docs/phase5")
    if target.exists() and not target.is_dir():
        raise SiteError(f"{target} exists and is not a folder", "choose a folder path for --to")
    changes = plan(site_dir, target)
    if dry_run:
        return changes
    staging = target.with_name(f".{target.name}.publishing-{os.getpid()}")
    previous = target.with_name(target.name + ".previous")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(site_dir, staging)
        kept = None
        if target.exists():
            shutil.rmtree(previous, ignore_errors=True)
            target.rename(previous)
            kept = previous
        staging.rename(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise SiteError(f"cannot publish to {target}: {error}", "check the folder's permissions and free space") from error
    return PublishPlan(changes.added, changes.changed, changes.removed, True, kept)
