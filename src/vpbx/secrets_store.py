"""The server secret and the box that encrypts stored credentials (SIP passwords, other PBXs' keys,
the CRM token and the signing secret), and the owner-only modes of the files vpbx keeps under its home.

The secret is ``settings.secret``; when that is empty, one is generated on first start and kept
in ``<home>/secret`` (mode 0600) so that a restart can still read what was stored. Values are
sealed with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the secret.

Columns that once held clear text (``integrations.crm_token``, ``signing_secret``) hold
``seal_value``'s ``sealed:v1:`` form; migration 0013 sealed the clear values it found.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpbx.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, InvalidToken

SECRET_FILE = "secret"
_CONTEXT = b"vpbx stored credentials v1"

__all__ = ["InvalidToken", "SecretBox", "box_for", "box_of", "new_operator_key", "open_value", "operator_key",
           "private_dir", "private_file", "seal_value", "server_secret"]

SEALED = "sealed:v1:"
SETTINGS_KEY = "vpbx.settings"  # a session's ``info`` entry: the settings whose box seals its writes


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner may enter (0700), created if missing."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner may read or write (0600), created empty if missing. SQLite gives
    its -wal and -shm files the database file's mode, so a database created this way keeps them private too."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a folder it did not create keeps its mode
    # An existing file is never opened here: closing any descriptor of a file drops every POSIX lock this process
    # holds on it, and SQLite's connections in this process (a second engine is created while the first is open)
    # would lose theirs; another process could then take the database for unused and remove its WAL under them.
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)
        return path
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # created meanwhile by another process (with its own private_file)
        pass
    return path


def secret_path(home: Path) -> Path:
    return home / SECRET_FILE


def server_secret(settings: Settings) -> str:
    """``settings.secret``, else the one persisted under ``home`` (created once, mode 0600)."""
    if settings.secret:
        return settings.secret
    path = secret_path(settings.home)
    private_dir(path.parent)
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


OPERATOR_KEY_FILE = "operator-key"


def operator_key_path(home: Path) -> Path:
    return home / OPERATOR_KEY_FILE


def operator_key(settings: Settings) -> str:
    """The server operator's key (it moves the shared virtual clock): ``settings.operator_key``, else the one
    kept in ``<home>/operator-key`` (created once, mode 0600; ``vpbx key create --operator`` replaces it)."""
    if settings.operator_key:
        return settings.operator_key
    path = operator_key_path(settings.home)
    try:
        text = path.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    return new_operator_key(settings.home)


def new_operator_key(home: Path) -> str:
    """A fresh operator key in ``<home>/operator-key`` (0600), replacing the one there."""
    private_dir(home)
    value = "op_" + secrets.token_urlsafe(32)
    path = operator_key_path(home)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.replace(tmp, path)
    return value


def _fernet_key(secret: str) -> bytes:
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), _CONTEXT, 100_000)
    return base64.urlsafe_b64encode(digest)


def __getattr__(name: str) -> Any:
    """``InvalidToken`` is cryptography's, which loads with the first box used (not at every start)."""
    if name == "InvalidToken":
        from cryptography.fernet import InvalidToken

        return InvalidToken
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class SecretBox:
    def __init__(self, secret: str) -> None:
        # The key is derived (PBKDF2, 100,000 rounds) and cryptography imported (7 MB) at the first seal or open,
        # not when the box is made: a server that starts with nothing to open pays neither (issue 14).
        self._secret: str | None = secret
        self._cipher: Fernet | None = None
        # Opened values by their sealed form: a CRM token is opened for every contact lookup.
        self._opened: dict[str, str] = {}

    @property
    def _fernet(self) -> Fernet:
        if self._cipher is None:
            from cryptography.fernet import Fernet

            assert self._secret is not None
            self._cipher, self._secret = Fernet(_fernet_key(self._secret)), None
        return self._cipher

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """The plain text; ``InvalidToken`` when sealed under another secret or tampered with."""
        plain = self._opened.get(sealed)
        if plain is None:
            plain = self._fernet.decrypt(sealed.encode("ascii")).decode()
            if len(self._opened) >= 4096:
                self._opened.clear()
            self._opened[sealed] = plain
        return plain

    def __repr__(self) -> str:  # never show key material
        return "SecretBox(...)"


_BOXES: dict[tuple[str, str], SecretBox] = {}


_BY_SETTINGS: dict[int, tuple[Settings, SecretBox]] = {}


def box_for(settings: Settings) -> SecretBox:
    """The box for these settings, derived once per (secret, home)."""
    known = _BY_SETTINGS.get(id(settings))
    if known is not None and known[0] is settings:  # hot callers (contact lookups) skip resolving the home
        return known[1]
    cache_key = (settings.secret, str(settings.home.resolve()))
    box = _BOXES.get(cache_key)
    if box is None:
        box = _BOXES[cache_key] = SecretBox(server_secret(settings))
    if len(_BY_SETTINGS) > 1024:
        _BY_SETTINGS.clear()
    _BY_SETTINGS[id(settings)] = (settings, box)
    return box


def seal_value(box: SecretBox, plain: str | None) -> str | None:
    """A credential as stored: ``sealed:v1:<fernet>``; empty and None stay as they are (nothing to hide), and
    so does a value already sealed (a form that shows the stored value and posts it back must not seal twice)."""
    if not plain or plain.startswith(SEALED):
        return plain
    return SEALED + box.seal(plain)


def open_value(box: SecretBox, stored: str | None) -> str | None:
    """A stored credential in clear. A value without the ``sealed:`` mark is one written before sealing
    (migration 0013 seals those it finds) and is returned as it is. ValueError: sealed under another secret."""
    if not stored or not stored.startswith(SEALED):
        return stored
    from cryptography.fernet import InvalidToken

    try:
        return box.open(stored[len(SEALED):])
    except (InvalidToken, ValueError) as exc:
        raise ValueError("sealed under another server secret") from exc


def is_sealed(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(SEALED)


def box_of(session: Any) -> SecretBox:
    """The box of the settings a session was made for (``runtime.sessions`` and the CLI's sessions carry them)."""
    settings = session.info.get(SETTINGS_KEY)
    if not isinstance(settings, Settings):
        raise RuntimeError("this session carries no settings: make it with vpbx.store.db.session_factory(engine, "
                           "settings)")
    return box_for(settings)
