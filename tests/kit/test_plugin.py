"""The pytest plugin, used the way a CRM developer would."""

from __future__ import annotations

from typing import Any

from vpbx.crm import ContactQuery, EventNotice, EventType, HistoryNotice


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
    assert fixtures == {"vpbx_server", "vpbx_domain", "vpbx_sim", "crm_receiver"}
