"""Issue 13 item 3: nothing is lost when the circuit breaker stops a run just after a sample
boundary.

On an older main a breaker trip right after a sample boundary left the stored requests
short of what was sent (223 of 243; seq 220-239 missing; 1 of the 9 5xx stored) in 2 of 9
runs, and the partial summary said client error rate 0.000 % PASS while the exit reason
said "9 of 197 requests".

Here a server on 127.0.0.1 answers 200 to exactly one sample's worth of requests and 503 to
every later one, so the errors start at the first sample boundary and the breaker trips
soon after it. For several variants (workers, slots, where the failures start) one test
checks that every count agrees exactly: the phase_end event, the phases and requests
tables, the server's own tally, the breaker's trip, the exit reason and the partial
summary. Which request the stop catches in flight is the machine's timing; each assertion
holds for any timing (a request cancelled in flight is counted as such, never silently
missing).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from phase5site.engine import run_spec
from phase5site.reporting import write_report
from phase5site.reporting.write import evaluation_json
from phase5site.runspec import parse_spec_text
from phase5site.store import RunReader

from .hostile_server import FailAfterServer

RATE = 40
INTERVAL_S = 1
# (workers, concurrency, requests answered 200 before the 503s start)
VARIANTS = [(1, 1, RATE), (1, 4, RATE), (2, 2, RATE), (2, 4, RATE + 1), (1, 2, RATE + 3), (2, 6, RATE - 1)]


def _spec(base_url: str, workers: int, concurrency: int) -> object:
    text = f"""
version: 1
name: breaker-boundary
target:
  base_url: {base_url}
  allow_hosts: [127.0.0.1]
  timeout: 10s
  workers: {workers}
  requests:
    - {{name: only, path: /x}}
circuit_breaker: {{error_rate: 0.2, window: 30s, min_requests: 5}}
phases:
  - {{name: main, rate: {RATE}, concurrency: {concurrency}, samples: 20, interval: {INTERVAL_S}s}}
"""
    return parse_spec_text(text, "breaker-boundary.yaml", {})


def _check_one_run(tmp_path: Path, workers: int, concurrency: int, ok_count: int) -> str:
    """Run one variant and assert that its counts agree; returns a one-line account."""
    with FailAfterServer(ok_count) as server:
        outcome = run_spec(_spec(server.base_url, workers, concurrency),  # type: ignore[arg-type]
                           results_dir=tmp_path)
    answered = dict(server.answered)
    label = f"workers={workers} concurrency={concurrency} ok_count={ok_count}"
    assert outcome.status == "aborted", (label, outcome.exit_reason)
    reader = RunReader(outcome.run_dir)
    (phase_end,) = reader.events(kind="phase_end")
    end = phase_end["data"]
    (trip,) = reader.events(kind="breaker_trip")
    (phase_row,) = reader.phases()

    rows = reader.con.execute("SELECT seq, outcome, worker FROM requests WHERE phase = 'main'").fetchall()
    seqs = [seq for seq, _, _ in rows]
    stored = Counter(outcome_ for _, outcome_, _ in rows)
    sent_rows = sum(n for name, n in stored.items() if name != "dropped")

    # Each request is stored once, and the store says what the engine counted.
    assert len(seqs) == len(set(seqs)), (label, "a seq stored twice")
    assert dict(stored) == end["outcomes"], (label, dict(stored), end["outcomes"])
    assert phase_row["requests_sent"] == end["sent"] and phase_row["dropped"] == end["dropped"], label
    assert stored["dropped"] == end["dropped"], label
    # sent = stored with an answer + cancelled in flight by the stop (no answer to store).
    assert sent_rows + end["cancelled_in_flight"] == end["sent"], (label, sent_rows, end)
    assert end["rows_received"] == len(rows), (label, end["rows_received"], len(rows))
    # The schedule hands out seq 0, 1, 2, ...: the only gaps allowed are the requests the
    # stop cancelled (in flight or still waiting for a slot), never a run of lost rows.
    missing = set(range(max(seqs) + 1)) - set(seqs)
    assert len(missing) <= end["cancelled_in_flight"] + end["cancelled_queued"], (label, sorted(missing), end)

    # What the server answered is what was stored, but for requests cancelled in flight.
    assert stored["ok"] == min(ok_count, answered[200]) == answered[200], (label, stored, answered)
    assert stored["http_5xx"] <= answered[503] <= stored["http_5xx"] + end["cancelled_in_flight"], \
        (label, stored, answered, end)

    # The breaker's errors are stored rows: the trip saw no more than the store holds.
    assert trip["data"]["errors"] <= stored["http_5xx"], (label, trip["data"], stored)
    assert trip["data"]["requests"] <= sent_rows, (label, trip["data"], sent_rows)
    match = re.search(r"\((\d+) of (\d+) requests\)", outcome.exit_reason or "")
    assert match and (int(match[1]), int(match[2])) == (trip["data"]["errors"], trip["data"]["requests"]), \
        (label, outcome.exit_reason)

    # The partial summary judges the stored rows: its client error rate is theirs.
    reader.close()
    report = write_report(outcome.run_dir, partial=True)
    document = json.loads(evaluation_json(report.evaluation))
    summary_text = report.report_path.read_text()
    assert "Partial summary" in summary_text, label
    client_error = _client_error_rate(document)
    expected = (stored["http_5xx"] + stored["dropped"]) / len(rows)
    assert client_error is not None and abs(client_error - expected) < 1e-9, (label, client_error, expected)
    assert client_error > 0, label
    return (f"{label}: sent {end['sent']}, stored {len(rows)} ({dict(stored)}), cancelled in flight "
            f"{end['cancelled_in_flight']}, queued {end['cancelled_queued']}, server {answered}, "
            f"trip {trip['data']['errors']} of {trip['data']['requests']}")


def _client_error_rate(document: dict) -> float | None:
    """The phase's pooled client error rate in the evaluation JSON."""
    for phase in document["phases"]:
        if phase["phase"] != "main":
            continue
        for category in phase["evaluation"]["categories"]:
            if category["category"] == "error_rate":
                (client,) = [row for row in category["rows"] if row["source"] == "client"]
                return client["pooled"]
    raise AssertionError(f"no error_rate category in {json.dumps(document)[:2000]}")


def test_item3_a_breaker_stop_after_a_sample_boundary_loses_no_row(tmp_path: Path) -> None:
    accounts = []
    for index, (workers, concurrency, ok_count) in enumerate(VARIANTS):
        accounts.append(_check_one_run(tmp_path / str(index), workers, concurrency, ok_count))
    print("\n".join(accounts))
