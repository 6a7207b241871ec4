"""Shapes shared by many sections."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    # Unknown fields are ignored, as the platform's public clients send extras.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


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
