"""Departments (002 §8)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from vpbx.domain.extensions import is_valid_ext
from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.schemas.common import ListInfo, Model

CallOrder = Literal["ALL", "EVENLY", "BYORDER", "WATERFALL"]
Advanced = Literal["off", "msg_busy", "callback"]
TimeoutTarget = Literal["voicemail", "user", "group", "telnum", "msg_busy"]


class TimeoutIn(Model):
    time: int = Field(120, ge=1, le=600)
    target: TimeoutTarget = "voicemail"
    user: str | None = None
    group: str | None = None
    telnum: str | None = None

    @model_validator(mode="after")
    def _destination(self) -> TimeoutIn:
        if self.target in ("user", "group", "telnum") and not getattr(self, self.target):
            raise ValueError(f"target {self.target} needs the field '{self.target}'")
        if self.target == "telnum" and self.telnum:
            try:
                self.telnum = normalize_number(self.telnum)
            except InvalidNumber as exc:
                raise ValueError("telnum is not a valid phone number") from exc
        return self


class MemberIn(Model):
    login: str = Field(..., min_length=1)
    calls_enable: bool


class GroupUpdate(Model):
    name: str | None = Field(None, min_length=1, max_length=255)
    ext: str | None = None
    call_order: CallOrder | None = None
    call_duration: int | None = Field(None, ge=1, le=30)
    timeout: TimeoutIn | None = None
    advanced: Advanced | None = None
    queue_position: bool | None = None
    users: list[MemberIn] | None = None

    @field_validator("ext")
    @classmethod
    def _ext(cls, v: str | None) -> str | None:
        if v is not None and not is_valid_ext(v):
            raise ValueError("an extension is 2 to 6 digits")
        return v

    @field_validator("users")
    @classmethod
    def _unique(cls, v: list[MemberIn] | None) -> list[MemberIn] | None:
        if v is not None and len({m.login for m in v}) != len(v):
            raise ValueError("an employee is listed twice")
        return v


class GroupCreate(GroupUpdate):
    name: str = Field(..., min_length=1, max_length=255)  # type: ignore[assignment]


class MembersChange(Model):
    """002 §8.6: add (with calls on) → calls_disable → remove."""

    add: list[str] = Field(default_factory=list)
    calls_disable: list[str] = Field(default_factory=list)
    remove: list[str] = Field(default_factory=list)
    position: int = Field(-1, ge=-1, description="0: first, -1: last, or a position")


class MemberOut(BaseModel):
    login: str
    name: str
    calls_enable: bool
    group_head: bool
    is_absence_active: bool
    is_forwarding_disabled: bool
    other_pbx_type: str | None = None
    branch_domain: str | None = None


class TimeoutOut(BaseModel):
    time: int
    target: str
    user: str | None = None
    group: str | None = None
    telnum: str | None = None


class GroupOut(BaseModel):
    id: str
    name: str
    ext: str
    call_order: str
    call_duration: int
    users: list[MemberOut]
    timeout: TimeoutOut
    advanced: str
    queue_position: bool


class GroupList(BaseModel):
    items: list[GroupOut]
    info: ListInfo
