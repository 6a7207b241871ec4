"""Routes built on the first request that reaches their path prefix (the web cabinet's ~100 pages): a server
that is never asked for them does not pay for building them at start (~0.1 s of CPU).

In the app's route list the deferred routes keep their place: they match exactly as they would one by one (the
first full match, else the first partial one for a 405), only their construction waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

SELECTED = "vpbx.deferred_route"  # the scope key naming the route that matched, for ``handle``


class DeferredRoutes(BaseRoute):
    def __init__(self, prefix: str, build: Callable[[], list[BaseRoute]]) -> None:
        self.prefix = prefix.rstrip("/")
        self._build = build
        self._routes: list[BaseRoute] | None = None
        self._lock = threading.Lock()  # TestClient and the like may call from another thread

    @property
    def routes(self) -> list[BaseRoute]:
        if self._routes is None:
            with self._lock:
                if self._routes is None:
                    self._routes = self._build()
        return self._routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        path = get_route_path(scope)  # as the routes themselves match it (a root_path taken off)
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return Match.NONE, {}
        partial: Scope | None = None
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match == Match.FULL:
                return match, {**child_scope, SELECTED: route}
            if match == Match.PARTIAL and partial is None:
                partial = {**child_scope, SELECTED: route}
        if partial is not None:
            return Match.PARTIAL, partial
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope[SELECTED]
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)
