"""The CRM developer's kit, calling side: typed clients of the vpbx REST API v1 and legacy API.

``Client`` (sync) and ``AsyncClient`` (async) share one implementation (``_sync.py`` is generated from
``_async.py``) and the server's own pydantic schemas (``vpbx.schemas``)::

    with Client("https://pbx.example", api_key="...") as pbx:
        for user in pbx.iter_users():
            print(user.login, user.ext)
        call = pbx.sim.place("79101234567", "74951234567")  # the simulator: vpbx.schemas.sim models
"""

from vpbx.client._async import AsyncClient, AsyncSim
from vpbx.client._sync import Client, Sim
from vpbx.client.errors import (
    Conflict,
    Forbidden,
    InvalidToken,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ValidationError,
    VpbxError,
)

__all__ = [
    "AsyncClient",
    "AsyncSim",
    "Client",
    "Conflict",
    "Forbidden",
    "InvalidToken",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "Sim",
    "ValidationError",
    "VpbxError",
]
