"""The route class of every vpbx operation: a request's path is tried against a route's regular expression only
when it starts with the route's literal head (its path up to the first ``{``), or equals it for a path without
parameters.

The router tries the routes one by one until one matches; a full match costs 1-2.5 µs a route (the regular
expression, then FastAPI's own checks), so an operation late in the list paid 40-150 µs before it ran, and a 404
(every route, then every route again for a trailing-slash redirect) 400 µs. The literal head answers "not this
route" for almost all of them in a string comparison. What matches is unchanged: a path that does not start with
the head cannot match the anchored expression. (vpbx adds its routes to the app itself, ``app.add_routes``, never
through an included router whose context would give a route another path.)
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.routing import Match
from starlette.types import Scope


class Route(APIRoute):
    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        head, brace, _ = self.path.partition("{")
        self._head = head
        self._static = not brace

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path = get_route_path(scope)
            if path != self._head if self._static else not path.startswith(self._head):
                return Match.NONE, {}
        return super().matches(scope)
