"""Carrier peers (issue 16): operator-level SIP carriers, trusted by the source address and port of their
requests. The SIP core asks ``find_by_source`` for each INVITE that arrives without authentication."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services.errors import Invalid
from vpbx.store.tables.carriers import CarrierPeer

__all__ = ["Carrier", "CarrierExists", "add_carrier", "find_by_source", "list_carriers", "normal_host",
           "remove_carrier"]


@dataclass(frozen=True, slots=True)
class Carrier:
    name: str
    host: str  # an IP address, in its normal text form
    port: int


class CarrierExists(Invalid):
    """A carrier of that name, or at that address and port, is already configured."""


def normal_host(host: str) -> str:
    """``host`` as the one text form the SIP core compares with a packet's source (``::ffff:`` IPv4 unwrapped,
    IPv6 compressed, no brackets); ValueError when it is not an IP address."""
    addr = ipaddress.ip_address(host.strip().strip("[]"))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _carrier(row: CarrierPeer) -> Carrier:
    return Carrier(name=row.name, host=row.host, port=row.port)


async def find_by_source(session: AsyncSession, host: str, port: int) -> Carrier | None:
    """The carrier whose requests come from ``host``:``port``, if any."""
    try:
        host = normal_host(host)
    except ValueError:
        return None
    row = await session.scalar(select(CarrierPeer).where(CarrierPeer.host == host, CarrierPeer.port == port))
    return None if row is None else _carrier(row)


async def list_carriers(session: AsyncSession) -> list[Carrier]:
    return [_carrier(r) for r in (await session.scalars(select(CarrierPeer).order_by(CarrierPeer.name))).all()]


async def given_names(session: AsyncSession) -> dict[str, str]:
    """What the operator typed for each carrier (a host name resolved when added), for the listing."""
    return {r.name: r.given for r in (await session.scalars(select(CarrierPeer))).all()}


async def add_carrier(session: AsyncSession, name: str, host: str, port: int, *, given: str = "",
                      now: datetime | None = None) -> Carrier:
    """Add a carrier at ``host`` (an IP address; resolve names first) and ``port``. A name or an address
    already taken raises ``CarrierExists``; a bad name, address or port raises ``Invalid``."""
    name = name.strip()
    if not name or len(name) > 64:
        raise Invalid("name", "a carrier's name is 1 to 64 characters")
    try:
        host = normal_host(host)
    except ValueError:
        raise Invalid("host", f"{host!r} is not an IP address") from None
    if not 0 < port < 65536:
        raise Invalid("port", "a port is 1 to 65535")
    if await session.scalar(select(CarrierPeer.id).where(CarrierPeer.name == name)) is not None:
        raise CarrierExists("name", f"a carrier named {name} already exists")
    taken = await session.scalar(select(CarrierPeer.name).where(CarrierPeer.host == host, CarrierPeer.port == port))
    if taken is not None:
        raise CarrierExists("host", f"carrier {taken} is already at {host}:{port}")
    row = CarrierPeer(name=name, host=host, port=port, given=given or host, created_at=now or datetime.now(UTC))
    try:
        async with session.begin_nested():  # a concurrent add of the same name loses cleanly
            session.add(row)
    except IntegrityError:
        raise CarrierExists("name", f"a carrier named {name} or at {host}:{port} already exists") from None
    return _carrier(row)


async def remove_carrier(session: AsyncSession, name: str) -> bool:
    """Remove the carrier named ``name``; False when there is none."""
    result = await session.execute(delete(CarrierPeer).where(CarrierPeer.name == name.strip()))
    return bool(getattr(result, "rowcount", 0))
