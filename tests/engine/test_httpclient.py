"""The load workers' HTTP clients against a real loopback server: bodies, keep-alive,
chunked and close-delimited bodies, refused ports, timeouts, broken answers, stale keep-alive
connections and a body far larger than what the transport may hold.

The cases of the seam run against both selectable clients (httptools, the default, and
httpx); the ones about the wire (retries, HEAD, memory, TLS context injection) against the
httptools transport only.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable

import pytest

from phase5site.engine.httpclient import HttpToolsTransport, encode_request
from phase5site.engine.mix import PreparedRequest
from phase5site.engine.protocol import ClientChoice
from phase5site.engine.worker import client_factory
from phase5site.engine.transport import HttpxTransport, SendResult, Transport
from phase5site.runspec.models import TargetSpec

from .loopback import BIG_BODY_BYTES, LoopbackServer, free_port

MakeTransport = Callable[..., Transport]
CLIENTS: dict[str, MakeTransport] = {"httptools": HttpToolsTransport, "httpx": HttpxTransport}


@pytest.fixture(params=sorted(CLIENTS))
def make_transport(request: pytest.FixtureRequest) -> MakeTransport:
    return CLIENTS[request.param]


def _request(base_url: str, path: str, method: str = "GET", body: bytes | None = None,
             headers: tuple[tuple[str, str], ...] = ()) -> PreparedRequest:
    return PreparedRequest(name=path, method=method, url=base_url + path, headers=headers, body=body)


def _send_all(transport: Transport, requests: list[PreparedRequest]) -> list[SendResult]:
    async def go() -> list[SendResult]:
        try:
            return [await transport.send(r) for r in requests]
        finally:
            await transport.aclose()

    return asyncio.run(go())


def _answers(results: list[SendResult]) -> list[tuple[int | None, int | None, str | None]]:
    return [(r.status, r.bytes, r.error) for r in results]


def test_statuses_bodies_and_one_keepalive_connection(make_transport: MakeTransport) -> None:
    with LoopbackServer() as server:
        base = server.base_url
        post = _request(base, "/ok", "POST", b'{"a":1}', (("Content-Type", "application/json"),))
        results = _send_all(make_transport(timeout_s=5), [
            _request(base, "/ok"), _request(base, "/missing"), _request(base, "/fail"), post,
            _request(base, "/chunked"), _request(base, "/ok")])
        assert _answers(results) == [
            (200, 2, None), (404, 7, None), (503, 11, None), (200, 2, None), (200, 11, None),
            (200, 2, None)]
        assert server.connections == 1
        assert server.bodies == [b'{"a":1}']
        assert server.headers_seen[3]["content-type"] == "application/json"
        assert server.headers_seen[0]["host"] == f"127.0.0.1:{server.port}"


def test_close_delimited_body_then_a_new_connection(make_transport: MakeTransport) -> None:
    with LoopbackServer() as server:
        results = _send_all(make_transport(timeout_s=5),
                            [_request(server.base_url, "/close"), _request(server.base_url, "/ok")])
        assert [(r.status, r.bytes) for r in results] == [(200, 11), (200, 2)]
        assert server.connections == 2


def test_timeout_and_refused_port(make_transport: MakeTransport) -> None:
    # Generous margins either way: /slow waits far longer than the timeout, /ok far less.
    with LoopbackServer(delay_s=30.0) as server:
        results = _send_all(make_transport(timeout_s=1.0),
                            [_request(server.base_url, "/slow"), _request(server.base_url, "/ok")])
        assert [r.error for r in results] == ["timeout", None]
    (refused,) = _send_all(make_transport(timeout_s=2),
                           [_request(f"http://127.0.0.1:{free_port()}", "/ok")])
    assert refused.error == "connect_error" and refused.status is None


def test_a_server_that_never_answers_is_a_timeout(make_transport: MakeTransport) -> None:
    with LoopbackServer() as server:
        results = _send_all(make_transport(timeout_s=1.0),
                            [_request(server.base_url, "/hang"), _request(server.base_url, "/ok")])
        assert _answers(results) == [(None, None, "timeout"), (200, 2, None)]
        assert server.connections == 2  # the timed-out connection is never reused


@pytest.mark.parametrize("path", ["/garbage", "/truncated"])
def test_a_broken_answer_is_a_connect_error(make_transport: MakeTransport, path: str) -> None:
    with LoopbackServer() as server:
        results = _send_all(make_transport(timeout_s=5),
                            [_request(server.base_url, path), _request(server.base_url, "/ok")])
        assert _answers(results) == [(None, None, "connect_error"), (200, 2, None)]
        assert server.connections == 2


def test_answers_without_a_body_keep_the_connection(make_transport: MakeTransport) -> None:
    with LoopbackServer() as server:
        base = server.base_url
        results = _send_all(make_transport(timeout_s=5), [
            _request(base, "/ok", "HEAD"), _request(base, "/no-content"),
            _request(base, "/continue"), _request(base, "/ok", "HEAD"), _request(base, "/ok")])
        assert _answers(results) == [
            (200, 0, None), (204, 0, None), (200, 2, None), (200, 0, None), (200, 2, None)]
        assert server.connections == 1


@pytest.mark.parametrize(("method", "retried"), [
    ("GET", True), ("PUT", True), ("DELETE", True), ("POST", False), ("PATCH", False)])
def test_a_stale_connection_retries_only_an_idempotent_request(method: str, retried: bool) -> None:
    with LoopbackServer() as server:
        base = server.base_url
        results = _send_all(HttpToolsTransport(timeout_s=5), [
            _request(base, "/then-drop"), _request(base, "/ok", method, b"v"), _request(base, "/ok")])
        stale = (200, 2, None) if retried else (None, None, "connect_error")
        assert _answers(results) == [(200, 2, None), stale, (200, 2, None)]
        # The server read it once (a POST it may have acted on), or twice: dropped, then answered.
        assert server.bodies == [b"v"] * (2 if retried else 1)
        assert server.connections == 2


def test_a_request_is_sent_at_most_twice() -> None:
    with LoopbackServer() as server:
        base = server.base_url
        # On a fresh connection a close without an answer is the server's failure: no retry.
        (fresh,) = _send_all(HttpToolsTransport(timeout_s=5), [_request(base, "/drop")])
        assert fresh.error == "connect_error" and server.paths["/drop"] == 1
        # On a reused one it may be a stale connection: one retry, which fails the same way.
        results = _send_all(HttpToolsTransport(timeout_s=5), [_request(base, "/ok"), _request(base, "/drop")])
        assert _answers(results) == [(200, 2, None), (None, None, "connect_error")]
        assert server.paths["/drop"] == 3


def test_bytes_sent_are_the_bytes_the_server_read() -> None:
    # GET, POST with a body, HEAD, a request resent after a stale keep-alive (written twice,
    # read twice), a reset on the reused connection (resent too: it came before any byte of
    # the answer), a timeout (written once), a refused port (nothing written).
    with LoopbackServer(delay_s=30.0) as server:
        base = server.base_url
        requests = [_request(base, "/ok"), _request(base, "/ok", "POST", b'{"a":[1,2]}', (("X-Y", "z"),)),
                    _request(base, "/ok", "HEAD"), _request(base, "/then-drop"), _request(base, "/ok"),
                    _request(base, "/reset"), _request(base, "/slow")]
        results = _send_all(HttpToolsTransport(timeout_s=0.5), requests)
        read = [n for _, n in server.request_bytes]
        paths = [p for p, _ in server.request_bytes]
    assert [r.error for r in results] == [None, None, None, None, None, "connect_error", "timeout"]
    # each request's count is a multiple of its wire length; their sum is what the server read
    wire = [len(encode_request(q)[1]) for q in requests]
    assert [r.bytes_sent for r in results] == [n * k for n, k in zip(wire, [1, 1, 1, 1, 2, 2, 1])]
    assert sum(r.bytes_sent for r in results) == sum(read)
    assert paths == ["/ok", "/ok", "/ok", "/then-drop", "/ok", "/ok", "/reset", "/reset", "/slow"]
    (refused,) = _send_all(HttpToolsTransport(timeout_s=2), [_request(f"http://127.0.0.1:{free_port()}", "/ok")])
    assert refused.bytes_sent == 0


def test_each_failure_says_what_the_client_saw(make_transport: MakeTransport) -> None:
    with LoopbackServer(delay_s=30.0) as server:
        base = server.base_url
        results = _send_all(make_transport(timeout_s=0.5), [
            _request(base, "/reset"), _request(base, "/hang"), _request(base, "/truncated"),
            _request(base, "/ok")])
    (refused,) = _send_all(make_transport(timeout_s=2), [_request(f"http://127.0.0.1:{free_port()}", "/ok")])
    reset, hang, truncated, ok = results
    assert "ConnectionResetError" in reset.message and "reset by peer" in reset.message
    assert hang.message.startswith("no complete answer within 0.5 s: ")
    assert truncated.error == "connect_error" and truncated.message
    assert ok.message is None and ok.error is None
    assert "Connection refused" in refused.message or "Connect call failed" in refused.message
    if make_transport is HttpToolsTransport:  # where the exchange stood when it failed
        assert hang.message.endswith("the request was written, no byte of the answer came")
        assert truncated.message == "the server closed the connection inside the answer"
    else:
        assert {r.bytes_sent for r in (*results, refused)} == {None}  # httpx does not tell


def test_a_64_mib_body_is_counted_in_pieces_never_held() -> None:
    with LoopbackServer() as server:
        # Above the 16 MiB default: this case is about counting, not the limit.
        transport = HttpToolsTransport(timeout_s=60, max_body_bytes=2 * BIG_BODY_BYTES)
        big = _request(server.base_url, "/big")

        async def go() -> tuple[SendResult, int]:
            await transport.send(_request(server.base_url, "/ok"))  # connect outside the probe
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                result = await transport.send(big)
                peak_bytes = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
                await transport.aclose()
            return result, peak_bytes

        result, peak_bytes = asyncio.run(go())
        assert (result.status, result.bytes, result.error) == (200, BIG_BODY_BYTES, None)
        # A read is at most 256 KiB; held bodies would show as tens of MiB.
        assert peak_bytes < 4 * 1024 * 1024


def test_encoding_of_default_ports_and_bodies() -> None:
    key, wire = encode_request(PreparedRequest("x", "PUT", "https://api.example.internal/a", (), None))
    assert key == ("https", "api.example.internal", 443)
    assert wire == (b"PUT /a HTTP/1.1\r\nHost: api.example.internal\r\nUser-Agent: phase5site/"
                    + __import__("phase5site").__version__.encode()
                    + b"\r\nAccept: */*\r\nContent-Length: 0\r\n\r\n")


def test_https_with_a_verified_certificate(tmp_path) -> None:  # noqa: ANN001
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
         "-out", str(cert)], check=True, capture_output=True)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    with LoopbackServer(ssl_context=server_context) as server:
        results = _send_all(HttpToolsTransport(timeout_s=5, ssl_context=client_context),
                            [_request(server.base_url, "/ok"), _request(server.base_url, "/fail"),
                             _request(server.base_url, "/chunked")])
        assert _answers(results) == [(200, 2, None), (503, 11, None), (200, 11, None)]
        assert server.connections == 1
        # An untrusted certificate is a transport failure, never a silent success.
        (untrusted,) = _send_all(HttpToolsTransport(timeout_s=5), [_request(server.base_url, "/ok")])
        assert untrusted.error == "connect_error"


@pytest.mark.parametrize(("client", "expected"), [
    (None, HttpToolsTransport), ("httptools", HttpToolsTransport), ("raw", HttpToolsTransport),
    ("httpx", HttpxTransport)])
def test_the_spec_chooses_the_client(client: str | None, expected: type) -> None:
    chosen = {} if client is None else {"client": client}
    target = TargetSpec(base_url="http://127.0.0.1:8900", allow_hosts=["127.0.0.1"], **chosen)
    assert type(client_factory(ClientChoice(kind=target.client, timeout_s=target.timeout))()) is expected
