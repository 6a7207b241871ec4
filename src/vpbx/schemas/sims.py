"""SIM cards (002 §10)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from vpbx.schemas.common import ListInfo, Model


class SimOut(BaseModel):
    telnum: str
    user: str
    user_name: str | None = Field(None, description="Present when the card is assigned to an employee")
    company: bool
    autocaller: bool
    disabled: bool
    calltracking: str
    abc_telnum: str
    abc_location: str


class SimList(BaseModel):
    items: list[SimOut]
    info: ListInfo


class SimAvailable(BaseModel):
    telnum: str


class SimAvailableList(BaseModel):
    items: list[SimAvailable]
    sms_confirmation: bool


class SimAdd(Model):
    telnum: str = Field(..., min_length=1)
    user: str | None = None
    company: bool = False


class SimAdded(BaseModel):
    status: Literal["complete", "send sms"]
    user: str
