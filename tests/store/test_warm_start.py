"""A warm start skips Alembic only when every migration is applied (issue 14: ``vpbx serve``'s start time)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sqlalchemy import text
from tests.conftest import store_url

from vpbx.store import db


def test_migrations_are_skipped_only_when_the_store_is_at_every_head(backend: str, tmp_path: Path) -> None:
    asyncio.run(at_heads_or_not(store_url(backend, tmp_path)))


async def at_heads_or_not(url: str) -> None:
    engine = db.create_engine(url)
    try:
        assert not await db._at_heads(engine)  # a new store: no version table
        await db.upgrade(engine)
        assert await db._at_heads(engine)
        async with engine.begin() as conn:  # one head lost (as after a new migration is added): Alembic runs
            await conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0019_cluster'"))
        assert not await db._at_heads(engine)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0019_cluster')"))
        assert await db._at_heads(engine)
    finally:
        await engine.dispose()


def test_a_warm_start_does_not_import_alembic(tmp_path: Path) -> None:
    import subprocess

    url = f"sqlite:///{tmp_path / 'vpbx.db'}"
    code = ("import asyncio, sys; from vpbx.store import db; e = db.create_engine(sys.argv[1]); "
            "asyncio.run(db.upgrade(e)); print('alembic' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "True" and again.stdout.strip() == "False"
