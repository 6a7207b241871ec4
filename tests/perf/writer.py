"""Another process writing configuration, as an operator's script would: ``python writer.py DB HOME DOMAIN OP ARG``.

The tests run it beside a running server to show that server's next request sees the change (``store.changes``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.cli import run_store, settings_for
from vpbx.clock import RealClock
from vpbx.schemas.blacklist import BlacklistIn
from vpbx.schemas.groups import GroupCreate
from vpbx.schemas.numbers import TelnumRouteIn
from vpbx.schemas.users import UserCreate
from vpbx.services import blacklist, groups, numbers, tenancy, users


def main() -> None:
    db, home, domain_name, op, arg = sys.argv[1:6]

    async def work(session: AsyncSession) -> None:
        domain = await tenancy.get_domain(session, domain_name)
        now = RealClock().now()
        if op == "user":
            await users.create(session, domain, UserCreate(login=arg, name=f"Сотрудник {arg}"), now)
        elif op == "group":
            await groups.create(session, domain, GroupCreate(name=arg), now)
        elif op == "route":
            await numbers.set_route(session, domain.id, "74951234567",
                                    TelnumRouteIn(type="user", greeting=False, user=arg))
        elif op == "blacklist":
            await blacklist.add(session, domain.id, [BlacklistIn(telnum=arg, comment="writer")], now)
        else:
            raise SystemExit(f"unknown op {op}")

    run_store(settings_for(db, Path(home)), work)


if __name__ == "__main__":
    main()
