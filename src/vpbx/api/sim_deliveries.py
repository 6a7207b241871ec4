"""The CRM delivery log: every notification the PBX sent the CRM, each attempt, and replay.

``POST /sim/v1/deliveries/test`` is a diagnostics endpoint: it enqueues synthetic ``event``
notifications so an operator can check a CRM end to end (and tests can load the notifier).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, authenticate, get_runtime
from vpbx.api.deps import get_session
from vpbx.api.errors import SIM_RESPONSES
from vpbx.api.pagination import envelope, id_path, start_query
from vpbx.api.responses import json_response
from vpbx.api.routing import Route
from vpbx.notify import deliveries
from vpbx.runtime import Runtime
from vpbx.store.paging import Page

router = APIRouter(prefix="/sim/v1", route_class=Route, tags=["Simulator: CRM deliveries"], responses=SIM_RESPONSES)


class TestLoad(BaseModel):
    count: int = Field(default=1, ge=1, le=deliveries.MAX_TEST)


@router.get("/deliveries", summary="The delivery log: notifications sent to the CRM and their attempts")
async def list_deliveries(
    callid: str | None = Query(None),
    command: str | None = Query(None, description="history, event, rating or webhook"),
    state: str | None = Query(None, description="pending, delivered or failed"),
    start: int = start_query(),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(authenticate),
    session: AsyncSession = Depends(get_session),
) -> Response:
    items, total = await deliveries.list_deliveries(session, principal.domain_id, callid=callid, command=command,
                                                    state=state, start=start, limit=limit)
    return json_response(envelope(items, Page(search="", start=start, limit=limit), total))


@router.get("/deliveries/{delivery_id}", summary="One notification with its attempts")
async def get_delivery(delivery_id: int = id_path("The notification's id"),
                       principal: Principal = Depends(authenticate),
                       session: AsyncSession = Depends(get_session)) -> Response:
    return json_response(await deliveries.get_delivery(session, principal.domain_id, delivery_id))


@router.post("/deliveries/{delivery_id}/replay", summary="Send a notification again now (same id and body)")
async def replay(delivery_id: int = id_path("The notification's id"),
                 principal: Principal = Depends(authenticate),
                 session: AsyncSession = Depends(get_session), runtime: Runtime = Depends(get_runtime)) -> Response:
    out = await deliveries.replay(session, principal.domain_id, delivery_id, runtime.clock.now())
    await session.commit()
    return json_response(out)


@router.post("/deliveries/test", status_code=201,
             summary="Diagnostics: enqueue synthetic event notifications to the domain's CRM")
async def test_load(body: TestLoad, principal: Principal = Depends(authenticate),
                    session: AsyncSession = Depends(get_session)) -> Response:
    ids = await deliveries.enqueue_test(session, principal.domain_id, body.count)
    await session.commit()
    return json_response({"enqueued": len(ids), "ids": ids}, 201)
