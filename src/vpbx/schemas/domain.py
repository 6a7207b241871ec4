"""Domain parameters (002 §12.1) and custom roles (§12.6)."""

from __future__ import annotations

from pydantic import BaseModel


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
