"""Call recording (002 §12.5), the secretary console (§12.7) and the company answering machine (§12.8)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from vpbx.schemas.common import Model
from vpbx.schemas.users import EMAIL_RE


class UserRef(BaseModel):
    login: str
    name: str


class GroupRef(BaseModel):
    id: str
    name: str


class RecordOut(BaseModel):
    external: bool
    inner: bool
    users_exception: list[UserRef]


class RecordUpdate(Model):
    """vpbx extension: 002 shows the switches but has no method to change them."""

    external: bool | None = None
    inner: bool | None = None


class AmOut(BaseModel):
    all: bool
    users: list[UserRef]
    groups: list[GroupRef]
    email: str


class AmUpdate(Model):
    """vpbx extension: 002 shows ``all`` and ``email`` but has no method to change them."""

    all: bool | None = None
    email: str | None = Field(None, max_length=255, description="An additional address; \"\" to remove it")

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v and not EMAIL_RE.match(v):
            raise ValueError("not a valid email address")
        return v
