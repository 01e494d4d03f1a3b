"""Issue 13, items 1-9: where each defect's test lives (``pytest -k item7`` finds the entry).

Items 1-3 have their tests here in tests/faults (``test_item1_*``, ``test_item2_*``,
``test_item3_*``); the others were fixed and tested beside the code they changed. Each test
named below fails on the behaviour the issue measured. ``test_item_N`` checks that its tests
still exist under those names (a rename must update this table and docs-dev/FAULTS.md), so
the matrix cannot silently point at nothing. Item 9 has a direct test as well.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent

ITEMS: dict[int, tuple[str, list[str]]] = {
    1: ("whole bodies buffered: 1 GiB -> MemoryError, run left running", [
        "faults/test_item1_body_limit.py::test_item1_a_body_beyond_max_body_bytes_is_body_too_large_and_the_connection_closes",
        "faults/test_item1_body_limit.py::test_item1_a_body_within_the_limit_is_counted_and_the_limit_is_exact",
        "faults/test_item1_body_limit.py::test_item1_a_run_against_a_server_of_huge_bodies_records_body_too_large_and_stays_small",
        "faults/test_item1_body_limit.py::test_item1_max_body_bytes_is_bounded_in_the_spec",
        "engine/test_httpclient.py::test_a_64_mib_body_is_counted_in_pieces_never_held",
    ]),
    2: ("+Inf/1e400/-5 from the service: OverflowError, 200 % error rate, CPU -166 %", [
        "faults/test_fault_matrix.py::test_prometheus_answering_impossible_values",
        "faults/test_fault_matrix.py::test_metrics_page_reading_impossible_values",
        "faults/test_item2_hostile_samples.py::test_item2_hostile_sample_rows_in_a_stored_run_report_summary_and_site_never_crash",
        "faults/test_item2_hostile_samples.py::test_item2_the_worst_hostile_run_builds_its_whole_site",
        "faults/test_item2_hostile_samples.py::test_item2_one_hostile_request_count_is_na_quoting_it",
        "reporting/test_hostile_samples.py::test_hostile_sample_rows_never_crash_report_summary_junit_json_or_site",
        "reporting/test_hostile_samples.py::test_impossible_values_in_every_sample_are_na_naming_the_value",
    ]),
    3: ("rows lost at a breaker stop; partial summary 0 % errors PASS", [
        "faults/test_item3_breaker_stop_rows.py::test_item3_a_breaker_stop_after_a_sample_boundary_loses_no_row",
    ]),
    4: ("GO on 1 of 6 valid server samples; PASS whose interval crosses the threshold", [
        "faults/test_fault_matrix.py::test_real_prometheus_stopped_mid_baseline_is_insufficient_data_and_no_go",
        "reporting/test_evidence_reports.py::test_a_server_source_lost_mid_phase_is_insufficient_data_in_the_report",
        "reporting/test_evidence_reports.py::test_not_significant_is_printed_in_report_json_junit_cli_and_site",
    ]),
    5: ("metrics URL outside allow_hosts; the load JWT sent there", [
        "faults/test_fault_matrix.py::test_metrics_page_on_a_host_outside_allow_hosts_is_refused_and_never_contacted",
        "faults/test_fault_matrix.py::test_the_runner_refuses_a_host_outside_allow_hosts_before_any_request",
        "faults/test_fault_matrix.py::test_the_load_jwt_never_reaches_a_metrics_page_on_another_allowed_host",
        "faults/test_fault_matrix.py::test_verify_reads_the_metrics_page_without_the_load_jwt",
    ]),
    6: ("spec validation gaps (bounds, wire syntax, YAML bombs)", [
        "runspec/test_bad_specs.py::test_bad_spec_message[rate_huge]",
        "runspec/test_bad_specs.py::test_bad_spec_message[duration_huge]",
        "runspec/test_bad_specs.py::test_bad_spec_message[samples_huge]",
        "runspec/test_bad_specs.py::test_bad_spec_message[concurrency_huge]",
        "runspec/test_bad_specs.py::test_bad_spec_message[header_too_large]",
        "runspec/test_bad_specs.py::test_bad_spec_message[header_value_not_latin1]",
        "runspec/test_bad_specs.py::test_bad_spec_message[header_value_crlf]",
        "runspec/test_bad_specs.py::test_bad_spec_message[path_crlf]",
        "runspec/test_bad_specs.py::test_bad_spec_message[base_url_port_out_of_range]",
        "runspec/test_bad_specs.py::test_bad_spec_message[rate_boolean]",
        "runspec/test_bad_specs.py::test_bad_spec_message[base_url_backslash]",
        "runspec/test_bad_specs.py::test_bad_spec_message[yaml_alias_bomb]",
        "runspec/test_bad_specs.py::test_bad_spec_message[yaml_deep_nesting]",
        "runspec/test_bad_specs.py::test_bad_spec_message[memory_beyond_machine]",
    ]),
    7: ("unclean ends: disk full, Ctrl-C, SIGKILL, SIGHUP, HTML login page, POST retried", [
        "engine/test_disk_full.py::test_a_disk_full_run_fails_with_one_line_keeps_its_rows_and_stays_reportable",
        "engine/test_cli_run.py::test_ctrl_c_during_the_pre_flight_exits_130_with_one_line",
        "engine/test_cli_run.py::test_a_second_ctrl_c_forces_the_stop_and_the_partial_summary_is_still_written",
        "engine/test_cli_run.py::test_status_says_crashed_when_the_runner_died_or_its_pid_went_to_another_process",
        "engine/test_cli_run.py::test_a_signal_mid_run_leaves_an_interrupted_readable_run_and_exits_128_plus_it",
        "ops/test_verify_live.py::test_a_page_that_is_not_exposition_text_served_as_the_metrics_page_is_a_fail",
        "engine/test_httpclient.py::test_a_stale_connection_retries_only_an_idempotent_request",
    ]),
    8: ("redaction garbles text with short secrets", [
        "runspec/test_secrets.py::test_a_secret_shorter_than_eight_characters_is_a_spec_error",
        "runspec/test_secrets.py::test_redaction_replaces_whole_secret_values_only",
        "runspec/test_secrets.py::test_redact_table",
    ]),
    9: ("test suite timing-sensitive", [
        "faults/test_items_index.py::test_item9_hypothesis_never_times_a_test",
        "engine/test_load_unit.py::test_every_intended_request_gets_one_row_with_outcome_and_times",
    ]),
}


def _exists(node: str) -> bool:
    """The test function of ``path::name[id]`` is defined in its file, and a corpus id
    names a spec of tests/runspec_corpus/bad."""
    path, _, name = node.partition("::")
    function, _, param = name.partition("[")
    text = (TESTS / path).read_text()
    if not re.search(rf"^def {re.escape(function)}\(", text, re.MULTILINE):
        return False
    if param and path == "runspec/test_bad_specs.py":
        return (TESTS / "runspec_corpus" / "bad" / f"{param.rstrip(']')}.yaml").is_file()
    return True


@pytest.mark.parametrize("item", sorted(ITEMS), ids=[f"item{n}" for n in sorted(ITEMS)])
def test_item_has_its_tests(item: int) -> None:
    _, nodes = ITEMS[item]
    missing = [node for node in nodes if not _exists(node)]
    assert not missing, f"item {item}: tests renamed or gone: {missing}"


def test_the_fault_matrix_document_covers_every_item() -> None:
    text = (REPO / "docs-dev" / "FAULTS.md").read_text()
    for item in ITEMS:
        assert re.search(rf"^\| {item} ", text, re.MULTILINE), f"docs-dev/FAULTS.md has no row for item {item}"


def test_item9_hypothesis_never_times_a_test() -> None:
    # What a property test checks is the property, never how fast this machine ran it.
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check
