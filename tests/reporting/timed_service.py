"""A small loopback service that times only some routes, as the real MetaSheet backend does.

``/health`` and ``/api/attendance/*`` with a bearer are answered and counted in
``http_requests_total`` / ``http_server_requests_seconds``; the same paths without a bearer
get a 401 from the "gate" and unknown paths a 404, neither counted. ``/metrics/prom`` serves
the exposition. Threads, HTTP/1.1 keep-alive, stopped by ``close()``.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class TimedService:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counted: dict[tuple[str, int], int] = {}
        self.answered = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                return

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/metrics/prom":
                    self._send(200, owner.exposition().encode(), "text/plain; version=0.0.4")
                    return
                with owner.lock:
                    owner.answered += 1
                if path == "/health" or (path.startswith("/api/attendance/") and self.headers.get("Authorization")):
                    with owner.lock:
                        owner.counted[(path, 200)] = owner.counted.get((path, 200), 0) + 1
                    self._send(200, b'{"ok":true}')
                elif path.startswith("/api/"):
                    self._send(401, b'{"error":"missing token"}')  # the gate: before any timer
                else:
                    self._send(404, b"Not Found")

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def exposition(self) -> str:
        with self.lock:
            counted = dict(self.counted)
        lines = ["# HELP http_requests_total Requests.", "# TYPE http_requests_total counter"]
        lines += [f'http_requests_total{{method="GET",status="{status}"}} {sum(n for (_, s), n in counted.items() if s == status)}'
                  for status in sorted({s for _, s in counted} or {200})]
        lines += ["# HELP http_server_requests_seconds Latency.", "# TYPE http_server_requests_seconds histogram"]
        for (path, status), n in sorted(counted.items()) or [(("/health", 200), 0)]:
            labels = f'route="{path}",method="GET",status="{status}"'
            for bound in BUCKETS:  # every request is fast: all in the first bucket
                lines.append(f'http_server_requests_seconds_bucket{{{labels},le="{bound}"}} {n}')
            lines.append(f'http_server_requests_seconds_bucket{{{labels},le="+Inf"}} {n}')
            lines.append(f"http_server_requests_seconds_count{{{labels}}} {n}")
            lines.append(f"http_server_requests_seconds_sum{{{labels}}} {n * 0.001}")
        lines += ["# TYPE process_resident_memory_bytes gauge", "process_resident_memory_bytes 104857600",
                  "# TYPE process_cpu_seconds_total counter", "process_cpu_seconds_total 1.5"]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> TimedService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
