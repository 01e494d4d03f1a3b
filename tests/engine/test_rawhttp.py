"""The lean HTTP/1.1 transport against a real loopback server: bodies, keep-alive, chunked,
close-delimited bodies, refused ports and timeouts."""

from __future__ import annotations

import asyncio

from phase5site.engine.mix import PreparedRequest
from phase5site.engine.rawhttp import RawHttpTransport, encode_request
from phase5site.engine.transport import SendResult

from .loopback import LoopbackServer, free_port


def _request(base_url: str, path: str, method: str = "GET", body: bytes | None = None,
             headers: tuple[tuple[str, str], ...] = ()) -> PreparedRequest:
    return PreparedRequest(name=path, method=method, url=base_url + path, headers=headers, body=body)


def _send_all(transport: RawHttpTransport, requests: list[PreparedRequest]) -> list[SendResult]:
    async def go() -> list[SendResult]:
        try:
            return [await transport.send(r) for r in requests]
        finally:
            await transport.aclose()

    return asyncio.run(go())


def test_statuses_bodies_and_one_keepalive_connection() -> None:
    with LoopbackServer() as server:
        base = server.base_url
        post = _request(base, "/ok", "POST", b'{"a":1}', (("Content-Type", "application/json"),))
        results = _send_all(RawHttpTransport(timeout_s=5), [
            _request(base, "/ok"), _request(base, "/missing"), _request(base, "/fail"), post,
            _request(base, "/chunked"), _request(base, "/ok")])
        assert [(r.status, r.bytes, r.error) for r in results] == [
            (200, 2, None), (404, 7, None), (503, 11, None), (200, 2, None), (200, 11, None),
            (200, 2, None)]
        assert server.connections == 1
        assert server.bodies == [b'{"a":1}']
        assert server.headers_seen[3]["content-type"] == "application/json"
        assert server.headers_seen[0]["host"] == f"127.0.0.1:{server.port}"


def test_close_delimited_body_then_a_new_connection() -> None:
    with LoopbackServer() as server:
        results = _send_all(RawHttpTransport(timeout_s=5),
                            [_request(server.base_url, "/close"), _request(server.base_url, "/ok")])
        assert [(r.status, r.bytes) for r in results] == [(200, 11), (200, 2)]
        assert server.connections == 2


def test_timeout_and_refused_port() -> None:
    with LoopbackServer(delay_s=2.0) as server:
        results = _send_all(RawHttpTransport(timeout_s=0.2),
                            [_request(server.base_url, "/slow"), _request(server.base_url, "/ok")])
        assert [r.error for r in results] == ["timeout", None]
    (refused,) = _send_all(RawHttpTransport(timeout_s=2),
                           [_request(f"http://127.0.0.1:{free_port()}", "/ok")])
    assert refused.error == "connect_error" and refused.status is None


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
        results = _send_all(RawHttpTransport(timeout_s=5, ssl_context=client_context),
                            [_request(server.base_url, "/ok"), _request(server.base_url, "/fail")])
        assert [(r.status, r.error) for r in results] == [(200, None), (503, None)]
        assert server.connections == 1
        # An untrusted certificate is a transport failure, never a silent success.
        (untrusted,) = _send_all(RawHttpTransport(timeout_s=5), [_request(server.base_url, "/ok")])
        assert untrusted.error == "connect_error"
