"""The runner against a real loopback server (no embedded target): files, rows, samples,
outcomes over real sockets, allow_hosts refusal, drops, secrets never written."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from phase5site.engine import run_spec
from phase5site.errors import HostNotAllowed
from phase5site.runspec import parse_spec_text
from phase5site.store import RunReader

from .helpers import fake_token
from .loopback import LoopbackServer, free_port


def _spec(base_url: str, *, requests: str, phases: str, extra: str = "", timeout: str = "5s"):
    token = fake_token()
    text = f"""
version: 1
name: loopback-test
target:
  base_url: {base_url}
  allow_hosts: [127.0.0.1]
  auth: {{bearer: "${{TEST_JWT}}"}}
  timeout: {timeout}
  requests:
{requests}
{extra}
phases:
{phases}
"""
    return parse_spec_text(text, "loopback.yaml", {"TEST_JWT": token}), token


def test_outcomes_over_real_sockets_samples_files_and_no_secret(tmp_path: Path) -> None:
    with LoopbackServer(delay_s=2.0) as server:
        requests = "\n".join(
            f"    - {{name: {name}, path: {path}, weight: 1}}"
            for name, path in [("ok", "/ok"), ("missing", "/missing"), ("fail", "/fail"),
                               ("slow", "/slow")]
        )
        loaded, token = _spec(
            server.base_url, requests=requests, timeout="0.3s",
            extra="circuit_breaker: {enabled: false}",
            phases="  - {name: warm, rate: 20, concurrency: 4, duration: 0.5, observe: false}\n"
                   "  - {name: main, rate: 40, concurrency: 8, samples: 2, interval: 1s}",
        )
        outcome = run_spec(loaded, results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    reader = RunReader(outcome.run_dir)
    assert reader.run()["status"] == "completed"
    counts = reader.outcome_counts("main")
    assert set(counts) >= {"ok", "http_4xx", "http_5xx", "timeout"}
    assert reader.request_count("main") == 80 and reader.request_count("warm") == 10
    assert all(h.get("authorization") == f"Bearer {token}" for h in server.headers_seen)
    samples = reader.samples(phase="main")
    assert [s["sample_num"] for s in samples] == [1, 2]
    assert {s["source"] for s in samples} == {"none"}
    assert all(s["http_success_rate"] is None for s in samples)
    assert sum(s["client_requests"] for s in samples) == 80
    assert reader.samples(phase="warm") == []
    csv_lines = (outcome.run_dir / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith("timestamp,http_success_rate")
    for name in ("metadata.json", "load.log", "observe.log", "status.json", "run.duckdb"):
        assert (outcome.run_dir / name).exists(), name
    assert "metrics source none" in (outcome.run_dir / "observe.log").read_text()
    first_errors = {e["data"]["outcome"] for e in reader.events(kind="error")}
    assert first_errors == {"http_4xx", "http_5xx", "timeout"}
    for path in outcome.run_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_refused_port_is_a_connect_error_with_its_message(tmp_path: Path) -> None:
    loaded, _ = _spec(
        f"http://127.0.0.1:{free_port()}", requests="    - {name: ok, path: /ok}",
        extra="circuit_breaker: {enabled: false}",
        phases="  - {name: main, rate: 20, concurrency: 2, duration: 0.5, observe: false}",
    )
    outcome = run_spec(loaded, results_dir=tmp_path)
    with RunReader(outcome.run_dir) as reader:
        counts = reader.outcome_counts()
        rows = reader.con.execute("SELECT error, bytes_sent FROM requests").fetchall()
        (stats,) = reader.endpoint_stats()
    assert {k: v for k, v in counts.items() if v} == {"connect_error": 10}
    messages = {error for error, _ in rows}
    assert len(messages) == 1 and messages.pop().startswith("ConnectionRefusedError: [Errno 111] ")
    assert {sent for _, sent in rows} == {0}  # no connection, nothing written
    (group,) = stats["transport"]
    assert (group["kind"], group["count"], group["distinct_messages"]) == ("connect_error", 10, 1)
    assert group["message"] == rows[0][0]
    assert (stats["bytes_sent"], stats["bytes_sent_na"]) == (0, None)


@pytest.mark.parametrize("client", ["httptools", "httpx"])
def test_reset_and_timeout_messages_are_stored_grouped_and_bytes_sent_match_the_server(
        tmp_path: Path, client: str) -> None:
    requests = "\n".join([
        "    - {name: ok, path: '/ok?sig=${TEST_JWT}', weight: 1}",
        "    - {name: post, method: POST, path: /ok, json: {item: 7, tags: [a, b]}, weight: 1}",
        "    - {name: reset, path: '/reset?sig=${TEST_JWT}', weight: 1}",
        "    - {name: slow, path: /slow, weight: 1}",
    ])
    with LoopbackServer(delay_s=3.0) as server:
        loaded, token = _spec(
            server.base_url, requests=requests, timeout="0.3s",
            extra="circuit_breaker: {enabled: false}",
            phases="  - {name: main, rate: 40, concurrency: 8, duration: 1, observe: false}",
        )
        spec = loaded.spec.model_copy(update={"target": loaded.spec.target.model_copy(update={"client": client})})
        loaded = type(loaded)(spec=spec, path=loaded.path, secrets=loaded.secrets, sha256=loaded.sha256,
                              env_refs={}, secret_paths=())
        outcome = run_spec(loaded, results_dir=tmp_path)
        read_by_path = Counter()
        for path, n in server.request_bytes:
            read_by_path[path] += n
    assert outcome.status == "completed", outcome.exit_reason
    with RunReader(outcome.run_dir) as reader:
        rows = reader.con.execute(
            "SELECT request_name, outcome, error, bytes_sent, intended_at, seq FROM requests").fetchall()
        stats = {row["name"]: row for row in reader.endpoint_stats()}
    by_name: dict[str, list[tuple]] = {}
    for row in sorted(rows, key=lambda r: (r[4], r[5])):
        by_name.setdefault(row[0], []).append(row)
    # every reset is a connect_error saying so, every stall a timeout saying where it stood
    assert {r[1] for r in by_name["reset"]} == {"connect_error"}
    assert all("ConnectionResetError" in r[2] and "reset by peer" in r[2] for r in by_name["reset"])
    assert {r[1] for r in by_name["slow"]} == {"timeout"}
    assert all(r[2].startswith("no complete answer within 0.3 s: ") for r in by_name["slow"])
    assert all(r[2] is None for name in ("ok", "post") for r in by_name[name])
    # grouped per name and kind, the example the first request with its message
    for name, kind in (("reset", "connect_error"), ("slow", "timeout")):
        (group,) = stats[name]["transport"]
        first = by_name[name][0]
        assert (group["kind"], group["count"]) == (kind, len(by_name[name]))
        assert (group["example_seq"], group["message"]) == (first[5], first[2])
        assert group["distinct_messages"] == len({r[2] for r in by_name[name]})
    assert not stats["ok"]["transport"] and not stats["post"]["transport"]
    if client == "httptools":
        # what the client says it wrote is what the server read off the socket, per route
        written = Counter()
        for name, _, _, sent, _, _ in rows:
            written["/" + {"ok": "ok", "post": "ok", "reset": "reset", "slow": "slow"}[name]] += sent
        assert written == read_by_path
        assert sum(stats[name]["bytes_sent"] for name in stats) == sum(read_by_path.values())
    else:  # httpx does not say what it writes: NA with the reason, never a guess
        assert {r[3] for r in rows} == {None}
        assert all(row["bytes_sent"] is None and "httpx" in row["bytes_sent_na"] for row in stats.values())
    for path in outcome.run_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_host_not_in_allow_hosts_sends_nothing(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        loaded, _ = _spec(server.base_url, requests="    - {name: ok, path: /ok}",
                          phases="  - {name: main, rate: 50, concurrency: 2, duration: 1}")
        # The model refuses it at load time; the runner refuses it again before a byte,
        # whatever path produced the spec.
        spec = loaded.spec.model_copy(update={"target": loaded.spec.target.model_copy(
            update={"allow_hosts": ["api.example.internal"]})})
        refused = type(loaded)(spec=spec, path=loaded.path, secrets=loaded.secrets,
                               sha256=loaded.sha256, env_refs={}, secret_paths=())
        with pytest.raises(HostNotAllowed, match="127.0.0.1"):
            run_spec(refused, results_dir=tmp_path)
    assert server.request_count == 0
    assert list(tmp_path.iterdir()) == []


def test_concurrency_one_and_a_slow_route_drops_and_counts_without_stalling(tmp_path: Path) -> None:
    with LoopbackServer(delay_s=0.25) as server:
        loaded, _ = _spec(server.base_url, requests="    - {name: slow, path: /slow}",
                          extra="circuit_breaker: {enabled: false}",
                          phases="  - {name: main, rate: 20, concurrency: 1, samples: 1, interval: 3s}")
        outcome = run_spec(loaded, results_dir=tmp_path)
    reader = RunReader(outcome.run_dir)
    counts = Counter(reader.outcome_counts("main"))
    assert outcome.status == "completed"
    assert reader.request_count("main") == 60  # every intended request has a row
    assert counts["dropped"] > 0 and counts["ok"] > 0
    phase = reader.phases()[0]
    assert phase["dropped"] == counts["dropped"]
    assert [e for e in reader.events(kind="drops")]
    (sample,) = reader.samples(phase="main")
    assert sample["dropped"] == counts["dropped"]


def test_a_secret_in_the_metrics_url_never_reaches_the_stored_na_reasons(tmp_path: Path) -> None:
    # A scrape URL that carries a secret (?token=${SCRAPE_TOKEN}) and cannot be reached: the
    # source's NA reasons name the URL, and the site publishes the samples' NA reasons.
    secret = fake_token()
    with LoopbackServer() as server:
        text = f"""
version: 1
name: secret-url
target:
  base_url: {server.base_url}
  allow_hosts: [127.0.0.1]
  requests: [{{name: ok, path: /ok}}]
metrics:
  source: scrape
  scrape_url: "http://127.0.0.1:{free_port()}/metrics?token=${{SCRAPE_TOKEN}}"
circuit_breaker: {{enabled: false}}
phases:
  - {{name: main, rate: 20, concurrency: 2, samples: 1, interval: 1s}}
"""
        loaded = parse_spec_text(text, "secret-url.yaml", {"SCRAPE_TOKEN": secret})
        assert secret in loaded.secrets
        outcome = run_spec(loaded, results_dir=tmp_path)
    with RunReader(outcome.run_dir) as reader:
        (sample,) = reader.samples(phase="main")
        reasons = sample["na_reasons"]
    assert reasons and "scrape of" in reasons["http_success_rate"]
    assert not [reason for reason in reasons.values() if secret in reason]
    for path in outcome.run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_client_columns_wait_for_requests_queued_behind_a_slow_service(tmp_path: Path) -> None:
    # One slot, 0.4 s per request, 4 req/s: window 1's last requests wait in the backlog and
    # are sent during window 2, long after window 1 ended and after timeout + 1 s. They are
    # window 1's slowest; its client columns must include them (no coordinated omission).
    # Window 2's requests are still waiting when the phase's time is up: dropped, with rows.
    with LoopbackServer(delay_s=0.4) as server:
        loaded, _ = _spec(server.base_url, requests="    - {name: slow, path: /slow}",
                          timeout="1s", extra="circuit_breaker: {enabled: false}",
                          phases="  - {name: main, rate: 4, concurrency: 1, samples: 2, interval: 4s}")
        outcome = run_spec(loaded, results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    with RunReader(outcome.run_dir) as reader:
        counts = Counter(reader.outcome_counts("main"))
        first, second = reader.samples(phase="main")
        rows = reader.con.execute(
            "SELECT latency_ms FROM requests WHERE outcome <> 'dropped' AND intended_at < ? "
            "ORDER BY latency_ms", [first["window_end"]]).fetchall()
    window_1 = [latency for (latency,) in rows]
    assert counts["dropped"] > 0 and sum(counts.values()) == 32  # every intended request has a row
    assert len(window_1) == 16 and max(window_1) > 2000  # queued well past timeout + 1 s
    assert first["client_p99_ms"] == max(window_1)
    # Window 2's requests were never sent: dropped, and they count in its client figures.
    assert first["client_requests"] == second["client_requests"] == 16
    assert second["dropped"] > 0 and second["client_success_rate"] < 1
    assert "client columns exclude" not in (outcome.run_dir / "observe.log").read_text()


def test_a_broken_progress_display_does_not_stop_the_load(tmp_path: Path) -> None:
    # `phase5site run spec | head` closes stdout: the display fails, the measurement goes on.
    class ClosedPipe:
        calls = 0

        def update(self, status: dict) -> None:
            ClosedPipe.calls += 1
            raise BrokenPipeError(32, "Broken pipe")

    with LoopbackServer() as server:
        loaded, _ = _spec(server.base_url, requests="    - {name: ok, path: /ok}",
                          phases="  - {name: main, rate: 20, concurrency: 2, duration: 2.5, observe: false}")
        outcome = run_spec(loaded, results_dir=tmp_path, progress=ClosedPipe())
    assert outcome.status == "completed", outcome.exit_reason
    assert ClosedPipe.calls == 1  # not called again once it failed
    with RunReader(outcome.run_dir) as reader:
        assert reader.outcome_counts("main")["ok"] == 50
    assert "progress display failed" in (outcome.run_dir / "load.log").read_text()


def test_sigint_while_the_run_is_being_set_up_is_an_interrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C while the run folder and its database are being created (before any load):
    # the run must end 'interrupted' by SIGINT, not 'failed' with a KeyboardInterrupt.
    import os
    import signal

    from phase5site.engine import runner

    capture = runner.Run._environment

    def environment_then_ctrl_c(self, started_at):  # noqa: ANN001, ANN202
        os.kill(os.getpid(), signal.SIGINT)
        return capture(self, started_at)

    monkeypatch.setattr(runner.Run, "_environment", environment_then_ctrl_c)
    with LoopbackServer() as server:
        loaded, _ = _spec(server.base_url, requests="    - {name: ok, path: /ok}",
                          phases="  - {name: main, rate: 20, concurrency: 2, duration: 2, observe: false}")
        try:
            outcome = run_spec(loaded, results_dir=tmp_path)
        except KeyboardInterrupt:
            pytest.fail("KeyboardInterrupt escaped run_spec")
    assert (outcome.status, outcome.signal) == ("interrupted", signal.SIGINT)
    with RunReader(outcome.run_dir) as reader:
        assert reader.run()["status"] == "interrupted"
        assert [e["kind"] for e in reader.events(kind="signal")] == ["signal"]
    assert server.request_count == 0
