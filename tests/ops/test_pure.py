"""Pure helpers of ops: doctests, JWT shape table, disk arithmetic."""

from __future__ import annotations

import doctest

import pytest

from phase5site.ops import disk, families
from phase5site.ops.disk import format_bytes
from phase5site.ops.token import check_jwt_shape

from .helpers import make_jwt


@pytest.mark.parametrize("module", [families])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("token", "status", "reason"),
    [
        ("abc", "WARN", "bearer token is not a JWT: has 1 dot-separated part(s), a JWT has 3"),
        ("a.b", "WARN", "bearer token is not a JWT: has 2 dot-separated part(s), a JWT has 3"),
        ("a..c", "WARN", "bearer token is not a JWT: a part is empty or not base64url"),
        ("a+b.c.d", "WARN", "bearer token is not a JWT: a part is empty or not base64url"),
        ("abcd.abcd.abcd", "WARN", "bearer token is not a JWT: header or payload is not base64url JSON"),
    ],
)
def test_jwt_shape_table(token: str, status: str, reason: str) -> None:
    shape = check_jwt_shape(token, now_s=0)
    assert (shape.status, shape.reason) == (status, reason)
    assert token not in str(shape.details)


def test_jwt_shape_ok_reports_only_alg_and_expiry() -> None:
    shape = check_jwt_shape(make_jwt(exp_s=4_102_444_800), now_s=0)
    assert shape.status == "OK"
    assert shape.reason == "bearer token is a JWT (alg HS256), valid until 2100-01-01T00:00:00Z"
    assert set(shape.details) == {"length", "alg", "expires_at"}


@pytest.mark.parametrize(("count", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                             (129_054_592, "123.1 MiB"), (5 * 2**40, "5.0 TiB")])
def test_format_bytes(count: int, text: str) -> None:
    assert format_bytes(count) == text


def test_budget_is_at_least_the_measured_row_size() -> None:
    assert disk.BYTES_PER_REQUEST_ROW >= disk.MEASURED_BYTES_PER_REQUEST_ROW
