"""The cabinet in a real browser (Debian's chromium through Playwright), doing what a person does. Every page the
tests visit is saved as a screenshot at 1280×800 and 360×740 (tests/console/screenshots, not committed)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.console.support import Crm, Person, browser_sign_in, screenshots, set_password, wait_until

from vpbx.testing.server import ServerThread, Tenant

ADMIN_NUMBER = "74957654321"  # the demo's number routed to the admin


def _set_crm(page: Any, server: ServerThread, url: str) -> None:
    """Through the integration page, as the domain's owner does."""
    page.goto(server.url + "/console/integration")
    page.get_by_label("Адрес CRM").fill(url)
    page.get_by_label("Формат уведомлений").select_option("json")
    page.get_by_role("button", name="Сохранить").click()
    from playwright.sync_api import expect

    expect(page.locator(".notice")).to_have_text("Сохранено")


def test_admin_creates_an_employee_in_the_form_and_the_api_lists_it(server: ServerThread, tenant: Tenant,
                                                                    admin: Person, page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    screenshots(page, "dashboard")
    page.get_by_role("link", name="Сотрудники").click()
    screenshots(page, "users")
    page.get_by_role("link", name="Новый сотрудник").click()
    page.get_by_label("Имя").fill("Пётр Новиков")
    page.get_by_label("Логин").fill("petr")
    page.get_by_label("Добавочный").fill("1")  # the API's rule: 2 to 6 digits
    page.get_by_role("button", name="Сохранить").click()
    error = page.locator("#e-f-ext")
    expect(error).to_contain_text("2 to 6 digits")  # the API's own message, next to the field
    expect(page.get_by_label("Добавочный")).to_have_attribute("aria-invalid", "true")
    screenshots(page, "user-form-errors")
    page.get_by_label("Добавочный").fill("777")
    page.get_by_role("button", name="Сохранить").click()
    page.wait_for_url(re.compile(r".*/console/users/petr\?notice=saved$"))
    found = tenant.client.get("/crmapi/v1/users/petr")
    assert found.status_code == 200
    assert (found.json()["name"], found.json()["ext"]) == ("Пётр Новиков", "777")

    page.get_by_role("link", name="Отделы").first.click()
    screenshots(page, "groups")
    page.get_by_role("link", name="Отдел продаж").click()
    screenshots(page, "group")
    page.get_by_role("link", name="Номера").click()
    screenshots(page, "numbers")
    page.get_by_role("link", name="Интеграция").click()
    screenshots(page, "integration")
    page.get_by_role("link", name="Звонки").click()
    screenshots(page, "calls")
    page.get_by_role("link", name="Обмен с CRM").click()
    screenshots(page, "traffic")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("CRM traffic"))


def test_a_user_role_employee_does_not_see_the_integration_page(server: ServerThread, tenant: Tenant,
                                                                 page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, set_password(tenant, "ivan"))
    expect(page.get_by_role("link", name="Сотрудники")).to_be_visible()
    expect(page.get_by_role("link", name="Интеграция")).to_have_count(0)
    page.goto(server.url + "/console/integration")
    expect(page.get_by_role("heading", level=1)).to_have_text("Нет доступа")
    expect(page.get_by_label("Адрес CRM")).to_have_count(0)


def test_a_simulated_call_rings_the_phone_in_the_page_and_answering_sends_accepted(
        server: ServerThread, tenant: Tenant, admin: Person, crm: Crm, page: Any) -> None:
    from playwright.sync_api import expect

    tenant.client.post(f"/crmapi/v1/telnums/{ADMIN_NUMBER}",
                      json={"type": "user", "user": "admin", "greeting": False}).raise_for_status()
    tenant.client.put("/sim/v1/devices/admin", json={"registered": True}).raise_for_status()
    browser_sign_in(page, server, admin)
    _set_crm(page, server, crm.url)
    page.goto(server.url + "/console/sandbox")
    expect(page.locator("body")).to_have_attribute("data-live", "on")  # the phones' event stream is open
    phone = page.locator("#phone-admin")
    expect(phone.locator(".idle")).to_be_visible()

    call = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER})
    assert call.status_code == 201, call.text
    callid = call.json()["callid"]
    assert any(leg["party"] == "admin" and leg["state"] == "ringing" for leg in call.json()["legs"])
    rung = time.monotonic()
    expect(phone.locator(".ringing-label")).to_be_visible(timeout=1000)  # within a second of the engine ringing
    assert time.monotonic() - rung < 1.0
    expect(phone.locator(".caller")).to_have_text("Test")  # the caller's name, as the CRM's contact answer gave it
    expect(phone).to_contain_text("79101234567")
    screenshots(page, "sandbox-ringing")
    phone.get_by_role("button", name="Ответить").click()
    expect(phone.locator(".talking-label")).to_be_visible()
    assert tenant.client.get(f"/sim/v1/calls/{callid}").json()["answered_by"] == "admin"
    wait_until(lambda: crm.received(b"ACCEPTED", callid.encode()), what="the CRM's ACCEPTED event")
    phone.get_by_role("button", name="Положить трубку").click()
    expect(phone.locator(".idle")).to_be_visible()


def test_a_failed_delivery_is_replayed_from_the_log(server: ServerThread, tenant: Tenant, admin: Person, crm: Crm,
                                                     page: Any) -> None:
    from playwright.sync_api import expect

    crm.status = 500
    browser_sign_in(page, server, admin)
    _set_crm(page, server, crm.url)
    call = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER}).json()
    tenant.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"}).raise_for_status()
    wait_until(lambda: crm.received(call["callid"].encode()), what="a first, failing attempt")
    row = page.locator("#deliveries tbody tr").first

    def failed_attempt_logged() -> bool:  # the CRM saw the request; its attempt is written right after
        page.goto(server.url + f"/console/traffic?callid={call['callid']}")
        return row.count() > 0 and "HTTP 500" in row.locator(".state").inner_text()

    wait_until(failed_attempt_logged, what="the failed attempt in the log")
    screenshots(page, "traffic-failed")
    before = len(crm.received(call["callid"].encode()))
    crm.status = 200
    delivery_id = row.get_attribute("id").removeprefix("delivery-")
    row.get_by_role("button", name=f"Повторить #{delivery_id}").click()
    expect(page.locator(".notice")).to_have_text("Поставлено в очередь")
    wait_until(lambda: len(crm.received(call["callid"].encode())) > before, what="the replayed request")

    def delivered() -> bool:
        page.reload()
        return "delivered" in page.locator(f"#delivery-{delivery_id} .state").inner_text()

    wait_until(delivered, what="the row to show the delivery")


def test_the_schedule_editor_routes_the_next_call(server: ServerThread, tenant: Tenant, admin: Person,
                                                  page: Any) -> None:
    from playwright.sync_api import expect

    for login in ("ivan", "maria"):
        tenant.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).raise_for_status()
    browser_sign_in(page, server, admin)
    page.goto(server.url + f"/console/numbers/{ADMIN_NUMBER}")
    page.get_by_label("Маршрут", exact=True).select_option("scheduler")
    page.locator("#f-work_type").select_option("user")
    page.locator("#f-work_to").fill("ivan")
    page.locator("#f-other_type").select_option("user")
    page.locator("#f-other_to").fill("maria")
    now = datetime.now(ZoneInfo("Europe/Moscow"))  # the tenant's timezone; the server runs on the real clock
    day, hour = now.weekday(), now.hour
    if now.minute == 59 and now.second > 50:  # the hour is about to turn: the next call must still be in it
        time.sleep(11)
        now = datetime.now(ZoneInfo("Europe/Moscow"))
        day, hour = now.weekday(), now.hour
    for d in range(7):
        for h in range(24):
            box = page.locator(f"#h-{d}-{h}")
            if box.is_checked():
                box.uncheck()
    page.locator(f"#h-{day}-{hour}").check()  # working now: the work route (ivan)
    page.get_by_role("button", name="Сохранить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    screenshots(page, "number-schedule")
    saved = tenant.client.get(f"/crmapi/v1/telnums/{ADMIN_NUMBER}").json()
    assert saved["type"] == "scheduler" and saved["work"]["user"] == "ivan"

    def rung(to: str) -> list[str]:
        """Who the next call rings (after the number's greeting, if any)."""
        callid = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": to}).json()["callid"]

        def legs() -> list[str]:
            return [leg["party"] for leg in tenant.client.get(f"/sim/v1/calls/{callid}").json()["legs"]]

        parties = wait_until(legs, what="the call to ring someone")
        tenant.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"})
        return list(parties)

    assert rung(ADMIN_NUMBER) == ["ivan"]
    page.locator(f"#h-{day}-{hour}").uncheck()  # now off hours: the other route (maria)
    page.get_by_role("button", name="Сохранить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    assert rung(ADMIN_NUMBER) == ["maria"]


def test_an_employee_named_script_shows_as_text_in_the_browser(server: ServerThread, tenant: Tenant, admin: Person,
                                                               page: Any) -> None:
    from playwright.sync_api import expect

    evil = "<script>window.pwned=1</script>"
    tenant.client.post("/crmapi/v1/users", json={"name": evil, "login": "evil"}).raise_for_status()
    browser_sign_in(page, server, admin)
    for path in ("/console/users", "/console/users/evil", "/console/sandbox"):
        page.goto(server.url + path)
        expect(page.get_by_text(evil).first).to_be_visible()
        assert page.evaluate("window.pwned") is None
