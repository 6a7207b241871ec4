"""Numbers and their routes (002 §9)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.schemas.common import ListInfo, Model

NumberType = Literal["user", "group", "ivr", "scheduler", "fax"]
# Targets of the scheduler's routes: the 9.6 types, an external number, and out of hours
# the on-duty employee/department/number ("Дежурный") or the closed message (call-flows step 4).
TargetType = Literal["user", "group", "ivr", "fax", "telnum", "onduty", "offtime"]
WORK_TYPES = ("user", "group", "ivr", "fax", "telnum")
BUTTONS = (*"0123456789*#", "timeout")


def _number(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_number(value)
    except InvalidNumber as exc:
        raise ValueError("not a valid phone number") from exc


class MenuButtonIn(Model):
    button: str = Field(..., description="0-9, *, # or timeout")
    type: Literal["user", "group", "ivr", "telnum"]
    user: str | None = None
    group: str | None = None
    ivr: str | None = Field(None, description="Name of another menu")
    telnum: str | None = None

    @field_validator("button")
    @classmethod
    def _button(cls, v: str) -> str:
        if v not in BUTTONS:
            raise ValueError("a button is 0-9, *, # or timeout")
        return v

    @model_validator(mode="after")
    def _target(self) -> MenuButtonIn:
        if not getattr(self, self.type):
            raise ValueError(f"type {self.type} needs the field '{self.type}'")
        self.telnum = _number(self.telnum) if self.type == "telnum" else None
        return self


class IvrMenuIn(Model):
    name: str = Field(..., min_length=1, max_length=255)
    greeting: bool = False
    greeting_custom: bool = False
    items: list[MenuButtonIn] = Field(default_factory=list)

    @field_validator("items")
    @classmethod
    def _unique(cls, v: list[MenuButtonIn]) -> list[MenuButtonIn]:
        buttons = [b.button for b in v]
        if len(set(buttons)) != len(buttons):
            raise ValueError("a button is assigned twice")
        return v


class TargetIn(Model):
    """Where calls go: 9.6 route types, and the on-duty object (``subtype``)."""

    type: TargetType
    subtype: Literal["user", "group", "telnum"] | None = None
    user: str | None = None
    group: str | None = None
    ivr: IvrMenuIn | None = None
    telnum: str | None = None
    greeting: bool = False

    @model_validator(mode="after")
    def _fields(self) -> TargetIn:
        return self._check()

    def _check(self) -> TargetIn:
        kind: str | None = self.subtype if self.type == "onduty" else self.type
        if self.type == "onduty" and kind is None:
            raise ValueError("type onduty needs a subtype (user, group or telnum)")
        if kind in ("user", "group", "ivr", "telnum") and not getattr(self, kind):
            raise ValueError(f"type {kind} needs the field '{kind}'")
        if kind == "telnum":
            self.telnum = _number(self.telnum)
        return self


class CustomRouteIn(TargetIn):
    """9.9 "Дополнительные маршруты": a named route with its own target (without one, the work route)."""

    type: TargetType | None = None  # type: ignore[assignment]
    id: str | None = None
    name: str = Field(..., min_length=1, max_length=255)
    interval_schedule: list[dict[str, Any]] = Field(default_factory=list)
    calendar_schedule: list[dict[str, Any]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields(self) -> CustomRouteIn:
        if self.type is not None:
            self._check()
        return self


class TelnumRouteIn(Model):
    """9.3: the number's route."""

    type: NumberType
    greeting: bool
    name: str | None = Field(None, max_length=255)
    user: str | None = None
    group: str | None = None
    ivr: IvrMenuIn | None = None
    work: TargetIn | None = None
    other: TargetIn | None = None
    custom_routes: list[CustomRouteIn] | None = None
    schedule: dict[str, Any] | None = None
    greeting_file: str | None = Field(None, max_length=255)
    crm: str | None = Field(None, max_length=64, description=(
        'vpbx extension: 9.1 "transfer to the responsible employee in the CRM": "" off, "on", or on with the '
        'fallback when the responsible does not answer: "user:<login>", "group:<id>", "telnum:<number>"'))

    @model_validator(mode="after")
    def _fields(self) -> TelnumRouteIn:
        if self.type in ("user", "group", "ivr") and not getattr(self, self.type):
            raise ValueError(f"type {self.type} needs the field '{self.type}'")
        if self.work is not None and self.work.type not in WORK_TYPES:
            raise ValueError(f"work: type must be one of {', '.join(WORK_TYPES)}")
        return self


class IntervalIn(Model):
    """9.7: an extra interval on an existing route (``route_id``) or a new one (``route_name``)."""

    route_id: str | None = None
    route_name: str | None = Field(None, max_length=255)
    days: list[str]
    start: float
    end: float


class CalendarIn(Model):
    """9.8: a special day; ``start``/``end`` ISO 8601, optional with ``calendar_predefined``."""

    route_id: str | None = None
    route_name: str | None = Field(None, max_length=255)
    start: str | None = None
    end: str | None = None
    calendar_predefined: bool = False


class IntervalOut(BaseModel):
    id: str
    route_id: str
    route_name: str
    days: list[str]
    start: int
    end: int


class CalendarOut(BaseModel):
    id: str
    route_id: str
    route_name: str
    start: str | None
    end: str | None
    calendar_predefined: bool


class TelnumOut(BaseModel):
    """9.1/9.2; the type's own fields appear with their type only."""

    model_config = ConfigDict(extra="allow")

    telnum: str
    name: str
    type: NumberType
    greeting: bool
    is_main_phone: bool
    location: str
    disabled: bool
    crm: str
    calltracking: str
    abc_telnum: str | None
    abc_location: str | None
    greeting_custom: bool
    greeting_file: str | None
    user: str | None = None
    user_name: str | None = None
    group: str | None = None
    group_name: str | None = None
    ivr: dict[str, Any] | None = None
    work: dict[str, Any] | None = None
    other: dict[str, Any] | None = None
    custom_routes: list[dict[str, Any]] | None = None
    schedule: dict[str, Any] | None = None
    route_group_id: str
    route_group_name: str


class TelnumList(BaseModel):
    items: list[TelnumOut]
    info: ListInfo
