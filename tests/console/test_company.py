"""The company pages in a real browser, each doing what a person does and checking the outcome through the REST
API (the same services behind both). Screenshots at 1280×800 and 360×740 go to tests/console/screenshots."""

from __future__ import annotations

from typing import Any

from tests.console.support import Person, audio_duration, browser_sign_in, screenshots, wait_until

from vpbx.testing.audio import tone_wav
from vpbx.testing.server import ServerThread, Tenant

ADMIN_NUMBER = "74957654321"  # the demo's number routed to the admin


def test_a_blacklist_entry_added_in_the_form_is_in_the_api(server: ServerThread, tenant: Tenant, admin: Person,
                                                           page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    page.get_by_role("link", name="Компания").click()
    page.get_by_role("link", name="Черный список").click()
    page.get_by_label("Номер или маска").fill("not a number")
    page.get_by_label("Комментарий").fill("спам")
    page.get_by_role("button", name="Добавить").click()
    expect(page.locator("#e-f-telnum")).to_be_visible()  # the API's own field error, beside the field
    expect(page.get_by_label("Номер или маска")).to_have_attribute("aria-invalid", "true")
    assert tenant.client.get("/crmapi/v1/blacklist/telnums").json() == []  # nothing half-written
    page.get_by_label("Номер или маска").fill("+7 (495) 111-22-33")
    page.get_by_role("button", name="Добавить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    assert tenant.client.get("/crmapi/v1/blacklist/telnums").json() == [{"telnum": "74951112233",
                                                                         "comment": "спам"}]
    screenshots(page, "blacklist")
    page.get_by_role("button", name="Не принимать анонимные звонки").click()
    assert tenant.client.get("/crmapi/v1/blacklist/block-anonymous").json() == {"state": True}
    page.get_by_role("button", name="Удалить 74951112233").click()
    expect(page.locator("#blacklist")).to_contain_text("Список пуст")
    assert tenant.client.get("/crmapi/v1/blacklist/telnums").json() == []


def test_a_media_file_is_uploaded_played_and_set_as_hold_music(server: ServerThread, tenant: Tenant, admin: Person,
                                                                page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    page.goto(server.url + "/console/media")
    page.get_by_label("Каталог").select_option("holdmusic")
    page.get_by_label("Имя", exact=True).fill("Тон 440")
    page.get_by_label("Файл (wav, mp3 или ogg, до 10 МБ)").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not audio"}])
    page.get_by_role("button", name="Загрузить", exact=True).click()
    expect(page.locator("#e-f-file")).to_contain_text("not a wav, mp3 or ogg")
    page.get_by_label("Имя", exact=True).fill("Тон 440")
    page.get_by_label("Файл (wav, mp3 или ogg, до 10 МБ)").set_input_files(
        files=[{"name": "tone.wav", "mimeType": "audio/wav", "buffer": tone_wav(1.5)}])
    page.get_by_role("button", name="Загрузить", exact=True).click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    catalog = tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json()
    assert [f["name"] for f in catalog] == ["Тон 440"]
    assert abs(audio_duration(page, "#catalog-holdmusic audio") - 1.5) < 0.1  # it plays, the whole file
    screenshots(page, "media")
    page.locator("#f-music-holdmusic").select_option(catalog[0]["id"])
    page.locator("#music-holdmusic-form").get_by_role("button", name="Сохранить").click()
    expect(page.locator("#music-holdmusic")).to_have_text("Тон 440")
    assert tenant.client.get("/crmapi/v1/music").json()["holdmusic"] == {"file": catalog[0]["id"],
                                                                        "name": "Тон 440", "uploaded": True}


def _legs(tenant: Tenant, callid: str) -> list[tuple[str, str]]:
    return [(leg["party"], leg["state"]) for leg in tenant.client.get(f"/sim/v1/calls/{callid}").json()["legs"]]


def test_the_ivr_editor_routes_the_next_calls_keys(server: ServerThread, tenant: Tenant, admin: Person,
                                                   page: Any) -> None:
    from playwright.sync_api import expect

    for login in ("ivan", "maria"):
        tenant.client.put(f"/sim/v1/devices/{login}", json={"registered": True}).raise_for_status()
    browser_sign_in(page, server, admin)
    page.goto(server.url + f"/console/numbers/{ADMIN_NUMBER}")
    page.get_by_label("Маршрут", exact=True).select_option("ivr")
    page.get_by_label("Название меню").fill("Главное меню")
    page.get_by_label("Клавиша 1: Куда").select_option("user")
    page.get_by_label("Клавиша 1: Кому").fill("ivan")
    page.get_by_label("Клавиша 2: Куда").select_option("user")
    page.get_by_label("Клавиша 2: Кому").fill("nobody-here")
    page.get_by_role("button", name="Сохранить").first.click()
    expect(page.locator("#e-b-2")).to_be_visible()  # the API's error on key 2's row
    assert tenant.client.get(f"/crmapi/v1/telnums/{ADMIN_NUMBER}").json()["type"] != "ivr"
    page.get_by_label("Клавиша 2: Кому").fill("maria")
    page.get_by_role("button", name="Сохранить").first.click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    screenshots(page, "number-ivr")
    menu = tenant.client.get(f"/crmapi/v1/telnums/{ADMIN_NUMBER}").json()["ivr"]
    assert [(i["button"], i["user"]) for i in menu["items"]] == [("1", "ivan"), ("2", "maria")]

    callid = tenant.client.post("/sim/v1/calls", json={"from": "79101234567", "to": ADMIN_NUMBER}).json()["callid"]
    wait_until(lambda: tenant.client.get(f"/sim/v1/calls/{callid}").json()["state"] == "ivr", what="the menu")
    tenant.client.post(f"/sim/v1/calls/{callid}/dtmf", json={"digits": "2"}).raise_for_status()
    assert wait_until(lambda: _legs(tenant, callid), what="key 2's target to ring") == [("maria", "ringing")]
    tenant.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": "client"})


def test_extra_intervals_and_special_days_are_added_and_removed(server: ServerThread, tenant: Tenant,
                                                                admin: Person, page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    page.goto(server.url + f"/console/numbers/{ADMIN_NUMBER}")
    form = page.locator("#interval-form")
    form.get_by_label("Маршрут (новое имя)").fill("Обед")
    form.get_by_label("С", exact=True).fill("13:00")
    form.get_by_label("До", exact=True).fill("14:00")
    form.get_by_role("button", name="Добавить интервал").click()
    expect(page.locator("#interval-form")).to_contain_text("non-empty list of weekdays")  # no day ticked
    form = page.locator("#interval-form")
    form.get_by_label("Пн").check()
    form.get_by_label("Ср").check()
    form.get_by_role("button", name="Добавить интервал").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    days = page.locator("#special-day-form")
    days.get_by_label("Маршрут (новое имя)").fill("Новый год")
    days.get_by_label("С", exact=True).fill("2026-12-31T00:00")
    days.get_by_label("До", exact=True).fill("2027-01-02T23:59")
    days.get_by_role("button", name="Добавить особенный день").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    screenshots(page, "number-rules")
    routes = {r["name"]: r for r in tenant.client.get(f"/crmapi/v1/telnums/{ADMIN_NUMBER}").json()["custom_routes"]}
    (interval,) = routes["Обед"]["interval_schedule"]
    assert (interval["days"], interval["start"], interval["end"]) == (["monday", "wednesday"], 46800, 50400)
    (special,) = routes["Новый год"]["calendar_schedule"]
    assert special["start"].startswith("2026-12-31T00:00") and special["end"].startswith("2027-01-02T23:59")
    page.locator("#intervals").get_by_role("button", name="Удалить Обед 1").click()
    expect(page.locator("#intervals")).not_to_contain_text("monday")
    routes = {r["name"]: r for r in tenant.client.get(f"/crmapi/v1/telnums/{ADMIN_NUMBER}").json()["custom_routes"]}
    assert routes["Обед"]["interval_schedule"] == []


def test_caller_ids_restrictions_and_recording_forms_change_what_the_api_shows(
        server: ServerThread, tenant: Tenant, admin: Person, page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    page.goto(server.url + "/console/caller-ids")
    page.locator("#f-users-login").select_option("ivan")
    page.locator("#f-users-telnum").select_option(ADMIN_NUMBER)
    page.locator("#cid-users-form").get_by_role("button", name="Добавить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    screenshots(page, "caller-ids")
    users = tenant.client.get("/crmapi/v1/caller-ids").json()["users"]
    assert [(u["login"], u["telnum"]) for u in users] == [("ivan", ADMIN_NUMBER)]

    page.goto(server.url + "/console/restrictions")
    main = page.locator("#restrictions-main")
    main.get_by_label("EURO").check()
    main.get_by_label("RU", exact=False).first.uncheck()
    main.get_by_role("button", name="Сохранить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    allowed = tenant.client.get("/crmapi/v1/calls-restrictions").json()["main"]
    assert "EURO" in allowed and "RU" not in allowed
    new = page.locator("#restrictions-users-new")
    new.get_by_label("Сотрудник").select_option("maria")
    new.get_by_label("ASIA").check()
    new.get_by_role("button", name="Добавить").click()
    expect(page.locator("#restrictions-users-maria")).to_be_visible()
    screenshots(page, "restrictions")
    assert tenant.client.get("/crmapi/v1/calls-restrictions").json()["users"][0]["allowed"] == ["ASIA"]

    page.goto(server.url + "/console/settings")
    page.get_by_label("Записывать внешние звонки").check()
    page.locator("#record-form").get_by_role("button", name="Сохранить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    page.get_by_label("Дополнительный адрес").fill("not-an-email")
    page.locator("#am-form").get_by_role("button", name="Сохранить").click()
    expect(page.locator("#e-f-email")).to_contain_text("not a valid email")
    page.locator("#f-blf-login").select_option("maria")
    page.locator("#add-blf").get_by_role("button", name="Добавить").click()
    expect(page.locator("#list-blf")).to_contain_text("Мария")
    screenshots(page, "settings")
    assert tenant.client.get("/crmapi/v1/record").json()["external"] is True
    assert tenant.client.get("/crmapi/v1/am").json()["email"] == ""
    assert [u["login"] for u in tenant.client.get("/crmapi/v1/blf/users").json()] == ["maria"]


def test_a_sip_registration_added_in_the_form_shows_its_status_live(server: ServerThread, tenant: Tenant,
                                                                    admin: Person, page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    page.goto(server.url + "/console/sip-registrations")
    form = page.locator("#sipreg-form")
    form.get_by_label("Номер").fill("+7 495 222-33-44")
    form.get_by_label("Имя", exact=True).fill("Оператор Б")
    form.get_by_label("SIP-домен").fill("sip.example.com")
    form.get_by_label("Логин").fill("line1")
    form.get_by_label("Пароль").fill("s3cret")
    form.get_by_role("button", name="Добавить").click()
    expect(page.locator(".notice")).to_have_text("Сохранено")
    status = page.locator("#sipreg-74952223344 .status")
    expect(status).to_have_text("success")
    tenant.client.put("/sim/v1/sip-registrations/74952223344", json={"status": "auth_failed"}).raise_for_status()
    expect(status).to_have_text("auth_failed", timeout=10_000)  # the table refreshes itself, no reload
    screenshots(page, "sip-registrations")
    saved = tenant.client.get("/crmapi/v1/sip-registrations/74952223344").json()
    assert (saved["name"], saved["domain"], saved["status"]) == ("Оператор Б", "sip.example.com", "auth_failed")
    assert "password" not in saved and "s3cret" not in page.content()


def test_sip_forwarding_branches_and_webhooks_forms(server: ServerThread, tenant: Tenant, admin: Person,
                                                    page: Any) -> None:
    from playwright.sync_api import expect

    browser_sign_in(page, server, admin)
    page.goto(server.url + "/console/sip-forwarding")
    page.get_by_label("Номер").fill("74953334455")
    page.get_by_role("button", name="Добавить").click()
    expect(page.locator("#sipuris")).to_contain_text("pbx-")
    page.get_by_role("button", name="Выключить 74953334455").click()
    expect(page.locator("#sipuri-74953334455")).to_contain_text("выкл")
    screenshots(page, "sip-forwarding")
    (item,) = tenant.client.get("/crmapi/v1/sipuri-transfers").json()["items"]
    assert (item["telnum"], item["active"]) == ("74953334455", False)

    page.goto(server.url + "/console/branches")
    page.get_by_label("Домен другой АТС").fill("branch.example")
    page.get_by_label("Имя", exact=True).fill("Филиал")
    page.get_by_label("API-ключ другой АТС").fill("their-key")
    page.get_by_role("button", name="Добавить").click()
    expect(page.locator("#branch-branch\\.example")).to_contain_text("waiting")
    screenshots(page, "branches")
    (branch,) = tenant.client.get("/crmapi/v1/branches").json()["items"]
    assert (branch["domain"], branch["name"]) == ("branch.example", "Филиал")

    page.goto(server.url + "/console/webhooks")
    page.get_by_label("Адрес (пусто: адрес CRM)").fill("https://hooks.example.com/pbx")
    page.get_by_role("button", name="Добавить").click()
    expect(page.locator("#webhooks")).to_contain_text("https://hooks.example.com/pbx")
    screenshots(page, "webhooks")
    assert [h["url"] for h in tenant.client.get("/crmapi/v1/webhook").json()] == ["https://hooks.example.com/pbx"]
