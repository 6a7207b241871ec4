"""Caller IDs: outgoing numbers of the company, employees, departments and regions (002 §13)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.schemas.common import Model

Mode = Literal["all", "mobile", "fixed"]


def _telnum(v: str) -> str:
    try:
        return normalize_number(v)
    except InvalidNumber as exc:
        raise ValueError("not a valid phone number") from exc


class UserCallerIdOut(BaseModel):
    login: str
    name: str
    telnum: str


class GroupCallerIdOut(BaseModel):
    id: str
    name: str
    telnum: str


class RegionCallerIdOut(BaseModel):
    id: str
    name: str
    telnum: str
    mode: Mode


class CallerIdsOut(BaseModel):
    main: str = Field(description="The company's main number; \"\" when not set")
    users: list[UserCallerIdOut]
    groups: list[GroupCallerIdOut]
    regions: list[RegionCallerIdOut]


class TelnumOut(BaseModel):
    telnum: str
    enabled: bool = Field(description="May be used for outgoing calls")


class RegionOut(BaseModel):
    id: str
    name: str


class MainSet(Model):
    telnum: str = Field(..., min_length=1)

    _v_telnum = field_validator("telnum")(_telnum)


class UserCallerIdSet(Model):
    telnum: str = Field(..., min_length=1)
    login: str = Field(..., min_length=1)

    _v_telnum = field_validator("telnum")(_telnum)


class GroupCallerIdSet(Model):
    telnum: str = Field(..., min_length=1)
    id: str = Field(..., min_length=1)

    _v_telnum = field_validator("telnum")(_telnum)


class RegionCallerIdSet(Model):
    telnum: str = Field(..., min_length=1)
    id: str = Field(..., min_length=1, description="Region id from GET /caller-ids/regions")
    mode: Mode = "all"

    _v_telnum = field_validator("telnum")(_telnum)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v
