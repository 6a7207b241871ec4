"""Request-scoped dependencies: the store session and the caller's domain."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.api.auth import get_runtime
from vpbx.runtime import Runtime


async def get_session(runtime: Runtime = Depends(get_runtime)) -> AsyncIterator[AsyncSession]:
    """One session per request; the endpoint commits, anything uncommitted is rolled back."""
    async with runtime.sessions() as session:
        yield session
