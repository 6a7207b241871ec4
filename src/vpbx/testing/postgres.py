"""Empty PostgreSQL databases for tests: one per test process, dropped when it exits.

Each process (a pytest run, an xdist worker, a developer's second run) gets databases of its
own, named with its pid, so parallel runs never reset each other's store. Databases left by
processes that died are dropped the next time one is made.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re

from sqlalchemy.engine import make_url

_MADE: set[str] = set()
_OWN = re.compile(r"_p(\d+)_\d+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _admin(url: str):  # type: ignore[no-untyped-def]
    import asyncpg

    base = make_url(url)
    return await asyncpg.connect(base.set(drivername="postgresql", database="postgres")
                                 .render_as_string(hide_password=False))


def empty_database(url: str, suffix: str = "") -> str:
    """The URL of a new empty database beside ``url``'s, private to this process.

    Suites that run their own server take a suffix so they never share the database another
    server of the same test session is using.
    """
    base = make_url(url)
    # Unique per call too: two fixtures of one process must never share (or drop) each other's database.
    name = f"{base.database or 'test'}{suffix}_p{os.getpid()}_{len(_MADE)}"
    target = base.set(database=name)

    async def main() -> None:
        admin = await _admin(url)
        try:
            for (other,) in await admin.fetch("SELECT datname FROM pg_database"):
                m = _OWN.search(other)
                if m and not _alive(int(m.group(1))):
                    await admin.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(main())
    if not _MADE:
        atexit.register(_drop_all, url)
    _MADE.add(name)
    return target.render_as_string(hide_password=False)


def _drop_all(url: str) -> None:
    async def main() -> None:
        admin = await _admin(url)
        try:
            for name in sorted(_MADE):
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        asyncio.run(main())
    except Exception:  # the server may be gone at exit; the next run drops what is left
        pass


# --- which PostgreSQL the tests use -------------------------------------------------------------------------

LOCAL_TEST_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SKIP_REASON = ("PostgreSQL tests need a PostgreSQL: set VPBX_TEST_PG_URL=postgresql+asyncpg://USER@HOST:PORT/DB "
               "(unset, the one on 127.0.0.1:5432, user postgres, is used when it answers; off: none)")


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a PostgreSQL accepts ``url``'s user on its ``postgres`` database within ``timeout`` seconds."""
    async def main() -> bool:
        try:
            conn = await asyncio.wait_for(_admin(url), timeout)
        except Exception:  # refused, timed out, auth failed: not usable
            return False
        await conn.close()
        return True

    return asyncio.run(main())


def url_for_tests(environ: dict[str, str] | None = None) -> str:
    """The PostgreSQL URL the tests use: ``VPBX_TEST_PG_URL`` when set (``off``: none), else the local server at
    ``LOCAL_TEST_URL`` when it answers, else "" (the PostgreSQL half is skipped with ``SKIP_REASON``)."""
    env = os.environ if environ is None else environ
    given = env.get("VPBX_TEST_PG_URL")
    if given is not None and given.strip():
        return "" if given.strip().lower() == "off" else given.strip()
    return LOCAL_TEST_URL if answers(LOCAL_TEST_URL) else ""
