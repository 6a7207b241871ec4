"""Call restrictions: directions allowed to everyone, to employees and to departments (002 §14)."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field

from vpbx.schemas.common import Model

ALLOWED_DESCRIPTION = "Codes of 002 §14.5 (RU, 179, CIS, BALT, EURO, AUS, ASIA, AFR, NA, SA, OTH, LOCAL) or ALL"


class UserRulesOut(BaseModel):
    login: str
    name: str
    allowed: list[str]


class GroupRulesOut(BaseModel):
    id: str
    name: str
    allowed: list[str]


class RestrictionsOut(BaseModel):
    main: list[str]
    users: list[UserRulesOut]
    groups: list[GroupRulesOut]


class AllowedIn(Model):
    allowed: list[str] = Field(..., description=ALLOWED_DESCRIPTION)


class UserRulesIn(Model):
    login: str = Field(..., min_length=1)
    allowed: list[str] = Field(..., description=ALLOWED_DESCRIPTION)


class GroupRulesIn(Model):
    # 002 §14.4's example sends the department id as ``login``: both are accepted.
    id: str = Field(..., min_length=1, validation_alias=AliasChoices("id", "login"))
    allowed: list[str] = Field(..., description=ALLOWED_DESCRIPTION)
