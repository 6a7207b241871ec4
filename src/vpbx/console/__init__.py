"""The web cabinet at /console: server-rendered pages (Jinja2, htmx, server-sent events) over the services the
API uses. Every script and style is served from ``static/`` (htmx and its SSE extension vendored with their
licences); nothing is fetched from the internet."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from vpbx.console.web import HERE, PREFIX


def install(app: FastAPI) -> None:
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

    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (auth, calls, integration, hub, users, groups, numbers, callerids, restrictions, blacklist, media,
                   settings, domain, sipregs, sipuri, branches, webhooks, traffic, sandbox):
        app.include_router(module.router)
