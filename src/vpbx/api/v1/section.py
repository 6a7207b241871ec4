"""A section of 002's REST API v1: its router carries the API's prefix and error answers from the start.

Each operation is then built once, when its module is imported, already as the app serves it: the app adds the
routes themselves (``app.add_routes``) instead of including nested routers, which FastAPI would build again per
app (on the first request) and walk on every request.
"""

from __future__ import annotations

from fastapi import APIRouter

from vpbx.api.errors import ERROR_RESPONSES
from vpbx.api.routing import Route

PREFIX = "/crmapi/v1"


def section(tag: str) -> APIRouter:
    """The router of one section: its operations under ``PREFIX``, documented with every 002 §3.3 answer."""
    return APIRouter(prefix=PREFIX, tags=[tag], responses=ERROR_RESPONSES, route_class=Route)
