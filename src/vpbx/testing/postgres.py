"""Empty PostgreSQL databases for tests: created when missing, their public schema reset."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import make_url


def empty_database(url: str, suffix: str = "") -> str:
    """The URL of ``<database><suffix>`` beside ``url``'s, created if missing and emptied.

    Suites that run their own server take a suffix so they never reset the database another
    server of the same test session is using.
    """
    import asyncpg

    base = make_url(url)
    name = base.database or ""
    if suffix and not name.endswith(suffix):
        name += suffix
    target = base.set(database=name)

    async def main() -> None:
        admin = await asyncpg.connect(base.set(drivername="postgresql", database="postgres")
                                      .render_as_string(hide_password=False))
        try:
            if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(target.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        finally:
            await conn.close()

    asyncio.run(main())
    return target.render_as_string(hide_password=False)
