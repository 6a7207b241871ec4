"""The legacy command API (000/001/004 §5) at /sys/crm_api.wcgp: every example request of the three
documents reproduced and answered as documented, the public clients' conventions (spec/README), and
the two errors. Rows and state are checked through REST v1 where they are shared."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from tests.engine.test_history_api import ext
from tests.legacy.client import PATH, LegacyClient

from vpbx.services import tenancy
from vpbx.store.tables import CallRecord, Domain, User
from vpbx.testing.server import ServerThread, Tenant, create_tenant

INVALID_PARAMETERS = {"error": "Invalid parameters"}
INVALID_TOKEN = {"error": "Invalid token"}
DEMO_ACCOUNTS = [
    {"name": "admin", "realName": "Администратор", "ext": "701"},
    {"name": "user1", "realName": "Пользователь", "ext": "702"},
    {"name": "director", "realName": "Директор", "ext": "703"},
    {"name": "manager", "realName": "Ольга Смирнова", "ext": "704"},
    {"name": "ivan", "realName": "Иван Петров", "ext": "707"},
    {"name": "maria", "realName": "Мария Кузнецова", "ext": "708"},
    {"name": "sergey", "realName": "Сергей Волков", "ext": "709"},
    {"name": "anna", "realName": "Анна Соколова", "ext": "710"},
    {"name": "elena", "realName": "Елена Попова", "ext": "711"},
    {"name": "dmitry", "realName": "Дмитрий Лебедев", "ext": "712"},
]
DEMO_GROUPS = [
    {"id": "sales", "realName": "Отдел продаж", "ext": "700"},
    {"id": "support", "realName": "Техподдержка", "ext": "705"},
    {"id": "hr", "realName": "Отдел кадров", "ext": "706"},
]


def form(t: Tenant, lines: str, *, token: str | None = None, method: str = "POST") -> httpx.Response:
    """Send an example exactly as a document prints it: ``name=value`` lines as the form body."""
    fields = dict(line.strip().split("=", 1) for line in lines.strip().splitlines() if line.strip())
    if token is not None:  # the documents' token stands for the tenant's own
        fields["token"] = token
    if method == "GET":
        return t.client.get(PATH, params=fields, headers={"X-API-KEY": ""})
    return t.client.post(PATH, data=fields, headers={"X-API-KEY": ""})


def add_employee(t: Tenant, login: str, name: str, *groups: str) -> None:
    r = t.client.post("/crmapi/v1/users", json={"login": login, "name": name})
    assert r.status_code == 200, r.text
    for group in groups:
        r = t.client.post(f"/crmapi/v1/groups/{group}/users", json={"add": [login]})
        assert r.status_code in (200, 204), r.text


def set_telnum(server: ServerThread, t: Tenant, login: str, telnum: str) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            domain_id = await s.scalar(select(Domain.id).where(Domain.name == t.name))
            await s.execute(update(User).where(User.domain_id == domain_id, User.login == login)
                            .values(telnum=telnum))
            await s.commit()

    server.call(work())


def set_integration(server: ServerThread, t: Tenant, **kw: Any) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            await tenancy.set_integration(s, await tenancy.get_domain(s, t.name), **kw)
            await s.commit()

    server.call(work())


def switch_off(server: ServerThread, t: Tenant) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            domain = await tenancy.get_domain(s, t.name)
            integration = await tenancy.repo.integration(s, domain.id)
            integration.switched_off = True
            await s.commit()

    server.call(work())


def v1_state(t: Tenant, path: str, **params: str) -> bool:
    r = t.client.get(f"/crmapi/v1{path}", params=params)
    assert r.status_code == 200, r.text
    return bool(r.json()["state"])


@pytest.fixture
def ivanov(ltenant: Tenant) -> Tenant:
    """The employee 000/004's examples act on, in sales and support."""
    add_employee(ltenant, "ivanov", "Иванов Иван", "sales", "support")
    return ltenant


# --- 000 §5.1 / 001 §4.2.1 / 004 §4.2.1 accounts --------------------------------------------------

def test_accounts_example(lserver: ServerThread, ltenant: Tenant) -> None:
    set_telnum(lserver, ltenant, "maria", "79261234567")  # 000's andy: ext and a direct number
    r = form(ltenant, """
        cmd=accounts
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ltenant.legacy_token)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    expected = [dict(a, telnum="79261234567") if a["name"] == "maria" else a for a in DEMO_ACCOUNTS]
    assert r.json() == expected


@pytest.mark.parametrize("cmd", ["accounts", "ACCOUNTS", "Accounts"])
def test_accounts_by_get_and_any_casing(ltenant: Tenant, cmd: str) -> None:
    r = form(ltenant, f"cmd={cmd}", token=ltenant.legacy_token, method="GET")
    assert r.status_code == 200 and r.json() == DEMO_ACCOUNTS


def test_parameters_in_the_query_string_of_a_post(ltenant: Tenant) -> None:
    r = ltenant.client.post(PATH, params={"cmd": "accounts", "token": ltenant.legacy_token})
    assert r.status_code == 200 and r.json() == DEMO_ACCOUNTS
    # Form fields and the query string mix; a multipart form works too.
    r = ltenant.client.post(PATH, params={"token": ltenant.legacy_token}, files={"cmd": (None, "accounts")})
    assert r.status_code == 200 and r.json() == DEMO_ACCOUNTS


# --- 000 §5.2 / 004 §4.2.2 groups -----------------------------------------------------------------

def test_groups_example(ltenant: Tenant) -> None:
    add_employee(ltenant, "u1", "Сотрудник u1", "sales", "hr")
    r = form(ltenant, """
        cmd=groups
        user=u1
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ltenant.legacy_token)
    assert r.status_code == 200
    assert r.json() == [DEMO_GROUPS[0], DEMO_GROUPS[2]]


def test_groups_all_and_by_extension(ltenant: Tenant) -> None:
    assert form(ltenant, "cmd=groups", token=ltenant.legacy_token, method="GET").json() == DEMO_GROUPS
    r = form(ltenant, "cmd=groups\nuser=709", token=ltenant.legacy_token)  # sergey by extension
    assert r.json() == [DEMO_GROUPS[1]]
    r = form(ltenant, "cmd=groups\nuser=director", token=ltenant.legacy_token)
    assert r.json() == [DEMO_GROUPS[2]]


def test_groups_of_an_unknown_employee(ltenant: Tenant) -> None:
    r = form(ltenant, "cmd=groups\nuser=nobody", token=ltenant.legacy_token)
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)


# --- 000 §5.5 / 004 §4.2.5 subscribeOnCalls -------------------------------------------------------

def test_subscribe_on_calls_example_000(ivanov: Tenant) -> None:
    r = form(ivanov, """
        cmd=subscribeoncalls
        user=ivanov
        group_id=sales
        status=off
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ivanov.legacy_token)
    assert (r.status_code, r.text) == (200, "OK")
    assert v1_state(ivanov, "/users/ivanov/subscription", group_id="sales") is False
    assert v1_state(ivanov, "/users/ivanov/subscription", group_id="support") is True


def test_subscribe_on_calls_example_004(ivanov: Tenant) -> None:
    r = form(ivanov, """
        cmd=subscribeoncalls
        user=ivanov
        group=sales
        status=off
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ivanov.legacy_token)
    assert r.status_code == 200
    assert v1_state(ivanov, "/users/ivanov/subscription", group_id="sales") is False
    assert v1_state(ivanov, "/users/ivanov/subscription", group_id="support") is True
    r = form(ivanov, "cmd=subscribeOnCalls\nuser=ivanov\ngroup=sales\nstatus=on", token=ivanov.legacy_token)
    assert r.status_code == 200
    assert v1_state(ivanov, "/users/ivanov/subscription", group_id="sales") is True


def test_subscribe_on_calls_without_department_switches_all(ivanov: Tenant) -> None:
    r = form(ivanov, "cmd=SubscribeOnCalls\nuser=ivanov\nstatus=off", token=ivanov.legacy_token)
    assert r.status_code == 200
    for group in ("sales", "support"):
        assert v1_state(ivanov, "/users/ivanov/subscription", group_id=group) is False
    r = form(ivanov, "cmd=subscribeoncalls\nuser=ivanov\nstatus=on", token=ivanov.legacy_token)
    assert r.status_code == 200
    assert v1_state(ivanov, "/users/ivanov/subscription") is True


@pytest.mark.parametrize("lines", [
    "user=ivanov\ngroup_id=sales\nstatus=maybe",  # status is on or off
    "user=ivanov\ngroup_id=sales",  # status is required
    "group_id=sales\nstatus=off",  # user is required
    "user=nobody\ngroup_id=sales\nstatus=off",
    "user=ivanov\ngroup_id=nowhere\nstatus=off",
    "user=ivanov\ngroup_id=hr\nstatus=off",  # not a member of hr
])
def test_subscribe_on_calls_invalid(ivanov: Tenant, lines: str) -> None:
    r = form(ivanov, "cmd=subscribeoncalls\n" + lines, token=ivanov.legacy_token)
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)
    assert v1_state(ivanov, "/users/ivanov/subscription", group_id="sales") is True


def test_subscribe_on_calls_is_post_only(ivanov: Tenant) -> None:
    r = form(ivanov, "cmd=subscribeoncalls\nuser=ivanov\nstatus=off", token=ivanov.legacy_token, method="GET")
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)
    assert v1_state(ivanov, "/users/ivanov/subscription", group_id="sales") is True


# --- 000 §5.6 / 004 §4.2.6 subscriptionStatus -----------------------------------------------------

def test_subscription_status_example_000(ivanov: Tenant) -> None:
    r = form(ivanov, """
        cmd=subscribtionstatus
        user=ivanov
        group_id=sales
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ivanov.legacy_token)
    assert (r.status_code, r.json()) == (200, {"status": "on"})
    assert ivanov.client.delete("/crmapi/v1/users/ivanov/subscription", params={"group_id": "sales"}) \
        .status_code == 204
    r = form(ivanov, "cmd=subscribtionstatus\nuser=ivanov\ngroup_id=sales", token=ivanov.legacy_token)
    assert r.json() == {"status": "off"}


def test_subscription_status_example_004(ivanov: Tenant) -> None:
    r = form(ivanov, """
        cmd=subscriptionstatus
        user=ivanov
        group=sales
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ivanov.legacy_token)
    assert (r.status_code, r.json()) == (200, {"status": "on"})


@pytest.mark.parametrize("cmd", ["subscriptionStatus", "SUBSCRIBTIONSTATUS", "SubscribtionStatus"])
def test_subscription_status_any_spelling_and_get(ivanov: Tenant, cmd: str) -> None:
    form(ivanov, "cmd=subscribeoncalls\nuser=ivanov\ngroup=support\nstatus=off", token=ivanov.legacy_token)
    r = form(ivanov, f"cmd={cmd}\nuser=ivanov\ngroup_id=support", token=ivanov.legacy_token, method="GET")
    assert (r.status_code, r.json()) == (200, {"status": "off"})


def test_subscription_status_invalid(ivanov: Tenant) -> None:
    for lines in ("user=ivanov\ngroup_id=hr", "user=nobody\ngroup_id=sales", "group_id=sales"):
        r = form(ivanov, "cmd=subscriptionstatus\n" + lines, token=ivanov.legacy_token)
        assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS), lines


# --- 000 §5.7-5.8 / 004 §4.2.7-4.2.8 set_dnd, get_dnd ---------------------------------------------

def test_set_dnd_example(ivanov: Tenant) -> None:
    r = form(ivanov, """
        cmd=set_dnd
        user=ivanov
        state=true
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ivanov.legacy_token)
    assert (r.status_code, r.text) == (200, "OK")
    assert v1_state(ivanov, "/users/ivanov/dnd") is True
    r = form(ivanov, "cmd=set_dnd\nuser=ivanov\nstate=false", token=ivanov.legacy_token)
    assert (r.status_code, r.text) == (200, "OK")
    assert v1_state(ivanov, "/users/ivanov/dnd") is False


def test_get_dnd_example(ivanov: Tenant) -> None:
    r = form(ivanov, """
        cmd=get_dnd
        user=ivanov
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ivanov.legacy_token)
    assert (r.status_code, r.json()) == (200, {"state": False})
    assert ivanov.client.post("/crmapi/v1/users/ivanov/dnd").status_code == 204
    r = form(ivanov, "cmd=get_dnd\nuser=ivanov", token=ivanov.legacy_token, method="GET")
    assert (r.status_code, r.json()) == (200, {"state": True})


def test_dnd_invalid(ivanov: Tenant) -> None:
    for lines in ("cmd=set_dnd\nuser=ivanov\nstate=perhaps", "cmd=set_dnd\nuser=ivanov", "cmd=set_dnd\nstate=true",
                  "cmd=set_dnd\nuser=nobody\nstate=true", "cmd=get_dnd\nuser=nobody", "cmd=get_dnd"):
        r = form(ivanov, lines, token=ivanov.legacy_token)
        assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS), lines
    r = form(ivanov, "cmd=set_dnd\nuser=ivanov\nstate=true", token=ivanov.legacy_token, method="GET")
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)  # set_dnd is POST only
    assert v1_state(ivanov, "/users/ivanov/dnd") is False


# --- 000 §5.4 / 004 §4.2.4 history ----------------------------------------------------------------

record = ext  # one history row's defaults for every history test


def add_records(server: ServerThread, t: Tenant, *rows: dict[str, Any]) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            domain_id = await s.scalar(select(Domain.id).where(Domain.name == t.name))
            for row in rows:
                s.add(CallRecord(domain_id=domain_id, **row))
            await s.commit()

    server.call(work())


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def calls(lserver: ServerThread, ltenant: Tenant) -> dict[str, datetime]:
    now = lserver.runtime.clock.now().replace(microsecond=0)
    times = {"a": now - timedelta(hours=2), "b": now - timedelta(hours=1), "c": now - timedelta(minutes=30),
             "y": now - timedelta(days=1)}
    add_records(lserver, ltenant,
                record("a", times["a"]),
                record("b", times["b"], status="Missed", destination="group", user_login="", user_name="",
                       user_ext="", first_login="", first_name="", group_id="sales", group_name="Отдел продаж",
                       wait=13, duration=0, client="79990000001"),
                record("c", times["c"], type="out", destination="", user_login="manager",
                       user_name="Ольга Смирнова", rating=5, link="https://x/rec.mp3", diversion="74950000000"),
                record("y", times["y"], user_login="ivan"))
    return times


def test_history_example(ltenant: Tenant, calls: dict[str, datetime]) -> None:
    r = form(ltenant, """
        cmd=history
        period=today
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """, token=ltenant.legacy_token)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    d = ltenant.name
    # No header, CRLF line ends, no quoting, newest first; a 10th column carries the rating.
    assert r.text == (
        f"c,out,79101234567,manager@{d},74950000000,{iso(calls['c'])},5,23,https://x/rec.mp3,5\r\n"
        f"b,missed,79990000001,sales@{d},74951234567,{iso(calls['b'])},13,0,\r\n"
        f"a,in,79101234567,admin@{d},74951234567,{iso(calls['a'])},5,23,\r\n"
    )


@pytest.mark.parametrize(("params", "uids"), [
    ({"type": "in"}, ["b", "a"]),  # every incoming call, as REST v1's 4.1 (missed ones are incoming too)
    ({"type": "out"}, ["c"]),
    ({"type": "missed"}, ["b"]),
    ({"type": "all"}, ["c", "b", "a"]),
    ({"limit": "2"}, ["c", "b"]),
    ({"period": "yesterday"}, ["y"]),
    # The virtual clock starts on Monday 2026-01-12: yesterday was last week.
    ({"period": "this_week"}, ["c", "b", "a"]),
    ({"period": "last_week"}, ["y"]),
])
def test_history_filters(ltenant: Tenant, calls: dict[str, datetime], params: dict[str, str],
                         uids: list[str]) -> None:
    crm = LegacyClient(str(ltenant.client.base_url), ltenant.legacy_token)
    try:
        got = [row.uid for row in crm.history(**({"period": "today"} | params))]
    finally:
        crm.close()
    assert got == uids


def test_history_start_end_in_both_formats(ltenant: Tenant, calls: dict[str, datetime]) -> None:
    lo, hi = calls["b"], calls["c"]
    for start, end in ((lo.strftime("%Y%m%dT%H%M%SZ"), hi.strftime("%Y%m%dT%H%M%SZ")), (iso(lo), iso(hi))):
        r = form(ltenant, f"cmd=history\nstart={start}\nend={end}", token=ltenant.legacy_token, method="GET")
        assert r.status_code == 200
        assert [line.split(",")[0] for line in r.text.split("\r\n") if line] == ["c", "b"]
    # period wins over start and end (000 §5.4)
    r = form(ltenant, f"cmd=history\nperiod=yesterday\nstart={iso(lo)}\nend={iso(hi)}", token=ltenant.legacy_token)
    assert [line.split(",")[0] for line in r.text.split("\r\n") if line] == ["y"]


@pytest.mark.parametrize("lines", ["period=fortnight", "type=inbound", "limit=ten", "limit=-1", "start=yesterday",
                                   "start=20260102T000000Z\nend=20260101T000000Z"])
def test_history_invalid(ltenant: Tenant, lines: str) -> None:
    r = form(ltenant, "cmd=history\n" + lines, token=ltenant.legacy_token)
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)


def test_history_of_another_domain_is_not_shown(lserver: ServerThread, ltenant: Tenant,
                                                calls: dict[str, datetime]) -> None:
    other = create_tenant(lserver)
    try:
        r = form(other, "cmd=history\nperiod=today", token=other.legacy_token)
        assert (r.status_code, r.text) == (200, "")
    finally:
        other.client.close()


# --- errors and authentication ----------------------------------------------------------------------

@pytest.mark.parametrize("token", ["5f317b9f-e86c-41f7-a6fc-c76eb0da0000", ""])
def test_invalid_token(ltenant: Tenant, token: str) -> None:
    for cmd in ("accounts", "history", "set_dnd", "nonsense"):
        r = form(ltenant, f"cmd={cmd}\nuser=ivan\nstate=true", token=token)
        assert (r.status_code, r.json()) == (401, INVALID_TOKEN), cmd
    r = ltenant.client.post(PATH, data={"cmd": "accounts"})  # no token at all; the REST key does not count
    assert (r.status_code, r.json()) == (401, INVALID_TOKEN)
    r = ltenant.client.post(PATH, data={"cmd": "accounts", "token": ltenant.api_key})
    assert (r.status_code, r.json()) == (401, INVALID_TOKEN)


@pytest.mark.parametrize("lines", ["cmd=nonsense", "cmd=", "user=ivan", "cmd=rating", "cmd=event", "cmd=contact"])
def test_unknown_or_missing_command(ltenant: Tenant, lines: str) -> None:
    r = form(ltenant, lines, token=ltenant.legacy_token)
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)


def test_unreadable_body(ltenant: Tenant) -> None:
    r = ltenant.client.post(PATH, params={"cmd": "accounts", "token": ltenant.legacy_token},
                            content=b"\xff\xfe=\xff", headers={"content-type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)
    r = ltenant.client.post(PATH, params={"token": ltenant.legacy_token}, content=b"[1]",
                            headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)


def test_json_body_is_read_too(ltenant: Tenant) -> None:
    r = ltenant.client.post(PATH, json={"cmd": "accounts", "token": ltenant.legacy_token})
    assert r.status_code == 200 and r.json() == DEMO_ACCOUNTS


def test_integration_off_answers_invalid_token(lserver: ServerThread, ltenant: Tenant) -> None:
    set_integration(lserver, ltenant, enabled=False)
    r = form(ltenant, "cmd=accounts", token=ltenant.legacy_token)
    assert (r.status_code, r.json()) == (401, INVALID_TOKEN)
    set_integration(lserver, ltenant, enabled=True)
    assert form(ltenant, "cmd=accounts", token=ltenant.legacy_token).status_code == 200
    switch_off(lserver, ltenant)
    r = form(ltenant, "cmd=accounts", token=ltenant.legacy_token)
    assert (r.status_code, r.json()) == (401, INVALID_TOKEN)


def test_new_token_replaces_the_old(lserver: ServerThread, ltenant: Tenant) -> None:
    set_integration(lserver, ltenant, legacy_token="5f317b9f-e86c-41f7-a6fc-c76eb0da0000")
    assert form(ltenant, "cmd=accounts", token=ltenant.legacy_token).status_code == 401
    r = form(ltenant, """
        cmd=accounts
        token=5f317b9f-e86c-41f7-a6fc-c76eb0da0000
    """)
    assert r.status_code == 200 and r.json() == DEMO_ACCOUNTS
    set_integration(lserver, ltenant, legacy_token=ltenant.legacy_token)  # the documents' token is free again


def test_token_opens_its_own_domain_only(lserver: ServerThread, ltenant: Tenant) -> None:
    other = create_tenant(lserver)
    try:
        add_employee(other, "stranger", "Чужой")
        mine = form(ltenant, "cmd=accounts", token=ltenant.legacy_token).json()
        theirs = form(ltenant, "cmd=accounts", token=other.legacy_token).json()
        assert "stranger" not in {a["name"] for a in mine} and "stranger" in {a["name"] for a in theirs}
        # The other domain's employee cannot be touched with this domain's token.
        r = form(ltenant, "cmd=set_dnd\nuser=stranger\nstate=true", token=ltenant.legacy_token)
        assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)
        # A Host naming another tenant is refused, as in REST v1 (its domain list is cached: refresh it).
        lserver.runtime.auth.clear()
        r = ltenant.client.post(PATH, data={"cmd": "accounts", "token": ltenant.legacy_token},
                                headers={"Host": other.name})
        assert (r.status_code, r.json()) == (401, INVALID_TOKEN)
        r = ltenant.client.post(PATH, data={"cmd": "accounts", "token": ltenant.legacy_token},
                                headers={"Host": ltenant.name})
        assert r.status_code == 200
    finally:
        other.client.close()


def test_openapi_documents_the_legacy_endpoint(ltenant: Tenant) -> None:
    doc = ltenant.client.get("/openapi.json").json()
    operations = doc["paths"][PATH]
    assert set(operations) == {"get", "post"}
    assert all(op["tags"] == ["Legacy API"] for op in operations.values())

