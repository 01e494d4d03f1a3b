"""The malformed-spec corpus: every file in tests/runspec_corpus/bad fails with exactly this message.

Each message is `LINE:COL: key.path: problem`, prefixed by the file path when printed. Each
file goes through what `validate` does: load, then plan on a machine of 8 GiB (so that the
memory check gives the same answer everywhere).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phase5site.errors import SpecError
from phase5site.runspec import load_spec
from phase5site.runspec.plan import build_plan

BAD = Path(__file__).parent.parent / "runspec_corpus" / "bad"
MACHINE_BYTES = 8 * 1024**3

EXPECTED: dict[str, list[str]] = {
    'base_url_and_embedded': ['4:3: target: give exactly one of base_url or embedded'],
    'base_url_backslash': ["4:13: target.base_url: must not contain a backslash: URL parsers disagree on what it means (a browser reads it as '/'); write '/' or %5C (got 'http://evil.example\\\\@127.0.0.1:8080/')"],
    'base_url_not_http': ["4:3: target: base_url must be an http(s) URL with a host (got 'ftp://127.0.0.1/')"],
    'base_url_port_out_of_range': ["4:13: target.base_url: port must be a number from 1 to 65535 (got '99999')"],
    'breaker_window_bad': ["6:27: circuit_breaker.window: must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got 'soon')"],
    'concurrency_float': ['6:42: phases[0].concurrency: must be a whole number (got 2.5)'],
    'concurrency_huge': ['6:42: phases[0].concurrency: must be at most 10000 in flight (got 1000000000)'],
    'concurrency_zero': ['6:42: phases[0].concurrency: must be >= 1 (got 0)'],
    'duplicate_phase': ["8:12: phases[1].name: phase names must be unique ('baseline' is used before)"],
    'duration_bad_unit': ["6:55: phases[0].duration: must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got '10 minutes')"],
    'duration_disagrees': ['6:10: phases[0]: duration (30s) disagrees with samples x interval (20s)'],
    'duration_huge': ['6:55: phases[0].duration: must be at most 7d (got 1e+12s)'],
    'duration_infinite': ["6:55: phases[0].duration: must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got 'inf')"],
    'duration_negative': ['6:55: phases[0].duration: must not be negative (got -5)'],
    'empty_file': ['1:1: spec: must be a mapping of keys such as version, name, target, phases (got empty)'],
    'empty_phases': ['6:9: phases: must have at least 1 item(s)'],
    'fault_unknown_kind': ["5:21: target.embedded.faults[0].kind: must be one of 'error_burst', 'latency_stall', 'outage' or 'memory_growth' (got 'meteor')"],
    'header_name_not_token': ["7:52: target.requests[0].headers.X Trace: header name must be an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~ (got 'X Trace')"],
    'header_too_large': ['10:9: target.requests[0].headers: must be at most 16384 bytes on the wire in all, as Node.js accepts (got 20035 bytes)'],
    'header_value_crlf': ["7:61: target.requests[0].headers.X-Trace: header value must not contain CR, LF, NUL or other control characters (found '\\r' (U+000D) at position 1)"],
    'header_value_not_latin1': ["7:61: target.requests[0].headers.X-Trace: header value must be Latin-1 text, as HTTP/1.1 sends it (found '€' (U+20AC) at position 6)"],
    'header_value_nul': ["7:61: target.requests[0].headers.X-Trace: header value must not contain CR, LF, NUL or other control characters (found '\\x00' (U+0000) at position 1)"],
    'host_not_allowed': ["4:3: target: host 'api.example.com' of base_url is not in allow_hosts (allowed: 127.0.0.1)"],
    'interval_bad': ["6:67: phases[0].interval: must be a duration such as 600, 600s, 10m, 2h5m or 1.5s (got '5x')"],
    'interval_huge': ['6:67: phases[0].interval: must be at most 1d (got 172800s)'],
    'metrics_bad_source': ["6:19: metrics.source: must be one of 'prometheus', 'scrape', 'both' or 'none' (got 'graphite')"],
    'metrics_prometheus_no_url': ["6:10: metrics: source 'prometheus' needs url (the Prometheus base URL)"],
    'memory_beyond_machine': ['8:5: phases[1]: the run would need about 103.3 GiB of memory, more than the 8.0 GiB of this machine: phase soak expects 1,728,000,000 requests (each read back to judge it), 500 in flight and up to 300,000 waiting; lower its rate x duration, its concurrency or target.max_backlog, or split it into several runs'],
    'metrics_url_port_zero': ["6:36: metrics.url: port must be a number from 1 to 65535 (got '0')"],
    'slo_not_required_without_justification': ['7:21: slo.categories.cache_hit_rate: required: false needs a justification: say why this load cannot or need not exercise the category (it is printed next to the category)'],
    'slo_unknown_category': ["7:5: slo.categories: unknown category 'cache_rate' (known: success_rate, error_rate, latency_p95, latency_p99, effective_fallback, memory, cache_hit_rate, plugin_reload_success, snapshot_success)"],
    'missing_phases': ['1:1: phases: required key is missing'],
    'missing_version': ['1:1: version: required key is missing'],
    'no_allow_hosts': ["4:3: target: host '127.0.0.1' of base_url is not in allow_hosts (allowed: none)"],
    'no_duration': ['6:10: phases[0]: give duration, or samples and interval'],
    'no_target_kind': ['4:3: target: give exactly one of base_url or embedded'],
    'observe_not_bool': ["6:68: phases[0].observe: must be true or false (got 'maybe')"],
    'observe_number': ['6:68: phases[0].observe: must be true or false (got 1)'],
    'path_bad_percent': ["7:27: target.requests[0].path: '%' must start a percent-encoded byte such as %20 or %25 for '%' itself (found '%' at position 11)"],
    'path_crlf': ["7:27: target.requests[0].path: must not contain whitespace or control characters; write a space as %20 (found '\\r' (U+000D) at position 13)"],
    'path_not_ascii': ["7:27: target.requests[0].path: must be percent-encoded outside RFC 3986 characters: write '/api/v2/caf%C3%A9' (got '/api/v2/café')"],
    'path_space': ["7:27: target.requests[0].path: must not contain whitespace or control characters; write a space as %20 (found ' ' (U+0020) at position 13)"],
    'phase_name_spaces': ["6:17: phases[0].name: must be letters, digits, '-', '_' or '.' (got 'my phase')"],
    'phases_not_list': ['6:9: phases: must be a list (got a mapping)'],
    'rate_boolean': ['6:26: phases[0].rate: must be a number, not true or false (got True)'],
    'rate_huge': ['6:26: phases[0].rate: must be at most 100000 requests/s (got 1e+09)'],
    'rate_infinite': ['6:26: phases[0].rate: must be a finite number (got inf)'],
    'rate_negative': ['8:28: phases[1].rate: must be > 0 (got -3)'],
    'rate_text': ["6:26: phases[0].rate: must be a number (got 'fast')"],
    'rate_zero': ['6:26: phases[0].rate: must be > 0 (got 0)'],
    'request_bad_method': ["7:29: target.requests[0].method: must be one of 'GET', 'POST', 'PUT', 'PATCH', 'DELETE' or 'HEAD' (got 'FETCH')"],
    'request_path_relative': ["7:27: target.requests[0].path: must start with '/' (got 'api/v2/hello')"],
    'request_weight_zero': ['7:50: target.requests[0].weight: must be > 0 (got 0)'],
    'samples_huge': ['6:54: phases[0].samples: must be at most 10000 (got 100000000)'],
    'samples_times_interval_huge': ['6:10: phases[0]: samples x interval must be at most 7d (got 3.6e+06s)'],
    'samples_without_interval': ['6:10: phases[0]: samples and interval go together'],
    'secret_header_unset': ['7:7: target.requests[0]: secret_headers names headers that are not set: X-Api-Key'],
    'secret_too_short': ['6:18: target.auth.bearer: a secret must be at least 8 characters long (got 3 character(s)): a shorter one cannot be hidden in logs and reports without garbling other text', '8:63: target.requests[0].headers.X-Api-Key: a secret must be at least 8 characters long (got 2 character(s) from SVC_API_KEY): a shorter one cannot be hidden in logs and reports without garbling other text'],
    'slo_ratio_above_one': ['6:25: slo.success_rate_min: must be <= 1 (got 98)'],
    'syntax_bad_indent': ['3:8: YAML syntax error: mapping values are not allowed here'],
    'syntax_duplicate_key': ['3:1: YAML syntax error: found duplicate key "name" with value "y" (original value: "x")'],
    'syntax_tab': ["7:1: YAML syntax error: found character '\\t' that cannot start any token"],
    'syntax_unclosed_flow': ["8:1: YAML syntax error: expected ',' or '}', but got '<stream end>'"],
    'top_level_list': ['1:1: spec: must be a mapping of keys such as version, name, target, phases (got a list)'],
    'unknown_flag': ['6:9: flags.COUNT_CACHE_MISS: unknown key (expected one of: COUNT_CACHE_MISS_AS_FALLBACK, ENABLE_PHASE5_INTERNAL, ENABLE_FALLBACK_TEST)'],
    'unknown_phase_key': ['7:54: phases[0].concurency: unknown key (expected one of: name, rate, concurrency, duration, samples, interval, observe, enabled, flags)'],
    'unknown_slo_key': ['6:7: slo.latency_p95: unknown key (expected one of: success_rate_min, error_rate_max, latency_p95_ms, latency_p99_ms, effective_fallback_max, rss_mean_mb_max, cache_hit_rate_min, plugin_reload_success_min, snapshot_success_min, min_valid_sample_share, categories)'],
    'unknown_target_key': ['6:3: target.timout: unknown key (expected one of: base_url, embedded, auth, allow_hosts, timeout, client, requests, workers, max_body_bytes, max_backlog, max_generator_lag)'],
    'unknown_top_key': ['7:1: phasess: unknown key (expected one of: version, name, description, tags, target, metrics, flags, slo, circuit_breaker, phases)'],
    'unset_variable': ['4:13: target.base_url: environment variable PHASE5_TEST_UNSET_URL is not set'],
    'unset_variable_in_list': ['5:28: target.allow_hosts[1]: environment variable PHASE5_TEST_UNSET_HOST is not set'],
    'wrong_version': ['1:10: version: must be one of 1 (got 2)'],
    'yaml_alias_bomb': ['9:45: x4[7]: YAML aliases stand for more than 10000 values (an alias bomb?); write the values out, or use fewer aliases'],
    'yaml_deep_nesting': ['5:70: deep: YAML nested deeper than 64 levels; a run spec needs a few'],
}


def test_corpus_is_large_and_complete() -> None:
    files = {path.stem for path in BAD.glob("*.yaml")}
    assert len(files) >= 30
    assert files == set(EXPECTED)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_bad_spec_message(stem: str) -> None:
    path = BAD / f"{stem}.yaml"
    with pytest.raises(SpecError) as caught:
        build_plan(load_spec(path, env={}), memory_limit_bytes=MACHINE_BYTES)
    assert caught.value.problems == [f"{path}:{message}" for message in EXPECTED[stem]]
    assert caught.value.exit_code == 2


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(
        "version: 1\n"
        "name: x\n"
        "target: {base_url: 'http://127.0.0.1:1', allow_hosts: [127.0.0.1]}\n"
        "phases:\n"
        "  - {name: a, rate: -1, concurrency: 0, duration: 1s}\n"
        "  - {name: b, rate: 1, concurrency: 1, duration: 1s, bogus: 1}\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(spec, env={})
    assert caught.value.problems == [
        f"{spec}:5:21: phases[0].rate: must be > 0 (got -1)",
        f"{spec}:5:38: phases[0].concurrency: must be >= 1 (got 0)",
        f"{spec}:6:54: phases[1].bogus: unknown key (expected one of: name, rate, concurrency, "
        "duration, samples, interval, observe, enabled, flags)",
    ]


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "nope.yaml", env={})
    assert str(caught.value).startswith(f"{tmp_path / 'nope.yaml'}: cannot read the run spec")


def test_yaml_merge_keys_are_read_and_located(tmp_path: Path) -> None:
    """'<<: *anchor' keys have no position of their own in ruamel: no KeyError traceback."""
    spec = tmp_path / "merge.yaml"
    spec.write_text(
        "version: 1\n"
        "name: x\n"
        "target: {embedded: {}}\n"
        "phases:\n"
        "  - &p {name: a, rate: -5, concurrency: 2, duration: 1s}\n"
        "  - <<: *p\n"
        "    name: b\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(spec, env={})
    assert caught.value.problems == [
        f"{spec}:5:24: phases[0].rate: must be > 0 (got -5)",
        f"{spec}:6:5: phases[1].rate: must be > 0 (got -5)",
    ]
    spec.write_text(spec.read_text().replace("rate: -5", "rate: 5"))
    assert [phase.name for phase in load_spec(spec, env={}).spec.phases] == ["a", "b"]
