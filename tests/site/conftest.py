"""Fixtures: a scratch repository (mkdocs.yml + the tracked site_src pages) and a site built
from synthetic runs, shared by the tests of this folder (a build takes a few seconds)."""

from __future__ import annotations

import functools
import http.server
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from site_synthetic import make_token, standard_runs

from phase5site.cli import command_reference
from phase5site.site import BuildResult, build_site

REPO = Path(__file__).resolve().parents[2]
GENERATED = ("runs", "generated")


def copy_repo(target: Path) -> Path:
    """mkdocs.yml and the hand-written pages, without generated folders."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "mkdocs.yml", target / "mkdocs.yml")
    (target / "runspecs").mkdir(exist_ok=True)
    shutil.copy(REPO / "runspecs" / "demo.yaml", target / "runspecs" / "demo.yaml")
    shutil.copytree(REPO / "site_src", target / "site_src",
                    ignore=lambda folder, names: [n for n in names if Path(folder) == REPO / "site_src" and n in GENERATED])
    return target


@dataclass(frozen=True)
class BuiltSite:
    root: Path
    results: Path
    result: BuildResult
    token: str

    @property
    def site(self) -> Path:
        return self.result.site_dir


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def site_httpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[http.server.ThreadingHTTPServer]:
    """A bound (not yet serving) local server: the site is built for its address, since
    Material's instant navigation only follows links whose host and port match site_url."""
    folder = tmp_path_factory.mktemp("sitebuild") / "repo" / "site"
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.site_folder = folder  # type: ignore[attr-defined]
    try:
        yield httpd
    finally:
        httpd.server_close()


@pytest.fixture(scope="session")
def built_site(site_httpd: http.server.ThreadingHTTPServer) -> BuiltSite:
    base = site_httpd.site_folder.parents[1]  # type: ignore[attr-defined]
    root = copy_repo(base / "repo")
    results = base / "results"
    results.mkdir()
    token = make_token()
    standard_runs(results, token)
    slo = results / "slo"
    slo.mkdir()
    (slo / "SLO_v2.5.0.md").write_text(
        "# SLO v2.5.0\n\n| SLI | target |\n|---|---|\n| availability | 99.5% |\n\n<script>alert(1)</script>\n",
        encoding="utf-8")
    (slo / "openslo.yaml").write_text("apiVersion: openslo/v1\nkind: SLO\n", encoding="utf-8")
    (slo / "prometheus-rules.yml").write_text("groups: []\n", encoding="utf-8")
    (slo / "slo-draft.yaml").write_text("draft: true\n", encoding="utf-8")  # not published
    result = build_site(results, root, site_url=f"http://127.0.0.1:{site_httpd.server_address[1]}/",
                        commands=command_reference())
    return BuiltSite(root, results, result, token)
