"""The ASGI application: REST v1, the legacy API, the simulator, health and metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp

from vpbx import __version__, cluster
from vpbx import engine as call_engine
from vpbx.api import errors
from vpbx.api.auth import AuthCache
from vpbx.api.middleware import BodyLimit, HttpMetrics, PathAliases
from vpbx.api.responses import json_response
from vpbx.api.routing import Route
from vpbx.clock import make_clock
from vpbx.engine import recovery, traffic
from vpbx.metrics import REGISTRY
from vpbx.notify import lifecycle as notifier
from vpbx.runtime import Runtime
from vpbx.settings import Settings
from vpbx.store import db
from vpbx.telephony import sip
from vpbx.telephony.sim import SimTelephony
from vpbx.telephony.sip import registrations as sip_registrations

log = logging.getLogger("vpbx")

Hook = Callable[[Runtime], Awaitable[None]]
# Feature packages (the notifier's dispatcher, the engine) start and stop with the server here.
# recovery: the calls a crash left live end (history, closing events) before anything else is served.
# cluster (PostgreSQL only): takes this node's domains (ending what their dead owners left) instead of recovery.start.
# sip (with --sip): listens once the engine is attached to the port; stops first (its calls end with the server).
# sip_registrations: the §15 trunks registered through the SIP stack once it listens; unregistered before it stops.
STARTUP_HOOKS: list[Hook] = [call_engine.start, cluster.start, recovery.start, notifier.start, sip.start,
                             sip_registrations.start]
SHUTDOWN_HOOKS: list[Hook] = [cluster.stop, call_engine.stop, notifier.stop, traffic.stop_all,
                              sip.stop, sip_registrations.stop]  # run in reverse

DESCRIPTION = """A cloud PBX speaking the VPBX CRM integration API.

* **REST API v1** under `/crmapi/v1`, authenticated by the `X-API-KEY` header (002).
* **Legacy command API** at `/sys/crm_api.wcgp` (`cmd=` + `token=`).
* **Simulator** under `/sim/v1`: drive calls, phones and the virtual clock.
"""


def build_runtime(settings: Settings) -> Runtime:
    from vpbx.store.reader import Reader

    engine = db.create_engine(settings.db_url)
    runtime = Runtime(settings=settings, engine=engine, sessions=db.session_factory(engine, settings),
                      clock=make_clock(settings.clock), auth=AuthCache(), telephony=SimTelephony(),
                      reader=Reader(settings.db_url, engine))
    sip.install(runtime)  # --sip: SIP phones and carriers beside the simulator
    return runtime


def create_app(settings: Settings | None = None, runtime: Runtime | None = None,
               on_ready: Callable[[], None] | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else Settings())
    runtime = runtime or build_runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from vpbx.bootstrap import prepare_store

        await prepare_store(runtime)
        for hook in STARTUP_HOOKS:
            await hook(runtime)
        app.state.ready = True
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            app.state.ready = False
            for hook in reversed(SHUTDOWN_HOOKS):
                try:
                    await hook(runtime)
                except Exception:
                    log.exception("shutdown hook failed")
            runtime.reader.dispose()
            await runtime.engine.dispose()

    # FastAPI's native OpenTelemetry is off: unused here, its per-request check of the global providers cost ~12 µs.
    app = FastAPI(title="vpbx", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.router.route_class = Route  # the app's own routes (/healthz, /metrics, the docs) too
    app.state.runtime = runtime
    app.state.ready = False
    errors.install(app)
    install_docs(app)

    from vpbx.api import legacy, records, sim_deliveries, sim_traffic, sim_trunks, v1
    from vpbx.api import sim as sim_calls

    add_routes(app, *v1.SECTION_ROUTERS)
    add_routes(app, legacy.router)  # /sys/crm_api.wcgp, the legacy command API (000/001/004)
    add_routes(app, sim_deliveries.router, sim_trunks.router, sim_traffic.router, sim_calls.router)
    cluster.install(app)  # /readyz, and the answers forwarded from a domain's owner
    add_routes(app, records.router)
    from vpbx import console

    console.install(app)  # the web cabinet at /console

    def openapi() -> dict[str, Any]:
        """The generated document, with every error answer each operation can give (``errors.document``)."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            app.openapi_schema = errors.document(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        if not app.state.ready:
            return json_response({"status": "starting"}, 503)
        return json_response({"status": "ok", "version": __version__})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    from vpbx.api.fastpath import FastReads
    from vpbx.api.ratelimit import RateLimit
    from vpbx.logs import RequestLog

    # vpbx's layers, innermost first, wrap the framework's whole stack (its error and telemetry layers inside):
    # the configuration reads answered by FastReads pass through them alone (three framework layers a request
    # were a tenth of a fast read). An error inside the framework is still its 500, logged and counted here.
    layers: list[tuple[Callable[..., ASGIApp], dict[str, Any]]] = [
        (FastReads, {"runtime": runtime}),
        (RateLimit.for_settings, {"settings": settings}),  # outside the fast path: its 401s count
        (BodyLimit, {"max_bytes": settings.max_body_bytes}),
        (RequestLog, {"also": HttpMetrics().record}),  # outside the size limit: a refused 413 is logged, counted
        (PathAliases, {}),
    ]
    framework = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        stack = framework()
        for layer, options in layers:
            stack = layer(stack, **options)
        return stack

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
    return app


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """The routers' routes become the app's own, as they are: each was built once, when its module was imported,
    with its final path, dependencies and answers (the routers carry them). ``include_router`` would build every
    operation again, per app, on the first request that walks past it, and walk the nested routers on every
    request (FastAPI's included-router contexts)."""
    for router in routers:
        app.router.routes.extend(router.routes)


# --- the pages a person opens: /, /docs, /redoc (every asset served from here: no CDN, works offline) --------

ASSETS = "/_docs"  # the Swagger UI and ReDoc files the fastapi-offline package ships


def _assets_dir() -> str:
    from importlib.resources import files

    return str(files("fastapi_offline") / "static")


LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vpbx {version}</title>
<link rel="icon" href="{assets}/favicon.png">
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}
code{{background:#f3f3f3;padding:0 .25rem}} li{{margin:.3rem 0}}</style></head>
<body><h1>vpbx <small>{version}</small></h1>
<p>A cloud PBX speaking the VPBX CRM integration API: REST v1 under <code>/crmapi/v1</code> (header
<code>X-API-KEY</code>), the legacy command API at <code>/sys/crm_api.wcgp</code>, the simulator under
<code>/sim/v1</code>.</p>
<ul>
<li><a href="/docs">/docs</a>: the API, tried in the browser (Swagger UI); <a href="/redoc">/redoc</a> to read it</li>
<li><a href="/openapi.json">/openapi.json</a>: the OpenAPI 3.1 document</li>
<li><a href="/console">/console</a>: the operator's console</li>
<li><a href="/healthz">/healthz</a>: readiness</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
</ul>
<p>The demo domain's key is printed by <code>vpbx serve</code> and kept in
<code>.vpbx/demo-credentials.json</code>. Try <code>vpbx call incoming --from 79101234567 --to 74951234567</code>,
then <code>vpbx calls</code>.</p>
</body></html>
"""


def install_docs(app: FastAPI) -> None:
    """``/`` (links to everything a person opens), ``/docs`` and ``/redoc`` with assets served by vpbx itself."""
    app.mount(ASSETS, StaticFiles(directory=_assets_dir()), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    landing = LANDING.format(version=__version__, assets=ASSETS)

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return HTMLResponse(landing)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=oauth2_redirect,
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png")

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png", with_google_fonts=False)
