"""Scenarios: YAML files of calls, phone actions, waits and expected CRM requests, played against a server.

A scenario talks HTTP to a running vpbx with a domain's ``X-API-KEY``: the REST API v1 to set the company up
(``setup``), the simulator (``/sim/v1``) to play the clients and the phones, and the delivery log
(``/sim/v1/deliveries``) to check the exact requests the PBX sent the CRM. The format is described in the
README ("Scenarios"); ``examples/scenarios/`` holds a day of a small company's calls.

    name: Incoming call answered by sales
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
      - hangup: {call: c1, by: client}
      - expect:
          call: c1
          requests:
            - event: INCOMING
              user: andy
            - event: ACCEPTED
            - event: COMPLETED
            - history: Success
              duration: 30

``Player.play`` runs the setup and the steps in order, reports each one (``Outcome``) and stops at the first
failure unless ``keep_going``.
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import yaml

__all__ = ["ACTIONS", "Outcome", "PlayResult", "Player", "Scenario", "ScenarioError", "Step", "load", "parse",
           "scratch_server"]

# Setup sections, applied in this order.
SETUP_SECTIONS = ("users", "groups", "numbers", "rating", "requests", "devices", "externals")
ACTIONS = ("call", "makecall", "answer", "reject", "hangup", "dtmf", "transfer", "rate", "wait", "devices",
           "externals", "request", "expect", "expect_call", "expect_history")
NAMING = ("call", "makecall", "transfer")  # steps whose call may be named with ``as``
STEP_KEYS = ("as", "title")
COMMANDS = ("event", "history", "rating", "webhook")  # the requests the delivery log holds
# The shorthand ``<command>: value`` checks this field: ``event: INCOMING``, ``history: Success``, ``rating: 5``.
SHORTHAND = {"event": "type", "history": "status", "rating": "rating"}
ANY = "*"
VIRTUAL_TIMEOUT = 1.0  # on the virtual clock the simulator answers once the PBX has written everything
REAL_TIMEOUT = 10.0
_REF = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


class ScenarioError(ValueError):
    """The file is not a valid scenario."""


class StepFailed(Exception):
    def __init__(self, message: str, detail: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or []


@dataclass(frozen=True)
class Step:
    index: int  # 1-based, as printed
    action: str
    args: Any
    name: str | None = None  # ``as``
    title: str | None = None


@dataclass
class Scenario:
    name: str
    steps: list[Step]
    setup: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "<scenario>"


@dataclass(frozen=True)
class Outcome:
    index: int  # 0 for setup sections
    title: str
    ok: bool
    message: str = ""
    detail: tuple[str, ...] = ()


@dataclass
class PlayResult:
    scenario: Scenario
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: int = 0  # steps not played after a failure

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.ok)

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def ok(self) -> bool:
        return self.failed == 0


# --- the file -----------------------------------------------------------------------------------------


def load(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: {exc.strerror or exc}") from None
    return parse(text, str(p))


def parse(text: str | Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    """A scenario from YAML text (or an already loaded mapping); ``ScenarioError`` names what is wrong."""
    if isinstance(text, str):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ScenarioError(f"{source}: not YAML: {exc}") from None
    else:
        data = text
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{source}: a scenario is a mapping with 'steps'")
    unknown = set(data) - {"name", "description", "setup", "steps"}
    if unknown:
        raise ScenarioError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    setup = data.get("setup") or {}
    if not isinstance(setup, Mapping):
        raise ScenarioError(f"{source}: setup: a mapping of {', '.join(SETUP_SECTIONS)}")
    bad = set(setup) - set(SETUP_SECTIONS)
    if bad:
        raise ScenarioError(f"{source}: setup: unknown section(s) {', '.join(sorted(map(str, bad)))} "
                            f"(known: {', '.join(SETUP_SECTIONS)})")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{source}: steps: a non-empty list")
    names: set[str] = set()
    steps = [_step(source, i, raw, names) for i, raw in enumerate(raw_steps, 1)]
    return Scenario(name=str(data.get("name") or Path(source).stem), steps=steps, setup=dict(setup),
                    description=str(data.get("description") or ""), source=source)


def _step(source: str, index: int, raw: Any, names: set[str]) -> Step:
    where = f"{source}: step {index}"
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: a mapping such as {{wait: 5}}")
    actions = [k for k in raw if k not in STEP_KEYS]
    if len(actions) != 1 or actions[0] not in ACTIONS:
        raise ScenarioError(f"{where}: one action of {', '.join(ACTIONS)} (got {', '.join(map(str, actions)) or '-'})")
    action = str(actions[0])
    args = raw[action]
    name = raw.get("as")
    if name is not None:
        if action not in NAMING:
            raise ScenarioError(f"{where}: 'as' names the call of a call, makecall or transfer step")
        name = str(name)
        if name in names:
            raise ScenarioError(f"{where}: the name '{name}' is already used")
        names.add(name)
    _check_args(where, action, args, names)
    title = raw.get("title")
    return Step(index, action, args, name, str(title) if title is not None else None)


def _need(where: str, args: Any, keys: tuple[str, ...], action: str) -> None:
    if not isinstance(args, Mapping):
        raise ScenarioError(f"{where}: {action} takes a mapping with {', '.join(keys)}")
    missing = [k for k in keys if k not in args]
    if missing:
        raise ScenarioError(f"{where}: {action} needs {', '.join(missing)}")


def _check_args(where: str, action: str, args: Any, names: set[str]) -> None:
    if action == "wait":
        if isinstance(args, bool) or not isinstance(args, int | float) or args < 0:
            raise ScenarioError(f"{where}: wait takes a number of seconds (0 or more)")
        return
    if action in ("answer", "hangup") and isinstance(args, str):
        _known(where, args, names)
        return
    required: dict[str, tuple[str, ...]] = {
        "call": ("from", "to"), "makecall": ("phone",), "answer": ("call",), "reject": ("call",),
        "hangup": ("call",), "dtmf": ("call", "digits"), "transfer": ("call", "user", "to"),
        "rate": ("call", "rating"), "request": ("method", "path"), "expect": ("call", "requests"),
        "expect_call": ("call",), "expect_history": ("call",), "devices": (), "externals": (),
    }
    _need(where, args, required[action], action)
    if "call" in args and action != "call":
        _known(where, str(args["call"]), names)
    if action == "expect":
        requests = args["requests"]
        if not isinstance(requests, list) or not all(isinstance(r, Mapping) for r in requests):
            raise ScenarioError(f"{where}: expect.requests: a list of mappings such as {{event: INCOMING}}")
        for j, r in enumerate(requests, 1):
            cmds = [k for k in r if k in COMMANDS or k == "cmd"]
            if not cmds:
                raise ScenarioError(f"{where}: expect.requests[{j}]: name the command ({', '.join(COMMANDS)}: "
                                    "value, or cmd: ...)")


def _known(where: str, name: str, names: set[str]) -> None:
    if name not in names:
        raise ScenarioError(f"{where}: unknown call '{name}' (name it with 'as:' on an earlier call step)")


# --- playing ------------------------------------------------------------------------------------------


Report = Callable[[Outcome], None]


class Player:
    """Plays scenarios through ``client``: an ``httpx.Client`` with the server's base URL and the domain's key."""

    def __init__(self, client: httpx.Client, *, report: Report | None = None, keep_going: bool = False,
                 timeout: float | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.report = report or (lambda _: None)
        self.keep_going = keep_going
        self.timeout = timeout
        self.sleep = sleep
        self.calls: dict[str, str] = {}  # name -> callid
        self.virtual: bool | None = None

    # --- HTTP ---

    def _call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201, 204),
              params: Mapping[str, Any] | None = None) -> httpx.Response:
        try:
            r = self.client.request(method, path, json=body, params=params)
        except httpx.HTTPError as exc:
            raise StepFailed(f"{method} {path}: cannot reach the server: {exc}") from None
        if r.status_code not in ok:
            raise StepFailed(f"{method} {path}: {r.status_code} {_message(r)}")
        return r

    def _json(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        r = self._call(method, path, body, **kw)
        return r.json() if r.content else None

    # --- the run ---

    def play(self, scenario: Scenario) -> PlayResult:
        result = PlayResult(scenario)
        self.calls = {}
        try:
            self.virtual = self._call("GET", "/sim/v1/clock", ok=(200, 409)).status_code == 200
        except StepFailed as exc:
            self._emit(result, Outcome(0, "connect", False, exc.message))
            result.skipped = len(scenario.steps)
            return result
        for section in SETUP_SECTIONS:
            if section in scenario.setup:
                ok = self._run(result, 0, f"setup {section}", partial(self._setup, section, scenario.setup[section]))
                if not ok and not self.keep_going:
                    result.skipped = len(scenario.steps)
                    return result
        for i, step in enumerate(scenario.steps):
            ok = self._run(result, step.index, step.title or _title(step), partial(self._step, step))
            if not ok and not self.keep_going:
                result.skipped = len(scenario.steps) - i - 1
                break
        self._cleanup()
        return result

    def _emit(self, result: PlayResult, outcome: Outcome) -> None:
        result.outcomes.append(outcome)
        self.report(outcome)

    def _run(self, result: PlayResult, index: int, title: str, work: Callable[[], str | None]) -> bool:
        try:
            note = work()
        except StepFailed as exc:
            self._emit(result, Outcome(index, title, False, exc.message, tuple(exc.detail)))
            return False
        self._emit(result, Outcome(index, title + (f" ({note})" if note else ""), True))
        return True

    def _cleanup(self) -> None:
        """Hang up the scenario's calls still up, so that the next scenario finds the phones free."""
        for callid in self.calls.values():
            try:
                view = self.client.get(f"/sim/v1/calls/{callid}").json()
                if view.get("state") not in ("ended", "refused"):
                    for who in ("client", view.get("from") or ""):
                        r = self.client.post(f"/sim/v1/calls/{callid}/hangup", json={"by": who})
                        if r.status_code == 200:
                            break
            except (httpx.HTTPError, ValueError):
                continue

    # --- setup ---

    def _setup(self, section: str, value: Any) -> str:
        if section == "users":
            return ", ".join(self._user(u) for u in _items(value, "setup users"))
        if section == "groups":
            return ", ".join(self._group(g) for g in _items(value, "setup groups"))
        if section == "numbers":
            for telnum, route in _mapping(value, "setup numbers").items():
                self._json("POST", f"/crmapi/v1/telnums/{_q(telnum)}", route)
            return ", ".join(map(str, value))
        if section == "rating":
            self._json("PUT", "/crmapi/v1/rating", _mapping(value, "setup rating"))
            return ""
        if section == "requests":
            for r in _items(value, "setup requests"):
                self._request(r)
            return f"{len(value)} request(s)"
        if section == "devices":
            return self._devices(value)
        return self._externals(value)

    def _user(self, user: Mapping[str, Any]) -> str:
        login = user.get("login")
        if not login:
            raise StepFailed("setup users: every user needs a login")
        body = {k: v for k, v in user.items() if k != "login"}
        if self._call("GET", f"/crmapi/v1/users/{_q(login)}", ok=(200, 404)).status_code == 200:
            self._json("PUT", f"/crmapi/v1/users/{_q(login)}", body)
        else:
            self._json("POST", "/crmapi/v1/users", dict(user))
        return str(login)

    def _group(self, group: Mapping[str, Any]) -> str:
        """A department, known by its extension: created when missing, else updated."""
        ext = group.get("ext")
        if not ext:
            raise StepFailed("setup groups: every department needs its ext (it names the department)")
        body = dict(group)
        if "users" in body:
            body["users"] = [{"login": u, "calls_enable": True} if isinstance(u, str) else u for u in body["users"]]
        r = self._call("GET", f"/crmapi/v1/groups/{_q(ext)}", ok=(200, 404))
        if r.status_code == 200:
            self._json("PUT", f"/crmapi/v1/groups/{_q(r.json()['id'])}", body)
        else:
            self._json("POST", "/crmapi/v1/groups", body)
        return f"{group.get('name', '')} ({ext})".strip()

    def _devices(self, value: Any) -> str:
        for login, device in _mapping(value, "devices").items():
            self._json("PUT", f"/sim/v1/devices/{_q(login)}", device if device is not None else {"registered": True})
        return ", ".join(map(str, value))

    def _externals(self, value: Any) -> str:
        for phone, auto in _mapping(value, "externals").items():
            auto = {"action": auto} if isinstance(auto, str) else auto
            self._json("PUT", f"/sim/v1/externals/{_q(phone)}", {"auto": auto})
        return ", ".join(map(str, value))

    def _request(self, r: Mapping[str, Any]) -> Any:
        method, path = str(r.get("method", "GET")).upper(), self._subst(str(r.get("path", "")))
        want = r.get("status")
        resp = self._call(method, path, self._subst(r.get("json")), ok=(int(want),) if want else (200, 201, 204))
        try:
            return resp.json() if resp.content else None
        except ValueError:
            return resp.text

    # --- steps ---

    def _id(self, name: Any) -> str:
        callid = self.calls.get(str(name))
        if callid is None:
            raise StepFailed(f"unknown call '{name}': its step did not run")
        return callid

    def _name(self, step: Step, callid: str) -> None:
        if step.name:
            self.calls[step.name] = callid

    def _subst(self, value: Any) -> Any:
        """``${name}`` in strings: the callid of the call named ``name``."""
        if isinstance(value, str):
            return _REF.sub(lambda m: self._id(m.group(1)), value)
        if isinstance(value, list):
            return [self._subst(v) for v in value]
        if isinstance(value, Mapping):
            return {k: self._subst(v) for k, v in value.items()}
        return value

    def _step(self, step: Step) -> str | None:
        a, args = step.action, step.args
        if a == "call":
            view = self._json("POST", "/sim/v1/calls", {"from": str(args["from"]), "to": str(args["to"])})
            self._name(step, view["callid"])
            return _legs(view)
        if a == "makecall":
            body = {k: args[k] for k in ("phone", "user", "group", "clid", "show_phone") if k in args}
            body["phone"] = str(body["phone"])
            out = self._json("POST", "/crmapi/v1/makecall", body)
            self._name(step, out["callid"])
            return f"clid {out.get('clid')}" if out.get("clid") else None
        if a in ("answer", "hangup") and isinstance(args, str):
            args = {"call": args}
        if a == "answer":
            view = self._act(args, "answer", {"user": args["user"]} if args.get("user") else {})
            return str(view["state"])
        if a == "reject":
            body = {k: args[k] for k in ("user", "reason") if k in args}
            return str(self._act(args, "reject", body)["state"])
        if a == "hangup":
            view = self._act(args, "hangup", {"by": str(args.get("by", "client"))})
            return f"{view['state']}{', ' + view['status'] if view.get('status') else ''}"
        if a == "dtmf":
            return str(self._act(args, "dtmf", {"digits": str(args["digits"])})["state"])
        if a == "rate":
            return str(self._act(args, "rate", {"rating": args["rating"]})["state"])
        if a == "transfer":
            view = self._act(args, "transfer", {"user": str(args["user"]), "to": str(args["to"]),
                                                "mode": str(args.get("mode", "blind"))})
            self._name(step, view["callid"])
            return _legs(view)
        if a == "wait":
            return self._wait(float(args))
        if a == "devices":
            return self._devices(args)
        if a == "externals":
            return self._externals(args)
        if a == "request":
            self._request(args)
            return None
        if a == "expect":
            return self._poll(lambda: self._expect(args))
        if a == "expect_call":
            return self._poll(lambda: self._expect_call(args))
        return self._poll(lambda: self._expect_history(args))

    def _act(self, args: Mapping[str, Any], what: str, body: dict[str, Any]) -> dict[str, Any]:
        view: dict[str, Any] = self._json("POST", f"/sim/v1/calls/{self._id(args['call'])}/{what}", body)
        return view

    def _wait(self, seconds: float) -> str:
        if self.virtual:
            self._json("POST", "/sim/v1/clock/advance", {"seconds": seconds})
            return "virtual clock"
        self.sleep(seconds)
        return "real clock"

    def _poll(self, check: Callable[[], str | None]) -> str | None:
        """Expectations: the PBX writes behind, so look again until it matches or the time is up."""
        timeout = self.timeout if self.timeout is not None else (VIRTUAL_TIMEOUT if self.virtual else REAL_TIMEOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return check()
            except StepFailed:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

    # --- expectations ---

    def _expect(self, args: Mapping[str, Any]) -> str:
        callid = self._id(args["call"])
        got = self._deliveries(callid)
        wanted = [self._subst(_expected_request(r)) for r in args["requests"]]
        loose = bool(args.get("partial", False))
        problem = _match_requests(wanted, got, loose)
        if problem is None:
            return f"{len(got)} request(s)"
        detail = ["expected:" + ("  (in this order, others allowed between)" if loose else "")]
        detail += [f"  {_show_expected(w)}" for w in wanted]
        detail.append("got:" if got else "got: nothing")
        detail += [f"  {_show(g)}" for g in got]
        if not got:
            detail.append("(is the domain's CRM integration on, with a CRM URL? Without one the PBX sends nothing: "
                          "vpbx integration set --domain D --crm-url URL --crm-token T)")
        raise StepFailed(f"CRM requests of {args['call']}: {problem}", detail)

    def _deliveries(self, callid: str) -> list[dict[str, Any]]:
        page = self._json("GET", "/sim/v1/deliveries", params={"callid": callid, "limit": 1000})
        items = sorted(page.get("items") or [], key=lambda d: d["id"])
        return [_decode(d) for d in items]

    def _expect_call(self, args: Mapping[str, Any]) -> str:
        name = args["call"]
        view = self._json("GET", f"/sim/v1/calls/{self._id(name)}")
        problems: list[str] = []
        for key, want in args.items():
            if key == "call":
                continue
            want = self._subst(want)
            if key in ("ringing", "talking"):
                parties = sorted(leg.get("owner") or leg["party"] for leg in view.get("legs") or []
                                 if leg.get("state") == key)
                wanted = sorted(str(w) for w in (want if isinstance(want, list) else [want]))
                if parties != wanted:
                    problems.append(f"{key}: expected {wanted}, got {parties}")
            elif key not in view:
                problems.append(f"{key}: the call has no such field (fields: {', '.join(view)})")
            elif not _same(want, view[key]):
                problems.append(f"{key}: expected {_fmt(want)}, got {_fmt(view[key])}")
        if problems:
            raise StepFailed(f"call {name}: " + "; ".join(problems), [f"the call: {_brief(view)}"])
        return _brief(view)

    def _expect_history(self, args: Mapping[str, Any]) -> str:
        name = args["call"]
        callid = self._id(name)
        view = self._json("GET", f"/sim/v1/calls/{callid}")
        started = _parse_time(view["started"])
        params = {"start": _stamp(started - timedelta(seconds=1)), "end": _stamp(started + timedelta(days=2)),
                  "processMissed": "1"}
        rows = self._json("GET", "/crmapi/v1/history/json", params=params)
        row = next((r for r in rows if r.get("uid") == callid), None)
        if row is None:
            raise StepFailed(f"history of {name}: no record of call {callid} (yet)")
        problems = [f"{k}: expected {_fmt(self._subst(v))}, got {_fmt(row.get(k))}"
                    for k, v in args.items() if k != "call" and not _same(self._subst(v), row.get(k))]
        if problems:
            raise StepFailed(f"history of {name}: " + "; ".join(problems),
                             ["the record: " + json.dumps(row, ensure_ascii=False)])
        return ", ".join(f"{k} {_fmt(row.get(k))}" for k in args if k != "call")


# --- helpers ------------------------------------------------------------------------------------------


def _q(value: Any) -> str:
    return quote(str(value), safe="")


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    if isinstance(body, Mapping):
        text = str(body.get("message", body))
        errors = body.get("errors")
        if errors:
            text += ": " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
        return text
    return str(body)[:200]


def _items(value: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise StepFailed(f"{what}: a list of mappings")
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise StepFailed(f"{what}: a mapping")
    return value


def _title(step: Step) -> str:
    a, args = step.action, step.args
    named = f" as {step.name}" if step.name else ""
    if a == "call":
        return f"call {args['from']} → {args['to']}{named}"
    if a == "makecall":
        who = args.get("user") or args.get("group") or "?"
        return f"makecall {who} → {args['phone']}{named}"
    if a == "wait":
        return f"wait {args:g} s"
    if a in ("answer", "hangup") and isinstance(args, str):
        return f"{a} {args} by the client"
    if a == "answer":
        return f"answer {args['call']}" + (f" by {args['user']}" if args.get("user") else " by the client")
    if a == "reject":
        return f"reject {args['call']}" + (f" by {args['user']}" if args.get("user") else " by the client") + \
            (f" ({args['reason']})" if args.get("reason") else "")
    if a == "hangup":
        return f"hangup {args['call']} by {args.get('by', 'client')}"
    if a == "dtmf":
        return f"dtmf {args['call']} {args['digits']}"
    if a == "rate":
        return f"rate {args['call']} {args['rating']}"
    if a == "transfer":
        return f"transfer {args['call']}: {args['user']} → {args['to']} ({args.get('mode', 'blind')}){named}"
    if a in ("devices", "externals"):
        return f"{a} {', '.join(map(str, args))}"
    if a == "request":
        return f"request {str(args['method']).upper()} {args['path']}"
    if a == "expect":
        return f"expect CRM requests of {args['call']}"
    if a == "expect_call":
        return f"expect call {args['call']}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in args.items() if k != "call")
    return f"expect history of {args['call']}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in args.items() if k != "call")


def _legs(view: Mapping[str, Any]) -> str:
    legs = ", ".join(f"{leg['party']} {leg['state']}" for leg in view.get("legs") or [])
    return f"{view.get('state')}{': ' + legs if legs else ''}"


def _brief(view: Mapping[str, Any]) -> str:
    parts = [str(view.get("state"))]
    for key in ("status", "answered_by", "destination"):
        if view.get(key):
            parts.append(f"{key} {view[key]}")
    legs = ", ".join(f"{leg['party']} {leg['state']}" for leg in view.get("legs") or [])
    return ", ".join(parts) + (f"; legs: {legs}" if legs else "")


def _decode(delivery: Mapping[str, Any]) -> dict[str, Any]:
    """A delivery's body as the CRM received it (form, JSON or legacy), plus ``cmd`` when the body lacks it."""
    body = str(delivery.get("body") or "")
    fields: dict[str, Any]
    if "json" in str(delivery.get("content_type") or ""):
        try:
            loaded = json.loads(body)
            fields = dict(loaded) if isinstance(loaded, Mapping) else {"body": loaded}
        except ValueError:
            fields = {"body": body}
    else:
        fields = dict(parse_qsl(body, keep_blank_values=True))
    fields.setdefault("cmd", delivery.get("command"))
    return fields


def _expected_request(r: Mapping[str, Any]) -> dict[str, Any]:
    """``{event: INCOMING, user: andy}`` -> ``{cmd: event, type: INCOMING, user: andy}``: the first key naming a
    command is the shorthand, the others are fields."""
    if "cmd" in r:
        return {str(k): v for k, v in r.items()}
    command = next(str(k) for k in r if k in COMMANDS)
    out: dict[str, Any] = {"cmd": command}
    value = r[command]
    if command in SHORTHAND and value is not None:
        out[SHORTHAND[command]] = value
    out.update({str(k): v for k, v in r.items() if k != command})
    return out


def _same(want: Any, got: Any) -> bool:
    if want is None:
        return got is None or got == ""
    if want == ANY:
        return got is not None and got != ""
    if isinstance(want, bool):
        return got is want or str(got).lower() == str(want).lower()
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(_same(w, g) for w, g in zip(want, got,
                                                                                                   strict=True))
    return got is not None and str(want) == str(got)


def _matches(want: Mapping[str, Any], got: Mapping[str, Any]) -> bool:
    return all(_same(v, got.get(k)) for k, v in want.items())


def _match_requests(wanted: list[dict[str, Any]], got: list[dict[str, Any]], loose: bool) -> str | None:
    if loose:
        i = 0
        for w in wanted:
            while i < len(got) and not _matches(w, got[i]):
                i += 1
            if i == len(got):
                return f"no {_show_expected(w)} (in order)"
            i += 1
        return None
    for n, (w, g) in enumerate(zip(wanted, got, strict=False), 1):
        if not _matches(w, g):
            diffs = [f"{k} {_fmt(g.get(k))} instead of {_fmt(v)}" for k, v in w.items() if not _same(v, g.get(k))]
            return f"request {n} is {_show(g)}: " + ", ".join(diffs)
    if len(got) != len(wanted):
        return f"expected {len(wanted)} request(s), got {len(got)}"
    return None


def _show(r: Mapping[str, Any]) -> str:
    cmd = r.get("cmd")
    head = {"event": "type", "history": "status", "rating": "rating"}.get(str(cmd))
    parts = [str(cmd)] + ([str(r.get(head))] if head and r.get(head) is not None else [])
    rest = [f"{k}={v}" for k, v in r.items() if k not in ("cmd", "crm_token", head, "start", "link", "callid")
            and v not in (None, "")]
    return " ".join(parts + rest)


def _show_expected(w: Mapping[str, Any]) -> str:
    cmd = str(w.get("cmd"))
    head = SHORTHAND.get(cmd)
    parts = [cmd] + ([_fmt(w[head])] if head and head in w else [])
    return " ".join(parts + [f"{k}={_fmt(v)}" for k, v in w.items() if k not in ("cmd", head)])


def _fmt(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- a server of its own ------------------------------------------------------------------------------

SCRATCH_CRM = "/_scenario-crm/"  # the scratch server's own CRM: a vpbx.crm receiver that acknowledges everything
SCRATCH_CRM_TOKEN = "scenario-crm"


@contextlib.contextmanager
def scratch_server() -> Iterator[tuple[str, str, str]]:
    """A vpbx of its own to play scenarios on, gone afterwards: a virtual clock (waits take no time), a
    temporary SQLite store with the demo company (its numbers: the examples route them), whose CRM is a
    receiver on the same server (so the delivery log holds what the PBX sent). Yields ``(url, api_key,
    operator_key)`` (the operator's key moves the clock).

    Nothing of the operator's store or of a running server is touched (``vpbx sim run`` without ``--url``).
    """
    from vpbx.bootstrap import read_credentials
    from vpbx.crm.receiver import Receiver
    from vpbx.services import tenancy
    from vpbx.settings import Settings, sqlite_url
    from vpbx.testing.server import ServerThread

    with tempfile.TemporaryDirectory(prefix="vpbx-scenarios-") as tmp:
        home = Path(tmp)
        settings = Settings(home=home, db=sqlite_url(home / "vpbx.db"), clock="virtual", demo=True,
                            demo_phones=False, port=0, allow_private_crm=True, notify_dispatcher=True)
        server = ServerThread(settings)
        server.app.mount(SCRATCH_CRM.rstrip("/"), Receiver(crm_token=SCRATCH_CRM_TOKEN))
        server.start()
        try:
            creds = read_credentials(home) or {}

            async def connect() -> None:
                async with server.runtime.sessions() as session:
                    domain = await tenancy.get_domain(session, str(creds["domain"]))
                    await tenancy.set_integration(session, domain, crm_url=server.url + SCRATCH_CRM,
                                                  crm_token=SCRATCH_CRM_TOKEN, enabled=True)
                    await session.commit()

            server.call(connect())
            yield server.url, str(creds["api_key"]), server.operator_key
        finally:
            server.stop()
