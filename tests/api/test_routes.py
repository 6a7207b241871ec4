"""How the app holds its routes (issue 14, start): each operation built once per process, the app's own (no
included routers walked per request), and the cabinet's built on the first request that reaches it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from vpbx.api.deferred import DeferredRoutes
from vpbx.app import create_app
from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, Tenant


def _operations(routes: list[BaseRoute]) -> dict[tuple[str, frozenset[str]], APIRoute]:
    return {(r.path, frozenset(r.methods or ())): r for r in routes if isinstance(r, APIRoute)}


def test_each_operation_is_built_once_and_is_the_apps_own(server: ServerThread) -> None:
    ours = _operations(server.app.routes)
    theirs = _operations(create_app(server.settings, runtime=server.runtime).routes)
    v1 = [key for key in ours if key[0].startswith("/crmapi/v1/")]
    assert len(v1) > 100
    assert ours.keys() == theirs.keys()
    declared = [key for key in ours if key[0].startswith(("/crmapi/v1/", "/sim/v1/", "/sys/"))]
    assert all(ours[key] is theirs[key] for key in declared)  # the routers' own objects, not copies per app
    assert not [r for r in server.app.routes if type(r).__name__ == "_IncludedRouter"]


def test_owner_gate_guards_the_simulator_and_makecall(server: ServerThread) -> None:
    from vpbx.cluster.forward import owner_gate

    gated = {key[0] for key, route in _operations(server.app.routes).items()
             if any(d.call is owner_gate for d in route.dependant.dependencies)}
    assert "/crmapi/v1/makecall" in gated
    assert any(path.startswith("/sim/v1/calls") for path in gated)


def test_an_operation_answers_on_its_first_request(tenant: Tenant) -> None:
    r = tenant.client.get("/crmapi/v1/users/admin")
    assert r.status_code == 200
    assert r.json()["login"] == "admin"
    assert tenant.client.get("/console/signin").status_code == 200


def _text(text: str) -> Callable[[Request], Awaitable[PlainTextResponse]]:
    async def endpoint(_: Request) -> PlainTextResponse:
        return PlainTextResponse(text)

    return endpoint


def test_deferred_routes_are_built_by_the_first_request_under_their_prefix() -> None:
    built: list[int] = []

    def build() -> list[BaseRoute]:
        built.append(1)
        return [Route("/cab", _text("home")), Route("/cab/save", _text("saved"), methods=["POST"])]

    app = Starlette(routes=[DeferredRoutes("/cab", build), Route("/cabinet", _text("not the cabinet"))])

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.get("/cabinet")).text == "not the cabinet"
            assert (await client.get("/elsewhere")).status_code == 404
            assert built == []
            assert (await client.get("/cab")).text == "home"
            assert (await client.get("/cab/save")).status_code == 405  # a partial match, as among the routes
            assert (await client.post("/cab/save")).text == "saved"
            assert (await client.get("/cab/none")).status_code == 404

    asyncio.run(run())
    assert built == [1]


# --- the literal-head check (api.routing): what matches is what FastAPI's own matching says --------------------

_METHODS = ("GET", "POST", "DELETE")
_VALUES = ("u100", "74951234567", "5", "a b", "")


def _paths(route_path: str) -> set[str]:
    """The route's path with each parameter filled by sample values, and its near misses: a trailing slash, a
    segment more or less, another section's prefix."""
    import re

    filled = {re.sub(r"\{[^}]*\}", value, route_path) for value in _VALUES}
    out = set(filled)
    for p in filled:
        out |= {p + "/", p.rstrip("/") + "/x", p.rsplit("/", 1)[0], p.upper(), "/crmapi/v2" + p[len("/crmapi/v1"):]}
    return out


def test_the_literal_head_never_changes_what_matches(tmp_path: Path) -> None:
    from vpbx.api.routing import Route as HeadRoute

    app = create_app(Settings(home=tmp_path, demo=False))  # the routes are the same on every backend
    routes = [r for r in app.routes if isinstance(r, HeadRoute)]
    assert len(routes) > 140  # every operation but the cabinet's (built with their group) is one
    paths = set().union(*(_paths(r.path) for r in routes)) | {"/", "/nope", "/crmapi/v1", "/crmapi/v1/", "/sys"}
    for route in routes:
        for path in paths:
            for method in _METHODS:
                for root in ("", "/pbx"):
                    scope = {"type": "http", "method": method, "path": root + path, "root_path": root,
                             "headers": [], "query_string": b""}
                    ours, child = route.matches(dict(scope))
                    theirs, their_child = APIRoute.matches(route, dict(scope))
                    assert (ours, child.get("path_params")) == (theirs, their_child.get("path_params")), \
                        (route.path, method, path)


def test_a_404_and_the_slash_redirect_answer_as_before(server: ServerThread, tenant: Tenant) -> None:
    """Every route is tried (twice: then for a trailing-slash redirect) before a 404, each telling "not me" from its
    literal head: the answer is still the documents' 404, and a path one slash off still redirected."""
    r = tenant.client.get("/crmapi/v1/no-such-section")
    assert r.status_code == 404, r.text
    assert r.json() == {"message": "Not found"}
    r = tenant.client.get("/crmapi/v1/users/", follow_redirects=False)  # the slash redirect still found
    assert r.status_code == 307, r.text
    assert r.headers["location"].endswith("/crmapi/v1/users")
