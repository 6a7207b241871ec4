"""What one running server holds: settings, store, clock, telephony and caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vpbx.clock import RealClock, VirtualClock
from vpbx.settings import Settings

if TYPE_CHECKING:
    from vpbx.api.auth import AuthCache
    from vpbx.store.reader import Reader
    from vpbx.telephony.ports import Telephony


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: RealClock | VirtualClock
    auth: AuthCache
    telephony: Telephony
    reader: Reader
    extras: dict[str, object] = field(default_factory=dict)
