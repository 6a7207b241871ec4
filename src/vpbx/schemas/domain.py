"""Domain parameters (002 §12.1) and custom roles (§12.6)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from vpbx.schemas.common import Model


class Timezone(BaseModel):
    name: str
    offset: int


class Limit(BaseModel):
    used: int
    total: int


class Limits(BaseModel):
    users: Limit
    groups: Limit
    local_gw: Limit


class Services(BaseModel):
    record: bool
    local_gw: bool
    branch: bool


class DomainOut(BaseModel):
    timezone: Timezone
    limits: Limits
    services: Services


class CustomRoleOut(BaseModel):
    id: str
    name: str
    rights: list[str]


LegacyEdition = Literal["000", "001", "004"]


class IntegrationOut(BaseModel):
    """vpbx extension: the CRM integration as a CRM may read it (never its tokens)."""

    enabled: bool
    crm_url: str
    dialect: Literal["form", "json", "legacy"] = Field(
        description="How PBX->CRM requests are encoded: form (002 §2), json, or legacy (000/004 §4's fields)")
    legacy_edition: Literal["000", "004"] = Field(
        description="The legacy API edition the CRM follows: 000 (makeCall answers CallID, events carry "
                    "direction) or 004, also for 001 (makeCall answers uuid, events without direction, the "
                    "history push with 004's fields)")


class IntegrationUpdate(Model):
    enabled: Literal[True] | None = Field(
        default=None, description="true switches the integration back on after the PBX switched it off for "
                                  "failing (what waited is re-sent, in order). Switching it off is the "
                                  "cabinet's or the CLI's: a key of a disabled integration answers 401.")
    dialect: Literal["form", "json", "legacy"] | None = None
    legacy_edition: LegacyEdition | None = Field(
        default=None, description="000 or 004; 001 is accepted and stored as 004 (its shorter edition)")
