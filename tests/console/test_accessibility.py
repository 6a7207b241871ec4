"""Accessibility: axe-core (vendored, tests/console/vendor) finds no serious or critical violation on any page at
1280 px and at 360 px wide, in Russian and in English; the sign-in and a form work with the keyboard alone."""

from __future__ import annotations

from typing import Any

from tests.console.support import Person, axe_violations, browser_sign_in

from vpbx.testing.server import ServerThread, Tenant

ADMIN_NUMBER = "74957654321"
PAGES = ["/console/", "/console/company", "/console/integration", "/console/users", "/console/users/new",
         "/console/users/ivan", "/console/groups", "/console/groups/new", "/console/numbers",
         f"/console/numbers/{ADMIN_NUMBER}", "/console/caller-ids", "/console/restrictions", "/console/blacklist",
         "/console/media", "/console/settings", "/console/sip-registrations", "/console/sip-forwarding",
         "/console/branches", "/console/webhooks", "/console/domain", "/console/roles", "/console/calls",
         "/console/traffic", "/console/sandbox"]


def _check(page: Any, where: str, found: dict[str, Any]) -> None:
    for width, height in ((1280, 800), (360, 740)):
        page.set_viewport_size({"width": width, "height": height})
        violations = axe_violations(page)
        if violations:
            found[f"{where} @{width}"] = violations


def test_no_serious_or_critical_axe_violations_on_any_page(server: ServerThread, tenant: Tenant, admin: Person,
                                                            page: Any) -> None:
    # Rows in the lists, so the tables and their buttons are checked too.
    tenant.client.post("/crmapi/v1/blacklist/telnums", json=[{"telnum": "7495*", "comment": "спам"}])
    tenant.client.post("/crmapi/v1/sip-registrations", json={"telnum": "74952223344", "name": "Оператор",
                                                            "domain": "sip.example.com", "login": "l",
                                                            "password": "p"}).raise_for_status()
    tenant.client.post("/crmapi/v1/sipuri-transfers", json={"telnum": "74953334455"}).raise_for_status()
    found: dict[str, Any] = {}
    page.goto(server.url + "/console/signin")
    _check(page, "/console/signin", found)
    browser_sign_in(page, server, admin)
    for lang in ("ru", "en"):
        page.goto(server.url + f"/console/lang/{lang}?next=/console/")
        for path in PAGES:
            page.set_viewport_size({"width": 1280, "height": 800})
            answer = page.goto(server.url + path)
            assert answer is not None and answer.status == 200, path
            _check(page, f"{path} ({lang})", found)
    # States a person meets: a ringing phone, a form showing the API's field errors.
    page.goto(server.url + "/console/lang/ru?next=/console/")
    tenant.client.post(f"/crmapi/v1/telnums/{ADMIN_NUMBER}",
                       json={"type": "user", "user": "admin", "greeting": False}).raise_for_status()
    tenant.client.put("/sim/v1/devices/admin", json={"registered": True}).raise_for_status()
    page.goto(server.url + "/console/sandbox")
    call = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER}).json()
    page.locator("#phone-admin .ringing-label").wait_for()
    _check(page, "/console/sandbox (ringing)", found)
    tenant.client.post(f"/sim/v1/calls/{call['callid']}/hangup", json={"by": "client"})
    page.goto(server.url + "/console/blacklist")
    page.get_by_label("Номер или маска").fill("nonsense")
    page.get_by_role("button", name="Добавить").click()
    page.locator("#e-f-telnum").wait_for()
    _check(page, "/console/blacklist (field error)", found)
    assert found == {}, "\n".join(f"{where}: {v['id']} ({v['impact']}) {v['help']} {v['nodes']}"
                                   for where, vs in found.items() for v in vs)


def test_the_sign_in_and_a_form_work_with_the_keyboard_alone(server: ServerThread, tenant: Tenant, admin: Person,
                                                             page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(server.url + "/console/signin")
    page.keyboard.press("Tab")  # the skip link first
    for _ in range(10):  # Tab until the login field has the focus
        if page.evaluate("document.activeElement && document.activeElement.name") == "login":
            break
        page.keyboard.press("Tab")
    page.keyboard.type(admin.login)
    page.keyboard.press("Tab")
    page.keyboard.type(admin.password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/")

    page.goto(server.url + "/console/blacklist")
    for _ in range(60):  # Tab through the page to the number field, as a keyboard user does
        if page.evaluate("document.activeElement && document.activeElement.name") == "telnum" and \
                page.evaluate("document.activeElement.type") == "text":
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("the number field is not reachable with Tab")
    page.keyboard.type("74950001122")
    page.keyboard.press("Tab")
    page.keyboard.type("с клавиатуры")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent").strip() == "Добавить"
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_have_text("Сохранено")
    assert {"telnum": "74950001122", "comment": "с клавиатуры"} in \
        tenant.client.get("/crmapi/v1/blacklist/telnums").json()
