"""The cabinet's security over plain HTTP: sign-in, sessions, CSRF, XSS, rights and tenant isolation."""

from __future__ import annotations

import httpx
from tests.console.support import PASSWORD, Person, csrf_of, set_password, sign_in

from vpbx.testing.server import ServerThread, Tenant


def test_pages_need_a_session(server: ServerThread) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for path in ("/console/", "/console/users", "/console/integration", "/console/calls", "/console/traffic"):
            answer = anonymous.get(path, follow_redirects=False)
            assert (answer.status_code, answer.headers["location"]) == (303, "/console/signin"), path


def test_sign_in_sets_a_secure_session_cookie_and_sign_out_ends_it(server: ServerThread, tenant: Tenant,
                                                                    admin: Person) -> None:
    client = sign_in(server, admin)
    cookie = next(c for c in client.cookies.jar if c.name == "vpbx_console")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") in ("lax", "Lax")
    home = client.get("/console/")
    assert home.status_code == 200 and tenant.name in home.text
    out = client.post("/console/signout", data={"csrf": csrf_of(home.text)})
    assert out.status_code == 303
    client.cookies.set("vpbx_console", cookie.value or "")  # a copy of the cookie is dead too
    assert client.get("/console/").status_code == 303


def test_sign_out_everywhere_ends_every_session_of_the_employee(server: ServerThread, admin: Person) -> None:
    first, second = sign_in(server, admin), sign_in(server, admin)
    home = first.get("/console/")
    assert first.post("/console/signout-everywhere", data={"csrf": csrf_of(home.text)}).status_code == 303
    assert second.get("/console/").status_code == 303


def test_wrong_password_and_unknown_domain_are_refused(server: ServerThread, tenant: Tenant, admin: Person) -> None:
    client = httpx.Client(base_url=server.url, timeout=30)
    for login, password in ((admin.login, "wrong-password"), ("admin@no-such.domain", PASSWORD),
                            ("admin", PASSWORD)):
        form = client.get("/console/signin")
        answer = client.post("/console/signin", data={"login": login, "password": password,
                                                      "csrf": csrf_of(form.text)})
        assert answer.status_code == 401 and "Неверный логин или пароль" in answer.text


def test_sign_in_is_rate_limited(server: ServerThread, tenant: Tenant) -> None:
    person = set_password(tenant, "ivan")
    client = httpx.Client(base_url=server.url, timeout=30)
    statuses = []
    for _ in range(11):
        form = client.get("/console/signin")
        statuses.append(client.post("/console/signin", data={"login": person.login, "password": "nope-nope",
                                                             "csrf": csrf_of(form.text)}).status_code)
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    form = client.get("/console/signin")  # now even the right password waits
    right = client.post("/console/signin", data={"login": person.login, "password": person.password,
                                                 "csrf": csrf_of(form.text)})
    assert right.status_code == 429


def test_sign_in_form_without_its_csrf_token_is_refused(server: ServerThread, admin: Person) -> None:
    client = httpx.Client(base_url=server.url, timeout=30)
    client.get("/console/signin")
    answer = client.post("/console/signin", data={"login": admin.login, "password": admin.password})
    assert answer.status_code == 403 and "vpbx_console" not in answer.cookies


def test_a_form_without_the_csrf_token_changes_nothing(server: ServerThread, tenant: Tenant, admin: Person) -> None:
    client = sign_in(server, admin)
    for data in ({"name": "Забытый токен"}, {"name": "Чужой токен", "csrf": "forged"}):
        answer = client.post("/console/users/new", data=data)
        assert answer.status_code == 403
    names = [u["name"] for u in tenant.client.get("/crmapi/v1/users").json()["items"]]
    assert "Забытый токен" not in names and "Чужой токен" not in names
    page = client.get("/console/users/new")  # with the token it goes through
    answer = client.post("/console/users/new", data={"name": "С токеном", "csrf": csrf_of(page.text)})
    assert answer.status_code == 303


def test_an_employee_named_script_shows_as_text(server: ServerThread, tenant: Tenant, admin: Person) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = tenant.client.post("/crmapi/v1/users", json={"name": evil, "login": "evil", "position": evil})
    assert created.status_code == 200, created.text
    client = sign_in(server, admin)
    for path in ("/console/users", "/console/users/evil", "/console/groups/new"):
        html = client.get(path).text
        assert evil not in html and "<script>alert" not in html, path
        assert "&lt;script&gt;alert(" in html, path


def test_a_user_role_employee_cannot_open_the_integration_page(server: ServerThread, tenant: Tenant) -> None:
    client = sign_in(server, set_password(tenant, "ivan"))  # role user
    home = client.get("/console/")
    assert home.status_code == 200 and "/console/integration" not in home.text
    assert client.get("/console/integration").status_code == 403
    assert client.post("/console/integration", data={"crm_url": "http://evil.example/",
                                                     "csrf": csrf_of(home.text)}).status_code == 403
    assert client.post("/console/users/new", data={"name": "X", "csrf": csrf_of(home.text)}).status_code == 403
    assert client.get("/console/users").status_code == 200  # users.get: the role has it


def test_one_domains_admin_cannot_reach_anothers_objects(server: ServerThread, tenant: Tenant,
                                                         other_tenant: Tenant, admin: Person) -> None:
    other_tenant.client.post("/crmapi/v1/users", json={"name": "Чужой", "login": "stranger"}).raise_for_status()
    other_key = other_tenant.client.get("/crmapi/v1/users").status_code  # the other domain is alive
    assert other_key == 200
    client = sign_in(server, admin)
    home = client.get("/console/")
    assert client.get("/console/users/stranger").status_code == 404
    assert client.post("/console/users/stranger/delete", data={"csrf": csrf_of(home.text)}).status_code == 404
    assert client.get("/console/groups/nonexistent").status_code == 404
    assert other_tenant.client.get("/crmapi/v1/users/stranger").status_code == 200
    # the other domain's API key ids are not this admin's to revoke
    assert client.post("/console/integration/keys/1/revoke", data={"csrf": csrf_of(home.text)}).status_code in (
        404, 200)
    keys = other_tenant.client.get("/crmapi/v1/users")
    assert keys.status_code == 200  # the other domain's key still works


def test_an_api_key_signs_in_with_the_keys_rights(server: ServerThread, tenant: Tenant) -> None:
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/console/signin")
    answer = client.post("/console/signin", data={"api_key": tenant.api_key, "csrf": csrf_of(form.text)})
    assert answer.status_code == 303
    assert client.get("/console/integration").status_code == 200


COMPANY_FORMS = [
    ("/console/blacklist", {"telnum": "74951112233"}),
    ("/console/blacklist/anonymous", {"on": "1"}),
    ("/console/caller-ids/main", {"telnum": "74957654321"}),
    ("/console/restrictions/main", {"allowed": "EURO"}),
    ("/console/settings/record", {"external": "1"}),
    ("/console/settings/blf/users", {"login": "ivan"}),
    ("/console/sip-registrations", {"telnum": "74952223344", "name": "X", "domain": "sip.example.com",
                                    "login": "l", "password": "p"}),
    ("/console/sip-forwarding", {"telnum": "74953334455"}),
    ("/console/branches", {"domain": "branch.example", "name": "X", "key": "k"}),
    ("/console/webhooks", {"url": "https://hooks.example.com/x"}),
    ("/console/numbers/74957654321/intervals", {"route_name": "X", "days": "monday", "start": "10:00",
                                                "end": "11:00"}),
    ("/console/sandbox/traffic", {"calls_per_minute": "60", "duration_s": "60"}),
]


def test_the_company_forms_without_the_csrf_token_change_nothing(server: ServerThread, tenant: Tenant,
                                                                 admin: Person) -> None:
    client = sign_in(server, admin)
    before = {path: tenant.client.get(path).json() for path in (
        "/crmapi/v1/blacklist/telnums", "/crmapi/v1/blacklist/block-anonymous", "/crmapi/v1/caller-ids",
        "/crmapi/v1/calls-restrictions", "/crmapi/v1/record", "/crmapi/v1/blf/users", "/crmapi/v1/webhook",
        "/crmapi/v1/sip-registrations", "/crmapi/v1/sipuri-transfers", "/crmapi/v1/branches",
        "/crmapi/v1/telnums/74957654321")}
    for path, data in COMPANY_FORMS:
        for token in ({}, {"csrf": "forged"}):
            assert client.post(path, data=data | token).status_code == 403, path
    assert {path: tenant.client.get(path).json() for path in before} == before
    assert tenant.client.get("/sim/v1/traffic").status_code == 404  # no run was started


def test_one_domains_admin_cannot_reach_anothers_company_objects(server: ServerThread, tenant: Tenant,
                                                                 other_tenant: Tenant, admin: Person) -> None:
    from vpbx.testing.audio import tone_wav

    uploaded = other_tenant.client.post("/crmapi/v1/media-catalog/holdmusic",
                                        files={"file": ("t.wav", tone_wav(0.2), "audio/wav")})
    assert uploaded.status_code == 201, uploaded.text
    media_id = uploaded.json()["id"]
    other_tenant.client.post("/crmapi/v1/webhook", json={"url": "https://hooks.example.com/o"}).raise_for_status()
    (hook,) = other_tenant.client.get("/crmapi/v1/webhook").json()
    other_tenant.client.post("/crmapi/v1/sip-registrations", json={
        "telnum": "74959998877", "name": "O", "domain": "sip.example.com", "login": "l",
        "password": "p"}).raise_for_status()
    client = sign_in(server, admin)
    csrf = csrf_of(client.get("/console/").text)
    assert client.get(f"/console/media/{media_id}/audio").status_code == 404
    assert client.post(f"/console/media/holdmusic/{media_id}/delete", data={"csrf": csrf}).status_code == 404
    assert client.post(f"/console/webhooks/{hook['id']}/delete", data={"csrf": csrf}).status_code == 404
    assert client.get("/console/sip-registrations/74959998877").status_code == 404
    assert client.post("/console/sip-registrations/74959998877/delete", data={"csrf": csrf}).status_code == 404
    assert "74959998877" not in client.get("/console/sip-registrations/status").text
    assert [f["id"] for f in other_tenant.client.get("/crmapi/v1/media-catalog/holdmusic").json()] == [media_id]
    assert other_tenant.client.get("/crmapi/v1/webhook").json() == [hook]
    assert other_tenant.client.get("/crmapi/v1/sip-registrations/74959998877").status_code == 200


def test_a_user_role_employee_cannot_use_the_sandbox_or_the_crm_traffic(server: ServerThread,
                                                                        tenant: Tenant) -> None:
    client = sign_in(server, set_password(tenant, "ivan"))  # role user
    csrf = csrf_of(client.get("/console/").text)
    for path in ("/console/sandbox", "/console/traffic", "/console/sandbox/traffic"):
        assert client.get(path).status_code == 403, path
    for path, data in (("/console/sandbox/traffic", {"calls_per_minute": "60", "duration_s": "60"}),
                       ("/console/sandbox/clock", {"seconds": "5"}), ("/console/traffic/contact", {})):
        assert client.post(path, data=data | {"csrf": csrf}).status_code == 403, path
