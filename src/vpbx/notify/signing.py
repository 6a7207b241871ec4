"""Standard Webhooks signatures (https://www.standardwebhooks.com): ``v1`` HMAC-SHA256.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the key is the base64 part of a
``whsec_`` secret, so any Standard Webhooks library on the CRM side verifies our deliveries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class SignatureError(Exception):
    """The delivery is not proven to come from the holder of the secret, or is stale."""


def new_secret(nbytes: int = 32) -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key of ``secret``.

    ``whsec_<base64>`` must decode. Without the prefix the reference libraries still base64-decode;
    we do too, and only a secret that is not base64 at all is used as its UTF-8 bytes.
    """
    if not secret:
        raise ValueError("empty webhook secret")
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("webhook secret after whsec_ is not base64") from exc
        if not key:
            raise ValueError("empty webhook secret")
        return key
    try:
        return base64.b64decode(secret, validate=True) or secret.encode("utf-8")
    except (binascii.Error, ValueError):
        return secret.encode("utf-8")


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` over ``{msg_id}.{timestamp}.{body}``."""
    content = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(decode_secret(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery."""
    if not msg_id:
        raise ValueError("webhook-id must not be empty")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: signature(secret, msg_id, timestamp, body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise SignatureError(f"missing {name} header")


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> None:
    """Raise SignatureError unless one ``v1`` signature matches and the timestamp is within tolerance."""
    msg_id = _header(headers, ID_HEADER)
    raw_ts = _header(headers, TIMESTAMP_HEADER).strip()
    offered = _header(headers, SIGNATURE_HEADER)
    if not msg_id:
        raise SignatureError("empty webhook-id")
    if not (raw_ts.isascii() and raw_ts.isdigit()):
        raise SignatureError("webhook-timestamp is not a Unix time")
    timestamp = int(raw_ts)
    current = int(time.time()) if now is None else int(now)
    # Both ways: a timestamp from the future is as suspect as a replayed old one.
    if abs(current - timestamp) > tolerance:
        raise SignatureError("webhook-timestamp outside the tolerance")
    try:
        expected = signature(secret, msg_id, timestamp, body).encode("ascii")
    except ValueError as exc:
        raise SignatureError(str(exc)) from exc
    # Several signatures, space-delimited, appear while a secret is being rotated.
    for candidate in offered.split():
        version, _, _value = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(candidate.encode("utf-8"), expected):
            return
    raise SignatureError("no matching signature")
