"""``build_site``: results/ -> generated pages in site_src/ -> ``mkdocs build --strict`` -> site/.

Generated pages go only to ``site_src/runs/`` and ``site_src/generated/`` (both git-ignored);
they are rewritten from scratch at every build, so a deleted run disappears from the site.
``mkdocs serve`` from the repository root then browses the same content.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from phase5site.errors import SiteError
from phase5site.site.assets import bundle_job, svg_job
from phase5site.site.charts import ChartSpec, build_charts, chart_digest
from phase5site.site.escape import scrub_credentials
from phase5site.site.mkdocs_run import run_mkdocs
from phase5site.site.page_run import render_run_page
from phase5site.site.pages import (
    render_comparison,
    render_completion,
    render_overview,
    render_slo,
)
from phase5site.site.reference import CommandHelp, render_reference
from phase5site.site.rundata import RunData, read_run
from phase5site.site.verdicts import Evaluator, default_evaluator
from phase5site.site.sidework import SideRenderer
from phase5site.site.onefile import ONE_FILE_LABEL, ONE_FILE_NAME, render_one_file
from phase5site.site.decision import HOME_FRAGMENT, SiteOptions, release_decision, render_home

DOCS_DIR = "site_src"
SITE_DIR = "site"
RUN_DOWNLOADS = {"metrics.csv": "metrics.csv", "production-report.md": "production-report.md.txt"}
MACHINE_FILES = ("openslo", "prometheus-rules")  # name prefixes of the SLO files published
_USE_DEFAULT = object()


@dataclass(frozen=True)
class BuildResult:
    site_dir: Path
    runs: int
    pages: list[Path]  # generated Markdown pages
    charts: int
    warnings: list[str] = field(default_factory=list)  # mkdocs warnings (empty when strict passed)
    duration_s: float = 0.0
    skipped: list[str] = field(default_factory=list)  # runs that could not be read, and why


def find_run_dirs(results_dir: Path) -> list[Path]:
    """Run folders under ``results_dir`` (those holding a run.duckdb), via the store."""
    try:
        from phase5site.store import find_runs
    except ImportError:
        return sorted(path.parent for path in results_dir.glob("*/run.duckdb"))
    return [Path(path) for path in find_runs(results_dir)]


def _fresh_dir(path: Path, keep: tuple[str, ...] = ()) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for child in path.iterdir():
        if child.name in keep:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class PendingSvgs:
    """A run's charts/ folder while its SVGs are being drawn: index.json is written only
    after, and lists only the SVGs that exist, so a failed drawing is retried next build."""

    index_path: Path
    digests: dict[str, str]  # chart name -> spec hash, every chart of the run
    drawing: dict[str, Path]  # chart name -> SVG being drawn

    def finish(self, answers: dict[str, dict]) -> None:
        failed = {name for name, path in self.drawing.items() if not answers.get(str(path), {}).get("ok")}
        kept = {name: digest for name, digest in self.digests.items() if name not in failed}
        try:
            if kept or self.index_path.exists():
                self.index_path.parent.mkdir(exist_ok=True)
                self.index_path.write_text(json.dumps(kept, indent=2, sort_keys=True), encoding="utf-8")
        except OSError:
            pass  # an archived (read-only) run folder still gets its page, only not fresh SVGs


def write_chart_svgs(run_dir: Path, charts: list[ChartSpec], renderer: SideRenderer) -> PendingSvgs:
    """Static SVG of each chart in ``<run>/charts/`` for the archive and the one-file report;
    redrawn only when the chart's spec changed (the spec hash is kept in charts/index.json).
    The drawing is handed to ``renderer``; call ``.finish`` on the result once it is done."""
    folder = run_dir / "charts"
    index_path = folder / "index.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    fresh = {chart.name: chart_digest(chart) for chart in charts}
    drawing: dict[str, Path] = {}
    for chart in charts:
        target = folder / f"{chart.name}.svg"
        if index.get(chart.name) == fresh[chart.name] and target.exists():
            continue
        drawing[chart.name] = target
        renderer.submit(svg_job(chart.spec, target))
    for stale in set(index) - set(fresh):
        try:
            (folder / f"{stale}.svg").unlink(missing_ok=True)
        except OSError:
            pass
    return PendingSvgs(index_path, fresh, drawing)


def _run_pages(run: RunData, runs_root: Path, renderer: SideRenderer) -> tuple[Path, list[ChartSpec], PendingSvgs]:
    charts = build_charts(run)
    page_dir = runs_root / run.slug
    page_dir.mkdir(parents=True, exist_ok=True)
    downloads = {}
    for source_name, target_name in RUN_DOWNLOADS.items():
        source = run.run_dir / source_name
        if source.is_file():
            if source_name.endswith(".md"):  # the report quotes NA reasons, and their URLs
                text = source.read_text(encoding="utf-8", errors="replace")
                (page_dir / target_name).write_text(scrub_credentials(text), encoding="utf-8")
            else:
                shutil.copyfile(source, page_dir / target_name)
            downloads[source_name] = target_name
    pending = write_chart_svgs(run.run_dir, charts, renderer)
    downloads[ONE_FILE_LABEL] = ONE_FILE_NAME
    page = _write(page_dir / "index.md", render_run_page(run, charts, downloads))
    return page, charts, pending


def version_key(doc: Path) -> tuple[int, ...]:
    """Sort key of ``SLO_v<version>.md`` by release number.

    Example: ``SLO_v2.10.0.md`` -> ``(2, 10, 0)``, so it sorts after ``SLO_v2.9.1.md``.
    """
    return tuple(int(part) for part in re.findall(r"\d+", doc.stem))


def _slo_pages(slo_root: Path, generated: Path) -> tuple[list[Path], dict[str, list[str]]]:
    """Finalized SLO documents (``slo finalize`` writes them to results/slo/) and their
    OpenSLO and Prometheus rule files; the draft of ``slo recommend`` is not published."""
    found = slo_root.rglob("SLO_v*.md") if slo_root.is_dir() else []
    docs = sorted(found, key=version_key, reverse=True)
    downloads: dict[str, list[str]] = {}
    for doc in docs:
        names = []
        for machine in sorted(doc.parent.iterdir()):
            if machine.is_file() and machine.name.startswith(MACHINE_FILES) and machine.suffix in (".yaml", ".yml"):
                target = generated / "slo" / doc.stem / machine.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(machine, target)
                names.append(f"{doc.stem}/{machine.name}")
        downloads[doc.name] = names
    return docs, downloads


def read_runs(results_dir: Path, evaluator: Evaluator | None) -> tuple[list[RunData], list[str]]:
    """Every readable run, and one message per run that could not be read (a run still being
    written holds its file's lock; a damaged file must not take the whole site down)."""
    runs, skipped = [], []
    for run_dir in find_run_dirs(results_dir):
        try:
            runs.append(read_run(run_dir, evaluator))
        except SiteError as error:
            skipped.append(error.message)
    return runs, skipped


@dataclass(frozen=True)
class Generated:
    pages: list[Path]
    runs: int
    charts: int
    skipped: list[str]
    bundle: Path | None = None  # the bundle being made by the side renderer, if it was stale
    drawn: list[tuple[RunData, list[ChartSpec], PendingSvgs]] = field(default_factory=list)


Progress = Callable[[str], None]


def _silent(message: str) -> None:
    return None


def generate_pages(results_dir: Path, docs_dir: Path, evaluator: Evaluator | None,
                   slo_dir: Path | None = None, commands: Sequence[CommandHelp] = (),
                   renderer: SideRenderer | None = None, options: SiteOptions | None = None,
                   progress: Progress = _silent) -> Generated:
    """Write every generated page into ``docs_dir``'s runs/ and generated/ folders;
    ``progress`` hears of each page group as it is done.

    vl-convert's work (the bundle, the SVGs) goes to ``renderer``; without one it is done
    here before returning."""
    own = renderer is None
    renderer = renderer or SideRenderer(in_process=True)
    runs_root, generated = docs_dir / "runs", docs_dir / "generated"
    _fresh_dir(runs_root)
    _fresh_dir(generated, keep=("assets",))
    job = bundle_job(generated / "assets")
    if job is not None:  # first: the one job mkdocs must wait for
        renderer.submit(job)
    runs, skipped = read_runs(results_dir, evaluator)
    progress(f"read {len(runs)} run(s) from {results_dir}" + (f", {len(skipped)} skipped" if skipped else ""))
    slugs = [run.slug for run in runs]
    if len(set(slugs)) != len(slugs):
        raise SiteError(f"two run folders map to the same page name: {sorted(slugs)}",
                        "rename one of the run folders under results/")
    pages, chart_count, drawn = [], 0, []
    for index, run in enumerate(runs, start=1):
        page, charts, pending = _run_pages(run, runs_root, renderer)
        pages.append(page)
        chart_count += len(charts)
        drawn.append((run, charts, pending))
        progress(f"run page {index}/{len(runs)}: {run.slug} ({len(charts)} charts)")
    slo_docs, slo_downloads = _slo_pages(slo_dir or results_dir / "slo", generated)
    release = release_decision(runs, options or SiteOptions())
    pages += [
        _write(generated / HOME_FRAGMENT, render_home(release)),
        _write(generated / "overview.md", render_overview(runs, skipped)),
        _write(generated / "comparison.md", render_comparison(runs)),
        _write(generated / "slo.md", render_slo(slo_docs, slo_downloads)),
        _write(generated / "completion.md", render_completion(runs, slo_docs, release)),
        _write(generated / "reference.md", render_reference(docs_dir.parent / "runspecs" / "demo.yaml", commands)),
    ]
    progress(f"overview, comparison, SLO ({len(slo_docs)} document(s)), completion and reference pages")
    made = Generated(pages, len(runs), chart_count, skipped, None if job is None else Path(job["path"]), drawn)
    if own:
        finish_drawing(made, renderer, docs_dir, None)
    return made


def finish_drawing(made: Generated, renderer: SideRenderer, docs_dir: Path, site_dir: Path | None) -> None:
    """Wait for the SVGs, record them in each run's charts/index.json, then write each run's
    one-file report (which inlines them) beside its page, in site_src/ and, once mkdocs has
    built it, in site/."""
    answers = renderer.close()
    for run, charts, pending in made.drawn:
        pending.finish(answers)
        html = render_one_file(run, charts, pending.index_path.parent)
        targets = [docs_dir / "runs" / run.slug] + ([site_dir / "runs" / run.slug] if site_dir else [])
        for folder in targets:
            if folder.is_dir():
                (folder / ONE_FILE_NAME).write_text(html, encoding="utf-8")


def build_site(results_dir: Path, repo_root: Path, *, strict: bool = True, site_url: str | None = None,
               slo_dir: Path | None = None, evaluator: Evaluator | None | object = _USE_DEFAULT,
               commands: Sequence[CommandHelp] = (), options: SiteOptions | None = None,
               progress: Progress = _silent) -> BuildResult:
    """Generate the pages from every run under ``results_dir`` and build ``repo_root/site``.

    ``site_url`` overrides mkdocs.yml's (the address the site is served from: Material's
    instant navigation only intercepts links on that host and port). ``slo_dir`` holds the
    finalized SLO documents (default ``results_dir/slo``). ``commands`` fills the reference
    page's command section (the CLI passes ``cli.command_reference()``). ``options`` names
    the runs that count for the release decision (default: every run not tagged test/import).
    ``progress`` gets one line per page group and before mkdocs runs (a build takes seconds
    to minutes).

    Raises ``SiteError`` listing mkdocs' warnings when ``strict`` and any was emitted.
    """
    started = time.perf_counter()
    config = repo_root / "mkdocs.yml"
    if not config.is_file():
        raise SiteError(f"no mkdocs.yml in {repo_root}", "run phase5site build from the repository root")
    if not results_dir.is_dir():
        raise SiteError(f"results folder {results_dir} does not exist", "pass --results-dir, or run a spec first")
    chosen = default_evaluator() if evaluator is _USE_DEFAULT else evaluator
    site_dir, docs_dir = repo_root / SITE_DIR, repo_root / DOCS_DIR
    renderer = SideRenderer()
    try:
        made = generate_pages(results_dir, docs_dir, chosen, slo_dir, commands,  # type: ignore[arg-type]
                              renderer, options, progress)
        if made.bundle is not None:
            answer = renderer.wait_for(made.bundle)
            if not answer.get("ok"):
                raise SiteError(f"cannot write the chart bundle {made.bundle}: {answer.get('error')}",
                                "check that vl-convert-python is installed and the folder is writable")
        progress(f"mkdocs build of {len(made.pages)} generated pages into {site_dir}")
        warnings = run_mkdocs(config, site_dir, strict=strict, site_url=site_url)
        finish_drawing(made, renderer, docs_dir, site_dir)
    except OSError as error:  # e.g. site/ or site_src/runs is a file, or the disk is full
        raise SiteError(f"cannot write the site: {error}",
                        f"check that {docs_dir} and {site_dir} are writable folders") from error
    finally:
        renderer.abort()
    return BuildResult(site_dir, made.runs, made.pages, made.charts, warnings,
                       time.perf_counter() - started, made.skipped)
