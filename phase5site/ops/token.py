"""Is a bearer token shaped like a JWT? A pure check that never returns the token itself.

A JWT in compact serialisation is three base64url parts joined by dots: header, payload,
signature (RFC 7519 section 3, RFC 7515 section 7.1). Header and payload are JSON objects.
Only ``alg`` and ``exp`` are reported back; other claims may identify a person.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class TokenShape:
    status: str  # OK | WARN
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def _decode_json_part(part: str) -> dict[str, Any] | None:
    padded = part + "=" * (-len(part) % 4)
    try:
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def check_jwt_shape(token: str, *, now_s: float) -> TokenShape:
    """Judge the shape of ``token`` at time ``now_s`` (UTC epoch seconds).

    Example: a token whose payload is ``{"exp": 1000}`` checked at ``now_s=2000`` gives
    ``WARN "... expired at 1970-01-01T00:16:40Z"``; ``"abc"`` gives
    ``WARN "has 1 dot-separated part(s), a JWT has 3"``.
    """
    parts = token.split(".")
    length = {"length": len(token)}
    if len(parts) != 3:
        return TokenShape("WARN", f"bearer token is not a JWT: has {len(parts)} dot-separated part(s), a JWT has 3", length)
    if not all(_BASE64URL.match(part) for part in parts):
        return TokenShape("WARN", "bearer token is not a JWT: a part is empty or not base64url", length)
    header, payload = _decode_json_part(parts[0]), _decode_json_part(parts[1])
    if header is None or payload is None:
        return TokenShape("WARN", "bearer token is not a JWT: header or payload is not base64url JSON", length)
    details: dict[str, Any] = {**length, "alg": str(header.get("alg"))}
    exp = payload.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        expires = datetime.fromtimestamp(exp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        details["expires_at"] = expires
        if exp <= now_s:
            return TokenShape("WARN", f"bearer token (JWT, alg {details['alg']}) expired at {expires}", details)
        return TokenShape("OK", f"bearer token is a JWT (alg {details['alg']}), valid until {expires}", details)
    return TokenShape("OK", f"bearer token is a JWT (alg {details['alg']}, no exp claim)", details)
