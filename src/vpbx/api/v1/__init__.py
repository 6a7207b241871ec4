"""REST API v1 (``/crmapi/v1``): one router per section of 002."""

from __future__ import annotations

from fastapi import APIRouter

from vpbx.api.v1 import am as am_v1
from vpbx.api.v1 import blacklist as blacklist_v1
from vpbx.api.v1 import blf as blf_v1
from vpbx.api.v1 import branches as branches_v1
from vpbx.api.v1 import callerids as callerids_v1
from vpbx.api.v1 import calls as calls_v1
from vpbx.api.v1 import domain, groups, users
from vpbx.api.v1 import history as history_v1
from vpbx.api.v1 import music as music_v1
from vpbx.api.v1 import record as record_v1
from vpbx.api.v1 import restrictions as restrictions_v1
from vpbx.api.v1 import sims as sims_v1
from vpbx.api.v1 import sipregs as sipregs_v1
from vpbx.api.v1 import sipuri as sipuri_v1
from vpbx.api.v1 import telnums as telnums_v1
from vpbx.api.v1 import webhooks as webhooks_v1
from vpbx.api.v1.section import PREFIX

__all__ = ["PREFIX", "SECTION_ROUTERS"]

# Each section's router (``section.section``: under PREFIX already), in the order of 002; feature work appends its
# own here. The app adds their routes in this order.
SECTION_ROUTERS: list[APIRouter] = [history_v1.router, calls_v1.router, users.router, groups.router,
                                   telnums_v1.router, sims_v1.router, blacklist_v1.router, domain.router,
                                   music_v1.router, record_v1.router, blf_v1.router, am_v1.router,
                                   callerids_v1.router, restrictions_v1.router,
                                   sipregs_v1.router, sipuri_v1.router, branches_v1.router, webhooks_v1.router]
