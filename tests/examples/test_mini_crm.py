"""The example CRM (examples/mini_crm) against a real vpbx: contact lookups, pop-up cards over server-sent
events, the call log from history notifications, click-to-call through the SDK."""

from __future__ import annotations

from tests.examples.support import EventStream, MiniCrm, crm_routing, eventually, ringing, row_text

from vpbx.testing.plugin import DEMO_NUMBER, VpbxDomain, VpbxSim

ROMASHKA = "79101234567"  # a seeded contact: ООО Ромашка, responsible ivan
SIDOROV = "79031112233"  # ИП Сидоров, responsible maria
VEKTOR = "78125550101"  # АО Вектор, no responsible
STRANGER = "79995550000"  # not a contact


def test_an_incoming_call_pops_a_card_with_the_contact_name(mini_crm: MiniCrm, vpbx_sim: VpbxSim) -> None:
    with EventStream(f"{mini_crm.url}/events") as page:
        call = vpbx_sim.place(ROMASHKA)
        assert call["caller_name"] == "ООО Ромашка"  # the PBX asked the CRM who calls
        card = page.next_card()
        # The number routes to sales, who ring one by one from admin (the number's crm option is off).
        assert card == {"type": "INCOMING", "callid": call["callid"], "phone": ROMASHKA, "contact": "ООО Ромашка",
                        "user": "admin", "ext": "701"}

        unknown = vpbx_sim.place(STRANGER)
        assert unknown["caller_name"] is None
        card = page.next_card()
        assert (card["callid"], card["phone"], card["contact"]) == (unknown["callid"], STRANGER, "")

        vpbx_sim.answer(call["callid"], "admin")  # the page marks the card: admin talks
        assert page.card_for(call["callid"], "ACCEPTED")["user"] == "admin"


def test_the_crm_names_the_responsible_and_the_pbx_rings_them_first(vpbx_domain: VpbxDomain, mini_crm: MiniCrm,
                                                                     vpbx_sim: VpbxSim) -> None:
    crm_routing(vpbx_domain, DEMO_NUMBER, "group:sales")
    call = vpbx_sim.place(SIDOROV)
    assert call["caller_name"] == "ИП Сидоров"
    assert ringing(vpbx_sim.call(call["callid"])) == ["maria"]  # the responsible, not the department's first
    # A contact without a responsible: the number's own route (sales: admin first).
    other = vpbx_sim.place(VEKTOR)
    assert other["caller_name"] == "АО Вектор"
    assert ringing(vpbx_sim.call(other["callid"])) == ["admin"]


def test_the_call_log_shows_the_call_after_hang_up(mini_crm: MiniCrm, vpbx_sim: VpbxSim) -> None:
    call = vpbx_sim.place(ROMASHKA)
    row_id = f"call-{call['callid']}"
    vpbx_sim.answer(call["callid"], "admin")
    vpbx_sim.advance(42)
    assert row_text(mini_crm.http.get("/").text, row_id) is None  # no history while the call goes on
    vpbx_sim.hangup(call["callid"])

    row = eventually(lambda: row_text(mini_crm.http.get("/").text, row_id), what="the call in the call log")
    cells = row.split(" | ")
    assert cells[1:] == ["←", ROMASHKA, "ООО Ромашка", "admin", "Success", "42 s", "listen"]
    [logged] = mini_crm.store.calls()
    assert logged.link and "/records/" in logged.link  # the recording, served by the PBX


def test_click_to_call_rings_the_employee(mini_crm: MiniCrm, vpbx_sim: VpbxSim) -> None:
    contact = mini_crm.contact(VEKTOR)
    page = mini_crm.http.get("/").text
    assert f'action="/contacts/{contact.id}/call"' in page
    assert '<option value="sergey"' in page  # the employees come from the PBX (SDK: iter_users)

    answer = mini_crm.http.post(f"/contacts/{contact.id}/call", data={"user": "sergey"})
    assert answer.status_code == 200
    live = [c for c in vpbx_sim.calls() if c["kind"] == "outgoing"]
    assert len(live) == 1 and live[0]["callid"] in answer.text
    assert (live[0]["from"], live[0]["to"], ringing(live[0])) == ("sergey", VEKTOR, ["sergey"])
    assert "Calling АО Вектор (78125550101)" in answer.text


def test_click_to_call_without_a_choice_rings_the_responsible(mini_crm: MiniCrm, vpbx_sim: VpbxSim) -> None:
    contact = mini_crm.contact(SIDOROV)
    answer = mini_crm.http.post(f"/contacts/{contact.id}/call", data={})
    assert answer.status_code == 200
    [call] = [c for c in vpbx_sim.calls() if c["kind"] == "outgoing"]
    assert (call["to"], ringing(call)) == (SIDOROV, ["maria"])


def test_click_to_call_for_an_unknown_employee_shows_the_pbx_message(mini_crm: MiniCrm, vpbx_sim: VpbxSim) -> None:
    contact = mini_crm.contact(ROMASHKA)
    answer = mini_crm.http.post(f"/contacts/{contact.id}/call", data={"user": "nobody"})
    assert answer.status_code == 400
    assert ('The PBX refused the call: 400 Validation error (user: no employee &#39;nobody&#39; '
            "(a login or an extension))") in answer.text
    assert vpbx_sim.calls() == []
    assert mini_crm.http.post("/contacts/999/call", data={"user": "ivan"}).status_code == 404


def test_the_receiver_refuses_a_stranger(mini_crm: MiniCrm) -> None:
    # Only the PBX knows the crm_token: anyone else gets 401 and changes nothing.
    body = {"cmd": "history", "crm_token": "guess", "type": "in", "user": "ivan", "phone": ROMASHKA,
            "start": "20260112T090000Z", "duration": "5", "callid": "forged", "status": "Success"}
    answer = mini_crm.http.post("/vpbx/", data=body)
    assert (answer.status_code, answer.json()) == (401, {"error": "Invalid token"})
    assert mini_crm.store.calls() == []
