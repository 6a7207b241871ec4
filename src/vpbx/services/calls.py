"""Click-to-call (002 §5.1, legacy makeCall; call-flows "Outgoing external call" step 4).

Everything a CRM can get wrong is checked before the PBX rings anybody (400 with the field): the employee
or department, the number, the direction (14) for the employee, and ``clid`` (13.2: one of the domain's
numbers enabled for outgoing calls). The call itself is the engine's: it rings the employee (or the
department, by its strategy) first, then dials the client.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.callerid import CallerIdConfig, choose_caller_id
from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.engine import engine_of
from vpbx.runtime import Runtime
from vpbx.services import callerids, restrictions
from vpbx.services.errors import Invalid
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.tables import Domain, Group, User


def _number(value: str | None, field: str) -> str:
    try:
        return normalize_number(value or "")
    except InvalidNumber:
        raise Invalid(field, "not a valid phone number") from None


async def make_call(session: AsyncSession, runtime: Runtime, domain_id: int, *, user: str | None = None,
                    group: str | None = None, phone: str, clid: str | None = None,
                    show_phone: bool = False) -> tuple[str, str]:
    """Place the call; returns its ``callid`` and the caller ID it uses (``clid`` when given)."""
    number = _number(phone, "phone")
    employee: User | None = None
    department: Group | None = None
    if user is not None and user.strip():
        employee = await dir_repo.find_user(session, domain_id, user.strip())
        if employee is None:
            raise Invalid("user", f"no employee '{user.strip()}' (a login or an extension)")
    elif group is not None and group.strip():
        department = await dir_repo.find_group(session, domain_id, group.strip())
        if department is None:
            raise Invalid("group", f"no department '{group.strip()}' (an id or an extension)")
    else:
        raise Invalid("user", "give the employee (user) or the department (group) to ring first")
    if clid is not None and clid.strip():
        wanted = _number(clid, "clid")
        config = CallerIdConfig(enabled=await callerids.enabled_numbers(session, domain_id))
        if choose_caller_id(config, client=number, clid=wanted) is None:
            raise Invalid("clid", f"{wanted} is not a number of the domain enabled for outgoing calls")
        clid = wanted
    else:
        clid = None
    if employee is not None and not await restrictions.may_dial(session, domain_id, employee.login, number):
        raise Invalid("phone", f"calls to this direction are not allowed for {employee.login}")
    caller_id = await callerids.caller_id_for(
        session, domain_id, number, login=employee.login if employee else None,
        groups=None if employee else [department.group_id] if department else [], clid=clid)
    domain = await session.get(Domain, domain_id)
    assert domain is not None
    engine = engine_of(runtime)
    call = await engine.make_call(domain, number, clid=caller_id, user=employee, group=department,
                                  show_phone=show_phone)
    await engine.flush()  # a call that ended at once (the employee cannot take calls) is in history now
    return call.callid, caller_id
