"""Queries over the web cabinet's sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.tables import ConsoleSession


async def add(session: AsyncSession, row: ConsoleSession) -> None:
    session.add(row)
    await session.flush()


async def by_token(session: AsyncSession, token_hash: str, now: datetime) -> ConsoleSession | None:
    return await session.scalar(select(ConsoleSession).where(ConsoleSession.token_hash == token_hash,
                                                             ConsoleSession.expires_at > now))


async def end(session: AsyncSession, token_hash: str) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash))


async def end_all(session: AsyncSession, domain_id: int, *, login: str | None, key_id: int | None) -> int:
    """Every session of one employee (or of one API key): "sign out everywhere"."""
    query = delete(ConsoleSession).where(ConsoleSession.domain_id == domain_id)
    if login is not None:
        query = query.where(ConsoleSession.login == login)
    else:
        query = query.where(ConsoleSession.key_id == key_id)
    result = await session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired(session: AsyncSession, now: datetime) -> None:
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
