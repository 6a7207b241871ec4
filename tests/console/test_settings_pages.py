"""The CRM token at rest, a number switched off and on (002 §9.4/9.5), domain parameters (12.1) and additional
roles (12.6) in the cabinet, over plain HTTP."""

from __future__ import annotations

import re

from tests.console.support import Crm, Person, csrf_of, set_password, sign_in, wait_until

from vpbx.secrets_store import SEALED, box_for, open_value
from vpbx.store.repositories import tenancy as tenancy_repo
from vpbx.testing.server import ServerThread, Tenant

NUMBER = "74957654321"  # the demo data's main number


def _stored_token(server: ServerThread, tenant: Tenant) -> str:
    async def work() -> str:
        from vpbx.services import tenancy

        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            return (await tenancy_repo.integration(session, domain.id)).crm_token

    return str(server.call(work()))


def _integration_form(page: str, **changes: str) -> dict[str, str]:
    """The integration form as the page fills it, with ``changes``: what a browser posts."""
    url = re.search(r'name="crm_url" type="url" value="([^"]*)"', page)
    token = re.search(r'name="crm_token" type="password" value="([^"]*)"', page)
    assert url and token, "the page has the integration form"
    form = {"csrf": csrf_of(page), "crm_url": url[1], "crm_token": token[1], "dialect": "form",
            "legacy_edition": "000", "enabled": "1"}
    form.update(changes)
    return form


def test_the_crm_token_is_never_shown_and_an_unchanged_form_keeps_it(server: ServerThread, tenant: Tenant,
                                                                      admin: Person, crm: Crm) -> None:
    client = sign_in(server, admin)
    page = client.get("/console/integration").text
    saved = client.post("/console/integration", data=_integration_form(page, crm_url=crm.url,
                                                                         crm_token="tok-Секрет-42"))
    assert saved.status_code == 200, saved.text
    stored = _stored_token(server, tenant)
    assert stored.startswith(SEALED) and open_value(box_for(server.runtime.settings), stored) == "tok-Секрет-42"

    page = client.get("/console/integration").text
    assert SEALED not in page and "tok-Секрет-42" not in page and stored not in page
    assert "Токен задан" in page
    # The form posted back as the page filled it (the token field empty) keeps the token.
    again = client.post("/console/integration", data=_integration_form(page))
    assert again.status_code == 200 and SEALED not in again.text
    assert open_value(box_for(server.runtime.settings), _stored_token(server, tenant)) == "tok-Секрет-42"
    # ... and the CRM still receives it in clear.
    client.post("/console/integration/test", data={"csrf": csrf_of(again.text)})
    wait_until(lambda: crm.received("tok-Секрет-42".encode()) or crm.received(b"tok-%D0%A1"),
               what="the CRM receives the token")

    # A sealed blob typed in is refused beside the field; nothing changes.
    refused = client.post("/console/integration", data=_integration_form(again.text, crm_token=stored))
    assert refused.status_code == 400 and 'id="e-f-crm_token"' in refused.text
    assert open_value(box_for(server.runtime.settings), _stored_token(server, tenant)) == "tok-Секрет-42"
    # A new token replaces it; "remove" clears it.
    client.post("/console/integration", data=_integration_form(refused.text, crm_token="tok-new"))
    assert open_value(box_for(server.runtime.settings), _stored_token(server, tenant)) == "tok-new"
    page = client.get("/console/integration").text
    client.post("/console/integration", data=_integration_form(page, crm_token_clear="1"))
    assert _stored_token(server, tenant) == ""
    assert "Токен не задан" in client.get("/console/integration").text


def test_a_number_is_switched_off_and_on_from_its_page(server: ServerThread, tenant: Tenant, admin: Person) -> None:
    client = sign_in(server, admin)
    page = client.get(f"/console/numbers/{NUMBER}")
    assert page.status_code == 200 and "Выключить прием звонков" in page.text
    off = client.post(f"/console/numbers/{NUMBER}/enabled", data={"csrf": csrf_of(page.text), "on": "0"})
    assert off.status_code == 200 and "Прием звонков выключен" in off.text and "Включить прием звонков" in off.text
    assert tenant.client.get(f"/crmapi/v1/telnums/{NUMBER}").json()["disabled"] is True
    on = client.post(f"/console/numbers/{NUMBER}/enabled", data={"csrf": csrf_of(off.text), "on": "1"})
    assert on.status_code == 200 and "Прием звонков включен" in on.text
    assert tenant.client.get(f"/crmapi/v1/telnums/{NUMBER}").json()["disabled"] is False
    # Another domain's number is not found; without the CSRF token nothing changes.
    assert client.post("/console/numbers/70000000000/enabled",
                       data={"csrf": csrf_of(on.text), "on": "0"}).status_code == 404
    assert client.post(f"/console/numbers/{NUMBER}/enabled", data={"on": "0"}).status_code == 403
    assert tenant.client.get(f"/crmapi/v1/telnums/{NUMBER}").json()["disabled"] is False


def test_a_user_role_employee_cannot_switch_a_number(server: ServerThread, tenant: Tenant) -> None:
    client = sign_in(server, set_password(tenant, "ivan"))  # role user: telnums.get only
    page = client.get(f"/console/numbers/{NUMBER}")
    assert page.status_code == 200 and "Выключить прием звонков" not in page.text
    answer = client.post(f"/console/numbers/{NUMBER}/enabled", data={"csrf": csrf_of(page.text), "on": "0"})
    assert answer.status_code == 403
    assert tenant.client.get(f"/crmapi/v1/telnums/{NUMBER}").json()["disabled"] is False


def test_domain_parameters_show_what_the_api_shows(server: ServerThread, tenant: Tenant, admin: Person) -> None:
    client = sign_in(server, admin)
    api = tenant.client.get("/crmapi/v1/domain").json()
    page = client.get("/console/domain")
    assert page.status_code == 200
    assert api["timezone"]["name"] in page.text
    used = re.search(r'id="limit-users"><th scope="row">[^<]*</th><td>(\d+)</td>', page.text)
    assert used and int(used[1]) == api["limits"]["users"]["used"]
    assert "<form" not in page.text.split('id="domain-params"')[1]  # read-only
    assert 'href="/console/domain"' in client.get("/console/company").text


def test_a_role_created_in_the_form_is_in_the_api_and_its_errors_show_by_the_fields(
        server: ServerThread, tenant: Tenant, admin: Person) -> None:
    client = sign_in(server, admin)
    page = client.get("/console/roles")
    assert page.status_code == 200 and 'value="users.get"' in page.text and 'value="calls.create"' in page.text
    created = client.post("/console/roles", data={"csrf": csrf_of(page.text), "name": "Оператор <b>",
                                                  "rights": ["users.get", "history.get"]})
    assert created.status_code == 303
    roles = tenant.client.get("/crmapi/v1/access-rights/custom-roles").json()
    role = next(r for r in roles if r["name"] == "Оператор <b>")
    assert sorted(role["rights"]) == ["history.get", "users.get"]
    listing = client.get("/console/roles").text
    assert f'id="role-{role["id"]}"' in listing and "Оператор &lt;b&gt;" in listing

    empty = client.post("/console/roles", data={"csrf": csrf_of(listing), "name": " ", "rights": ["users.get"]})
    assert empty.status_code == 400 and 'id="e-f-name"' in empty.text
    assert 'id="r-users-get" aria-label' in empty.text and "checked" in empty.text.split('id="r-users-get"')[1][:80]
    unknown = client.post("/console/roles", data={"csrf": csrf_of(listing), "name": "Плохая",
                                                  "rights": ["users.fly"]})
    assert unknown.status_code == 400 and 'id="e-rights"' in unknown.text
    names = [r["name"] for r in tenant.client.get("/crmapi/v1/access-rights/custom-roles").json()]
    assert " " not in names and "Плохая" not in names


def test_only_the_domain_owner_creates_roles(server: ServerThread, tenant: Tenant) -> None:
    # A department head sees the roles (more.get) but may not create one: a role can grant any right.
    tenant.client.put("/crmapi/v1/users/ivan", json={"role": "group_head"}).raise_for_status()
    client = sign_in(server, set_password(tenant, "ivan"))
    page = client.get("/console/roles")
    assert page.status_code == 200 and 'id="role-form"' not in page.text
    answer = client.post("/console/roles", data={"csrf": csrf_of(page.text), "name": "Все права",
                                                 "rights": ["users.delete"]})
    assert answer.status_code == 403
    assert tenant.client.get("/crmapi/v1/access-rights/custom-roles").json() == []
    user = sign_in(server, set_password(tenant, "maria"))  # role user: no more.get
    assert user.get("/console/roles").status_code == 403 and user.get("/console/domain").status_code == 403
