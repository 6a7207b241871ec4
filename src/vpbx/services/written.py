"""What a configuration write already read or set in its transaction, for its answer to be rendered from rather
than read back (each read is a statement: issue 14). Kept in the session for the current transaction only: what
an earlier transaction of the same session left is dropped."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


def held(session: AsyncSession, key: str) -> dict[Any, Any]:
    """The transaction's mapping under ``key`` (empty at first)."""
    transaction = session.sync_session.get_transaction()
    found = session.info.get(key)
    if found is None or found[0] is not transaction:
        found = session.info[key] = (transaction, {})
    mapping: dict[Any, Any] = found[1]
    return mapping
