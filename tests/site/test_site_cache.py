"""The per-user build cache and the side renderer: what is cached, what never is, and a
failed chart drawing that is retried rather than recorded as done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phase5site.site.assets import BUNDLE_NAME, bundle_header, bundle_job
from phase5site.site.build import PendingSvgs
from phase5site.site.cache import ENV_VAR, cache_dir
from phase5site.site.sidework import SideRenderer


def test_cache_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "c"))
    assert cache_dir("jinja") == tmp_path / "c" / "jinja" and (tmp_path / "c" / "jinja").is_dir()
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "file"))  # a file where the folder should be
    assert cache_dir("jinja") is None


def test_bundle_is_made_once_then_copied_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache"))
    first = tmp_path / "site1" / "assets"
    job = bundle_job(first)
    assert job is not None and job["also"] is not None
    renderer = SideRenderer()
    renderer.submit(job)
    assert renderer.wait_for(Path(job["path"]))["ok"]
    renderer.close()
    made = (first / BUNDLE_NAME).read_text(encoding="utf-8")
    assert made.startswith(bundle_header()) and made.rstrip().endswith("})();")
    assert Path(job["also"]).read_text(encoding="utf-8") == made
    second = tmp_path / "site2" / "assets"
    assert bundle_job(second) is None  # copied from the cache: no job
    assert (second / BUNDLE_NAME).read_text(encoding="utf-8") == made
    assert bundle_job(first) is None  # already there


def test_a_failed_svg_is_left_out_of_the_index_so_the_next_build_redraws_it(tmp_path: Path) -> None:
    good, bad = tmp_path / "charts" / "rate.svg", tmp_path / "charts" / "latency.svg"
    renderer = SideRenderer()
    renderer.submit({"kind": "svg", "path": str(good), "vl_version": None,
                     "spec": {"mark": "point", "data": {"values": [{"x": 1}]},
                              "encoding": {"x": {"field": "x", "type": "quantitative"}}}})
    renderer.submit({"kind": "svg", "path": str(bad), "vl_version": None, "spec": {"mark": "no-such-mark"}})
    answers = renderer.close()
    assert answers[str(good)]["ok"] and not answers[str(bad)]["ok"]
    assert good.read_text(encoding="utf-8").lstrip().startswith("<svg") and not bad.exists()
    pending = PendingSvgs(tmp_path / "charts" / "index.json", {"rate": "h1", "latency": "h2"},
                          {"rate": good, "latency": bad})
    pending.finish(answers)
    assert json.loads((tmp_path / "charts" / "index.json").read_text()) == {"rate": "h1"}
