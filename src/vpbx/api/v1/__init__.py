"""REST API v1 (``/crmapi/v1``): one router per section of 002."""

from __future__ import annotations

from fastapi import APIRouter

from vpbx.api.v1 import domain, groups, users

PREFIX = "/crmapi/v1"

# Each section's router, in the order of 002; feature work appends its own here.
SECTION_ROUTERS: list[APIRouter] = [users.router, groups.router, domain.router]


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX)
    for section in SECTION_ROUTERS:
        api.include_router(section)
    return api
