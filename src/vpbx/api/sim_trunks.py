"""Simulator: the state of SIP trunks to other operators (002 §15 ``status``).

``PUT /sim/v1/sip-registrations/{telnum}`` ``{"status": "auth_failed"}`` plays the operator's answer;
entering a failure state emits a ``sipregs_error`` webhook event (002 §15.6).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, authenticate, get_runtime
from vpbx.api.deps import get_session
from vpbx.api.errors import SIM_RESPONSES
from vpbx.api.responses import json_response
from vpbx.api.routing import Route
from vpbx.api.v1.sipregs import path_telnum
from vpbx.cluster.forward import owner_gate
from vpbx.runtime import Runtime
from vpbx.schemas.sipregs import SimTrunkStatus, SipRegOut
from vpbx.services import sipregs

# The engine's commands run on the domain's owner (a cluster forwards them; one process: a no-op).
router = APIRouter(prefix="/sim/v1", route_class=Route, tags=["Simulator: SIP registrations"], responses=SIM_RESPONSES,
                   dependencies=[Depends(owner_gate)])


@router.put("/sip-registrations/{telnum}", response_model=SipRegOut,
            summary="Set a SIP registration's status (success, waiting, error, auth_failed, timeout, forbidden)")
async def set_trunk_status(
    telnum: str,
    body: SimTrunkStatus,
    principal: Principal = Depends(authenticate),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    reg = await sipregs.set_status(session, principal.domain_id, path_telnum(telnum), body.status,
                                   runtime.telephony, runtime.clock.now())
    await session.commit()
    return json_response(sipregs.sipreg_out(reg, runtime.telephony))
