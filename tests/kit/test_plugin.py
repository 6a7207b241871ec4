"""The pytest plugin, used the way a CRM developer would."""

from __future__ import annotations

from typing import Any

import pytest

from vpbx.crm import ContactQuery, EventNotice, EventType, HistoryNotice
from vpbx.testing.plugin import wait_until


def test_an_incoming_call_pops_a_card(vpbx_sim: Any, crm_receiver: Any) -> None:
    vpbx_sim.place("79101234567", "74951234567")
    card = crm_receiver.wait_for("event", "INCOMING")
    assert isinstance(card, EventNotice) and card.phone == "79101234567" and card.diversion == "74951234567"


def test_the_crm_names_the_caller_and_gets_the_history(vpbx_domain: Any, vpbx_sim: Any, crm_receiver: Any) -> None:
    @crm_receiver.receiver.on_contact
    def lookup(query: ContactQuery) -> dict[str, str]:
        return {"contact_name": "ООО Ромашка"}

    call = vpbx_sim.place("79101234567")
    assert call["caller_name"] == "ООО Ромашка"
    user = crm_receiver.wait_for("event", "INCOMING").user
    assert vpbx_sim.ringing(call["callid"]) == [user]
    vpbx_sim.answer(call["callid"], user)
    vpbx_sim.advance(42)
    vpbx_sim.hangup(call["callid"])
    history = crm_receiver.wait_for("history")
    assert isinstance(history, HistoryNotice)
    assert (history.user, history.duration, history.status.value) == (user, 42, "Success")
    types = [e.type for e in crm_receiver.notices("event") if e.user == user]
    assert types == [EventType.INCOMING, EventType.ACCEPTED, EventType.COMPLETED]
    # every request carried the domain's crm_token and a notification id
    assert all(r.answer.status == 200 for r in crm_receiver.requests)
    assert all("webhook-id" in r.headers for r in crm_receiver.requests if r.notice.command != "contact")
    # and the SDK reads the same call back
    assert [(i["uid"], i["duration"]) for i in vpbx_domain.client.history_json()] == [(call["callid"], 42)]


def test_json_dialect_and_a_signed_integration(vpbx_domain: Any, vpbx_sim: Any, crm_receiver: Any) -> None:
    from vpbx.notify.signing import new_secret

    secret = new_secret()
    crm_receiver.receiver.signing_secret = secret
    vpbx_domain.set_crm(crm_receiver.url, dialect="json", signing_secret=secret)
    vpbx_sim.place("79101234567")
    crm_receiver.wait_for("event", "INCOMING")
    assert {r.parsed.encoding for r in crm_receiver.requests} == {"json"}
    assert all("webhook-signature" in r.headers for r in crm_receiver.requests if r.notice.command == "event")


def test_the_plugin_is_loaded_through_its_entry_point(request: Any) -> None:
    import vpbx.testing.plugin as plugin

    assert request.config.pluginmanager.get_plugin("vpbx") is plugin
    # Prefixed names: no clash with this project's (or a CRM project's) server/tenant fixtures.
    fixtures = {name for name in dir(plugin) if name.startswith(("vpbx_", "crm_"))}
    assert fixtures == {"vpbx_server", "vpbx_domain", "vpbx_sim", "crm_receiver", "vpbx_async_client"}


# --- whole flows -----------------------------------------------------------------------------------

def test_click_to_call(vpbx_sim: Any, crm_receiver: Any) -> None:
    call = vpbx_sim.click_to_call("79101234567", "ivan")
    assert (call["kind"], call["state"], call["to"]) == ("outgoing", "talking", "79101234567")
    assert {leg["party"] for leg in call["legs"] if leg["state"] == "talking"} == {"ivan", "ext:79101234567"}
    vpbx_sim.advance(12)
    vpbx_sim.hangup(call["callid"], by="ivan")
    history = crm_receiver.wait_for("history")
    assert (history.callid, history.type, history.user, history.phone) == (call["callid"], "out", "ivan",
                                                                           "79101234567")
    assert crm_receiver.wait_for("event", "OUTGOING").phone == "79101234567"


def test_click_to_call_the_client_does_not_answer(vpbx_sim: Any) -> None:
    call = vpbx_sim.click_to_call("79101234567", "ivan", client_answers=False)
    assert call["state"] != "talking" and vpbx_sim.ringing(call["callid"]) == ["ext:79101234567"]


def test_attended_transfer(vpbx_sim: Any, crm_receiver: Any) -> None:
    call = vpbx_sim.place("79101234567")
    user = vpbx_sim.ringing(call["callid"])[0]
    vpbx_sim.answer(call["callid"], user)
    target = "manager" if user != "manager" else "ivan"
    after = vpbx_sim.attended_transfer(call["callid"], user, target)
    assert after["callid"] == call["callid"] and after["state"] == "talking"  # the client's call goes on
    assert [leg["party"] for leg in after["legs"] if leg["state"] == "talking"] == [target]
    transferred = crm_receiver.wait_for("event", "TRANSFERRED")
    assert (transferred.user, transferred.callid) == (user, call["callid"])
    assert crm_receiver.wait_for("event", "ACCEPTED", count=2).user == target


def test_attended_transfer_to_an_outside_number(vpbx_sim: Any) -> None:
    call = vpbx_sim.place("79101234567")
    user = vpbx_sim.ringing(call["callid"])[0]
    vpbx_sim.answer(call["callid"], user)
    after = vpbx_sim.attended_transfer(call["callid"], user, "79035550000")
    assert after["state"] == "talking"
    assert [leg["party"] for leg in after["legs"] if leg["state"] == "talking"] == ["ext:79035550000"]


def test_rated_call(vpbx_domain: Any, vpbx_sim: Any, crm_receiver: Any) -> None:
    call = vpbx_sim.rated_call("79101234567", 4, talk=20)
    assert call["rating"] == 4
    assert vpbx_domain.client.get_rating().telnums == ["74951234567"]  # the helper made the number ask
    rating = crm_receiver.wait_for("rating")
    assert (rating.callid, rating.rating, rating.phone) == (call["callid"], 4, "79101234567")
    assert crm_receiver.wait_for("history").rating == 4
    again = vpbx_sim.place("79101234568")
    user = vpbx_sim.ringing(again["callid"])[0]
    vpbx_sim.answer(again["callid"], user)
    vpbx_sim.hangup(again["callid"], by=user)
    assert vpbx_sim.rate(again["callid"], 2)["rating"] == 2


# --- your own CRM app, served on loopback -------------------------------------------------------------

def test_serve_your_own_starlette_app_with_a_receiver_mounted(vpbx_domain: Any, vpbx_sim: Any) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from vpbx.crm import Receiver

    receiver = Receiver(vpbx_domain.crm_token)
    cards: list[str] = []
    started: list[bool] = []

    @receiver.on_contact
    def who(query: ContactQuery) -> dict[str, str]:
        return {"contact_name": "ООО Ромашка"}

    @receiver.on_event
    def card(event: EventNotice) -> None:
        cards.append(f"{event.type} {event.user}")

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        started.append(True)  # the CRM app's own start-up runs
        yield

    app = Starlette(routes=[Route("/health", health), Mount("/vpbx", app=receiver)], lifespan=lifespan)
    url = vpbx_domain.serve_crm(app, "/vpbx/")
    assert url.startswith("http://127.0.0.1:") and url.endswith("/vpbx/") and started == [True]
    import httpx

    assert httpx.get(url.removesuffix("vpbx/") + "health").text == "ok"
    call = vpbx_sim.place("79101234567")
    assert call["caller_name"] == "ООО Ромашка"  # the PBX asked the app
    user = vpbx_sim.ringing(call["callid"])[0]
    vpbx_sim.answer(call["callid"], user)
    wait_until(lambda: len(cards) >= 2)
    assert cards == [f"INCOMING {user}", f"ACCEPTED {user}"]


def test_serve_app_alone() -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from vpbx.testing.plugin import serve_app

    async def hello(request: Any) -> JSONResponse:
        return JSONResponse({"hello": "crm"})

    import httpx

    with serve_app(Starlette(routes=[Route("/", hello)])) as served:
        assert httpx.get(served.url + "/").json() == {"hello": "crm"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(served.url + "/")


# --- async tests (pytest-asyncio) -------------------------------------------------------------------

async def test_async_fixtures(vpbx_async_client: Any, crm_receiver: Any) -> None:
    from vpbx.client import AsyncClient
    from vpbx.schemas.sim import SimCall

    assert isinstance(vpbx_async_client, AsyncClient)
    sim = vpbx_async_client.sim
    call = await sim.place("79101234567", "74951234567")
    assert isinstance(call, SimCall)
    card = await crm_receiver.wait_for_async("event", "INCOMING")
    await sim.answer(call.callid, card.user)
    await sim.advance(30)
    ended = await sim.hangup(call.callid)
    assert ended.status == "Success"
    assert (await crm_receiver.wait_for_async("history")).callid == call.callid
    placed = await sim.click_to_call("79101234567", "maria")
    assert placed.state == "talking" and (await vpbx_async_client.get_user("maria")).login == "maria"
