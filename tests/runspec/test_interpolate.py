from __future__ import annotations

import pytest

from phase5site.runspec.interpolate import Interpolated, UnsetVariable, interpolate, is_secret_name

ENV = {"HOST": "db.internal", "EMPTY": "", "PORT": "5432", "PROD_JWT": "eyJ.a.b", "API_KEY": "k1"}


@pytest.mark.parametrize(
    ("text", "value", "references"),
    [
        ("plain", "plain", ()),
        ("${HOST}", "db.internal", ("HOST",)),
        ("http://${HOST}:${PORT}/x", "http://db.internal:5432/x", ("HOST", "PORT")),
        ("${MISSING:-fallback}", "fallback", ("MISSING",)),
        ("${EMPTY:-fallback}", "fallback", ("EMPTY",)),  # shell semantics: empty uses default
        ("${EMPTY}", "", ("EMPTY",)),
        ("${MISSING:-}", "", ("MISSING",)),
        ("${HOST:-ignored}", "db.internal", ("HOST",)),
        ("$$", "$", ()),
        ("$${HOST}", "${HOST}", ()),
        ("cost: $$5 at ${HOST}", "cost: $5 at db.internal", ("HOST",)),
        ("$HOST", "$HOST", ()),  # only the braced form interpolates
        ("${MISSING:-a b c}", "a b c", ("MISSING",)),
    ],
)
def test_interpolation_table(text: str, value: str, references: tuple[str, ...]) -> None:
    result = interpolate(text, ENV)
    assert result.value == value
    assert result.references == references


def test_unset_variable_names_it() -> None:
    with pytest.raises(UnsetVariable) as caught:
        interpolate("x ${HOST} ${NOT_THERE} ${ALSO_NOT}", ENV)
    assert caught.value.name == "NOT_THERE"


@pytest.mark.parametrize(
    ("name", "secret"),
    [("PROD_JWT", True), ("API_KEY", True), ("DB_PASSWORD", True), ("GH_TOKEN", True),
     ("client_secret", True), ("LOAD_BASE_URL", False), ("METRICS_URL", False)],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_secret_values_are_reported() -> None:
    assert interpolate("Bearer ${PROD_JWT} ${HOST}", ENV) == Interpolated(
        "Bearer eyJ.a.b db.internal", ("PROD_JWT", "HOST"), ("eyJ.a.b",)
    )


def test_interpolation_inside_nested_lists(tmp_path) -> None:
    from phase5site.runspec import parse_spec_text

    loaded = parse_spec_text(
        "version: 1\nname: x\n"
        "target:\n  base_url: http://${H}:8080\n  allow_hosts: [localhost, '${H}']\n"
        "  requests:\n    - {name: r, path: '/a/${SEG:-b}', headers: {X-Tag: '$${literal}'}}\n"
        "phases: [{name: a, rate: '${RATE:-5}', concurrency: 1, duration: '${D}'}]\n",
        "t.yaml",
        {"H": "127.0.0.1", "D": "2s"},
    )
    spec = loaded.spec
    assert spec.target.allow_hosts == ["localhost", "127.0.0.1"]
    assert spec.target.requests[0].path == "/a/b"
    assert spec.target.requests[0].headers == {"X-Tag": "${literal}"}
    assert spec.phases[0].rate == 5.0 and spec.phases[0].duration == 2.0
    assert loaded.env_refs == {"H": 4, "SEG": 7, "RATE": 8, "D": 8}
