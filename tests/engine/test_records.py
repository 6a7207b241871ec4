"""Recordings (call-flows step 9, 002 §12.5): who is recorded, the history's signed, expiring link, and
the WAV this server serves for it."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import httpx
import pytest
from tests.engine.test_incoming import advance, dial
from tests.engine.test_rules import Env, make_env

from vpbx.testing.server import ServerThread, Tenant, create_tenant


def talk(e: Env, who: str = "admin", seconds: float = 42, frm: str = "79101234567") -> str:
    callid = str(dial(e.t, frm=frm)["callid"])
    if who != "admin":
        advance(e.t, 10)  # sales BYORDER: the next member's turn
    e.act(callid, "answer", user=who)
    advance(e.t, seconds)
    e.act(callid, "hangup", by="client")
    return callid


def link_of(e: Env) -> str | None:
    e.crm.wait_for("history")
    return next(r for r in e.crm.got if r["cmd"] == "history").get("link")


def wav_seconds(body: bytes) -> tuple[float, int, int]:
    with wave.open(io.BytesIO(body)) as w:
        return w.getnframes() / w.getframerate(), w.getframerate(), w.getnchannels()


@pytest.fixture
def env(vserver: ServerThread, vtenant: Tenant) -> Iterator[Env]:
    yield from make_env(vserver, vtenant)


@pytest.fixture
def anon(vserver: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


def test_answered_call_has_a_link_that_serves_a_wav(env: Env, anon: httpx.Client) -> None:
    callid = talk(env, seconds=4)
    link = link_of(env)
    assert link is not None and link.startswith(f"{env.server.url}/records/")
    rows = [r for r in env.c.get("/crmapi/v1/history/json", params={"period": "this_month"}).json()
            if r["uid"] == callid]
    assert rows[0]["record"] == link
    csv = env.c.get("/crmapi/v1/history/csv", params={"period": "this_month"}).text
    assert link in csv
    r = anon.get(link, params={"format": "wav"})  # no key: the link alone is enough while valid
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert wav_seconds(r.content) == (4.0, 8000, 1)


def test_long_calls_are_as_long_as_the_talk(env: Env, anon: httpx.Client) -> None:
    talk(env, seconds=600)  # streamed: the simulated recording is the whole conversation
    r = anon.get(link_of(env) or "", params={"format": "wav"})
    assert r.status_code == 200 and wav_seconds(r.content)[0] == 600.0


def test_forged_links_are_refused(env: Env, anon: httpx.Client) -> None:
    talk(env)
    link = link_of(env) or ""
    domain_id, callid, expires, sig = link.rsplit("/", 1)[1].split(".")
    base = link.rsplit("/", 1)[0]
    later = int(expires) + 86400 * 30
    for token in (f"{domain_id}.{callid}.{later}.{sig}",  # a longer life
                  f"{int(domain_id) + 1}.{callid}.{expires}.{sig}",  # another domain
                  f"{domain_id}.{callid}.{expires}.{'0' * len(sig)}",
                  f"{domain_id}.{callid}.{expires}", "nonsense", f"{domain_id}.../..{sig}"):
        assert anon.get(f"{base}/{token}").status_code == 404, token


def test_expired_links_need_the_domain_key(env: Env, anon: httpx.Client, vserver: ServerThread) -> None:
    talk(env)
    link = link_of(env) or ""
    advance(env.t, 8 * 86400)  # a week and a day later
    r = anon.get(link)
    assert r.status_code == 403 and "X-API-KEY" in r.json()["message"]
    assert env.c.get(link).status_code == 200  # the domain's key always works
    other = create_tenant(vserver)
    try:
        assert other.client.get(link).status_code == 404  # another domain's key does not
    finally:
        other.client.close()
    assert anon.get(link, headers={"X-API-KEY": "wrong"}).status_code == 401


def test_recording_off_and_exceptions(env: Env) -> None:
    assert env.c.put("/crmapi/v1/record", json={"external": False}).status_code == 204
    callid = talk(env)
    assert link_of(env) is None
    rows = [r for r in env.c.get("/crmapi/v1/history/json", params={"period": "this_month"}).json()
            if r["uid"] == callid]
    assert rows[0]["record"] == ""
    env.crm.got.clear()
    assert env.c.put("/crmapi/v1/record", json={"external": True}).status_code == 204
    assert env.c.post("/crmapi/v1/record/users-exception", json=["admin"]).status_code == 204
    talk(env, frm="79101234568")
    assert link_of(env) is None  # admin talked: an exception
    env.crm.got.clear()
    talk(env, who="manager", frm="79101234569")
    assert link_of(env) is not None


def test_transfer_to_an_exception_is_not_recorded(env: Env) -> None:
    """A blind transfer makes two calls: admin's part is recorded, the exception's part is not."""
    env.c.post("/crmapi/v1/record/users-exception", json=["manager"])
    call = dial(env.t)
    env.act(call["callid"], "answer", user="admin")
    env.act(call["callid"], "transfer", user="admin", to="manager")
    env.act(call["callid"], "answer", user="manager")
    env.act(call["callid"], "hangup", by="client")
    env.crm.wait_for("history", 2)
    links = {r["user"]: r.get("link") for r in env.crm.got if r["cmd"] == "history"}
    assert links["admin"] is not None and links["manager"] is None


def test_missed_calls_have_no_link(env: Env) -> None:
    call = dial(env.t)
    env.act(call["callid"], "hangup", by="client")
    assert link_of(env) is None


def test_internal_calls_recorded_when_inner_is_on(env: Env, anon: httpx.Client) -> None:
    def internal() -> dict[str, object]:
        call = dial(env.t, frm="user:admin", to="user:manager")
        env.act(str(call["callid"]), "answer", user="manager")
        advance(env.t, 7)
        env.act(str(call["callid"]), "hangup", by="admin")
        rows = env.c.get("/crmapi/v1/history/inner/json", params={"period": "this_month"}).json()
        return dict(next(r for r in rows if r["uid"] == call["callid"]))

    assert internal()["record"] == ""  # a new domain records external calls only
    env.c.put("/crmapi/v1/record", json={"inner": True})
    link = str(internal()["record"])
    r = anon.get(link, params={"format": "wav"})
    assert r.status_code == 200 and wav_seconds(r.content)[0] == 7.0


def test_links_of_a_deleted_domain_are_gone(vserver: ServerThread, anon: httpx.Client) -> None:
    from tests.engine.test_incoming import Crm

    t: Tenant = create_tenant(vserver)
    try:
        e = Env(vserver, t, Crm(vserver))  # no integration: nothing is sent
        e.c.put("/sim/v1/devices/admin", json={"registered": True})
        call = dial(t)
        e.act(call["callid"], "answer", user="admin")
        e.act(call["callid"], "hangup", by="client")
        view = e.call(call["callid"])
        link = view["link"]
        assert link and anon.get(link).status_code == 200

        async def drop() -> None:
            from vpbx.services import tenancy

            async with vserver.runtime.sessions() as s:
                await tenancy.delete_domain(s, t.name)
                await s.commit()

        vserver.call(drop())
        assert anon.get(link).status_code == 404
    finally:
        t.client.close()
