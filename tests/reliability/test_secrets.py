"""Secrets at rest (issue 19): the CRM token and the signing secret are stored sealed like SIP passwords (and
never in an outbox row), migration 0013 seals the clear values an older store holds, and every file vpbx
creates under its home is its owner's only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.notify.conftest import Receiver, make_harness

from vpbx.notify import signing
from vpbx.notify.payloads import CallStatus, HistoryNotice
from vpbx.secrets_store import SEALED, box_for, open_value
from vpbx.settings import Settings
from vpbx.store import db
from vpbx.testing.server import ServerThread

TOKEN = "crm-token-8f1e2d"
SIGNING = "whsec_" + "c2VjcmV0LXNpZ25pbmcta2V5LTMyLWJ5dGVzLWxvbmch"


def hist(callid: str) -> HistoryNotice:
    return HistoryNotice(type="in", user="andy", phone="79101234567", start=datetime(2026, 1, 12, 9, tzinfo=UTC),
                         duration=10, callid=callid, status=CallStatus.SUCCESS)


async def test_token_and_signing_secret_rest_sealed_and_go_out_in_clear(store_url: str, tmp_path: Path,
                                                                        receiver: Receiver) -> None:
    h = await make_harness(store_url, tmp_path)
    try:
        domain = await h.domain(receiver.url, token=TOKEN, signing_secret=SIGNING)
        await h.enqueue(domain, hist("sealed-1"))
        await h.dispatcher.settle()
        async with h.runtime.sessions() as s:
            token, secret = (await s.execute(text("SELECT crm_token, signing_secret FROM integrations "
                                                  "WHERE domain_id = :d"), {"d": domain})).one()
            (body,) = (await s.execute(text("SELECT body FROM notify_outbox WHERE domain_id = :d"),
                                       {"d": domain})).one()
        assert token.startswith(SEALED) and TOKEN not in token
        assert secret.startswith(SEALED) and SIGNING not in secret
        box = box_for(h.runtime.settings)
        assert (open_value(box, token), open_value(box, secret)) == (TOKEN, SIGNING)
        assert TOKEN not in body and "crm_token=&" in body  # the outbox keeps no token
        (hit,) = receiver.hits
        assert f"crm_token={TOKEN}&".encode() in hit.body  # put in as it was sent
        signing.verify(SIGNING, hit.headers, hit.body)  # signed over what was sent, with the clear secret
    finally:
        await h.dispatcher.stop()
        h.runtime.reader.dispose()
        await h.runtime.engine.dispose()


async def test_migration_0013_seals_what_an_older_store_kept_in_clear(store_url: str, tmp_path: Path) -> None:
    settings = Settings(db=store_url, home=tmp_path, demo=False)
    engine = db.create_engine(settings.db_url)
    try:
        await db.upgrade(engine)
        async with db.session_factory(engine, settings)() as session:
            from vpbx.services import tenancy

            d = (await tenancy.create_domain(session, "old.test", datetime.now(UTC))).domain.id
            await session.commit()
        async with engine.begin() as conn:  # as vpbx before 0013 left it: clear values, 0013 not applied
            await conn.execute(text("UPDATE integrations SET crm_token = :t, signing_secret = :s WHERE domain_id = :d"),
                               {"d": d, "t": TOKEN, "s": SIGNING})
            await conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0013'"))
        with pytest.raises(RuntimeError, match="in clear"):  # never half-done: without the secret, no upgrade
            await db.upgrade(engine)
        await db.upgrade(engine, box=box_for(settings))
        async with engine.connect() as conn:
            token, secret = (await conn.execute(text("SELECT crm_token, signing_secret FROM integrations "
                                                     "WHERE domain_id = :d"), {"d": d})).one()
            versions = set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())
        assert "0013" in versions
        box = box_for(settings)
        assert token.startswith(SEALED) and secret.startswith(SEALED)
        assert (open_value(box, token), open_value(box, secret)) == (TOKEN, SIGNING)
    finally:
        await engine.dispose()


def test_a_value_sealed_under_another_secret_is_not_opened(tmp_path: Path) -> None:
    mine = box_for(Settings(home=tmp_path / "a", secret="one secret"))
    other = box_for(Settings(home=tmp_path / "b", secret="another secret"))
    with pytest.raises(ValueError, match="another server secret"):
        open_value(other, SEALED + mine.seal(TOKEN))


def modes(home: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(home.stat().st_mode)}
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            p = Path(root) / name
            out[str(p.relative_to(home))] = stat.S_IMODE(p.stat().st_mode)
    return out


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask: what vpbx creates must not rely on a stricter one
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_every_file_under_home_is_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = ServerThread(Settings(home=home, demo=True, demo_phones=False, port=0, clock="virtual")).start()
    try:
        import httpx

        from vpbx.bootstrap import read_credentials

        creds = read_credentials(home)
        assert creds is not None
        r = httpx.get(srv.url + "/crmapi/v1/users", headers={"X-API-KEY": creds["api_key"]}, timeout=30)
        assert r.status_code == 200  # the store has been written and read: WAL and SHM exist
        found = modes(home)
    finally:
        srv.stop()
    for name in ("vpbx.db", "vpbx.db-wal", "vpbx.db-shm", "secret", "demo-credentials.json", "operator-key"):
        assert name in found, (name, sorted(found))
    loose = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert loose == {}, loose
    assert found["."] == 0o700 and found["vpbx.db"] == 0o600


def test_generated_keys_and_passwords_never_start_with_a_dash() -> None:
    """A key or password is passed on command lines (``vpbx key revoke -d x <prefix>``): a leading dash would read
    as an option. One token in 64 would start with one; 3,000 of each make a miss of the rule all but certain."""
    from vpbx.security import new_key, new_password

    assert not [k for k in (new_key() for _ in range(3000)) if k.startswith("-")]
    assert not [p for p in (new_password() for _ in range(3000)) if p.startswith("-")]
