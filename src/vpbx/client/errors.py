"""Typed errors of the REST API v1 (002 §3.3) and the legacy API: one class per status."""

from __future__ import annotations

from typing import Any

from vpbx.schemas.common import FieldErrorOut


class VpbxError(Exception):
    """An error answer of the PBX: ``status``, the documented ``message`` and the raw ``body``."""

    status: int = 0

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.body = body


class ValidationError(VpbxError):
    """400 ``Validation error``; ``errors`` lists what was wrong with which field."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(status, message, body)
        raw = body.get("errors") if isinstance(body, dict) else None
        self.errors: list[FieldErrorOut] = [FieldErrorOut.model_validate(e) for e in raw or []
                                            if isinstance(e, dict)]

    def __str__(self) -> str:
        details = "; ".join(f"{e.field}: {e.message}" for e in self.errors)
        return f"{self.status} {self.message}" + (f" ({details})" if details else "")


class InvalidToken(VpbxError):
    """401: ``Invalid token``, ``CRM disabled`` or ``CRM switched off`` (``message`` says which)."""


class Forbidden(VpbxError):
    """403 ``Don't have permission to access``."""


class NotFound(VpbxError):
    """404 ``Not found``."""


class MethodNotAllowed(VpbxError):
    """405 ``Method Not Allowed``."""


class Conflict(VpbxError):
    """409 (the simulator: the call is over, the server runs on the real clock)."""


class PayloadTooLarge(VpbxError):
    """413 ``Request entity too large``."""


class RateLimited(VpbxError):
    """429, once the retries are spent."""


class ServerError(VpbxError):
    """5xx, once the retries are spent."""


BY_STATUS: dict[int, type[VpbxError]] = {400: ValidationError, 401: InvalidToken, 403: Forbidden, 404: NotFound,
                                         405: MethodNotAllowed, 409: Conflict, 413: PayloadTooLarge,
                                         429: RateLimited}


def error_for(status: int, body: Any) -> VpbxError:
    """The error for an answer: v1 says ``{"message": ...}``, the legacy API ``{"error": ...}``."""
    message = ""
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error") or "")
    elif isinstance(body, str):
        message = body[:200]
    cls = BY_STATUS.get(status) or (ServerError if status >= 500 else VpbxError)
    return cls(status, message, body)
