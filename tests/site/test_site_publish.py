"""``publish``: atomic swap, previous version kept, dry-run listing; the CLI commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phase5site.cli import cli
from phase5site.errors import SiteError
from phase5site.site import publish_site


def _site(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_publish_swaps_in_the_new_site_and_keeps_the_previous(tmp_path: Path) -> None:
    target = tmp_path / "host" / "phase5"
    first = _site(tmp_path / "one", {"index.html": "v1", "old.html": "gone soon", "a/b.css": "x"})
    assert publish_site(first, target).previous is None
    second = _site(tmp_path / "two", {"index.html": "v2", "a/b.css": "x", "new.html": "n"})
    plan = publish_site(second, target, dry_run=True)
    assert (plan.added, plan.changed, plan.removed, plan.published) == (["new.html"], ["index.html"], ["old.html"], False)
    assert (target / "index.html").read_text() == "v1"  # a dry run touches nothing
    done = publish_site(second, target)
    assert done.published and done.previous == target.with_name("phase5.previous")
    assert (target / "index.html").read_text() == "v2" and not (target / "old.html").exists()
    assert (done.previous / "index.html").read_text() == "v1"
    assert sorted(p.name for p in target.parent.iterdir()) == ["phase5", "phase5.previous"]  # no temp left


def test_publish_refuses_an_unbuilt_site_and_itself(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="no built site"):
        publish_site(tmp_path / "nothing", tmp_path / "out")
    site = _site(tmp_path / "site", {"index.html": "x"})
    with pytest.raises(SiteError, match="into itself"):
        publish_site(site, site / "inner")


def test_publish_refuses_a_folder_that_holds_the_site(tmp_path: Path) -> None:
    """--to . from the repository root would move the repository aside (and the next
    publish would delete it as the 'previous' version)."""
    repo = tmp_path / "repo"
    site = _site(repo / "site", {"index.html": "x"})
    (repo / "results").mkdir()
    for target in (repo, tmp_path):
        with pytest.raises(SiteError, match="it holds the site being published"):
            publish_site(site, target)
    assert (repo / "results").is_dir() and not (tmp_path / "repo.previous").exists()


def test_cli_publish_dry_run_and_errors(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", {"index.html": "x", "p.html": "y"})
    runner = CliRunner()
    result = runner.invoke(cli, ["publish", "--to", str(tmp_path / "out"), "--site-dir", str(site), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "+ index.html" in result.output and "Dry run: 2 added" in result.output
    assert not (tmp_path / "out").exists()
    missing = runner.invoke(cli, ["publish", "--to", str(tmp_path / "out"), "--site-dir", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "run phase5site build first" in missing.output


def test_cli_build_reports_a_missing_results_folder(tmp_path: Path) -> None:
    (tmp_path / "mkdocs.yml").write_text("site_name: x\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", "--repo-root", str(tmp_path), "--results-dir", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output
