"""makeCall (000/001/004 §5.3): written from the documents and spec/README.

The command's parameter handling lives in ``vpbx.api.legacy.make_call``, the call in
``vpbx.services.calls`` (click-to-call, issue 7).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update
from tests.legacy.client import PATH, LegacyClient

from vpbx.store.tables import Domain, User
from vpbx.testing.server import ServerThread, Tenant

INVALID_PARAMETERS = {"error": "Invalid parameters"}


def known_call(t: Tenant, callid: str) -> bool:
    """The simulator knows the call (live or ended): the PBX really placed it."""
    return bool(callid) and t.client.get(f"/sim/v1/calls/{callid}").status_code == 200


def test_make_call_example(ltenant: Tenant) -> None:
    """000 §5.3's example (andy is ivan here): the default 000 edition answers CallID only (the 001/004
    edition's uuid: tests/compat/test_legacy_editions.py)."""
    r = ltenant.client.post(PATH, data={"cmd": "makeCall", "phone": "79101234567", "user": "ivan",
                                        "token": ltenant.legacy_token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"CallID"} and body["CallID"]
    assert known_call(ltenant, body["CallID"])


def set_telnum(server: ServerThread, t: Tenant, login: str, telnum: str) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as s:
            domain_id = await s.scalar(select(Domain.id).where(Domain.name == t.name))
            await s.execute(update(User).where(User.domain_id == domain_id, User.login == login)
                            .values(telnum=telnum))
            await s.commit()

    server.call(work())


@pytest.mark.parametrize("cmd", ["makeCall", "makecall", "MAKECALL"])
def test_user_as_login_extension_or_direct_number(lserver: ServerThread, ltenant: Tenant, crm: LegacyClient,
                                                  cmd: str) -> None:
    set_telnum(lserver, ltenant, "maria", "74950000008")
    for user in ("ivan", "707", "74950000008", "+74950000008"):
        r = crm.call(cmd, user=user, phone="+79101234567")
        assert r.status_code == 200, (user, r.text)
        assert known_call(ltenant, r.json()["CallID"])


def test_optional_clid(crm: LegacyClient, ltenant: Tenant) -> None:
    r = crm.call("makeCall", user="ivan", phone="79101234567", clid="74951234567")
    assert r.status_code == 200, r.text


def test_make_call_invalid_parameters(crm: LegacyClient, ltenant: Tenant) -> None:
    assert crm.call("makeCall", user="ivan", phone="79101234567").status_code == 200  # the command exists ...
    for params in ({"user": "ivan"}, {"phone": "79101234567"}, {"user": "nobody", "phone": "79101234567"},
                   {"user": "ivan", "phone": "not-a-number"}, {"user": "ivan", "phone": "79101234567", "clid": "x"}):
        r = crm.call("makeCall", **params)
        assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS), params
    r = ltenant.client.get(PATH, params={"cmd": "makeCall", "user": "ivan", "phone": "79101234567",
                                         "token": ltenant.legacy_token})
    assert (r.status_code, r.json()) == (400, INVALID_PARAMETERS)  # ... and is POST only
