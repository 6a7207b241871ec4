"""Employees (002 §6, §7)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from vpbx.domain.extensions import is_valid_ext
from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.schemas.common import ListInfo, Model

LOGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class MobileRedirectIn(Model):
    enabled: bool
    delay: int = Field(0, ge=0, le=15)
    forward: bool = False


class MobileRedirect(BaseModel):
    enabled: bool
    forward: bool | None = None
    delay: int | None = None


def _ext(v: str | None) -> str | None:
    if v is not None and not is_valid_ext(v):
        raise ValueError("an extension is 2 to 6 digits")
    return v


def _mobile(v: str | None) -> str | None:
    if v is None or v == "":
        return v
    try:
        return normalize_number(v)
    except InvalidNumber as exc:
        raise ValueError("not a valid phone number") from exc


def _email(v: str | None) -> str | None:
    if v and not EMAIL_RE.match(v):
        raise ValueError("not a valid email address")
    return v


class UserUpdate(Model):
    name: str | None = Field(None, min_length=1, max_length=255)
    password: str | None = Field(None, min_length=6, max_length=128)
    position: str | None = Field(None, max_length=255)
    email: str | None = Field(None, max_length=255)
    ext: str | None = None
    role: str | None = Field(None, min_length=1, max_length=64)
    mobile: str | None = Field(None, max_length=32)
    mobile_redirect: MobileRedirectIn | None = None

    _v_ext = field_validator("ext")(_ext)
    _v_mobile = field_validator("mobile")(_mobile)
    _v_email = field_validator("email")(_email)


class UserCreate(UserUpdate):
    login: str | None = Field(None, max_length=64)
    name: str = Field(..., min_length=1, max_length=255)  # type: ignore[assignment]

    @field_validator("login")
    @classmethod
    def _login(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not LOGIN_RE.match(v) or v.isdigit():
            raise ValueError("a login is letters, digits, '.', '_' or '-', and not only digits")
        return v


class UserOut(BaseModel):
    login: str
    name: str
    position: str
    email: str
    ext: str
    telnum: str
    role: str
    mobile: str
    mobile_redirect: MobileRedirect
    status: str | None = Field(None, description="online/offline, only with `with=status`")


class UserList(BaseModel):
    items: list[UserOut]
    info: ListInfo


class UserGroup(BaseModel):
    id: str
    name: str
    ext: str
