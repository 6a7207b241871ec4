"""The web cabinet at /console: server-rendered pages (Jinja2, htmx, server-sent events) over the services the
API uses. Every script and style is served from ``static/`` (htmx and its SSE extension vendored with their
licences); nothing is fetched from the internet."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.routing import BaseRoute

PREFIX = "/console"  # every cabinet path starts here (``web.PREFIX``)


def install(app: FastAPI) -> None:
    """The cabinet's routes, built on the first request under /console (``api.deferred``): not at start."""
    from vpbx.api.deferred import DeferredRoutes

    app.router.routes.append(DeferredRoutes(PREFIX, routes))


def routes() -> list[BaseRoute]:
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from vpbx.console import auth, calls, integration, sandbox, traffic
    from vpbx.console.company import (
        blacklist,
        branches,
        callerids,
        domain,
        groups,
        hub,
        media,
        numbers,
        restrictions,
        settings,
        sipregs,
        sipuri,
        users,
        webhooks,
    )
    from vpbx.console.web import HERE

    built: list[BaseRoute] = [Mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console-static")]
    for module in (auth, calls, integration, hub, users, groups, numbers, callerids, restrictions, blacklist, media,
                   settings, domain, sipregs, sipuri, branches, webhooks, traffic, sandbox):
        built.extend(module.router.routes)  # each built once, when its module is imported (see ``app.add_routes``)
    return built
