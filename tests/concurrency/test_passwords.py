"""Employee passwords (issue 14 "Writes"): Argon2id with its parameters in the PHC string, hashed off the event
loop; a generated one when none is given (002 §6.3); hashes of earlier versions (scrypt) still verify."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading

import pytest
from sqlalchemy import select

from vpbx import security
from vpbx.services import tenancy
from vpbx.store.tables import User
from vpbx.testing.server import ServerThread, Tenant

V1 = "/crmapi/v1"


def stored_hash(server: ServerThread, tenant: Tenant, login: str) -> str:
    async def read() -> str:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, tenant.name)
            found = await s.scalar(select(User.password_hash).where(User.domain_id == domain.id, User.login == login))
            assert found is not None
            return found

    return server.call(read())


def test_a_password_is_stored_as_argon2id_with_its_parameters(server: ServerThread, tenant: Tenant) -> None:
    r = tenant.client.post(f"{V1}/users", json={"name": "С паролем", "password": "correct horse battery"})
    assert r.status_code == 200 and "password" not in r.text
    chosen = stored_hash(server, tenant, r.json()["login"])
    assert chosen.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert security.check_password("correct horse battery", chosen)
    assert not security.check_password("correct horse batterY", chosen)
    assert not security.needs_rehash(chosen)

    generated = stored_hash(server, tenant, tenant.client.post(f"{V1}/users", json={"name": "Без"}).json()["login"])
    assert generated.startswith("$argon2id$v=19$m=1024,t=1,p=1$")  # 96 random bits: see security.GENERATED_HASHER
    assert not security.check_password("", generated)

    changed = tenant.client.put(f"{V1}/users/{r.json()['login']}", json={"password": "another one"})
    assert changed.status_code == 200
    new = stored_hash(server, tenant, r.json()["login"])
    assert new != chosen and security.check_password("another one", new)


def test_an_earlier_scrypt_hash_still_verifies() -> None:
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"old secret", salt=salt, n=2**12, r=8, p=1)
    old = "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
    assert security.check_password("old secret", old)
    assert not security.check_password("old secreT", old)
    assert not security.check_password("old secret", "scrypt$not base64$!!")
    assert not security.check_password("old secret", "$argon2id$garbage")
    assert security.needs_rehash(old)


async def test_hashing_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real = security.hash_password

    def spy(password: str) -> str:
        threads.append(threading.current_thread().name)
        return real(password)

    monkeypatch.setattr(security, "hash_password", spy)
    results = await asyncio.gather(*(security.hash_password_async(f"pw{i}") for i in range(4)),
                                   security.generated_password_hash_async())
    assert len(set(results)) == 5
    assert threads and all(name.startswith("vpbx-hash") for name in threads)
    assert await security.check_password_async("pw0", results[0])


async def test_generated_hashes_are_made_ahead_in_the_pool_and_never_handed_out_twice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Employees created without a password take a hash made ahead (a creation never waits for the pool while the
    stock lasts); each is taken once, whatever the concurrency, and a burst past the stock waits for a batch."""
    threads: list[str] = []
    real = security._generated_batch

    def spy(n: int) -> list[str]:
        threads.append(threading.current_thread().name)
        return real(n)

    monkeypatch.setattr(security, "_generated_batch", spy)
    monkeypatch.setattr(security, "_stock", [])
    burst = 3 * security.STOCK_BATCH + 5  # past the stock: waits for batches
    taken = await asyncio.gather(*(security.generated_password_hash_async() for _ in range(burst)))
    assert len(set(taken)) == burst
    assert all(h.startswith("$argon2id$v=19$m=1024,t=1,p=1$") for h in taken)
    assert threads and all(name.startswith("vpbx-hash") for name in threads)
    await asyncio.wrap_future(security._refilling())  # the refill the last takes started
    made = len(threads)
    ready = len(security._stock)
    assert ready >= security.STOCK_LOW
    for _ in range(ready - security.STOCK_LOW):  # taken from the stock: no batch made meanwhile
        taken.append(await security.generated_password_hash_async())
    assert len(threads) == made
    assert len(set(taken)) == len(taken)
