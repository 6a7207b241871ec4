"""Quality ratings (002 §2.4; call-flows step 10): which numbers and departments ask the client for a score.

A vpbx extension: the documents send ``rating`` but name no setting that turns the question on. An answered
incoming call that came through a number in ``telnums`` or a department in ``groups`` asks the client for a
score (1-5) when the employee hangs up; the score sends ``rating`` and fills the history's ``rating``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.services.errors import Invalid
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import numbers as numbers_repo
from vpbx.store.repositories import ratings as repo


async def overview(session: AsyncSession, domain_id: int) -> dict[str, Any]:
    return {"telnums": await repo.telnums(session, domain_id), "groups": await repo.groups(session, domain_id)}


async def update(session: AsyncSession, domain_id: int, *, telnums: Sequence[str] | None = None,
                 groups: Sequence[str] | None = None) -> None:
    """Replace the lists given (all or nothing: every number and department is checked first)."""
    telnum_ids: list[int] = []
    for i, raw in enumerate(telnums or ()):
        try:
            number = normalize_number(raw)
        except InvalidNumber:
            raise Invalid(f"telnums.{i}", "not a valid phone number") from None
        found = await numbers_repo.find_telnum(session, domain_id, number)
        if found is None:
            raise Invalid(f"telnums.{i}", f"{number} is not a number of the domain")
        telnum_ids.append(found.id)
    group_ids: list[int] = []
    for i, group_id in enumerate(groups or ()):
        group = await dir_repo.find_group(session, domain_id, group_id)
        if group is None:
            raise Invalid(f"groups.{i}", f"no department '{group_id}'")
        group_ids.append(group.id)
    if telnums is not None:
        await repo.replace_telnums(session, domain_id, telnum_ids)
    if groups is not None:
        await repo.replace_groups(session, domain_id, group_ids)


async def asking(session: AsyncSession, domain_id: int) -> tuple[frozenset[str], frozenset[str]]:
    """The numbers and the department ids that ask (the engine's entry point)."""
    return frozenset(await repo.telnums(session, domain_id)), frozenset(await repo.groups(session, domain_id))
