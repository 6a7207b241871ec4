"""The ``make run`` demo: the demo company's phones are registered and answer like people (after a few seconds,
most of the time), so the first incoming call rings, is answered, talks, ends in history with a recording."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import store_url

from vpbx.bootstrap import read_credentials
from vpbx.clock import VirtualClock
from vpbx.services.demo import DEMO_DOMAIN, EMPLOYEES, PHONE_ANSWER_SHARE
from vpbx.settings import Settings
from vpbx.store.repositories import tenancy
from vpbx.telephony.sim import Auto, SimTelephony
from vpbx.testing.server import ServerThread

ADMIN_NUMBER = "74957654321"  # the demo's number routed to admin, with a greeting


@pytest.fixture
def demo(backend: str, tmp_path: Path) -> Iterator[tuple[ServerThread, httpx.Client]]:
    """``vpbx serve`` as ``make run`` starts it (demo domain, demo phones), on the virtual clock."""
    server = ServerThread(Settings(db=store_url(backend, tmp_path), home=tmp_path, port=0, clock="virtual",
                                   demo=True, demo_phones=True)).start()
    creds = read_credentials(tmp_path)
    assert creds and creds["domain"] == DEMO_DOMAIN
    client = httpx.Client(base_url=server.url, timeout=30, headers={
        "X-API-KEY": creds["api_key"], "X-OPERATOR-KEY": server.operator_key})
    yield server, client
    client.close()
    server.stop()


def advance(client: httpx.Client, seconds: float) -> None:
    assert client.post("/sim/v1/clock/advance", json={"seconds": seconds}).status_code == 200


def test_every_demo_phone_is_registered_and_answers_like_a_person(demo: tuple[ServerThread, httpx.Client]) -> None:
    server, client = demo
    listed = client.get("/crmapi/v1/users", params={"limit": 100, "with": "status"}).json()["items"]
    users = {u["login"]: u for u in listed}
    sim = server.runtime.telephony
    assert isinstance(sim, SimTelephony)

    async def demo_domain_id() -> int:
        async with server.runtime.sessions() as session:
            domain = await tenancy.domain_by_name(session, DEMO_DOMAIN)
            assert domain is not None
            return domain.id

    domain_id = server.call(demo_domain_id())
    for login, *_ in EMPLOYEES:
        assert users[login]["status"] == "online", login  # 002 §6.1: a registered device
        auto = sim.auto_of(domain_id, login)
        assert auto is not None and auto.action == "answer" and 3 <= auto.after <= 8 and auto.talk
        assert auto.share == PHONE_ANSWER_SHARE


def test_the_first_incoming_call_rings_is_answered_talks_and_is_recorded(
        demo: tuple[ServerThread, httpx.Client]) -> None:
    server, client = demo
    sim = server.runtime.telephony
    assert isinstance(sim, SimTelephony)
    sim.rng = random.Random(1)  # its first draw (0.13) answers: the call below is answered, not left to ring
    r = client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER})
    assert r.status_code == 201, r.text
    callid = r.json()["callid"]
    states: list[str] = []
    for _ in range(40):  # greeting, ringing, a few seconds, then a conversation of a minute or so
        view: dict[str, Any] = client.get(f"/sim/v1/calls/{callid}").json()
        if not states or states[-1] != view["state"]:
            states.append(view["state"])
        if view["state"] == "ended":
            break
        advance(client, 5)
    assert states[:3] == ["greeting", "ringing", "talking"] and states[-1] == "ended", states
    assert (view["status"], view["answered_by"]) == ("Success", "admin")
    rows = client.get("/crmapi/v1/history/json", params={"period": "today"}).json()
    row = next(h for h in rows if h["uid"] == callid)
    assert row["user"] == "admin" and int(row["duration"]) > 0 and row["record"]
    assert client.get(row["record"]).status_code == 200  # the recording


def test_a_share_of_rings_is_answered() -> None:
    """``Auto.share``: the phone picks up on about that share of rings and lets the others ring."""
    answered: list[str] = []

    class Signals:
        async def answered(self, callid: str, party: str) -> None:
            answered.append(callid)

        async def rejected(self, callid: str, party: str, reason: str | None = None) -> None:
            raise AssertionError("a demo phone never declines")

        async def hung_up(self, callid: str, party: str) -> None:
            pass

    import asyncio

    async def main() -> None:
        clock = VirtualClock()
        sim = SimTelephony()
        sim.attach(Signals(), clock)
        sim.rng = random.Random(7)
        sim.set_auto(1, "ivan", Auto("answer", 4.0, 60.0, share=0.8))
        for n in range(400):
            sim.ring(1, f"c{n}", "ivan", "79101234567", None)
        await clock.advance(3.9)
        assert answered == []  # not before ``after``
        await clock.advance(0.2)

    asyncio.run(main())
    assert 0.7 * 400 <= len(answered) <= 0.9 * 400
