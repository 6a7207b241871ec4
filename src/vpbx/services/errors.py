"""Errors services raise; each API turns them into its own documented format."""

from __future__ import annotations


class ServiceError(Exception):
    pass


class Invalid(ServiceError):
    """Bad input: 400 ``Validation error`` in v1, ``Invalid parameters`` in the legacy API."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(ServiceError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Forbidden(ServiceError):
    pass
