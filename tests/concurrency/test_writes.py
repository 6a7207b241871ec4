"""Configuration writes under concurrency (issue 19 "Concurrency is correct by construction", issue 14
"Correctness under concurrency", issue 13 rule 7), on SQLite and PostgreSQL.

Concurrent requests are real HTTP requests in flight at once against the shared server; nothing here
depends on their order. ``VPBX_CONCURRENCY_SECONDS`` sets how long the many-writers test runs (default 5;
issue 19's run is 30).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from vpbx.services import groups, numbers, tenancy, users
from vpbx.services.errors import Invalid
from vpbx.store.tables import Extension, Group, User
from vpbx.testing.server import ServerThread, Tenant

V1 = "/crmapi/v1"
SECONDS = float(os.environ.get("VPBX_CONCURRENCY_SECONDS", "5"))


def client(server: ServerThread, tenant: Tenant) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=server.url, headers={"X-API-KEY": tenant.api_key}, timeout=120, limits=limits)


def namespace(server: ServerThread, tenant: Tenant) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """(ext, kind, id) of every employee and department, and every row of the extensions table."""

    async def read() -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, tenant.name)
            owners = [(e, "user", i) for e, i in (await s.execute(
                select(User.ext, User.id).where(User.domain_id == domain.id))).all()]
            owners += [(e, "group", i) for e, i in (await s.execute(
                select(Group.ext, Group.id).where(Group.domain_id == domain.id))).all()]
            claims = [(e, k, i) for e, k, i in (await s.execute(
                select(Extension.ext, Extension.owner_kind, Extension.owner_id)
                .where(Extension.domain_id == domain.id))).all()]
            return sorted(owners), sorted(claims)

    return server.call(read())


def assert_one_namespace(server: ServerThread, tenant: Tenant) -> None:
    owners, claims = namespace(server, tenant)
    dupes = [e for e, n in Counter(e for e, _, _ in owners).items() if n > 1]
    assert dupes == [], f"extensions held twice: {dupes}"
    assert owners == claims  # the table that enforces the namespace names exactly the owners


def assert_validation(r: httpx.Response, field: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["message"] == "Validation error"
    assert [e["field"] for e in body["errors"]] == [field], body


def test_concurrent_creations_without_ext_get_distinct_extensions(server: ServerThread, tenant: Tenant) -> None:
    """Issue 13 rule 7, issue 14: 32 employees and 32 departments created at once from a name alone."""

    async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with client(server, tenant) as c:
            users = [c.post(f"{V1}/users", json={"name": f"Сотрудник {i}"}) for i in range(32)]
            groups = [c.post(f"{V1}/groups", json={"name": f"Отдел {i}"}) for i in range(32)]
            done = await asyncio.gather(*users, *groups)
            return list(done[:32]), list(done[32:])

    users, groups = asyncio.run(run())
    assert [r.status_code for r in users + groups] == [200] * 64, [r.text for r in users + groups
                                                                    if r.status_code != 200][:3]
    exts = [r.json()["ext"] for r in users + groups]
    assert len(set(exts)) == 64
    assert all(r.json()["login"] == "u" + r.json()["ext"] for r in users)  # 002 §6.3 "u + ext"
    assert_one_namespace(server, tenant)


class _Unseen(dict[int, set[str]]):
    """The extensions this process's creations hold, as another process's creations see them: none."""

    def setdefault(self, key: int, default: set[str] | None = None) -> set[str]:
        return set()


def test_creations_of_other_processes_are_settled_by_the_keys(server: ServerThread, tenant: Tenant, backend: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """What one process's creations hold is not seen by another's (workers, nodes, the CLI): there the database's
    keys decide, the losers try again, and every creation still gets its own extension. Each creation here picks
    as if the others were in other processes; on PostgreSQL they collide (the same lowest free one) and retry."""
    monkeypatch.setattr(users, "_CLAIMING", _Unseen())
    lost: list[str] = []

    def counted(module: Any) -> Any:
        real = module.claimed

        async def claimed(*args: Any) -> Any:
            row = await real(*args)
            if row is None:
                lost.append(args[2])
            return row

        return claimed

    monkeypatch.setattr(users, "claimed", counted(users))
    monkeypatch.setattr(groups, "claimed", counted(groups))
    test_concurrent_creations_without_ext_get_distinct_extensions(server, tenant)
    if backend == "postgres":
        assert lost, "no creation lost a race: the keys' path was not taken"


def test_picked_extensions_are_let_go_when_their_transaction_ends(tenant: Tenant) -> None:
    """A creation's pick is held only while its transaction is open: committed, or refused after the pick (a
    login taken), nothing stays held, and the next creation gets the lowest free extension."""
    c = tenant.client
    c.post(f"{V1}/users", json={"name": "Логин", "login": "taken"}).raise_for_status()
    r = c.post(f"{V1}/users", json={"name": "Второй", "login": "taken"})
    assert_validation(r, "login")
    assert users._CLAIMING == {}
    first = c.post(f"{V1}/users", json={"name": "Первый"}).json()["ext"]
    assert users._CLAIMING == {}
    c.delete(f"{V1}/users/u{first}").raise_for_status()
    assert c.post(f"{V1}/users", json={"name": "Снова"}).json()["ext"] == first


def test_name_alone_works_after_an_extension_change(tenant: Tenant) -> None:
    """Issue 13 rule 7: an employee whose extension changed keeps the login of the old one; the next employee
    created from a name alone gets an extension whose default login is free too."""
    c = tenant.client
    first = c.post(f"{V1}/users", json={"name": "Первый"}).json()
    moved = c.put(f"{V1}/users/{first['login']}", json={"ext": "790"})
    assert moved.status_code == 200 and moved.json()["ext"] == "790"
    for i in range(3):
        r = c.post(f"{V1}/users", json={"name": f"Следующий {i}"})
        assert r.status_code == 200, r.text
        assert r.json()["login"] == "u" + r.json()["ext"] and r.json()["ext"] != first["ext"]


def test_an_extension_taken_between_the_checks_is_still_a_400_on_ext(server: ServerThread, tenant: Tenant,
                                                                     backend: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A creation asking for an extension, when another creation commits that extension (and the login ``u<ext>``
    derived from it) between this one's extension check and its login check: the answer names ``ext``, what the
    client asked for, not the derived login. The interleaving is forced: the other creation commits inside the
    first check."""
    if backend == "sqlite":
        pytest.skip("SQLite: a creation holds the write lock from before its checks; no creation commits between them")
    real = users._check_ext_free
    other: list[str] = []

    async def check_then_lose(session: Any, domain_id: int, ext: str) -> None:
        await real(session, domain_id, ext)
        if not other:  # the first check only: the other creation commits after it
            from vpbx.schemas.users import UserCreate

            other.append(ext)
            async with server.runtime.sessions() as s:
                domain = await tenancy.get_domain(s, tenant.name)
                await users.create(s, domain, UserCreate(name="Другой", ext=ext), server.runtime.clock.now())
                await s.commit()

    monkeypatch.setattr(users, "_check_ext_free", check_then_lose)
    r = tenant.client.post(f"{V1}/users", json={"name": "Первый", "ext": "850"})
    assert other == ["850"]
    assert_validation(r, "ext")
    assert_one_namespace(server, tenant)


def test_an_extension_conflict_is_a_400_on_ext(server: ServerThread, tenant: Tenant) -> None:
    """16 employees and departments asking for one extension at once: one gets it, the others a clear 400."""

    async def run() -> list[httpx.Response]:
        async with client(server, tenant) as c:
            asks = [c.post(f"{V1}/users", json={"name": f"u{i}", "ext": "800"}) for i in range(8)]
            asks += [c.post(f"{V1}/groups", json={"name": f"g{i}", "ext": "800"}) for i in range(8)]
            return list(await asyncio.gather(*asks))

    answers = asyncio.run(run())
    assert sorted(r.status_code for r in answers) == [200] + [400] * 15
    for r in answers:
        if r.status_code == 400:
            assert_validation(r, "ext")
    # Moving two existing employees onto one free extension at once: one moves, the other is refused.
    a = tenant.client.post(f"{V1}/users", json={"name": "a"}).json()["login"]
    b = tenant.client.post(f"{V1}/users", json={"name": "b"}).json()["login"]

    async def move() -> list[httpx.Response]:
        async with client(server, tenant) as c:
            return list(await asyncio.gather(*(c.put(f"{V1}/users/{who}", json={"ext": "801"}) for who in (a, b))))

    moved = asyncio.run(move())
    assert sorted(r.status_code for r in moved) == [200, 400]
    assert_validation(next(r for r in moved if r.status_code == 400), "ext")
    assert_one_namespace(server, tenant)


def test_concurrent_edits_of_one_object_last_writer_wins(server: ServerThread, tenant: Tenant) -> None:
    """Each answer is what that request stored, whole; the stored object is one of them, whole (no field from
    one writer mixed with another's), and its search index agrees with it."""

    async def run() -> list[httpx.Response]:
        async with client(server, tenant) as c:
            return list(await asyncio.gather(*(
                c.put(f"{V1}/users/ivan", json={"name": f"Иван {i}", "email": f"ivan{i}@example.com",
                                                "position": f"Должность {i}"}) for i in range(32))))

    answers = asyncio.run(run())
    assert [r.status_code for r in answers] == [200] * 32
    for i, r in enumerate(answers):
        body = r.json()
        assert (body["name"], body["email"], body["position"]) == (f"Иван {i}", f"ivan{i}@example.com",
                                                                     f"Должность {i}")
    stored = tenant.client.get(f"{V1}/users/ivan").json()
    assert stored in [r.json() for r in answers]
    found = tenant.client.get(f"{V1}/users", params={"search": stored["email"]}).json()["items"]
    assert [u["login"] for u in found] == ["ivan"]


def test_concurrent_member_changes_lose_nothing(server: ServerThread, tenant: Tenant) -> None:
    """16 employees added to one department by 16 requests at once (002 §8.6): all of them are members."""
    logins = [tenant.client.post(f"{V1}/users", json={"name": f"m{i}"}).json()["login"] for i in range(16)]

    async def run() -> list[httpx.Response]:
        async with client(server, tenant) as c:
            return list(await asyncio.gather(*(c.post(f"{V1}/groups/hr/users", json={"add": [login]})
                                               for login in logins)))

    assert [r.status_code for r in asyncio.run(run())] == [204] * 16
    members = [m["login"] for m in tenant.client.get(f"{V1}/groups/hr").json()["users"]]
    assert set(logins) <= set(members) and len(members) == len(set(members)) == 2 + 16


def test_many_writers(server: ServerThread, tenant: Tenant) -> None:
    """Issue 19: 50 concurrent writers (employees, departments, number routes; create, update, delete) for
    ``VPBX_CONCURRENCY_SECONDS``: no 5xx, no extension held twice, no lost update (every writer's own employee
    holds the last value the writer was told was stored)."""
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    acknowledged: dict[str, str] = {}
    mine = [tenant.client.post(f"{V1}/users", json={"name": f"writer {n}"}).json()["login"] for n in range(50)]

    async def writer(c: httpx.AsyncClient, n: int, until: float) -> None:
        rng = random.Random(n)
        i = 0
        while time.monotonic() < until:
            i += 1
            op = rng.choice(("user", "group", "own", "route", "ext"))
            if op == "user":
                r = await c.post(f"{V1}/users", json={"name": f"w{n}.{i}"})
                if r.status_code == 200:
                    login = r.json()["login"]
                    await record(await c.put(f"{V1}/users/{login}", json={"position": "Инженер"}))
                    r = await c.delete(f"{V1}/users/{login}")
            elif op == "group":
                r = await c.post(f"{V1}/groups", json={"name": f"g{n}.{i}",
                                                       "users": [{"login": mine[n], "calls_enable": True}]})
                if r.status_code == 200:
                    gid = r.json()["id"]
                    await record(await c.put(f"{V1}/groups/{gid}", json={"call_order": "EVENLY"}))
                    r = await c.delete(f"{V1}/groups/{gid}")
            elif op == "own":
                name = f"writer {n} #{i}"
                r = await c.put(f"{V1}/users/{mine[n]}", json={"name": name})
                if r.status_code == 200:
                    acknowledged[mine[n]] = r.json()["name"]
            elif op == "route":
                r = await c.post(f"{V1}/telnums/74957654321", json={"type": "user", "user": mine[n], "greeting": False})
            else:  # a free-ish extension: two writers may want the same one; the loser gets a 400 on ext
                r = await c.put(f"{V1}/users/{mine[n]}", json={"ext": str(rng.randint(900, 960))})
                if r.status_code == 400:
                    assert [e["field"] for e in r.json()["errors"]] == ["ext"], r.text
                    continue
            await record(r)

    async def record(r: httpx.Response) -> None:
        statuses[r.status_code] += 1
        if r.status_code >= 500 or r.status_code in (404, 409):
            failures.append(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:200]}")

    async def run() -> None:
        async with client(server, tenant) as c:
            until = time.monotonic() + SECONDS
            await asyncio.gather(*(writer(c, n, until) for n in range(50)))

    asyncio.run(run())
    assert failures == [], failures[:5]
    assert sum(statuses.values()) > 50 and all(s < 500 for s in statuses)
    assert_one_namespace(server, tenant)
    for login, name in acknowledged.items():
        assert tenant.client.get(f"{V1}/users/{login}").json()["name"] == name


def test_a_number_belongs_to_one_domain(server: ServerThread, tenant: Tenant, other_tenant: Tenant) -> None:
    """Issue 19: adding a number another domain has is a clear error, also when both try at once."""
    number = f"7499{random.randint(1_000_000, 9_999_999)}"

    async def give(who: Tenant, telnum: str) -> str:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, who.name)
            try:
                await numbers.provision(s, domain, telnum, server.runtime.clock.now())
            except Invalid as exc:
                return f"{exc.field}: {exc.message}"
            await s.commit()
            return "ok"

    assert server.call(give(tenant, number)) == "ok"
    assert server.call(give(other_tenant, number)) == f"telnum: {number} belongs to another domain"
    assert other_tenant.client.get(f"{V1}/telnums/{number}").status_code == 404

    racing = f"7499{random.randint(1_000_000, 9_999_999)}"

    async def race() -> list[str]:
        return list(await asyncio.gather(give(tenant, racing), give(other_tenant, racing)))

    assert sorted(server.call(race())) == ["ok", f"telnum: {racing} belongs to another domain"]


def test_the_database_refuses_a_second_holder(server: ServerThread, tenant: Tenant) -> None:
    """The namespace is the database's: a write that skipped every check still cannot take a held extension."""
    from sqlalchemy.exc import IntegrityError

    async def sneak() -> str:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, tenant.name)
            s.add(Extension(domain_id=domain.id, ext="701", owner_kind="group", owner_id=1))
            try:
                await s.commit()
            except IntegrityError:
                return "refused"
            return "taken"

    assert server.call(sneak()) == "refused"


def test_concurrent_route_edits_with_inline_menus(server: ServerThread, tenant: Tenant) -> None:
    """Issue 14: 32 number routes written at once, several saving the same inline menu (9.6) under one name:
    no 5xx, every answer is what its request stored, each menu exists once."""
    numbers_ = ("74951234567", "74957654321", "78121234567")

    def body(i: int) -> dict[str, object]:
        return {"type": "ivr", "greeting": False, "ivr": {"name": f"Меню {i % 4}", "greeting": False, "items": [
            {"button": "0", "type": "user", "user": "ivan"}, {"button": str(i % 9 + 1), "type": "group",
                                                              "group": "sales"}]}}

    async def run() -> list[httpx.Response]:
        async with client(server, tenant) as c:
            return list(await asyncio.gather(*(c.post(f"{V1}/telnums/{numbers_[i % 3]}", json=body(i))
                                               for i in range(32))))

    answers = asyncio.run(run())
    assert [r.status_code for r in answers] == [200] * 32, [r.text for r in answers if r.status_code != 200][:3]
    for i, r in enumerate(answers):
        assert r.json()["type"] == "ivr" and r.json()["ivr"]["name"] == f"Меню {i % 4}"

    async def menus() -> list[str]:
        from vpbx.store.tables import IvrMenu

        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, tenant.name)
            return sorted((await s.scalars(select(IvrMenu.name).where(IvrMenu.domain_id == domain.id))).all())

    assert [m for m in server.call(menus()) if m.startswith("Меню")] == [f"Меню {i}" for i in range(4)]


def test_routes_never_point_at_a_deleted_employee(server: ServerThread, tenant: Tenant) -> None:
    """Issue 14: writes no longer queue behind one lock per domain, so a route naming an employee and that
    employee's deletion may run at once: either the route came first and the deletion redirected it, or the route
    is refused (400 on ``user``). Deleting the employees that are each other's replacement at once never fails."""
    numbers_ = ("74951234567", "74957654321", "78121234567")
    for round_ in range(3):
        logins = [tenant.client.post(f"{V1}/users", json={"name": f"d{round_}.{i}"}).json()["login"]
                  for i in range(6)]

        async def run(logins: list[str]) -> list[httpx.Response]:
            async with client(server, tenant) as c:
                routes = [c.post(f"{V1}/telnums/{numbers_[i % 3]}", json={"type": "user", "user": login,
                                                                            "greeting": False})
                          for i, login in enumerate(logins)]
                deletes = [c.delete(f"{V1}/users/{login}") for login in logins]
                return list(await asyncio.gather(*routes, *deletes))

        answers = asyncio.run(run(logins))
        assert all(r.status_code < 500 for r in answers), [r.text for r in answers if r.status_code >= 500]
        for r in answers[:6]:
            if r.status_code != 200:
                assert_validation(r, "user")
        assert [r.status_code for r in answers[6:]] == [204] * 6
        existing = {u["login"] for u in tenant.client.get(f"{V1}/users").json()["items"]}
        for number in numbers_:
            route = tenant.client.get(f"{V1}/telnums/{number}").json()
            assert route.get("user") is None or route["user"] in existing, route
    assert_one_namespace(server, tenant)


def test_deleting_many_employees_and_departments_at_once(server: ServerThread, tenant: Tenant) -> None:
    """Employees and departments deleted together (each the other's redirect target, departments naming them):
    no 5xx (no deadlock between their locks), and nothing is left pointing at them."""
    logins = [tenant.client.post(f"{V1}/users", json={"name": f"x{i}"}).json()["login"] for i in range(8)]
    groups = [tenant.client.post(f"{V1}/groups", json={
        "name": f"gx{i}", "users": [{"login": logins[i], "calls_enable": True}],
        "timeout": {"time": 30, "target": "user", "user": logins[(i + 1) % 8]}}).json()["id"] for i in range(8)]
    assert tenant.client.post(f"{V1}/telnums/74957654321", json={"type": "group", "group": groups[0],
                                                                "greeting": False}).status_code == 200

    async def run() -> list[httpx.Response]:
        async with client(server, tenant) as c:
            return list(await asyncio.gather(*(c.delete(f"{V1}/users/{login}") for login in logins),
                                             *(c.delete(f"{V1}/groups/{gid}") for gid in groups)))

    answers = asyncio.run(run())
    assert [r.status_code for r in answers] == [204] * 16, [r.text for r in answers if r.status_code != 204][:3]
    route = tenant.client.get(f"{V1}/telnums/74957654321").json()
    assert route["type"] == "user" and route.get("user") not in logins, route
    assert_one_namespace(server, tenant)
