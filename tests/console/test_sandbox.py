"""The sandbox, the calls pages and the CRM traffic page in a real browser: transfers from a phone, an outside
caller's keypad, generated traffic, the virtual clock, recordings, live calls, the dashboard, contact answers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.console.support import Crm, Person, audio_duration, browser_sign_in, screenshots, set_password, wait_until

from vpbx.testing.server import ServerThread, Tenant

ADMIN_NUMBER = "74957654321"  # the demo's number routed to the admin


def _register(tenant: Tenant, *logins: str) -> None:
    for login in logins:
        tenant.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).raise_for_status()


def _route_to_admin(tenant: Tenant) -> None:
    tenant.client.post(f"/crmapi/v1/telnums/{ADMIN_NUMBER}",
                       json={"type": "user", "user": "admin", "greeting": False}).raise_for_status()


def _open_sandbox(page: Any, server: ServerThread) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/console/sandbox")
    expect(page.locator("body")).to_have_attribute("data-live", "on")  # the phones' event stream is open


def test_a_phone_transfers_a_call_blind_to_a_colleague(server: ServerThread, tenant: Tenant, admin: Person,
                                                       page: Any) -> None:
    from playwright.sync_api import expect

    _route_to_admin(tenant)
    _register(tenant, "admin", "ivan")
    browser_sign_in(page, server, admin)
    _open_sandbox(page, server)
    call = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER}).json()
    phone = page.locator("#phone-admin")
    phone.get_by_role("button", name="Ответить").click()
    expect(phone.locator(".talking-label")).to_be_visible()
    phone.locator("summary", has_text="Перевести").click()  # opens the transfer form
    phone.get_by_label("Кому (сотрудник, отдел или номер)").fill("ivan")
    phone.get_by_label("Как").select_option("blind")
    phone.get_by_role("button", name="Перевести").click()
    ivan = page.locator("#phone-ivan")
    expect(ivan.locator(".ringing-label")).to_be_visible()
    expect(phone.locator(".idle")).to_be_visible()  # the admin's part of the call is over
    screenshots(page, "sandbox-transfer")
    first = tenant.client.get(f"/sim/v1/calls/{call['callid']}").json()
    assert first["continued_as"], first  # the client's call goes on as the new call, ringing ivan
    ivan.get_by_role("button", name="Ответить").click()
    expect(ivan.locator(".talking-label")).to_be_visible()
    assert tenant.client.get(f"/sim/v1/calls/{first['continued_as']}").json()["answered_by"] == "ivan"


def test_an_outside_callers_keypad_reaches_the_voice_menu(server: ServerThread, tenant: Tenant, admin: Person,
                                                           page: Any) -> None:
    from playwright.sync_api import expect

    _register(tenant, "ivan", "maria")
    tenant.client.post(f"/crmapi/v1/telnums/{ADMIN_NUMBER}", json={
        "type": "ivr", "greeting": False, "ivr": {"name": "Меню", "items": [
            {"button": "1", "type": "user", "user": "ivan"},
            {"button": "2", "type": "user", "user": "maria"}]}}).raise_for_status()
    browser_sign_in(page, server, admin)
    _open_sandbox(page, server)
    page.get_by_label("С номера").fill("79107654321")
    page.get_by_label("На номер").select_option(ADMIN_NUMBER)
    page.get_by_role("button", name="Позвонить").click()
    client = page.locator(".client", has_text="79107654321")
    expect(client.locator(".client-state")).to_have_text("ivr")
    client.get_by_role("button", name="Клавиша 2: 79107654321").click()
    expect(page.locator("#phone-maria .ringing-label")).to_be_visible()
    expect(page.locator("#phone-ivan .idle")).to_be_visible()
    client.get_by_role("button", name="Положить трубку").click()
    expect(page.locator("#phone-maria .idle")).to_be_visible()


def test_generated_traffic_shows_its_progress_and_stops(server: ServerThread, tenant: Tenant, admin: Person,
                                                        page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    _open_sandbox(page, server)
    page.get_by_label("Звонков в минуту").fill("0")
    page.get_by_role("button", name="Запустить").click()
    expect(page.locator("#traffic-run .error")).to_contain_text("calls_per_minute")  # the API's own check
    page.get_by_label("Звонков в минуту").fill("600")
    page.get_by_label("Длительность, с").fill("600")
    page.get_by_role("button", name="Запустить").click()
    expect(page.locator("#traffic-state")).to_have_text("running")
    # the progress refreshes by itself while the run goes on
    expect(page.locator("#traffic-placed")).not_to_have_text("0", timeout=15_000)
    screenshots(page, "sandbox-traffic")
    assert tenant.client.get("/sim/v1/traffic").json()["placed"] > 0
    page.get_by_role("button", name="Остановить").click()
    expect(page.locator("#traffic-state")).to_have_text("stopped")
    assert tenant.client.get("/sim/v1/traffic").json()["state"] == "stopped"
    for live in tenant.client.get("/sim/v1/calls").json():  # the calls still up end with the test
        tenant.client.post(f"/sim/v1/calls/{live['callid']}/hangup", json={"by": "client"})


def test_the_virtual_clock_moves_with_the_operators_key_only(virtual_server: ServerThread, virtual_tenant: Tenant,
                                                              page: Any) -> None:
    from playwright.sync_api import expect

    admin = set_password(virtual_tenant, "admin")
    browser_sign_in(page, virtual_server, admin)
    page.goto(virtual_server.url + "/console/sandbox")
    expect(page.get_by_role("button", name="+5 с")).to_have_count(0)  # a domain's admin alone cannot
    page.get_by_label("Ключ оператора сервера").fill("wrong")
    page.get_by_role("button", name="Управлять часами").click()
    expect(page.get_by_role("alert").filter(has_text="нужен его ключ")).to_be_visible()
    page.get_by_label("Ключ оператора сервера").fill(virtual_server.operator_key)
    page.get_by_role("button", name="Управлять часами").click()

    def clock() -> datetime:
        return datetime.fromisoformat(virtual_tenant.client.get("/sim/v1/clock").json()["now"].replace("Z", "+00:00"))

    before = clock()
    page.get_by_role("button", name="+5 с").click()
    expect(page.locator("#clock-now")).to_be_visible()
    assert (clock() - before).total_seconds() == 5
    target = (clock() + timedelta(hours=2, minutes=30)).replace(microsecond=0).astimezone(ZoneInfo("Europe/Moscow"))
    page.get_by_label(re.compile("Перейти к")).fill(target.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Перейти", exact=True).click()
    expect(page.locator("#clock-now")).to_be_visible()
    assert clock() == target.astimezone(ZoneInfo("UTC"))
    page.get_by_label(re.compile("Перейти к")).fill("2000-01-01T00:00:00")
    page.get_by_role("button", name="Перейти", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="не идут назад")).to_be_visible()
    assert clock() == target.astimezone(ZoneInfo("UTC"))
    screenshots(page, "sandbox-clock")


def test_a_recording_plays_in_the_history(server: ServerThread, tenant: Tenant, admin: Person, page: Any) -> None:
    tenant.client.put("/crmapi/v1/record", json={"external": True}).raise_for_status()
    _route_to_admin(tenant)
    _register(tenant, "admin")
    call = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER}).json()
    tenant.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "admin"}).raise_for_status()
    tenant.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"}).raise_for_status()
    browser_sign_in(page, server, admin)

    def listed() -> bool:
        page.goto(server.url + "/console/calls")
        return page.locator("#history audio").count() > 0

    wait_until(listed, what="the call with its recording in the history")
    assert audio_duration(page, "#history audio") >= 1.0  # the <audio> loads the WAV: it has a duration
    screenshots(page, "calls-recording")


def test_live_calls_and_the_dashboard_follow_a_call(server: ServerThread, tenant: Tenant, admin: Person,
                                                    page: Any) -> None:
    from playwright.sync_api import expect

    _route_to_admin(tenant)
    _register(tenant, "admin")
    browser_sign_in(page, server, admin)
    hour = datetime.now(ZoneInfo("Europe/Moscow")).hour
    bar = page.locator("figure").first.locator("rect title", has_text=re.compile(rf"^{hour}: "))

    def answered_this_hour() -> int:
        return int((bar.text_content() or "").split(": ")[1])

    before = answered_this_hour()
    page.goto(server.url + "/console/calls")
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    call = tenant.client.post("/sim/v1/calls", json={"from": "79105550000", "to": ADMIN_NUMBER}).json()
    row = page.locator(f"#live-{call['callid']}")
    expect(row).to_contain_text("Звонит: admin")
    tenant.client.post(f"/sim/v1/calls/{call['callid']}/answer", json={"user": "admin"}).raise_for_status()
    expect(row).to_contain_text("Разговор: admin")
    expect(row).to_contain_text("79105550000")
    screenshots(page, "calls-live")
    tenant.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"}).raise_for_status()
    expect(row).to_have_count(0)

    def counted() -> bool:
        page.goto(server.url + "/console/")
        return answered_this_hour() == before + 1

    wait_until(counted, what="the dashboard to count the call this hour")
    today = datetime.now(ZoneInfo("Europe/Moscow")).strftime("%d.%m")
    week = page.locator("figure").nth(1).locator("rect title", has_text=re.compile(rf"^{today}: "))
    assert int((week.first.text_content() or "").split(": ")[1]) >= 1  # answered today, in the 7-day chart
    assert float(page.locator("#average-wait").inner_text()) >= 0


def test_the_contact_answers_the_crm_gave_are_shown(server: ServerThread, tenant: Tenant, admin: Person, crm: Crm,
                                                    page: Any) -> None:
    from playwright.sync_api import expect

    _route_to_admin(tenant)
    _register(tenant, "admin")
    browser_sign_in(page, server, admin)
    page.goto(server.url + "/console/integration")
    page.get_by_label("Адрес CRM").fill(crm.url)
    page.get_by_role("button", name="Сохранить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    call = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER}).json()
    page.goto(server.url + "/console/traffic")
    expect(page.locator(f"#contact-{call['callid']}")).to_contain_text("Test")  # the CRM's contact_name
    lookup = page.locator("#lookups tr.lookup", has_text="79101234567")  # the engine's lookup, logged
    expect(lookup).to_contain_text("Ответила")
    expect(lookup).to_contain_text("Test")
    page.get_by_label("Спросить CRM о номере").fill("79990001122")
    page.get_by_role("button", name="Спросить").click()
    expect(page.locator("#contact-name")).to_have_text("Test")
    expect(page.locator("#contact-answer pre")).to_contain_text('"contact_name": "Test"')
    assert crm.received(b"79990001122")  # the CRM was asked about that number
    screenshots(page, "traffic-contacts")
    tenant.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"})


def test_a_phone_starts_an_attended_transfer(server: ServerThread, tenant: Tenant, admin: Person, page: Any) -> None:
    from playwright.sync_api import expect

    _route_to_admin(tenant)
    _register(tenant, "admin", "maria")
    browser_sign_in(page, server, admin)
    _open_sandbox(page, server)
    call = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER}).json()
    phone = page.locator("#phone-admin")
    phone.get_by_role("button", name="Ответить").click()
    expect(phone.locator(".talking-label")).to_be_visible()
    phone.locator("summary", has_text="Перевести").click()
    phone.get_by_label("Кому (сотрудник, отдел или номер)").fill("maria")
    phone.get_by_label("Как").select_option("attended")
    phone.get_by_role("button", name="Перевести").click()
    expect(page.locator("#phone-maria .ringing-label")).to_be_visible()  # the consultation call rings maria
    consult = wait_until(lambda: tenant.client.get(f"/sim/v1/calls/{call['callid']}").json()["consult"],
                         what="the consultation call")
    page.locator("#phone-maria").get_by_role("button", name="Ответить").click()
    expect(page.locator("#phone-maria .talking-label")).to_be_visible()
    assert tenant.client.get(f"/sim/v1/calls/{consult}").json()["answered_by"] == "maria"
