"""The server secret and the box that encrypts stored credentials (SIP passwords, other PBXs' keys).

The secret is ``settings.secret``; when that is empty, one is generated on first start and kept
in ``<home>/secret`` (mode 0600) so that a restart can still read what was stored. Values are
sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from vpbx.settings import Settings

SECRET_FILE = "secret"
_CONTEXT = b"vpbx stored credentials v1"

__all__ = ["InvalidToken", "SecretBox", "box_for", "server_secret"]


def secret_path(home: Path) -> Path:
    return home / SECRET_FILE


def server_secret(settings: Settings) -> str:
    """``settings.secret``, else the one persisted under ``home`` (created once, mode 0600)."""
    if settings.secret:
        return settings.secret
    path = secret_path(settings.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        text = path.read_text().strip()
        if not text:
            raise RuntimeError(f"{path} is empty: remove it or set VPBX_SECRET") from None
        return text
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def _fernet_key(secret: str) -> bytes:
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), _CONTEXT, 100_000)
    return base64.urlsafe_b64encode(digest)


class SecretBox:
    def __init__(self, secret: str) -> None:
        self._fernet = Fernet(_fernet_key(secret))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """The plain text; ``InvalidToken`` when sealed under another secret or tampered with."""
        return self._fernet.decrypt(sealed.encode("ascii")).decode()

    def __repr__(self) -> str:  # never show key material
        return "SecretBox(...)"


_BOXES: dict[tuple[str, str], SecretBox] = {}


def box_for(settings: Settings) -> SecretBox:
    """The box for these settings, derived once per (secret, home)."""
    cache_key = (settings.secret, str(settings.home.resolve()))
    box = _BOXES.get(cache_key)
    if box is None:
        box = _BOXES[cache_key] = SecretBox(server_secret(settings))
    return box
