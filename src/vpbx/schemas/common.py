"""Shapes shared by many sections."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def _has_nul(v: Any) -> bool:
    return (isinstance(v, str) and "\x00" in v) or (isinstance(v, list) and any(_has_nul(i) for i in v))


class Model(BaseModel):
    # Unknown fields are ignored, as the platform's public clients send extras.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it on input, on every store alike.
        if _has_nul(v):
            raise ValueError("must not contain NUL characters")
        return v


class ListInfo(BaseModel):
    search: str
    start: int
    limit: int
    total: int
    next: int | None = None


class State(BaseModel):
    state: bool


class Message(BaseModel):
    message: str


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ValidationErrorOut(BaseModel):
    """002 §3.3 400: ``Validation error`` and what was wrong with which field."""

    message: str
    errors: list[FieldErrorOut]
