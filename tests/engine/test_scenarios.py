"""Scenarios (``vpbx.scenarios``): every file of ``examples/scenarios/`` plays green against a fresh domain with a
loopback CRM, and all of them in a row on one domain (a day of calls); wrong expectations fail with a clear
message; malformed files are refused with the step at fault; waits sleep on a real-clock server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.engine.test_incoming import Crm

from vpbx import scenarios
from vpbx.scenarios import Outcome, Player, ScenarioError
from vpbx.services import tenancy
from vpbx.testing.server import ServerThread, Tenant, create_tenant

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "scenarios").glob("*.yaml"))


def connect_crm(server: ServerThread, tenant: Tenant, crm: Crm) -> None:
    async def work() -> None:
        async with server.runtime.sessions() as session:
            domain = await tenancy.get_domain(session, tenant.name)
            await tenancy.set_integration(session, domain, crm_url=f"http://127.0.0.1:{crm.port}/crm",
                                          crm_token="tok")
            await session.commit()

    server.call(work())


@pytest.fixture
def crm(vserver: ServerThread) -> Iterator[Crm]:
    receiver = Crm(vserver)
    vserver.call(receiver.start())
    yield receiver
    vserver.call(receiver.stop())


@pytest.fixture
def domain(vserver: ServerThread, crm: Crm) -> Iterator[Tenant]:
    """A fresh domain (the demo company: its numbers) whose CRM integration points at the loopback CRM."""
    t = create_tenant(vserver)
    connect_crm(vserver, t, crm)
    yield t
    t.client.close()


def play(tenant: Tenant, scenario: scenarios.Scenario, **kw: Any) -> tuple[scenarios.PlayResult, list[Outcome]]:
    seen: list[Outcome] = []
    result = Player(tenant.client, report=seen.append, **kw).play(scenario)
    return result, seen


def failures(result: scenarios.PlayResult) -> str:
    return "\n".join(f"{o.index} {o.title}: {o.message}\n  " + "\n  ".join(o.detail)
                     for o in result.outcomes if not o.ok)


def test_there_are_examples_for_a_day_of_calls() -> None:
    names = [p.name for p in EXAMPLES]
    assert len(names) >= 7, names
    actions = {step.action for p in EXAMPLES for step in scenarios.load(p).steps}
    assert {"call", "makecall", "answer", "hangup", "dtmf", "transfer", "rate", "wait", "expect", "expect_call",
            "expect_history"} <= actions


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_passes_on_a_fresh_domain(domain: Tenant, path: Path) -> None:
    scenario = scenarios.load(path)
    result, seen = play(domain, scenario)
    assert result.ok, failures(result)
    assert result.skipped == 0 and seen == result.outcomes
    assert len(result.outcomes) == len(scenario.setup) + len(scenario.steps)
    assert any(o.title.startswith("expect") for o in result.outcomes)
    assert domain.client.get("/sim/v1/calls").json() == []  # every call of the scenario is over


def test_a_whole_day_on_one_domain(domain: Tenant) -> None:
    """The files one after another on the same domain: setups update what earlier ones created."""
    for path in EXAMPLES:
        result, _ = play(domain, scenarios.load(path))
        assert result.ok, f"{path.name}:\n{failures(result)}"
    users = {u["login"] for u in domain.client.get("/crmapi/v1/users").json()["items"]}
    assert {"andy", "kate", "mike", "olga"} <= users
    # and once more: a second day finds everything in place
    result, _ = play(domain, scenarios.load(EXAMPLES[0]))
    assert result.ok, failures(result)


def test_the_readme_example_passes(domain: Tenant) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```yaml\nname: ")
    text = readme[start + len("```yaml\n"):readme.index("```", start + 7)]
    result, _ = play(domain, scenarios.parse(text, "README.md"))
    assert result.ok, failures(result)
    assert len(result.outcomes) == 7 + 9


BASE = """
name: a wrong expectation
setup:
  users: [{login: andy, name: Andy, ext: "801"}]
  groups: [{name: Sales, ext: "810", call_order: ALL, users: [andy]}]
  numbers: {"74951234567": {type: group, group: "810", greeting: false}}
  devices: {andy: {registered: true}}
steps:
  - call: {from: "79101234567", to: "74951234567"}
    as: c1
  - answer: {call: c1, user: andy}
  - wait: 30
  - hangup: c1
"""


def test_a_wrong_request_expectation_fails_with_what_was_sent(domain: Tenant) -> None:
    text = BASE + """
  - expect:
      call: c1
      requests:
        - {event: INCOMING, user: andy}
        - {event: ACCEPTED, user: andy}
        - {event: CANCELLED, user: andy}
        - {history: Success, duration: 30}
  - wait: 5
"""
    result, seen = play(domain, scenarios.parse(text, "wrong.yaml"))
    assert not result.ok and result.failed == 1 and result.skipped == 1  # stops at the first failure
    bad = seen[-1]
    assert not bad.ok and bad.index == 5 and bad.title == "expect CRM requests of c1"
    assert bad.message == "CRM requests of c1: request 3 is event COMPLETED phone=79101234567 user=andy " \
                          "direction=in diversion=74951234567 groupRealName=Sales ext=801 telnum_name=Основной: " \
                          "type COMPLETED instead of CANCELLED"
    assert bad.detail[0] == "expected:" and "  event CANCELLED user=andy" in bad.detail
    assert "got:" in bad.detail and any(line.startswith("  history Success") for line in bad.detail)
    assert all(o.ok for o in seen[:-1])


def test_other_mismatches(domain: Tenant) -> None:
    text = BASE + """
  - expect:
      call: c1
      requests:
        - {event: INCOMING}
        - {event: ACCEPTED}
  - expect: {call: c1, partial: true, requests: [{history: Success}, {event: INCOMING}]}
  - expect_call: {call: c1, status: Missed, answered_by: andy}
  - expect_history: {call: c1, duration: 31}
  - expect_call: {call: c1, colour: blue}
"""
    result, _ = play(domain, scenarios.parse(text), keep_going=True)
    messages = [o.message for o in result.outcomes if not o.ok]
    assert messages == [
        "CRM requests of c1: expected 2 request(s), got 4",
        "CRM requests of c1: no event INCOMING (in order)",
        "call c1: status: expected Missed, got Success",
        "history of c1: duration: expected 31, got 30",
        "call c1: colour: the call has no such field (fields: " + messages[-1].split("(fields: ")[1],
    ]
    assert result.failed == 5 and result.skipped == 0


def test_partial_absent_and_any(domain: Tenant) -> None:
    text = BASE + """
  - expect:
      call: c1
      partial: true
      requests:
        - {event: INCOMING, user: andy, second_callid: null, ext: "*"}
        - {cmd: history, status: Success, link: "*", rating: ~}
  - expect_call: {call: c1, state: ended, ringing: [], talking: [], rating: null, from: "79101234567"}
  - expect_history: {call: c1, user: andy, status: success, missedStatus: null}
"""
    result, _ = play(domain, scenarios.parse(text))
    assert result.ok, failures(result)


def test_without_a_crm_the_player_says_why_nothing_was_sent(vserver: ServerThread, vtenant: Tenant) -> None:
    text = BASE + """
  - expect: {call: c1, requests: [{event: INCOMING}]}
"""
    result, _ = play(vtenant, scenarios.parse(text), timeout=0.2)
    bad = result.outcomes[-1]
    assert not bad.ok and bad.message == "CRM requests of c1: expected 1 request(s), got 0"
    assert "got: nothing" in bad.detail and any("CRM integration" in line for line in bad.detail)


def test_failed_actions_report_the_servers_answer(domain: Tenant) -> None:
    text = BASE + """
  - answer: {call: c1, user: andy}
"""
    result, _ = play(domain, scenarios.parse(text))
    bad = result.outcomes[-1]
    assert not bad.ok and bad.message.startswith("POST /sim/v1/calls/") and bad.message.endswith(
        "/answer: 409 The call is over")
    setup_fails = scenarios.parse("""
setup:
  numbers: {"74990000000": {type: user, user: andy, greeting: false}}
steps: [{wait: 1}]
""")
    result, _ = play(domain, setup_fails)
    assert [(o.title, o.ok) for o in result.outcomes] == [("setup numbers", False)]
    assert result.outcomes[0].message == "POST /crmapi/v1/telnums/74990000000: 404 Not found"
    assert result.skipped == 1


@pytest.mark.parametrize(("text", "error"), [
    ("[1, 2]", "a scenario is a mapping with 'steps'"),
    ("name: x", "steps: a non-empty list"),
    ("steps: [{wait: 1}]\nsurprise: 1", "unknown key(s) surprise"),
    ("setup: {phones: {}}\nsteps: [{wait: 1}]", "setup: unknown section(s) phones"),
    ("steps: [{sing: loud}]", "step 1: one action of call, makecall"),
    ("steps: [{wait: 1, hangup: c1}]", "step 1: one action of"),
    ("steps: [{wait: -1}]", "step 1: wait takes a number of seconds"),
    ("steps: [{call: {from: '79101234567'}}]", "step 1: call needs to"),
    ("steps: [{wait: 1}, {answer: {call: c9, user: andy}}]", "step 2: unknown call 'c9'"),
    ("steps: [{call: {from: a, to: b}, as: c1}, {call: {from: a, to: b}, as: c1}]", "step 2: the name 'c1'"),
    ("steps: [{wait: 1, as: w}]", "step 1: 'as' names the call"),
    ("steps: [{call: {from: a, to: b}, as: c1}, {expect: {call: c1, requests: [{user: andy}]}}]",
     "step 2: expect.requests[1]: name the command"),
    ("steps: [{call: {from: a, to: b}, as: c1}, {expect: {call: c1, requests: {event: X}}}]",
     "step 2: expect.requests: a list"),
    ("steps: [oops", "not YAML"),
])
def test_malformed_files_are_refused(text: str, error: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenarios.parse(text, "bad.yaml")
    assert str(info.value).startswith("bad.yaml: ") and error in str(info.value)


def test_load_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.yaml"):
        scenarios.load(tmp_path / "missing.yaml")
    (tmp_path / "day.yaml").write_text("steps: [{wait: 2}]\n", encoding="utf-8")
    loaded = scenarios.load(tmp_path / "day.yaml")
    assert loaded.name == "day" and loaded.steps[0].action == "wait" and loaded.steps[0].index == 1


def test_waits_sleep_on_a_real_clock_server(tenant: Tenant) -> None:
    slept: list[float] = []
    text = """
setup:
  devices: {admin: {registered: true}}
steps:
  - call: {from: "79101234567", to: "74957654321"}
    as: c1
  - expect_call: {call: c1, state: greeting}
  - wait: 0.25
  - hangup: c1
  - expect_call: {call: c1, state: ended, status: Missed, destination: hello}
"""
    result, _ = play(tenant, scenarios.parse(text), sleep=slept.append)
    assert result.ok, failures(result)
    assert slept == [0.25]
    assert [o.title for o in result.outcomes][3] == "wait 0.25 s (real clock)"
