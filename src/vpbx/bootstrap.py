"""First start: migrate the store, create the demo domain on an empty store, remember its keys."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vpbx.runtime import Runtime
from vpbx.services.demo import create_demo
from vpbx.store import db
from vpbx.store.tables import Domain

log = logging.getLogger("vpbx.bootstrap")

CREDENTIALS_FILE = "demo-credentials.json"


async def prepare_store(runtime: Runtime) -> None:
    from vpbx.secrets_store import box_for, private_dir

    private_dir(runtime.settings.home)  # owner-only: the store, its secret and the demo keys live here
    await db.upgrade(runtime.engine, box=box_for(runtime.settings))
    if runtime.settings.clock == "virtual":
        from vpbx.secrets_store import operator_key

        operator_key(runtime.settings)  # <home>/operator-key, for the CLI and scenarios that move the clock
    if runtime.settings.demo:
        await ensure_demo(runtime)
        if runtime.settings.demo_phones:
            await register_demo_phones(runtime)


async def register_demo_phones(runtime: Runtime) -> list[str]:
    """Register the demo domain's employees' simulated phones, answering like people (``demo.phone_behaviour``).
    Phones live in memory: this runs at every start. Returns the logins registered."""
    from vpbx.services.demo import DEMO_DOMAIN, EMPLOYEES, phone_behaviour
    from vpbx.store.repositories import directory, tenancy
    from vpbx.telephony.sim import SimTelephony

    sim = runtime.telephony
    if not isinstance(sim, SimTelephony):
        return []
    async with runtime.sessions() as session:
        domain = await tenancy.domain_by_name(session, DEMO_DOMAIN)
        if domain is None:
            return []
        domain_id = domain.id
        logins = sorted(await directory.users_by_logins(session, domain_id, [e[0] for e in EMPLOYEES]))
    for login in logins:
        sim.set_registered(domain_id, login, True)
        sim.set_auto(domain_id, login, phone_behaviour(login))
    log.info("demo phones registered", extra={"domain": DEMO_DOMAIN, "phones": len(logins)})
    return logins


async def ensure_demo(runtime: Runtime) -> dict[str, Any] | None:
    """Create the demo company when the store has no domain yet. Its key is stored hashed; the
    operator's copy goes to ``<home>/demo-credentials.json`` (mode 0600) so ``make run`` can show it."""
    async with runtime.sessions() as session:
        if await session.scalar(select(Domain.id).limit(1)) is not None:
            return None
        created = await create_demo(session, runtime.clock.now())
        # The web cabinet's sign-in for the demo's admin (admin@<domain>): a random password, shown by ``make run``.
        from vpbx.schemas.users import UserUpdate
        from vpbx.security import new_password
        from vpbx.services import users

        admin_password = new_password()
        await users.update(session, created.domain.id, "admin", UserUpdate(password=admin_password))
        await session.commit()
    creds = {"domain": created.domain.name, "api_key": created.api_key, "legacy_token": created.legacy_token,
             "admin_login": f"admin@{created.domain.name}", "admin_password": admin_password}
    path = credentials_path(runtime.settings.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an older version keeps its mode otherwise
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, ensure_ascii=False, indent=2)
    log.info("demo domain created", extra={"domain": created.domain.name})
    return creds


def credentials_path(home: Path) -> Path:
    return home / CREDENTIALS_FILE


def read_credentials(home: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(credentials_path(home).read_text())
        return data
    except (OSError, ValueError):
        return None
