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
    await db.upgrade(runtime.engine)
    if runtime.settings.demo:
        await ensure_demo(runtime)


async def ensure_demo(runtime: Runtime) -> dict[str, Any] | None:
    """Create the demo company when the store has no domain yet. Its key is stored hashed; the
    operator's copy goes to ``<home>/demo-credentials.json`` (mode 0600) so ``make run`` can show it."""
    async with runtime.sessions() as session:
        if await session.scalar(select(Domain.id).limit(1)) is not None:
            return None
        created = await create_demo(session, runtime.clock.now())
        await session.commit()
    creds = {"domain": created.domain.name, "api_key": created.api_key, "legacy_token": created.legacy_token}
    path = credentials_path(runtime.settings.home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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
