"""Media on real SIP calls (issue 17): sipp carries the signalling, the test's RTP phones (tests/media/rtp.py) the
audio, through the rtpengine vpbx starts. Audio is verified by its spectrum and energy, not assumed: the caller
hears the greeting, a key pressed in a menu routes the call, tones cross both ways, the recording holds both
parties for the talk's length, a voicemail holds the caller's message, a rating by keypad reaches the CRM."""

from __future__ import annotations

import asyncio
import io
import shutil
import tempfile
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.media.rtp import Phone, peaks, rms, stream, telephone_event, tone
from tests.sip.conftest import Sipp, SipServer, free_udp_port
from tests.sip.test_sip_calls import CLIENT, PASSWORD, register, routed_number, set_password, status_of

from vpbx.schemas.numbers import IvrMenuIn, MenuButtonIn, TelnumRouteIn
from vpbx.testing.plugin import CrmReceiver
from vpbx.testing.server import Tenant

pytestmark = pytest.mark.skipif(shutil.which("rtpengine") is None or shutil.which("espeak-ng") is None,
                                reason="rtpengine-daemon and espeak-ng are needed (make system-deps)")


WATCHED: list[Sipp] = []  # the test's sipp processes: one that fails ends the wait with its output


async def until(check: Any, within: float = 20.0, what: str = "condition") -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if value:
            return value
        for s in WATCHED:
            code = s.proc.poll()
            assert code is None or code == 0, f"{what}: sipp failed ({code}): {s.output()}"
        assert loop.time() < deadline, f"{what}: not met in {within} s"
        await asyncio.sleep(0.05)


def port_in(path: Path) -> int | None:
    text = path.read_text().strip() if path.exists() else ""
    return int(text) if text.isdigit() else None


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    opened: list[Phone] = []
    yield opened
    for p in opened:
        p.close()
    WATCHED.clear()


@pytest.fixture
def tmp_ports() -> Any:
    with tempfile.TemporaryDirectory(prefix="vpbx-sip-media-") as d:
        yield Path(d)


async def answering_phone(sip: SipServer, t: Tenant, login: str, sipp: list[Sipp], phone: Phone, portfile: Path,
                          *, ring: int = 300, talk: int = 3000) -> Sipp:
    set_password(t, login)
    port = free_udp_port()
    reg = register(sip, t, login, port=port)
    assert await asyncio.to_thread(reg.wait) == 0, reg.output()
    assert status_of(t, login) == "online"
    uas = Sipp(sip, "phone_media.xml", port=port, uas=True, timeout=60, keys={
        "user": login, "bport": str(phone.port), "portfile": str(portfile), "ring": str(ring), "talk": str(talk)})
    sipp.append(uas)
    WATCHED.append(uas)
    return uas


def carrier_calls(sip: SipServer, number: str, carrier_port: int, phone: Phone, portfile: Path, sipp: list[Sipp],
                  *, info: int | None = None, hang_up: int | None = None) -> Sipp:
    """A carrier's call; ``info``: ms after the answer it sends key 2 as SIP INFO; ``hang_up``: ms after the
    answer it hangs up (else it waits for vpbx's BYE)."""
    keys = {"caller": CLIENT, "service": number, "aport": str(phone.port), "portfile": str(portfile)}
    scenario = "carrier_media.xml"
    if info is not None:
        keys["info"], scenario = str(info), "carrier_media_info.xml"
    if hang_up is not None:
        keys["talk"], scenario = str(hang_up), "carrier_media_bye.xml"
    call = Sipp(sip, scenario, port=carrier_port, timeout=60, keys=keys)
    sipp.append(call)
    WATCHED.append(call)
    return call


async def tones_cross(a: Phone, to_a: int, b: Phone, to_b: int) -> None:
    """``a`` sends 440 Hz and ``b`` 880 Hz through rtpengine's ports for them: each hears the other's tone."""
    a.received.clear()
    b.received.clear()
    await stream([(a, to_a, tone(440, 1.5)), (b, to_b, tone(880, 1.5))])
    await until(lambda: len(b.received) > 50 and len(a.received) > 50, what="audio both ways")
    assert abs(peaks(b.audio())[0] - 440) < 15 and abs(peaks(a.audio())[0] - 880) < 15


def assert_both_tones(samples: Any) -> None:
    """A recording of ``tones_cross``: both parties' tones are in it."""
    found = peaks(samples, 2)
    assert any(abs(f - 440) < 15 for f in found) and any(abs(f - 880) < 15 for f in found), found


async def answered(crm: CrmReceiver, what: str) -> None:
    """The CRM was told the call was answered (ACCEPTED)."""
    await until(lambda: any(str(n.type).upper() == "ACCEPTED" for n in crm.notices("event")), what=what)


def media_of(sip: SipServer) -> Any:
    """The server's SIP media (``sip.media.SipMedia``): its rtpengine, its prompts."""
    from vpbx.telephony.sip import sip_of

    port = sip_of(sip.server.runtime)
    assert port is not None and port.media is not None
    return port.media


def record_on(t: Tenant) -> None:
    r = t.client.put("/crmapi/v1/record", json={"external": True})
    assert r.status_code == 204, r.text


async def test_greeting_heard_then_tones_cross_and_the_call_is_recorded(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    a, b = await Phone.open(1111), await Phone.open(2222)
    phones += [a, b]
    record_on(sip_tenant)
    number = routed_number(sip_server, sip_tenant, TelnumRouteIn(type="user", user="admin", greeting=True))
    uas = await answering_phone(sip_server, sip_tenant, "admin", sipp, b, tmp_ports / "b", talk=6000)
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp)
    # vpbx answers the caller itself to play the greeting: rtpengine's port comes in that 200.
    to_a = await until(lambda: port_in(tmp_ports / "a"), what="the caller answered by vpbx")
    await until(lambda: rms(a.audio()) > 300, what="the greeting heard")
    # The greeting ends (the engine's 5 s), the phone rings and answers: the tones cross through rtpengine.
    to_b = await until(lambda: port_in(tmp_ports / "b"), what="the phone offered rtpengine's side")
    assert to_b != to_a
    await answered(crm, "the employee answered")
    heard = a.audio()[:3 * 8000]  # the greeting's first seconds (ringback follows it)
    await tones_cross(a, to_a, b, to_b)
    assert len(heard) == 3 * 8000  # the caller heard seconds of speech before anyone answered
    played = greeting_file(sip_server)
    assert spectrum_match(heard, played) > 0.9 and envelope_match(heard, played) > 0.9
    assert await asyncio.to_thread(uas.wait, 60) == 0, uas.output()
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()
    pushed = await crm.wait_for_async("history")
    assert str(pushed.status).lower().endswith("success") and pushed.link, pushed
    samples, seconds = await until(lambda: _recording(sip_tenant, str(pushed.link)), what="the recording stored")
    assert_both_tones(samples)
    rows = sip_tenant.client.get("/crmapi/v1/history/json", params={"period": "this_month"}).json()
    talk = next(float(r["duration"]) for r in rows if r["diversion"] == number)
    assert 5 <= talk <= 7.5 and abs(seconds - talk) <= 1.0, (seconds, talk)  # the phone talks 6 s


def greeting_file(sip: SipServer) -> np.ndarray[Any, Any]:
    with wave.open(str(media_of(sip).rt.prompts.path("greeting"))) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def spectrum_match(heard: np.ndarray[Any, Any], played: np.ndarray[Any, Any]) -> float:
    """Cosine similarity of the two signals' average spectra (64 bands up to 4 kHz): G.711 and the network keep
    a voice's spectrum; another sound (a tone, noise, silence) does not match it."""
    def bands(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        frames = x[: len(x) // 256 * 256].astype(np.float64).reshape(-1, 256)
        power = (np.abs(np.fft.rfft(frames * np.hanning(256), axis=1)) ** 2).mean(axis=0)[1:129]
        return np.asarray(power.reshape(64, 2).sum(axis=1))
    h, p = bands(heard), bands(played[: len(heard)])
    return float(h @ p / (np.linalg.norm(h) * np.linalg.norm(p)))


def envelope_match(heard: np.ndarray[Any, Any], played: np.ndarray[Any, Any]) -> float:
    """The best correlation of the two signals' loudness over time (20 ms frames), over every alignment: the same
    words give ~1, another sentence in the same voice about 0.5 (a spectrum alone cannot tell those apart)."""
    def envelope(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        frames = x[: len(x) // 160 * 160].astype(np.float64).reshape(-1, 160)
        return np.asarray(np.log1p((frames ** 2).mean(axis=1)))
    h, p = envelope(heard), envelope(played)
    lags = range(max(1, len(p) - len(h) + 1))
    return max(float(np.corrcoef(h, p[lag:lag + len(h)])[0, 1]) for lag in lags if len(p[lag:lag + len(h)]) == len(h))


def _recording(t: Tenant, link: str) -> tuple[Any, float] | None:
    path = link.split("/records/", 1)[1]
    r = t.client.get(f"/records/{path}", params={"format": "wav"})
    if r.status_code != 200:
        return None
    with wave.open(io.BytesIO(r.content)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return samples, len(samples) / w.getframerate()


def menu_number(sip: SipServer, t: Tenant) -> str:
    menu = IvrMenuIn(name="main", items=[MenuButtonIn(button="1", type="user", user="manager"),
                                         MenuButtonIn(button="2", type="user", user="admin")])
    return routed_number(sip, t, TelnumRouteIn(type="ivr", ivr=menu, greeting=False))


async def test_key_2_in_the_menu_rings_button_2s_employee(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    a, b = await Phone.open(1111), await Phone.open(2222)
    phones += [a, b]
    number = menu_number(sip_server, sip_tenant)
    uas = await answering_phone(sip_server, sip_tenant, "admin", sipp, b, tmp_ports / "b", talk=1000)
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp)
    to_a = await until(lambda: port_in(tmp_ports / "a"), what="the caller answered for the menu")
    await until(lambda: rms(a.audio()) > 300, what="the menu prompt heard")
    await stream([(a, to_a, tone(440, 0.2))])
    await telephone_event(a, to_a, "2", seq=100, timestamp=100 * 160)
    assert await asyncio.to_thread(uas.wait, 60) == 0, uas.output()
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()
    pushed = await crm.wait_for_async("history")
    assert str(pushed.status).lower().endswith("success"), pushed
    assert pushed.user == "admin", pushed


async def test_key_sent_as_sip_info_drives_the_menu(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    a, b = await Phone.open(1111), await Phone.open(2222)
    phones += [a, b]
    number = menu_number(sip_server, sip_tenant)
    uas = await answering_phone(sip_server, sip_tenant, "admin", sipp, b, tmp_ports / "b", talk=1000)
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp, info=1000)
    assert await asyncio.to_thread(uas.wait, 60) == 0, uas.output()
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()
    pushed = await crm.wait_for_async("history")
    assert pushed.user == "admin", pushed


async def test_rating_by_keypad_reaches_the_crm(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    a, b = await Phone.open(1111), await Phone.open(2222)
    phones += [a, b]
    number = routed_number(sip_server, sip_tenant, TelnumRouteIn(type="user", user="admin", greeting=False))
    r = sip_tenant.client.put("/crmapi/v1/rating", json={"telnums": [number]})
    assert r.status_code == 200, r.text
    uas = await answering_phone(sip_server, sip_tenant, "admin", sipp, b, tmp_ports / "b", talk=1000)
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp)
    to_a = await until(lambda: port_in(tmp_ports / "a"), what="the caller answered")
    assert await asyncio.to_thread(uas.wait, 60) == 0, uas.output()  # the employee hung up: the question
    a.received.clear()
    await until(lambda: rms(a.audio()) > 300, what="the rating question heard")
    await telephone_event(a, to_a, "4", seq=500, timestamp=500 * 160)
    rated = await crm.wait_for_async("rating")
    assert int(rated.rating) == 4, rated
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()


async def test_voicemail_records_the_callers_message(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    a = await Phone.open(1111)
    phones.append(a)
    # Nobody is registered for "maria": the call goes to voicemail at once.
    number = routed_number(sip_server, sip_tenant, TelnumRouteIn(type="user", user="maria", greeting=False))
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp, hang_up=12000)
    to_a = await until(lambda: port_in(tmp_ports / "a"), what="the caller answered for voicemail")
    # Like a real phone, the caller sends audio all along (the prompt first, then the message after it).
    talking = asyncio.create_task(stream([(a, to_a, tone(660, 10.0))]))
    await until(lambda: rms(a.audio()) > 300, what="the voicemail prompt heard")
    await talking
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()  # the caller hangs up: message left
    pushed = await crm.wait_for_async("history")
    assert str(pushed.status).lower().endswith("missed") and pushed.link, pushed
    samples, seconds = await until(lambda: _recording(sip_tenant, str(pushed.link)), within=30,
                                   what="the message stored")
    assert any(abs(f - 660) < 15 for f in peaks(samples, 1)), peaks(samples, 2)
    assert 3.0 <= seconds <= 10.0, seconds  # from the prompt's end to the caller's hang-up


async def test_rtpengine_killed_mid_call_the_call_goes_on_and_the_link_says_recording_failed(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    a, b = await Phone.open(1111), await Phone.open(2222)
    phones += [a, b]
    record_on(sip_tenant)
    number = routed_number(sip_server, sip_tenant, TelnumRouteIn(type="user", user="admin", greeting=False))
    uas = await answering_phone(sip_server, sip_tenant, "admin", sipp, b, tmp_ports / "b", talk=3000)
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp)
    await answered(crm, "the employee answered")
    supervisor = media_of(sip_server).rt.supervisor
    assert supervisor is not None
    process = supervisor.process
    assert process is not None
    process.kill()  # the supervisor starts a new one; this call's media is gone with the old
    assert await asyncio.to_thread(uas.wait, 60) == 0, uas.output()  # the call ends as it would have
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()
    pushed = await crm.wait_for_async("history")
    assert str(pushed.status).lower().endswith("success") and pushed.link, pushed
    path = str(pushed.link).split("/records/", 1)[1]
    answer = await until(lambda: (r := sip_tenant.client.get(f"/records/{path}")).status_code == 404 and r,
                         what="the link answers the failure")
    assert "Recording failed" in answer.text, answer.text


async def test_click_to_call_rings_the_phone_then_the_client_and_they_hear_each_other(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    agent, client = await Phone.open(1111), await Phone.open(2222)
    phones += [agent, client]
    record_on(sip_tenant)
    phone = await answering_phone(sip_server, sip_tenant, "admin", sipp, agent, tmp_ports / "agent", talk=6000)
    far = Sipp(sip_server, "far_media.xml", port=carrier_port, uas=True, timeout=60, keys={
        "user": CLIENT, "bport": str(client.port), "portfile": str(tmp_ports / "client"), "ring": "300"})
    sipp.append(far)
    WATCHED.append(far)
    r = sip_tenant.client.post("/crmapi/v1/makecall", json={"user": "admin", "phone": CLIENT})
    assert r.status_code == 200, r.text
    to_agent = await until(lambda: port_in(tmp_ports / "agent"), what="the employee's phone rung")
    to_client = await until(lambda: port_in(tmp_ports / "client"), what="the client rung through the carrier")
    await answered(crm, "the client answered")
    await tones_cross(agent, to_agent, client, to_client)
    assert await asyncio.to_thread(phone.wait, 60) == 0, phone.output()  # the employee hangs up
    assert await asyncio.to_thread(far.wait, 60) == 0, far.output()  # and the client hears the BYE
    pushed = await crm.wait_for_async("history")
    assert str(pushed.status).lower().endswith("success") and str(pushed.type).lower() == "out", pushed
    samples, _seconds = await until(lambda: _recording(sip_tenant, str(pushed.link)), what="the recording stored")
    assert_both_tones(samples)


async def test_a_softphone_dialling_its_companys_number_hears_the_menu_and_reaches_button_2(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, sipp: list[Sipp], phones: list[Phone],
        tmp_ports: Path) -> None:
    """What `make run`'s demo offers with two softphones: one dials the company's number (no carrier needed),
    hears the menu, presses 2, and talks with the other; the talk is recorded and the CRM's push links it."""
    a, b = await Phone.open(1111), await Phone.open(2222)
    phones += [a, b]
    record_on(sip_tenant)
    number = menu_number(sip_server, sip_tenant)
    uas = await answering_phone(sip_server, sip_tenant, "admin", sipp, b, tmp_ports / "b", talk=4000)
    set_password(sip_tenant, "manager")
    caller = Sipp(sip_server, "phone_call_media.xml", user="manager", password=PASSWORD, timeout=60, keys={
        "user": "manager", "domain": sip_tenant.name, "service": number, "aport": str(a.port),
        "portfile": str(tmp_ports / "a")})
    sipp.append(caller)
    WATCHED.append(caller)
    to_a = await until(lambda: port_in(tmp_ports / "a"), what="the caller answered for the menu")
    await until(lambda: rms(a.audio()) > 300, what="the menu heard")
    await telephone_event(a, to_a, "2", seq=100, timestamp=100 * 160)
    to_b = await until(lambda: port_in(tmp_ports / "b"), what="button 2's employee rung")
    await answered(crm, "the employee answered")
    await tones_cross(a, to_a, b, to_b)
    assert await asyncio.to_thread(uas.wait, 60) == 0, uas.output()
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()
    pushed = await crm.wait_for_async("history")
    assert pushed.user == "admin" and str(pushed.status).lower().endswith("success") and pushed.link, pushed
    samples, _ = await until(lambda: _recording(sip_tenant, str(pushed.link)), what="the recording stored")
    assert_both_tones(samples)


async def test_a_sip_caller_answered_by_a_simulated_phone_is_connected(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    """SIP and simulated devices in one domain: a carrier's caller reaches an employee whose phone is simulated;
    when the simulator answers, the SIP caller is answered too (the simulator has no audio to give it)."""
    a = await Phone.open(1111)
    phones.append(a)
    r = sip_tenant.client.put("/sim/v1/devices/ivan", json={"registered": True})
    assert r.status_code in (200, 201), r.text
    number = routed_number(sip_server, sip_tenant, TelnumRouteIn(type="user", user="ivan", greeting=False))
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp, hang_up=1000)

    def ringing_ivan() -> str | None:
        calls = sip_tenant.client.get("/sim/v1/calls").json()
        rows = calls["items"] if isinstance(calls, dict) else calls
        return next((c["callid"] for c in rows for leg in c.get("legs", [])
                     if leg["party"] == "ivan" and leg["state"] == "ringing"), None)

    callid = await until(ringing_ivan, what="the simulated phone rings")
    r = sip_tenant.client.post(f"/sim/v1/calls/{callid}/answer", json={"user": "ivan"})
    assert r.status_code == 200, r.text
    assert await until(lambda: port_in(tmp_ports / "a"), what="the SIP caller answered")
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()  # it hangs up after 1 s of talk
    pushed = await crm.wait_for_async("history")
    assert str(pushed.status).lower().endswith("success") and pushed.user == "ivan", pushed


async def test_the_numbers_own_uploaded_greeting_is_what_the_caller_hears(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, carrier_port: int, sipp: list[Sipp],
        phones: list[Phone], tmp_ports: Path) -> None:
    from tests.media.audio import encoded

    a = await Phone.open(1111)
    phones.append(a)
    r = sip_tenant.client.post("/crmapi/v1/media-catalog/holdmusic",
                               files={"file": ("greeting.mp3", encoded("mp3", 4.0, 660.0), "application/octet-stream")})
    assert r.status_code == 201, r.text
    number = routed_number(sip_server, sip_tenant, TelnumRouteIn(type="user", user="maria", greeting=True,
                                                                 greeting_file=str(r.json()["id"])))
    caller = carrier_calls(sip_server, number, carrier_port, a, tmp_ports / "a", sipp, hang_up=3000)
    await until(lambda: port_in(tmp_ports / "a"), what="the caller answered for the greeting")
    await until(lambda: len(a.received) > 100, what="two seconds of the greeting heard")
    assert abs(peaks(a.audio())[0] - 660) < 15  # the uploaded MP3's tone, not the default speech
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()


async def test_an_employee_calling_its_companys_number_is_not_rung_for_its_own_call(
        sip_server: SipServer, sip_tenant: Tenant, crm: CrmReceiver, sipp: list[Sipp], phones: list[Phone],
        tmp_ports: Path) -> None:
    a, b = await Phone.open(1111), await Phone.open(2222)
    phones += [a, b]
    r = sip_tenant.client.post("/crmapi/v1/groups", json={
        "name": "Both", "call_order": "ALL", "users": [{"login": "manager", "calls_enable": True},
                                                      {"login": "admin", "calls_enable": True}]})
    assert r.status_code == 200, r.text
    number = routed_number(sip_server, sip_tenant, TelnumRouteIn(type="group", group=str(r.json()["id"]),
                                                                 greeting=False))
    uas = await answering_phone(sip_server, sip_tenant, "admin", sipp, b, tmp_ports / "b", talk=1000)
    set_password(sip_tenant, "manager")
    reg = register(sip_server, sip_tenant, "manager")  # manager's phone is registered too, at another port
    assert await asyncio.to_thread(reg.wait) == 0, reg.output()
    caller = Sipp(sip_server, "phone_call_media.xml", user="manager", password=PASSWORD, timeout=60, keys={
        "user": "manager", "domain": sip_tenant.name, "service": number, "aport": str(a.port),
        "portfile": str(tmp_ports / "a")})
    sipp.append(caller)
    WATCHED.append(caller)
    assert await asyncio.to_thread(uas.wait, 60) == 0, uas.output()
    assert await asyncio.to_thread(caller.wait, 60) == 0, caller.output()
    pushed = await crm.wait_for_async("history")
    assert pushed.user == "admin" and str(pushed.status).lower().endswith("success"), pushed
    rung = [str(n.user) for n in crm.notices("event") if str(n.type).upper() == "INCOMING"]
    assert "manager" not in rung, rung  # the caller's own phone was never rung for its call
