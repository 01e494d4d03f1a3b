"""The site built from synthetic runs: strict mkdocs build, escaping, secrets, downloads,
documentation completeness, page budget."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
from conftest import BuiltSite, copy_repo
from site_synthetic import HOSTILE, TIMEOUT_MESSAGE, PhasePlan, RunPlan, make_run, make_token

from phase5site.errors import SiteError
from phase5site.site import build_site
from phase5site.site.reference import spec_keys

PAGE_BUDGET_BYTES = 1_500_000


def _html_files(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_strict_build_has_no_warnings_and_every_page(built_site: BuiltSite) -> None:
    assert built_site.result.warnings == []
    assert built_site.result.runs == 3
    site = built_site.site
    for page in ("index.html", "generated/overview.html", "generated/comparison.html", "generated/slo.html",
                 "generated/completion.html", "generated/reference.html", "how-to-read.html", "publishing.html"):
        assert (site / page).is_file(), page
    assert len(list(site.glob("runs/*/index.html"))) == 3


def test_hostile_names_render_as_text(built_site: BuiltSite) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for page in _html_files(built_site.site):
        text = page.read_text(encoding="utf-8")
        assert HOSTILE not in text, f"{page} holds live markup from run data"
    run_page = next(built_site.site.glob("runs/imported-hostile-*/index.html")).read_text(encoding="utf-8")
    assert escaped in run_page  # the name is shown, as text
    assert "<title>Run imported-hostile-" in run_page


def test_no_secret_reaches_the_site(built_site: BuiltSite) -> None:
    # The token was planted as the bearer, a secret header and an environment value.
    spec = (built_site.results / next(built_site.results.glob("day1-*")).name / "run.duckdb").read_bytes()
    assert built_site.token.encode() in spec  # the planted secret really is in the run file
    for path in built_site.site.rglob("*"):
        if path.is_file():
            assert built_site.token.encode() not in path.read_bytes(), f"secret leaked into {path}"


def test_run_page_sections_downloads_and_archive_svgs(built_site: BuiltSite) -> None:
    page_dir = next(built_site.site.glob("runs/day1-production-baseline-*"))
    text = (page_dir / "index.html").read_text(encoding="utf-8")
    for heading in ("Verdict", "Charts", "Phases", "Generator health and drops", "Events", "Metadata",
                    "Environment", "Downloads"):
        assert f'id="{heading.lower().replace(" ", "-")}"' in text, heading
    assert 'id="chart-send-lag"' in text and "Own lag p99 / max (slot free)" in text
    assert text.count('class="vega-chart"') >= 7
    assert "breaker_trip" in text and "GO</span>" in text
    assert (page_dir / "metrics.csv").read_text().startswith("timestamp,")
    assert (page_dir / "production-report.md.txt").is_file()
    assert 'download="production-report.md"' in text
    run_dir = next(built_site.results.glob("day1-*"))
    svgs = sorted(p.name for p in (run_dir / "charts").glob("*.svg"))
    assert "latency.svg" in svgs and "rate.svg" in svgs
    assert (run_dir / "charts" / "latency.svg").read_text().lstrip().startswith("<svg")


def test_run_page_groups_transport_errors_with_an_example_message(built_site: BuiltSite) -> None:
    import duckdb

    run_dir = next(built_site.results.glob("day1-*"))
    con = duckdb.connect(str(run_dir / "run.duckdb"), read_only=True)
    try:
        groups = con.execute(
            "SELECT phase, request_name, outcome, count(*), arg_min(seq, intended_at), arg_min(error, intended_at) "
            "FROM requests WHERE outcome IN ('timeout', 'connect_error') GROUP BY ALL ORDER BY ALL").fetchall()
        sent = dict(con.execute("SELECT phase || '/' || request_name, sum(bytes_sent) FROM requests "
                                "WHERE sent_at IS NOT NULL GROUP BY ALL").fetchall())
    finally:
        con.close()
    assert {g[2] for g in groups} == {"timeout", "connect_error"}
    text = (next(built_site.site.glob("runs/day1-production-baseline-*")) / "index.html").read_text(encoding="utf-8")
    details = text[text.index('<details class="p5-transport">'):]
    details = details[:details.index("</details>")]
    total = sum(g[3] for g in groups)
    assert f"Transport errors by kind: {total:,} in {len(groups)} group(s), one example message each" in details
    for phase, name, kind, count, seq, message in groups:
        row = f"<td>{html.escape(phase)}</td><td>{html.escape(name)}</td><td>{kind}</td><td>{count:,}</td><td>seq {seq} at "
        assert row in details, row
        assert f"<td>{html.escape(message)}</td>" in details
    assert html.escape(f"unreadable answer: {HOSTILE}") in details and TIMEOUT_MESSAGE in details
    # the per-request table's bytes sent, as summed from the rows
    table = text[text.index('class="p5-table p5-endpoints'):]
    for key, value in sent.items():
        assert f"<td>{value:,}</td>" in table, key


def test_overview_comparison_slo_and_completion(built_site: BuiltSite) -> None:
    site = built_site.site
    overview = (site / "generated/overview.html").read_text(encoding="utf-8")
    assert overview.count("../runs/") >= 6 and "day2-extended" in overview
    comparison = (site / "generated/comparison.html").read_text(encoding="utf-8")
    assert "Baseline vs extended" in comparison and "Confidence intervals overlap" in comparison
    slo = (site / "generated/slo.html").read_text(encoding="utf-8")
    assert "availability" in slo and "&lt;script" in slo
    assert (site / "generated/slo/SLO_v2.5.0/openslo.yaml").is_file()
    assert 'href="slo/SLO_v2.5.0/prometheus-rules.yml"' in slo
    assert not list(site.rglob("slo-draft.yaml"))
    completion = (site / "generated/completion.html").read_text(encoding="utf-8")
    assert "3 runs in all: 1 GO, 1 INVALID, 1 NO-GO" in completion and "Open caveats" in completion
    decision = completion[completion.index('class="p5-decision-head"'):]
    assert decision.index("INVALID</span>") < decision.index("</p>")  # day1 GO + day2 INVALID
    assert "Runs that count: every run not tagged test or import" in completion
    left_out = completion[completion.index('class="p5-table p5-left-out"'):]
    assert "imported-hostile" in left_out[:left_out.index("</table>")] and "tagged test" in left_out
    caveats = completion[completion.index('id="open-caveats"'):]
    assert caveats.count('<details class="p5-caveats" open>') == 2  # day1 and day2 decide
    assert caveats.count('<details class="p5-caveats">') == 1  # the test run, closed
    assert "<td>limited: extended #2; own lag p99 " in overview and "Dropped (share)" in overview
    assert "CPU 90.0% of a core; loop lag 580.0 ms</td>" in overview


def test_a_generator_limited_run_page_says_invalid_and_why(built_site: BuiltSite) -> None:
    page = next(built_site.site.glob("runs/day2-extended-*")) / "index.html"
    text = page.read_text(encoding="utf-8")
    assert 'class="p5-verdict p5-invalid"' in text
    assert "the load generator was delayed 612 ms at" in text
    assert "rerun on a quieter host or with more workers" in text
    health = text[text.index('class="p5-table p5-health-windows"'):]
    assert "<td>612.0 ms</td><td>90.0% of a core</td><td>580.0 ms</td>" in health


def _annotation_models(annotation: object, suffix: str = "") -> list[tuple[type, str]]:
    """Pydantic models inside an annotation (through Optional, Annotated and list[...])."""
    import types
    import typing

    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        args = typing.get_args(annotation)
        args = args[:1] if origin is typing.Annotated else args
        return [found for arg in args for found in _annotation_models(arg, suffix)]
    if origin is list:
        return _annotation_models(typing.get_args(annotation)[0], "[]")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, suffix)]
    return []


def model_keys(model: type, prefix: str = "") -> list[str]:
    """Every key of a run spec by its YAML spelling, from the models: ``phases[].rate``."""
    keys = []
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        key = prefix + (info.alias or name)
        keys.append(key)
        for child, suffix in _annotation_models(info.annotation):
            keys += model_keys(child, f"{key}{suffix}.")
    return keys


def test_reference_lists_every_command_and_spec_key(built_site: BuiltSite) -> None:
    import click

    from phase5site.cli import cli
    from phase5site.runspec.models import RunSpec

    text = (built_site.site / "generated/reference.html").read_text(encoding="utf-8")
    assert "Example spec (demo.yaml)" in text and "version: 1" in text
    # Expected keys come from the pydantic models themselves, not from the page's own
    # schema walker, so a key the walker skips is missed here too.
    keys = model_keys(RunSpec)
    assert {"phases[].rate", "target.auth.bearer", "target.client", "target.requests[].json",
            "target.embedded.faults[].kind", "phases[].flags.COUNT_CACHE_MISS_AS_FALLBACK"} <= set(keys)
    assert sorted(key for key, _, _ in spec_keys(RunSpec.model_json_schema())) == sorted(keys)
    missing = [key for key in keys if f"<td>{key}</td>" not in text]
    assert not missing, missing

    def commands(group: click.Command, path: str) -> list[str]:
        found = [path]
        for name, sub in getattr(group, "commands", {}).items():
            found += commands(sub, f"{path} {name}")
        return found

    names = commands(cli, "phase5site")
    assert "phase5site build" in names and "phase5site publish" in names
    assert not [name for name in names if f">{name}<" not in text]

    def options(group: click.Command, path: str) -> list[tuple[str, str]]:
        found = [(path, opt) for param in group.params if isinstance(param, click.Option) for opt in param.opts]
        for name, sub in getattr(group, "commands", {}).items():
            found += options(sub, f"{path} {name}")
        return found

    def section(path: str) -> str:
        """The reference text of one command: from its heading to the next one."""
        start = text.index(f'<h3 id="{path.replace(" ", "-")}"')
        end = text.find("<h3 ", start + 1)
        return text[start:] if end < 0 else text[start:end]

    assert ("phase5site publish", "--dry-run") in options(cli, "phase5site")
    # Each option in its own command's section: '--out' elsewhere must not hide a missing one.
    assert not [(path, opt) for path, opt in options(cli, "phase5site") if opt not in section(path)]


def test_pages_stay_within_budget(built_site: BuiltSite) -> None:
    sizes = {p: p.stat().st_size for p in _html_files(built_site.site)}
    assert max(sizes.values()) < PAGE_BUDGET_BYTES


def test_broken_hand_written_page_fails_strict_build_with_the_warning(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    (root / "site_src" / "how-to-read.md").write_text("# How\n\n[gone](missing-page.md)\n", encoding="utf-8")
    results = tmp_path / "results"
    results.mkdir()
    with pytest.raises(SiteError) as caught:
        build_site(results, root)
    assert "missing-page.md" in str(caught.value)
    relaxed = build_site(results, root, strict=False)
    assert any("missing-page.md" in warning for warning in relaxed.warnings)
    assert (root / "site" / "index.html").is_file()


def test_rebuild_drops_deleted_runs_and_empty_results_build(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    results = tmp_path / "results"
    run_dir = make_run(results, RunPlan("solo", 1_795_000_000.0, [PhasePlan("baseline", 5, 20, samples=2)],
                                        bearer=make_token(), report=False))
    heard: list[str] = []
    assert build_site(results, root, progress=heard.append).runs == 1
    assert len(list((root / "site_src/runs").iterdir())) == 1
    # one line per page group, as it is done, then mkdocs
    assert heard[0] == f"read 1 run(s) from {results}"
    assert heard[1].startswith("run page 1/1: ") and heard[1].endswith(" charts)")
    assert heard[2].startswith("overview, comparison, SLO (0 document(s)), completion and reference pages")
    assert heard[3].startswith("mkdocs build of ") and len(heard) == 4
    shutil.rmtree(run_dir)
    result = build_site(results, root)
    assert result.runs == 0 and not list((root / "site_src/runs").iterdir())
    assert "No runs yet" in (root / "site/generated/overview.html").read_text(encoding="utf-8")


def test_build_without_mkdocs_yml_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match=re.escape(str(tmp_path))):
        build_site(tmp_path, tmp_path)


def test_an_unreadable_run_is_listed_not_fatal(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    results = tmp_path / "results"
    make_run(results, RunPlan("fine", 1_795_000_000.0, [PhasePlan("baseline", 5, 20, samples=1)], report=False))
    broken = results / "broken-run"
    broken.mkdir()
    (broken / "run.duckdb").write_bytes(b"not a database <b>x</b>")
    result = build_site(results, root)
    assert result.runs == 1 and len(result.skipped) == 1 and "broken-run" in result.skipped[0]
    overview = (root / "site/generated/overview.html").read_text(encoding="utf-8")
    assert "Runs that could not be read" in overview and "broken-run" in overview


def test_slo_documents_from_a_configured_folder(tmp_path: Path) -> None:
    root = copy_repo(tmp_path / "repo")
    results, slo = tmp_path / "results", tmp_path / "docs-slo" / "v3"
    results.mkdir()
    slo.mkdir(parents=True)
    (slo / "SLO_v3.0.0.md").write_text("# SLO v3.0.0\n\nAvailability 99.9%.\n", encoding="utf-8")
    (slo / "openslo.yaml").write_text("apiVersion: openslo/v1\n", encoding="utf-8")
    build_site(results, root, slo_dir=tmp_path / "docs-slo")
    page = (root / "site/generated/slo.html").read_text(encoding="utf-8")
    assert "Availability 99.9%" in page and 'href="slo/SLO_v3.0.0/openslo.yaml"' in page
    assert (root / "site/generated/slo/SLO_v3.0.0/openslo.yaml").is_file()


def test_cli_build_prints_a_summary(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from phase5site.cli import cli

    root = copy_repo(tmp_path / "repo")
    results = tmp_path / "results"
    results.mkdir()
    outcome = CliRunner().invoke(cli, ["build", "--results-dir", str(results), "--repo-root", str(root)])
    assert outcome.exit_code == 0, outcome.output
    assert "Built" in outcome.output and "from 0 runs" in outcome.output
    assert (root / "site" / "generated" / "overview.html").is_file()


@pytest.mark.parametrize("blocked", ["site", "site_src/runs"])
def test_cli_build_into_a_blocked_folder_is_a_site_error(tmp_path: Path, blocked: str) -> None:
    from click.testing import CliRunner

    from phase5site.cli import cli

    root = copy_repo(tmp_path / "repo")
    results = tmp_path / "results"
    results.mkdir()
    (root / blocked).write_text("a file where a folder belongs")
    outcome = CliRunner().invoke(cli, ["build", "--results-dir", str(results), "--repo-root", str(root)])
    assert outcome.exit_code == 1, outcome.output
    # the progress of the page groups done before the failure, then the error
    lines = outcome.output.splitlines()
    error = next(index for index, line in enumerate(lines) if line.startswith("Error: cannot write the site: "))
    assert all(line.startswith("site: ") for line in lines[:error]) and "Hint: check that" in outcome.output
    assert isinstance(outcome.exception, SystemExit)


def test_url_passwords_in_run_messages_never_reach_the_site(tmp_path: Path) -> None:
    """An NA reason or error quoting 'http://user:password@host' (a writer forgot to redact)
    is shown with the password hidden, on the pages and in the report download."""
    root = copy_repo(tmp_path / "repo")
    results = tmp_path / "results"
    password = "pw-" + make_token()[3:]
    url = f"http://scraper:{password}@metrics.internal:9100/metrics"
    run_dir = make_run(results, RunPlan("leaky", 1_795_000_000.0, [PhasePlan("baseline", 5, 20, samples=1)],
                                        report=False, extra_events=[("error", f"scrape of {url} failed")]))
    (run_dir / "production-report.md").write_text(f"# Report\n\nrss_mb: NA (scrape of {url} failed)\n")
    build_site(results, root)
    leaked = [str(p) for p in (root / "site").rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
    assert leaked == []
    page_dir = next((root / "site" / "runs").glob("leaky-*"))
    assert "http://scraper:***@metrics.internal:9100/metrics" in (page_dir / "index.html").read_text()
    assert "scrape of http://scraper:***@metrics.internal" in (page_dir / "production-report.md.txt").read_text()
