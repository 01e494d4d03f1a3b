"""`validate` and `schema` through click's CliRunner: exact output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from phase5site import __version__
from phase5site.cli import cli

ROOT = Path(__file__).parents[2]
RUNSPECS = ROOT / "runspecs"
PROD_ENV = {
    "LOAD_BASE_URL": "https://metasheet.example.internal",
    "PROD_JWT": "eyJgenerated.test.token",
    "PROD_JWT_2": "eyJgenerated.second.user",
    "PROD_ADMIN_JWT": "eyJgenerated.admin.user",
    "SNAPSHOT_VIEW_ID": "0b6c1a52-5c1e-4d7e-9a51-3f4f1c7d2e10",
    "METRICS_URL": "http://prometheus.example.internal:9090",
}


def invoke(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None):
    runner = CliRunner()
    environment = {name: None for name in PROD_ENV} | (env or {})
    return runner.invoke(cli, args, env=environment, catch_exceptions=False)


def test_version() -> None:
    result = invoke(["--version"])
    assert result.exit_code == 0
    assert result.output == f"phase5site, version {__version__}\n"


def test_validate_demo_prints_plan() -> None:
    result = invoke(["validate", str(RUNSPECS / "demo.yaml")])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[1] == "Run:      demo"
    assert " 1  warmup           20/s         5        5s            -        100  no" in lines
    assert (
        " 2  baseline         80/s        20       36s      12 x 3s       2880  server (scrape) + client"
        in lines
    )
    assert "Total:    57s of load, 4260 requests expected" in lines
    assert "Secrets:  none" in lines


def test_validate_day1_without_env_names_the_variable_and_line() -> None:
    result = invoke(["validate", str(RUNSPECS / "day1.yaml")])
    assert result.exit_code == 2
    first = result.output.splitlines()[0]
    assert first == (
        f"Error: {RUNSPECS / 'day1.yaml'}:29:13: target.base_url: "
        "environment variable LOAD_BASE_URL is not set"
    )
    assert "Traceback" not in result.output


def test_validate_day1_with_env() -> None:
    result = invoke(["validate", str(RUNSPECS / "day1.yaml")], env=PROD_ENV)
    assert result.exit_code == 0
    assert " 2  baseline         80/s        20        2h     12 x 10m     576000  server (prometheus) + client" in result.output
    assert "Total:    2h10m of load, 588000 requests expected" in result.output
    assert "eyJgenerated.test.token" not in result.output


def test_validate_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env.phase5"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in PROD_ENV.items()))
    result = invoke(["validate", str(RUNSPECS / "day2.yaml"), "--env-file", str(env_file)])
    assert result.exit_code == 0, result.output
    assert "skipped (disabled)" in result.output


def test_validate_phase_selection() -> None:
    result = invoke(["validate", str(RUNSPECS / "day2.yaml"), "--phase", "fallback"], env=PROD_ENV)
    assert result.exit_code == 0
    assert "Total:    30m of load, 144000 requests expected" in result.output


def test_validate_unknown_phase_is_usage_error() -> None:
    result = invoke(["validate", str(RUNSPECS / "demo.yaml"), "--phase", "nope"])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: --phase 'nope' is not a phase of {RUNSPECS / 'demo.yaml'}\n"
        "Hint: Phases are: warmup, baseline, extended.\n"
    )


def test_validate_bad_spec_exit_2() -> None:
    path = ROOT / "tests" / "runspec_corpus" / "bad" / "rate_negative.yaml"
    result = invoke(["validate", str(path)])
    assert result.exit_code == 2
    assert result.output == f"Error: {path}:8:28: phases[1].rate: must be > 0 (got -3)\n"


def test_schema_is_valid_json_schema_and_accepts_shipped_specs() -> None:
    result = invoke(["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    yaml = YAML(typ="safe")
    demo = yaml.load((RUNSPECS / "demo.yaml").read_text())
    assert list(validator.iter_errors(demo)) == []
    broken = dict(demo, phasess=[])
    assert [e.message for e in validator.iter_errors(broken)] == [
        "Additional properties are not allowed ('phasess' was unexpected)"
    ]


@pytest.mark.parametrize("duration", ["10m", "2h5m", 600, "1.5s"])
def test_schema_accepts_duration_forms(duration: object) -> None:
    schema = json.loads(invoke(["schema"]).output)
    phase = {"name": "a", "rate": 1, "concurrency": 1, "duration": duration}
    spec = {"version": 1, "name": "x", "target": {"embedded": {}}, "phases": [phase]}
    jsonschema.validate(spec, schema, cls=jsonschema.Draft202012Validator)


def test_every_command_has_a_docstring_with_an_example() -> None:
    for name, command in cli.commands.items():
        commands = getattr(command, "commands", {name: command})
        for sub_name, sub in commands.items():
            assert sub.help and "Example:" in sub.help, f"{name} {sub_name} lacks an Example"
            for param in sub.params:
                if param.param_type_name == "option" and param.name not in ("help",):
                    assert getattr(param, "help", None), f"{name} {sub_name} --{param.name} lacks help"


HUGE = """version: 1
name: huge
target: {embedded: {}}
phases:
  - {name: warmup, rate: 20, concurrency: 5, duration: 10m}
  - {name: soak, rate: 100000, concurrency: 10000, duration: 7d}
"""


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_run_this_machine_cannot_hold_is_refused_with_the_number(tmp_path: Path, command: str) -> None:
    """Within every bound, yet 60 billion requests: 3.5 TiB to judge, more than any host here."""
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE)
    args = [command, str(spec)] + (["--results-dir", str(tmp_path / "results")] if command == "run" else [])
    result = invoke(args)
    assert result.exit_code == 2
    assert result.output.startswith(
        f"Error: {spec}:6:5: phases[1]: the run would need about 3.5 TiB of memory, more than the ")
    assert "of this machine: phase soak expects 60,480,000,000 requests" in result.output
    assert not (tmp_path / "results").exists()


def test_validate_prints_the_memory_the_run_needs() -> None:
    result = invoke(["validate", str(RUNSPECS / "demo.yaml")])
    memory = [line for line in result.output.splitlines() if line.startswith("Memory:")]
    assert memory[0].startswith("Memory:   about 259.9 MiB at most (phase baseline: 2880 requests, "
                                "20 in flight, up to 10000 waiting); this machine has ")
