"""The ASGI application: REST v1, the legacy API, the simulator, health and metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from vpbx import __version__
from vpbx import engine as call_engine
from vpbx.api import errors
from vpbx.api.auth import AuthCache
from vpbx.api.middleware import BodyLimit, Metrics, PathAliases
from vpbx.api.responses import json_response
from vpbx.clock import make_clock
from vpbx.engine import traffic
from vpbx.metrics import REGISTRY
from vpbx.notify import lifecycle as notifier
from vpbx.runtime import Runtime
from vpbx.settings import Settings
from vpbx.store import db
from vpbx.telephony.sim import SimTelephony

log = logging.getLogger("vpbx")

Hook = Callable[[Runtime], Awaitable[None]]
# Feature packages (the notifier's dispatcher, the engine) start and stop with the server here.
STARTUP_HOOKS: list[Hook] = [call_engine.start, notifier.start]
SHUTDOWN_HOOKS: list[Hook] = [call_engine.stop, notifier.stop, traffic.stop_all]  # run in reverse

DESCRIPTION = """A cloud PBX speaking the VPBX CRM integration API.

* **REST API v1** under `/crmapi/v1`, authenticated by the `X-API-KEY` header (002).
* **Legacy command API** at `/sys/crm_api.wcgp` (`cmd=` + `token=`).
* **Simulator** under `/sim/v1`: drive calls, phones and the virtual clock.
"""


def build_runtime(settings: Settings) -> Runtime:
    from vpbx.store.reader import Reader

    engine = db.create_engine(settings.db_url)
    return Runtime(settings=settings, engine=engine, sessions=db.session_factory(engine),
                   clock=make_clock(settings.clock), auth=AuthCache(), telephony=SimTelephony(),
                   reader=Reader(settings.db_url, engine))


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

    app = FastAPI(title="vpbx", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.runtime = runtime
    app.state.ready = False
    errors.install(app)

    from vpbx.api import legacy, sim_deliveries, sim_traffic, sim_trunks, v1

    app.include_router(v1.router())
    app.include_router(legacy.router)  # /sys/crm_api.wcgp, the legacy command API (000/001/004)
    app.include_router(sim_deliveries.router)
    app.include_router(sim_trunks.router)
    app.include_router(sim_traffic.router)
    from vpbx.api import sim as sim_calls

    app.include_router(sim_calls.router)
    from vpbx.api import records as recordings

    app.include_router(recordings.router)

    def openapi() -> dict[str, Any]:
        """FastAPI documents 422 for every validated operation; vpbx answers 400 (002 §3.3) instead."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    invalid = responses.pop("422", None)
                    if invalid is not None and "400" not in responses:
                        responses["400"] = {"description": errors.VALIDATION_ERROR, "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ValidationErrorOut"}}}}
            for unused in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(unused, None)
            app.openapi_schema = schema
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

    app.add_middleware(FastReads, runtime=runtime)
    app.add_middleware(Metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(PathAliases)
    return app
