"""Secrets: API keys and legacy tokens (random, shown once, stored as sha256) and passwords."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_key() -> str:
    return secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_password() -> str:
    return secrets.token_urlsafe(12)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    # Modest scrypt cost: employee passwords are set rarely but must not slow bulk imports.
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    salt = base64.b64decode(salt_b64)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))
