"""Click-to-call (002 §5.1)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from vpbx.schemas.common import Model


class MakeCallIn(Model):
    phone: str = Field(..., min_length=1, description="The number to call")
    user: str | None = Field(None, description="The employee's login or extension")
    group: str | None = Field(None, description="The department's id or extension (when no user is given)")
    clid: str | None = Field(None, description="The caller ID: one of the domain's numbers enabled for outgoing calls")
    show_phone: bool = Field(False, description="Show the client's number on the employee's phone")


class MakeCallOut(BaseModel):
    callid: str = Field(description="The call's unique id")
    clid: str = Field(description="The caller ID the call uses (\"\" when none is configured)")


class RatingOut(BaseModel):
    """A vpbx extension: where the client is asked for a quality score after the conversation (002 §2.4)."""

    telnums: list[str] = Field(description="Numbers whose answered calls ask the client for a score")
    groups: list[str] = Field(description="Departments (ids) whose answered calls ask the client for a score")


class RatingIn(Model):
    telnums: list[str] | None = Field(None, description="Replaces the numbers that ask (omit: unchanged)")
    groups: list[str] | None = Field(None, description="Replaces the departments that ask (omit: unchanged)")
