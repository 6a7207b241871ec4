"""vpbx.client's simulator (``client.sim``) against a real virtual-clock server on loopback: every /sim/v1
operation, typed answers, errors mapped like the rest of the SDK, sync and async."""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vpbx.client import AsyncClient, AsyncSim, Client, Conflict, Forbidden, NotFound, Sim, ValidationError
from vpbx.crm import Receiver, SqliteDedupe
from vpbx.schemas.sim import (
    AutoBehaviour,
    SimCall,
    SimClock,
    SimDelivery,
    SimDeliveryList,
    SimDevice,
    SimExternal,
    SimExternals,
    TrafficStatus,
)
from vpbx.settings import Settings
from vpbx.testing.plugin import DEMO_LOGINS, serve_app
from vpbx.testing.postgres import empty_database
from vpbx.testing.server import ServerThread, Tenant, create_tenant

MAIN = "74951234567"
CLIENT = "79101234567"
OUTSIDE = "79035550000"
PG_URL = os.environ.get("VPBX_TEST_PG_URL", "")


def called_in_this_module() -> set[str]:
    """Every method name this module calls (read from its source: the same under any test distribution)."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    return {node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}


@pytest.fixture(scope="module")
def vserver(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    tmp = tmp_path_factory.mktemp(f"kit-sim-{backend}")
    if backend == "sqlite":
        db = f"sqlite+aiosqlite:///{tmp / 'vpbx.db'}"
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL tests need VPBX_TEST_PG_URL (set by .ci/run)")
        db = empty_database(PG_URL, "_kitsim")
    srv = ServerThread(Settings(db=db, home=tmp, demo=False, port=0, clock="virtual",
                                allow_private_crm=True)).start()
    yield srv
    srv.stop()


@pytest.fixture
def vtenant(vserver: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(vserver)
    yield t
    t.client.close()


@pytest.fixture
def pbx(vserver: ServerThread, vtenant: Tenant) -> Iterator[Client]:
    with Client(vserver.url, vtenant.api_key, operator_key=vserver.operator_key) as client:
        yield client


@pytest.fixture
def sim(pbx: Client) -> Any:
    for login in DEMO_LOGINS:
        pbx.sim.set_device(login)
    return pbx.sim


def until(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.02)
    return result


def test_calls_and_actions(sim: Any) -> None:
    call = sim.place(CLIENT, MAIN)
    assert isinstance(call, SimCall) and (call.kind, call.from_, call.to) == ("incoming", CLIENT, MAIN)
    assert [c.callid for c in sim.list_calls()] == [call.callid]
    user = sim.get_call(call.callid).ringing[0]
    talking = sim.answer(call.callid, user)
    assert (talking.state, talking.answered_by) == ("talking", user)
    clock = sim.advance(42)
    assert isinstance(clock, SimClock) and clock.virtual and clock.now == sim.get_clock().now
    ended = sim.hangup(call.callid)
    assert ended.over and ended.status == "Success" and sim.list_calls() == []
    assert [e.type for e in ended.events][:2] == ["INCOMING", "ACCEPTED"]
    with pytest.raises(Conflict) as over:
        sim.hangup(call.callid)
    assert over.value.status == 409 and over.value.message == "The call is over"
    with pytest.raises(NotFound):
        sim.get_call("no-such-call")
    with pytest.raises(ValidationError):
        sim.dtmf(call.callid, "")

    declined = sim.place(CLIENT, MAIN)
    first = declined.ringing[0]
    assert first not in sim.reject(declined.callid, first).ringing  # the next one rings
    sim.hangup(declined.callid)


def test_outgoing_calls_the_client_answers_or_refuses(sim: Any) -> None:
    call = sim.place("user:ivan", OUTSIDE)
    assert call.kind == "outgoing" and call.ringing == [f"ext:{OUTSIDE}"]
    assert sim.answer(call.callid).state == "talking"  # without user: the client picks up
    sim.hangup(call.callid, by="ivan")
    busy = sim.place("user:ivan", OUTSIDE)
    refused = sim.reject(busy.callid, reason="busy")
    assert refused.over and refused.status == "Busy"
    internal = sim.place("user:ivan", "user:maria")
    assert internal.kind == "internal" and internal.ringing == ["maria"]
    sim.hangup(internal.callid, by="ivan")


def test_transfers_and_ivr_keys(sim: Any, pbx: Client) -> None:
    call = sim.place(CLIENT, MAIN)
    user = call.ringing[0]
    sim.answer(call.callid, user)
    target = "manager" if user != "manager" else "ivan"
    blind = sim.transfer(call.callid, user, target)
    assert blind.transferred_from == call.callid and blind.ringing == [target]
    sim.hangup(blind.callid)
    consult = sim.place(CLIENT, MAIN)
    user = consult.ringing[0]
    sim.answer(consult.callid, user)
    target = "manager" if user != "manager" else "ivan"
    after = sim.attended_transfer(consult.callid, user, target)
    assert after.callid == consult.callid and [leg.party for leg in after.legs if leg.state == "talking"] == [target]
    sim.hangup(consult.callid)
    # dtmf: the client presses a key in a menu
    pbx.set_telnum_route(MAIN, {"type": "ivr", "greeting": False, "ivr": {
        "name": "Меню", "items": [{"button": "2", "type": "group", "group": "support"}]}})
    menu = sim.place(CLIENT, MAIN)
    assert menu.state == "ivr"
    pressed = sim.dtmf(menu.callid, "2")
    assert pressed.state == "ringing" and pressed.group == "support"
    sim.hangup(menu.callid)


def test_click_to_call_and_rating(sim: Any, pbx: Client) -> None:
    placed = sim.click_to_call(CLIENT, "ivan")
    assert (placed.kind, placed.state) == ("outgoing", "talking")
    sim.hangup(placed.callid, by="ivan")
    rated = sim.rated_call(CLIENT, MAIN, 5, talk=10)
    assert rated.rating == 5 and pbx.get_rating().telnums == [MAIN]
    with pytest.raises(Conflict):
        sim.rate(rated.callid, 4)  # rated already: the call is over


def test_devices(sim: Any, pbx: Client) -> None:
    device = sim.set_device("ivan", auto={"action": "answer", "after": 2, "talk": 5})
    assert isinstance(device, SimDevice) and device.auto == AutoBehaviour(action="answer", after=2, talk=5)
    assert pbx.get_user("ivan", with_status=True).status == "online"
    assert sim.set_device("ivan", registered=False).registered is False
    assert pbx.get_user("ivan", with_status=True).status == "offline"
    with pytest.raises(NotFound):
        sim.set_device("nobody")
    with pytest.raises(ValidationError):
        sim.set_device("ivan", auto=AutoBehaviour(action="dance"))


def test_outside_numbers_hang_up_after_30_s_by_default_and_the_default_is_settable(sim: Any) -> None:
    externals = sim.get_externals()
    assert isinstance(externals, SimExternals) and externals.numbers == []
    assert externals.default == AutoBehaviour(action="answer", after=3, talk=30)
    call = sim.place("user:ivan", OUTSIDE)
    sim.advance(3)
    assert sim.get_call(call.callid).state == "talking"  # answered by itself after 3 s
    sim.advance(29)
    assert sim.get_call(call.callid).state == "talking"
    sim.advance(1)
    assert sim.get_call(call.callid).over  # ... and hung up after 30 s of conversation

    forever = sim.set_externals_default({"action": "answer", "after": 1, "talk": None})
    assert forever.default == AutoBehaviour(action="answer", after=1, talk=None)
    call = sim.place("user:ivan", OUTSIDE)
    sim.advance(1)
    sim.advance(3600)
    assert sim.get_call(call.callid).state == "talking"  # talks until someone hangs up
    sim.hangup(call.callid, by="ivan")

    one = sim.set_external(OUTSIDE, {"action": "busy", "after": 2})
    assert isinstance(one, SimExternal) and (one.auto.action, one.default) == ("busy", False)
    assert [n.phone for n in sim.get_externals().numbers] == [OUTSIDE]
    assert sim.get_external(OUTSIDE).auto.action == "busy"
    assert sim.get_external("79990000000") == SimExternal(phone="79990000000", default=True,
                                                          auto=AutoBehaviour(action="answer", after=1, talk=None))
    back = sim.delete_external(OUTSIDE)
    assert back.default and back.auto.talk is None
    assert sim.reset_externals_default().default.talk == 30
    with pytest.raises(ValidationError):
        sim.set_external(OUTSIDE, {"action": "dance"})


def test_sip_registration_status(sim: Any, pbx: Client) -> None:
    reg = pbx.create_sip_registration({"telnum": "79262005060", "name": "Тест", "domain": "regtest.com",
                                       "login": "trunk-login", "password": "S3cr3t-Pa55-xyz"})
    assert sim.set_sip_registration_status(reg.telnum, "auth_failed").status == "auth_failed"
    assert pbx.get_sip_registration(reg.telnum).status == "auth_failed"
    with pytest.raises(ValidationError):
        sim.set_sip_registration_status(reg.telnum, "sleepy")


def test_only_the_operator_moves_the_shared_clock(vserver: ServerThread, vtenant: Tenant) -> None:
    with Client(vserver.url, vtenant.api_key) as tenant_only:
        assert tenant_only.sim.get_clock().virtual
        with pytest.raises(Forbidden):
            tenant_only.sim.advance(1)


def test_clock_on_a_real_clock_server_is_a_conflict(server: ServerThread, tenant: Tenant) -> None:
    with Client(server.url, tenant.api_key, operator_key=server.operator_key) as pbx:
        with pytest.raises(Conflict) as err:
            pbx.sim.get_clock()
        assert err.value.message == "The server runs on the real clock"
        with pytest.raises(Conflict):
            pbx.sim.advance(1)


def test_deliveries_and_replay_reach_a_deduplicating_crm(sim: Any, vserver: ServerThread, vtenant: Tenant,
                                                        tmp_path: Path) -> None:
    from vpbx.services import tenancy

    receiver = Receiver("kit-token", dedupe=SqliteDedupe(tmp_path / "seen.db"))
    handled: list[str] = []
    receiver.on_event(lambda e: handled.append(e.callid))
    with serve_app(receiver) as crm:
        async def point() -> None:
            async with vserver.runtime.sessions() as s:
                d = await tenancy.get_domain(s, vtenant.name)
                await tenancy.set_integration(s, d, crm_url=crm.url + "/", crm_token="kit-token")
                await s.commit()

        vserver.call(point())
        load = sim.test_deliveries(3)
        assert load.enqueued == 3 and len(load.ids) == 3
        delivered = until(lambda: (page := sim.list_deliveries(state="delivered")).info.total == 3 and page)
        assert isinstance(delivered, SimDeliveryList)
        assert [d.id for d in sim.iter_deliveries(page_size=2)] == [d.id for d in delivered.items]
        assert sim.list_deliveries(command="event", limit=1).info.next == 1
        one = sim.get_delivery(delivered.items[0].id)
        assert isinstance(one, SimDelivery) and one.log and one.log[0].status_code == 200
        assert sorted(handled) == sorted(str(d.callid) for d in delivered.items)
        replayed = sim.replay_delivery(one.id)
        assert replayed.notification_id == one.notification_id
        until(lambda: sim.get_delivery(one.id).attempts >= 2 and sim.get_delivery(one.id).state == "delivered")
        assert len(handled) == 3  # the replay is a duplicate for the CRM: acknowledged, not handled again
        with pytest.raises(NotFound):
            sim.get_delivery(10**9)
        with pytest.raises(ValidationError):
            sim.list_deliveries(state="lost")


def test_traffic(sim: Any) -> None:
    with pytest.raises(NotFound):
        sim.traffic()
    run = sim.start_traffic(120, 60, seed=7, answer_after=(1, 2), talk=(5, 10), clients=10)
    assert isinstance(run, TrafficStatus) and (run.state, run.seed) == ("running", 7)
    with pytest.raises(Conflict):
        sim.start_traffic(60, 60)
    sim.advance(30)
    status = sim.traffic(calls=True)
    assert status.placed == status.answered + status.missed + status.live and status.placed > 0
    assert status.calls is not None and len(status.calls) == status.placed
    stopped = sim.stop_traffic()
    assert stopped.state == "stopped"
    with pytest.raises(ValidationError):
        sim.start_traffic(0, 60)


def test_traffic_gives_the_clients_lines_back_to_the_default(sim: Any) -> None:
    """A run sets how each client it calls answers; once stopped, those numbers follow the domain's default
    again (a default changed later applies to them too)."""
    sim.start_traffic(600, 60, seed=3, outgoing_share=1.0, clients=5, answer_after=(1, 2), talk=(5, 10))
    until(lambda: (sim.advance(1), sim.get_externals().numbers)[1])  # the run dialled clients
    sim.stop_traffic()
    assert sim.get_externals().numbers == []
    sim.set_externals_default({"action": "busy", "after": 1})
    call = sim.place("user:ivan", OUTSIDE)
    sim.advance(1)
    assert sim.get_call(call.callid).status == "Busy"
    sim.reset_externals_default()


def test_every_simulator_operation_is_exercised() -> None:
    public = {name for name, _ in inspect.getmembers(Sim, inspect.isfunction) if not name.startswith("_")}
    assert public - called_in_this_module() == set()
    assert public == {name for name, _ in inspect.getmembers(AsyncSim, inspect.isfunction)
                      if not name.startswith("_")}


def test_async_simulator(vserver: ServerThread, vtenant: Tenant) -> None:
    async def main() -> None:
        async with AsyncClient(vserver.url, vtenant.api_key, operator_key=vserver.operator_key) as pbx:
            for login in DEMO_LOGINS:
                await pbx.sim.set_device(login)
            call = await pbx.sim.place(CLIENT, MAIN)
            assert isinstance(call, SimCall)
            assert [c.callid for c in await pbx.sim.list_calls()] == [call.callid]
            await pbx.sim.answer(call.callid, call.ringing[0])
            await pbx.sim.advance(10)
            assert (await pbx.sim.hangup(call.callid)).status == "Success"
            with pytest.raises(Conflict):
                await pbx.sim.hangup(call.callid)
            with pytest.raises(NotFound):
                await pbx.sim.get_call("no-such-call")
            placed = await pbx.sim.click_to_call(CLIENT, "ivan")
            assert placed.state == "talking"
            assert (await pbx.sim.get_externals()).default.talk == 30
            assert [d async for d in pbx.sim.iter_deliveries()] == []

    asyncio.run(main())


def test_an_unknown_field_of_a_newer_server_is_kept() -> None:
    call = SimCall.model_validate({"callid": "c", "kind": "incoming", "from": "1", "to": "2", "state": "ringing",
                                   "legs": [{"party": "ext:7", "state": "ringing", "owner": "ivan"}],
                                   "brand_new": 1})
    assert call.ringing == ["ivan"] and call.model_dump(by_alias=True)["brand_new"] == 1
