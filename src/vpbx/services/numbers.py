"""Numbers (002 §9): provisioning, routes, IVR menus, extra intervals, special days, and the
route a call takes at an instant (``route_for``, used by the call engine)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.domain.schedule import (
    WEEKDAYS,
    ExtraInterval,
    NumberTimeConfig,
    RouteReason,
    ScheduleError,
    SpecialDay,
    WeeklySchedule,
    choose_route,
    dump_weekly,
    parse_custom_routes,
    parse_extra_interval,
    parse_special_day,
    parse_weekly,
)
from vpbx.schemas.numbers import (
    CalendarIn,
    CustomRouteIn,
    IntervalIn,
    IvrMenuIn,
    MenuButtonIn,
    TargetIn,
    TelnumRouteIn,
)
from vpbx.services.errors import Invalid, NotFound
from vpbx.services.written import held
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.repositories import numbers as repo
from vpbx.store.tables import Domain, IvrMenu, Telnum

# 9.9's example: Monday to Friday 9:00-18:00, the weekend off.
DEFAULT_SCHEDULE: dict[str, Any] = {
    day: ({"start": 32400, "end": 64800, "holiday": False} if i < 5 else {"start": 0, "end": 0, "holiday": True})
    for i, day in enumerate(WEEKDAYS)
}
OFFTIME: dict[str, Any] = {"type": "offtime", "greeting": False}
TARGET_FIELDS = ("user", "group", "ivr", "telnum")
KNOWN_USERS = "vpbx.numbers.user_names"  # services.written: names a route write read, by login
KNOWN_GROUPS = "vpbx.numbers.group_names"  # by department id


def canonical(raw: str) -> str:
    """A number as stored (international digits); ``Invalid`` if it is not one."""
    try:
        return normalize_number(raw)
    except InvalidNumber as exc:
        raise Invalid("telnum", "not a valid phone number") from exc


def search_text_of(row: Telnum | Row[Any]) -> str:
    return _search_text(row.telnum, row.name, row.location, row.abc_telnum, row.route_user, row.route_group,
                        row.sim_user)


def _search_text(*parts: str | None) -> str:
    return " ".join(p for p in parts if p).casefold()


def _values_search_text(v: dict[str, Any]) -> str:
    """``search_text_of`` a number's row as a dict of its columns."""
    return _search_text(v["telnum"], v["name"], v["location"], v["abc_telnum"], v["route_user"], v["route_group"],
                        v["sim_user"])


# --- reading -------------------------------------------------------------------------------


def _number(telnum: str) -> str:
    """The path's number, normalized; one that cannot be a number is not found (404), like an unknown one."""
    try:
        return normalize_number(telnum)
    except InvalidNumber as exc:
        raise NotFound("telnum") from exc


async def get(session: AsyncSession, domain_id: int, telnum: str, *, lock: bool = False) -> Telnum:
    row = await repo.find_telnum(session, domain_id, _number(telnum), lock=lock)
    if row is None:
        raise NotFound("telnum")
    return row


@dataclass
class _Names:
    users: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    menus: dict[str, IvrMenu] = field(default_factory=dict)


def _targets(row: Telnum | Row[Any]) -> list[dict[str, Any]]:
    out = [t for t in (row.work, row.other) if t]
    out.extend(r for r in row.custom_routes or [] if r.get("type"))
    return out


async def _names(session: AsyncSession, domain_id: int, rows: Iterable[Telnum | Row[Any]]) -> _Names:
    logins: set[str] = set()
    group_ids: set[str] = set()
    menu_names: set[str] = set()
    for row in rows:
        for login in (row.route_user, row.sim_user):
            if login:
                logins.add(login)
        if row.route_group:
            group_ids.add(row.route_group)
        if row.ivr_menu:
            menu_names.add(row.ivr_menu)
        for t in _targets(row):
            logins.update([t["user"]] if t.get("user") else [])
            group_ids.update([t["group"]] if t.get("group") else [])
            menu_names.update([t["ivr"]] if t.get("ivr") else [])
    menus = await repo.menus(session, domain_id, sorted(menu_names))
    for menu in menus.values():  # 9.6: a menu's buttons name their targets too
        for item in menu.items:
            logins.update([item["user"]] if item.get("user") else [])
            group_ids.update([item["group"]] if item.get("group") else [])
    # A route write's answer: the employees and departments it named were read (and locked) by the write.
    known_users: dict[str, str] = held(session, KNOWN_USERS)
    known_groups: dict[str, str] = held(session, KNOWN_GROUPS)
    names = _Names(users={login: known_users[login] for login in logins if login in known_users}, menus=menus)
    names.users.update(await repo.user_names(session, domain_id, sorted(logins - known_users.keys())))
    for gid in group_ids:
        if gid in known_groups:
            names.groups[gid] = known_groups[gid]
            continue
        group = await dir_repo.group_row(session, domain_id, gid)
        if group is not None:
            names.groups[gid] = group.name
    return names


def menu_out(menu: IvrMenu | None, name: str, names: _Names | None = None) -> dict[str, Any]:
    """A menu (9.6); with ``names``, each button's target carries its display name as routes do."""
    if menu is None:
        return {"name": name, "greeting": False, "greeting_custom": False, "items": []}
    items = [dict(i) for i in menu.items] if names is None else [_named(i, names) for i in menu.items]
    return {"name": menu.name, "greeting": menu.greeting, "greeting_custom": menu.greeting_custom, "items": items}


def _named(t: dict[str, Any], names: _Names) -> dict[str, Any]:
    """``t`` with ``user_name`` / ``group_name`` of the employee / department it names."""
    out = dict(t)
    if t.get("user"):
        out["user_name"] = names.users.get(t["user"], "")
    if t.get("group"):
        out["group_name"] = names.groups.get(t["group"], "")
    return out


def target_out(t: dict[str, Any], names: _Names) -> dict[str, Any]:
    out = _named(t, names)
    if t.get("ivr"):
        out["ivr"] = menu_out(names.menus.get(t["ivr"]), t["ivr"], names)
    return out


def custom_route_out(route: dict[str, Any], names: _Names) -> dict[str, Any]:
    out = target_out({k: v for k, v in route.items() if k not in ("interval_schedule", "calendar_schedule")},
                     names)
    out["interval_schedule"] = [dict(r) for r in route.get("interval_schedule", [])]
    out["calendar_schedule"] = [dict(r) for r in route.get("calendar_schedule", [])]
    return out


def telnum_out(row: Telnum | Row[Any], names: _Names) -> dict[str, Any]:
    out: dict[str, Any] = {"telnum": row.telnum, "name": row.name, "type": row.type, "greeting": row.greeting,
                           "is_main_phone": row.is_main_phone, "location": row.location, "disabled": row.disabled,
                           "crm": row.crm, "calltracking": row.calltracking, "abc_telnum": row.abc_telnum,
                           "abc_location": row.abc_location, "greeting_custom": row.greeting_custom,
                           "greeting_file": row.greeting_file}
    if row.type == "user":
        out["user"] = row.route_user or ""
        out["user_name"] = names.users.get(row.route_user or "", "")
    elif row.type == "group":
        out["group"] = row.route_group or ""
        out["group_name"] = names.groups.get(row.route_group or "", "")
    elif row.type == "ivr":
        out["ivr"] = menu_out(names.menus.get(row.ivr_menu or ""), row.ivr_menu or "", names)
    elif row.type == "scheduler":
        out["work"] = target_out(row.work, names) if row.work else None
        out["other"] = target_out(row.other or OFFTIME, names)
        out["custom_routes"] = [custom_route_out(r, names) for r in row.custom_routes or []]
        out["schedule"] = copy.deepcopy(row.schedule or DEFAULT_SCHEDULE)
    if row.type != "scheduler" and row.custom_routes:  # 9.7/9.8 on any number: shown as a scheduler's are
        out["custom_routes"] = [custom_route_out(r, names) for r in row.custom_routes]
    out["route_group_id"] = ""
    out["route_group_name"] = ""
    return out


async def render(session: AsyncSession, domain_id: int, rows: Sequence[Telnum | Row[Any]]) -> list[dict[str, Any]]:
    names = await _names(session, domain_id, rows)
    return [telnum_out(r, names) for r in rows]


# --- provisioning (the operator) -----------------------------------------------------------


async def provision(session: AsyncSession, domain: Domain, number: str, now: datetime, *, name: str = "",
                    location: str = "", main: bool = False, kind: str = "number", example: bool = False) -> Telnum:
    """Give the domain a number. It routes to the first employee (10.4's default) until the
    company configures it; the domain's first number is its main number. A number belongs to one domain
    in the whole server, except the documents' ``example`` numbers every demo company gets."""
    telnum = canonical(number)
    if await repo.find_telnum(session, domain.id, telnum) is not None:
        raise Invalid("telnum", f"the domain already has {telnum}")
    if not example and await repo.number_holder(session, telnum) is not None:
        raise Invalid("telnum", f"{telnum} belongs to another domain")
    first = await repo.first_user(session, domain.id)
    main = main or await repo.count_telnums(session, domain.id) == 0
    if main:
        for other in await repo.all_telnums(session, domain.id):
            other.is_main_phone = False
    row = Telnum(domain_id=domain.id, telnum=telnum, kind=kind, name=name, location=location, type="user",
                 greeting=False, greeting_custom=False, is_main_phone=main, disabled=False, crm="",
                 calltracking="", route_user=first.login if first else None, custom_routes=[],
                 sim_company=False, autocaller=False, created_at=now, example=example)
    row.search_text = search_text_of(row)
    if not await repo.add_telnum(session, row):
        raise Invalid("telnum", f"{telnum} belongs to another domain")
    return row


async def set_main_phone(session: AsyncSession, domain_id: int, telnum: str) -> Telnum:
    """Make ``telnum`` the company's main number: 9.1's ``is_main_phone`` and 13.3's ``main`` are this one flag."""
    row = await get(session, domain_id, telnum)
    for other in await repo.all_telnums(session, domain_id):
        other.is_main_phone = other.id == row.id
    await session.flush()
    return row


async def main_phone(session: AsyncSession, domain_id: int) -> str | None:
    return await repo.main_telnum(session, domain_id)


# --- route editing (9.3) -------------------------------------------------------------------


async def _row(session: AsyncSession, domain_id: int, telnum: str) -> Row[Any]:
    """The number's row, locked for the write (``get`` as a plain row)."""
    row = await repo.telnum_row(session, domain_id, _number(telnum), lock=True)
    if row is None:
        raise NotFound("telnum")
    return row


class _Resolver:
    """Checks that referenced employees, departments and menus exist; saves inline menus."""

    def __init__(self, session: AsyncSession, domain_id: int, new_menus: Iterable[str],
                 known: tuple[dict[str, Row[Any]], dict[str, Row[Any]]] | None = None) -> None:
        self.session = session
        self.domain_id = domain_id
        self.new_menus = set(new_menus)
        self.users, self.groups = known or ({}, {})  # found (and locked) by ``_refer`` already

    async def user(self, login: str, path: str) -> str:
        user = self.users.get(login)
        if user is None:
            found = await dir_repo.user_rows_by_logins(self.session, self.domain_id, [login], lock="refer")
            if not found:
                raise Invalid(path, f"no employee '{login}'")
            user = found[login]
        return user.login

    async def group(self, group_id: str, path: str) -> str:
        group = self.groups.get(group_id) or await dir_repo.group_row(self.session, self.domain_id, group_id,
                                                                        lock="refer")
        if group is None:
            raise Invalid(path, f"no department '{group_id}'")
        return group.group_id

    async def menu_name(self, name: str, path: str) -> str:
        if name in self.new_menus or await repo.find_menu(self.session, self.domain_id, name) is not None:
            return name
        raise Invalid(path, f"no menu '{name}'")

    async def button(self, b: MenuButtonIn, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"button": b.button, "type": b.type}
        if b.type == "user":
            out["user"] = await self.user(b.user or "", f"{path}.user")
        elif b.type == "group":
            out["group"] = await self.group(b.group or "", f"{path}.group")
        elif b.type == "ivr":
            out["ivr"] = await self.menu_name(b.ivr or "", f"{path}.ivr")
        else:
            out["telnum"] = b.telnum
        return out

    async def menu(self, ivr: IvrMenuIn, path: str) -> str:
        """An inline menu (9.6) is saved under its name; buttons may name it from elsewhere."""
        items = [await self.button(b, f"{path}.items.{i}") for i, b in enumerate(ivr.items)]
        menu = await repo.find_menu(self.session, self.domain_id, ivr.name)
        if menu is None:
            menu = IvrMenu(domain_id=self.domain_id, name=ivr.name)
            self.session.add(menu)
        menu.greeting = ivr.greeting
        menu.greeting_custom = ivr.greeting_custom
        menu.items = items
        return ivr.name

    async def target(self, t: TargetIn, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": t.type, "greeting": t.greeting}
        kind: str | None = t.type
        if t.type == "onduty":
            out["subtype"] = kind = t.subtype
        if kind == "user":
            out["user"] = await self.user(t.user or "", f"{path}.user")
        elif kind == "group":
            out["group"] = await self.group(t.group or "", f"{path}.group")
        elif kind == "ivr":
            assert t.ivr is not None
            out["ivr"] = await self.menu(t.ivr, f"{path}.ivr")
        elif kind == "telnum":
            out["telnum"] = t.telnum
        return out


async def _refer(session: AsyncSession, domain_id: int,
                 body: TelnumRouteIn) -> tuple[dict[str, Row[Any]], dict[str, Row[Any]]]:
    """Lock every employee and department the route names (for reference), before the number's row; what was
    found, by the name given."""
    logins: list[str] = []
    groups: list[str] = []
    targets: list[Any] = [body, body.work, body.other, *(body.custom_routes or [])]
    menus = [m for m in [body.ivr, *(getattr(t, "ivr", None) for t in targets if t is not None)] if m is not None]
    for t in [*targets, *(b for m in menus for b in m.items)]:
        if t is None:
            continue
        if getattr(t, "user", None):
            logins.append(t.user)
        if getattr(t, "group", None):
            groups.append(t.group)
    kind, value = _crm_parts(body.crm or "")
    if value and kind == "user":
        logins.append(value)
    if value and kind == "group":
        groups.append(value)
    users = await dir_repo.user_rows_by_logins(session, domain_id, logins, lock="refer") if logins else {}
    found: dict[str, Row[Any]] = {}
    for group_id in sorted(set(groups)):
        group = await dir_repo.group_row(session, domain_id, group_id, lock="refer")
        if group is not None:
            found[group_id] = group
    return users, found


def _inline_menus(body: TelnumRouteIn) -> list[str]:
    out: list[str] = []
    targets: list[TargetIn | None] = [body.work, body.other, *(body.custom_routes or [])]
    for ivr in [body.ivr, *(t.ivr for t in targets if t is not None)]:
        if ivr is not None:
            out.append(ivr.name)
    return out


def _schedule_error(exc: ScheduleError, prefix: str = "") -> Invalid:
    path = exc.path.lstrip(".")
    return Invalid(f"{prefix}.{path}" if prefix and path else (prefix or path or "body"), exc.message)


def _interval_rule(iv: ExtraInterval, rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "days": [d for i, d in enumerate(WEEKDAYS) if i in iv.days],
            "start": iv.interval.start * 60, "end": iv.interval.end * 60}


def _bound(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _calendar_rule(day: SpecialDay, rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "start": _bound(day.start), "end": _bound(day.end),
            "calendar_predefined": day.calendar_predefined}


async def _custom_routes(resolver: _Resolver, routes: list[CustomRouteIn]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen_ids: set[str] = set()
    for i, r in enumerate(routes):
        path = f"custom_routes.{i}"
        rid = r.id or str(uuid.uuid4())
        if rid in seen_ids or rid in ("work", "other"):
            raise Invalid(f"{path}.id", f"route id '{rid}' is used twice")
        seen_ids.add(rid)
        route: dict[str, Any] = {"id": rid, "name": r.name}
        if r.type is not None:
            route.update(await resolver.target(r, path))
        route["interval_schedule"] = []
        for j, rule in enumerate(r.interval_schedule):
            try:
                iv = parse_extra_interval(rule, rid, "")
            except ScheduleError as exc:
                raise _schedule_error(exc, f"{path}.interval_schedule.{j}") from exc
            route["interval_schedule"].append(_interval_rule(iv, iv.id or str(uuid.uuid4())))
        route["calendar_schedule"] = []
        for j, rule in enumerate(r.calendar_schedule):
            try:
                day = parse_special_day(rule, rid, "")
            except ScheduleError as exc:
                raise _schedule_error(exc, f"{path}.calendar_schedule.{j}") from exc
            route["calendar_schedule"].append(_calendar_rule(day, day.id or str(uuid.uuid4())))
        out.append(route)
    rule_ids = [rule["id"] for r in out for rule in (*r["interval_schedule"], *r["calendar_schedule"])]
    if len(rule_ids) != len(set(rule_ids)):
        raise Invalid("custom_routes", "an interval or special day id is used twice")
    return out


def _crm_parts(option: str) -> tuple[str, str]:
    kind, _, value = option.partition(":")
    return kind.strip().lower(), value.strip()


def crm_fallback(option: str) -> Target | None:
    """The number's ``crm`` option (9.1): empty is off; ``user:<login>``, ``group:<id>`` or ``telnum:<number>``
    names where a call goes when the responsible employee does not answer or is busy; any other value (``on``)
    turns the option on with no fallback (the number's route)."""
    kind, value = _crm_parts(option)
    if not value or kind not in ("user", "group", "telnum"):
        return None
    return Target(kind, value if kind == "user" else None, value if kind == "group" else None, None,
                  value if kind == "telnum" else None)


async def _crm_option(resolver: _Resolver, option: str) -> str:
    """The number's ``crm`` option as stored, its fallback resolved (``crm_fallback`` reads it back)."""
    kind, value = _crm_parts(option)
    if kind in ("", "off"):
        return ""
    if kind == "on" and not value:
        return "on"
    if kind == "user":
        return f"user:{await resolver.user(value, 'crm')}"
    if kind == "group":
        return f"group:{await resolver.group(value, 'crm')}"
    if kind == "telnum":
        try:
            return f"telnum:{normalize_number(value)}"
        except InvalidNumber:
            raise Invalid("crm", "telnum: not a phone number") from None
    raise Invalid("crm", '"" (off), "on", "user:<login>", "group:<id>" or "telnum:<number>"')


async def set_route(session: AsyncSession, domain_id: int, telnum: str, body: TelnumRouteIn) -> Row[Any]:
    """9.3: validate everything first, then change the number (all or nothing); the number's row as changed."""
    # What the route names is locked before the number (services.users.delete takes them in that order): an
    # employee or department it points at cannot vanish before the commit. Saving an inline menu under its name
    # takes the domain's row, so two routes saving one menu do not collide (menus have no row to lock yet).
    await dir_repo.begin_write(session)
    inline = _inline_menus(body)
    if inline:
        await dir_repo.lock_domain(session, domain_id)
    known = await _refer(session, domain_id, body)
    held(session, KNOWN_USERS).update((u.login, u.name) for u in known[0].values())
    held(session, KNOWN_GROUPS).update((g.group_id, g.name) for g in known[1].values())
    row = await _row(session, domain_id, telnum)
    resolver = _Resolver(session, domain_id, inline, known)
    route_user = route_group = ivr_menu = None
    work, other, schedule, custom = row.work, row.other, row.schedule, row.custom_routes
    if body.type == "user":
        route_user = await resolver.user(body.user or "", "user")
    elif body.type == "group":
        route_group = await resolver.group(body.group or "", "group")
    elif body.type == "ivr":
        assert body.ivr is not None
        ivr_menu = await resolver.menu(body.ivr, "ivr")
    if body.schedule is not None:
        try:
            schedule = dump_weekly(parse_weekly(body.schedule, ""))
        except ScheduleError as exc:
            raise _schedule_error(exc, "schedule") from exc
    if body.work is not None:
        work = await resolver.target(body.work, "work")
    if body.other is not None:
        other = await resolver.target(body.other, "other")
    if body.custom_routes is not None:
        custom = await _custom_routes(resolver, body.custom_routes)
    crm = row.crm if body.crm is None else await _crm_option(resolver, body.crm)
    if body.type == "scheduler":
        if work is None:
            raise Invalid("work", "a scheduler route needs the working-hours route 'work'")
        other = other or dict(OFFTIME)
        schedule = schedule or copy.deepcopy(DEFAULT_SCHEDULE)
    changes: dict[str, Any] = {
        "type": body.type, "greeting": body.greeting, "route_user": route_user, "route_group": route_group,
        "ivr_menu": ivr_menu, "work": work, "other": other, "schedule": schedule,
        "custom_routes": copy.deepcopy(custom or []), "crm": crm}
    if body.name is not None:
        changes["name"] = body.name
    if body.greeting_file is not None:
        changes["greeting_file"] = body.greeting_file or None
        changes["greeting_custom"] = bool(body.greeting_file)
    changes["search_text"] = _values_search_text({**row._mapping, **changes})
    if session.new or session.dirty:  # an inline menu saved (9.6): written before the number that names it
        await session.flush()
    return await repo.update_telnum(session, row.id, changes)


async def set_enabled(session: AsyncSession, domain_id: int, telnum: str, enabled: bool) -> None:
    row = await get(session, domain_id, telnum)
    row.disabled = not enabled
    await session.flush()


# --- extra intervals (9.7) and special days (9.8) ------------------------------------------

RULE_KEYS = {"interval": "interval_schedule", "calendar": "calendar_schedule"}


def _find_rule(routes: list[dict[str, Any]], kind: str, rule_id: str) -> tuple[dict[str, Any], int] | None:
    for route in routes:
        for i, rule in enumerate(route.get(RULE_KEYS[kind], [])):
            if rule.get("id") == rule_id:
                return route, i
    return None


def _pick_route(routes: list[dict[str, Any]], route_id: str | None, route_name: str | None,
                current: dict[str, Any] | None) -> dict[str, Any]:
    route_id, route_name = route_id or None, route_name or None
    if route_id is not None and route_name is not None:
        raise Invalid("route_id", "give route_id (an existing route) or route_name (a new route), not both")
    if route_id is not None:
        for route in routes:
            if route["id"] == route_id:
                return route
        raise Invalid("route_id", f"no route '{route_id}' on this number")
    if route_name is not None:
        for route in routes:  # the same name again means the same route, not a duplicate
            if route["name"] == route_name:
                return route
        route = {"id": str(uuid.uuid4()), "name": route_name, "interval_schedule": [], "calendar_schedule": []}
        routes.append(route)
        return route
    if current is not None:
        return current
    raise Invalid("route_id", "give route_id (an existing route) or route_name (a new route)")


def _parse_rule(kind: str, body: IntervalIn | CalendarIn, route_id: str, rule_id: str) -> dict[str, Any]:
    data = body.model_dump(exclude={"route_id", "route_name"})
    try:
        if kind == "interval":
            return _interval_rule(parse_extra_interval(data, route_id, ""), rule_id)
        return _calendar_rule(parse_special_day(data, route_id, ""), rule_id)
    except ScheduleError as exc:
        raise _schedule_error(exc) from exc


def rule_out(route: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    return {"id": rule["id"], "route_id": route["id"], "route_name": route["name"],
            **{k: v for k, v in rule.items() if k != "id"}}


async def save_rule(session: AsyncSession, domain_id: int, telnum: str, kind: str, body: IntervalIn | CalendarIn,
                    rule_id: str | None = None) -> dict[str, Any]:
    """Add (``rule_id`` None) or replace an extra interval / special day; returns it with its route. 9.7/9.8
    state no precondition: any number takes them, whatever its route type (outside them, its own route)."""
    row = await get(session, domain_id, telnum, lock=True)
    routes = copy.deepcopy(row.custom_routes or [])
    current: dict[str, Any] | None = None
    if rule_id is not None:
        found = _find_rule(routes, kind, rule_id)
        if found is None:
            raise NotFound(kind)
        current, index = found
        del current[RULE_KEYS[kind]][index]
    route = _pick_route(routes, body.route_id, body.route_name, current)
    rule = _parse_rule(kind, body, route["id"], rule_id or str(uuid.uuid4()))
    route.setdefault(RULE_KEYS[kind], []).append(rule)
    row.custom_routes = routes
    await session.flush()
    return rule_out(route, rule)


async def delete_rule(session: AsyncSession, domain_id: int, telnum: str, kind: str, rule_id: str) -> None:
    row = await get(session, domain_id, telnum, lock=True)
    routes = copy.deepcopy(row.custom_routes or [])
    found = _find_rule(routes, kind, rule_id)
    if found is None:
        raise NotFound(kind)
    route, index = found
    del route[RULE_KEYS[kind]][index]
    row.custom_routes = routes
    await session.flush()


# --- the route at an instant (call engine) -------------------------------------------------


def time_config(row: Telnum) -> NumberTimeConfig:
    """The pure rule's input (domain.schedule) from a number's stored configuration. A number of another type
    than scheduler works around the clock on its own route ("work"), but for its extra intervals and special
    days."""
    extras, specials = parse_custom_routes(row.custom_routes or [])
    weekly = parse_weekly(row.schedule or DEFAULT_SCHEDULE) if row.type == "scheduler" else WeeklySchedule.always()
    return NumberTimeConfig(weekly=weekly, work_route="work", other_route="other", extra_intervals=extras,
                            special_days=specials)


@dataclass(frozen=True)
class Target:
    """Where the call goes: ``kind`` is user, group, ivr, fax, telnum or offtime (closed message)."""

    kind: str
    user: str | None = None
    group: str | None = None
    ivr: dict[str, Any] | None = None  # the menu (name, greeting, greeting_custom, items)
    telnum: str | None = None
    greeting: bool = False
    onduty: bool = False


@dataclass(frozen=True)
class NumberRoute:
    telnum: str
    name: str
    disabled: bool
    greeting: bool  # play the greeting first (the number's or the chosen target's)
    crm: str
    target: Target
    reason: RouteReason | None  # None: not a scheduler, the number's own route
    route_id: str | None = None  # "work", "other" or a custom route's id
    route_name: str | None = None
    greeting_file: str | None = None  # the number's own greeting (a catalogue file id), else the default one


def _greeting_file(row: Any) -> str | None:
    return (row.greeting_file or None) if row.greeting_custom else None


def _target(t: dict[str, Any] | None, menus: dict[str, IvrMenu]) -> Target:
    if not t:
        return Target("offtime")
    kind = t.get("subtype") if t.get("type") == "onduty" else t.get("type")
    ivr = menu_out(menus.get(t["ivr"]), t["ivr"]) if t.get("ivr") else None
    return Target(str(kind or "offtime"), t.get("user"), t.get("group"), ivr, t.get("telnum"),
                  bool(t.get("greeting")), t.get("type") == "onduty")


@dataclass(frozen=True)
class RouteBook:
    """Everything a number's route depends on, read once (the engine's config cache keeps it); ``at`` picks
    the route for an instant through the pure ``choose_route``."""

    row: Telnum
    menus: dict[str, IvrMenu]
    time: NumberTimeConfig | None  # the number's calendar; None: the number's own route at any time
    fixed: NumberRoute | None  # another type's own route (outside its intervals and special days, if any)

    def at(self, moment: datetime, timezone: str) -> NumberRoute:
        if self.time is None or (self.fixed is not None and not self.time.extra_intervals
                                 and not self.time.special_days):
            assert self.fixed is not None
            return self.fixed
        row, menus = self.row, self.menus
        choice = choose_route(self.time, moment, timezone)
        if self.fixed is not None and choice.route_id == "work":
            return self.fixed
        route_name = {"work": "work", "other": "other"}.get(choice.route_id)
        if choice.route_id == "work":
            chosen = row.work
        elif choice.route_id == "other":
            chosen = row.other or OFFTIME
        else:
            custom = next(r for r in row.custom_routes if r["id"] == choice.route_id)
            route_name = custom["name"]
            if custom.get("type"):
                chosen = custom
            elif self.fixed is not None:  # a route without a target: the number's own route
                return self.fixed
            else:
                chosen = row.work
        target = _target(chosen, menus)
        return NumberRoute(row.telnum, row.name, row.disabled, row.greeting or target.greeting, row.crm, target,
                           choice.reason, choice.route_id, route_name, _greeting_file(row))


async def route_book(session: AsyncSession, domain_id: int, telnum: str) -> RouteBook | None:
    """The domain's number ``telnum`` and what its route needs; None if unknown."""
    try:
        number = normalize_number(telnum)
    except InvalidNumber:
        return None
    row = await repo.find_telnum(session, domain_id, number)
    if row is None:
        return None
    menus = await repo.menus(session, domain_id)
    if row.type != "scheduler":
        stored = {"type": row.type, "user": row.route_user, "group": row.route_group, "ivr": row.ivr_menu}
        return RouteBook(row, menus, time_config(row) if row.custom_routes else None,
                         NumberRoute(row.telnum, row.name, row.disabled, row.greeting, row.crm,
                                     _target(stored, menus), None, greeting_file=_greeting_file(row)))
    return RouteBook(row, menus, time_config(row), None)


async def route_for(session: AsyncSession, domain: Domain, telnum: str, at: datetime) -> NumberRoute | None:
    """The route of the domain's number ``telnum`` for a call at ``at`` (aware); None if unknown."""
    book = await route_book(session, domain.id, telnum)
    return book.at(at, domain.timezone) if book is not None else None



# --- employees and departments going away --------------------------------------------------


def _retarget(t: dict[str, Any], key: str, value: str, replacement: str | None) -> dict[str, Any] | None:
    """``t`` pointing at the removed employee/department, redirected to ``replacement`` (an employee)."""
    kind = t.get("subtype") if t.get("type") == "onduty" else t.get("type")
    if kind != key or t.get(key) != value:
        return None
    out = {k: v for k, v in t.items() if k not in TARGET_FIELDS}
    if replacement is None:
        if "button" in t:
            return {}
        return {"type": "offtime", "greeting": bool(t.get("greeting"))} | (
            {"id": t["id"], "name": t["name"], "interval_schedule": t.get("interval_schedule", []),
             "calendar_schedule": t.get("calendar_schedule", [])} if "id" in t else {})
    if t.get("type") == "onduty":
        out["subtype"] = "user"
    else:
        out["type"] = "user"
    out["user"] = replacement
    return out


async def release(session: AsyncSession, domain_id: int, *, user: str | None = None,
                  group: str | None = None) -> None:
    """An employee (login) or department (id) is being deleted: routes, menu buttons and SIM cards
    that point at it are redirected to the first other employee (10.4's default target); a SIM
    card assigned to a deleted employee is switched off."""
    key, value = ("user", user) if user is not None else ("group", group)
    assert value is not None

    def points_at(t: dict[str, Any] | None) -> bool:
        return bool(t) and _retarget(t, key, value, None) is not None  # type: ignore[arg-type]

    numbers, menus = await repo.pointing(session, domain_id)
    rows = [row for row in numbers
            if (key == "user" and user in (row.route_user, row.sim_user))
            or (key == "group" and row.route_group == group)
            or any(points_at(t) for t in (row.work, row.other, *(row.custom_routes or [])))]
    menus = [m for m in menus if any(points_at(i) for i in m.items)]
    if not dir_repo.is_sqlite(session):
        # PostgreSQL: only the rows that point at it, locked and read again, so a route saved meanwhile is not
        # overwritten with what was read before it. A write that would make another row point at it locks the
        # employee or department to refer to it first, so it came before the lock the deletion took (and is
        # among the rows read above) or waits and finds it gone.
        rows = list(await repo.relock_rows(session, [r.id for r in rows]))
        menus = list(await repo.relock_rows(session, [m.id for m in menus], menus=True))
    if not rows and not menus:
        return
    # Locked for reference, skipping one being deleted (never waits: taken after the numbers' rows, out of order).
    replacement = await repo.first_login(session, domain_id, excluding=user, lock=True)
    for row in rows:
        values = {name: getattr(row, name) for name in repo.SCANNED}
        if key == "user" and row.route_user == user:
            values["route_user"] = replacement
        if key == "group" and row.route_group == group:
            values["route_group"] = None
            values["route_user"] = replacement
            if row.type == "group":
                values["type"] = "user"
        if key == "user" and row.sim_user == user:
            values["sim_user"] = None
            values["disabled"] = True
        for attr in ("work", "other"):
            current = values[attr]
            new = _retarget(current, key, value, replacement) if current else None
            if new is not None:
                values[attr] = new or dict(OFFTIME)
        routes = [(_retarget(r, key, value, replacement) or r) for r in row.custom_routes or []]
        if routes != (row.custom_routes or []):
            values["custom_routes"] = routes
        values["search_text"] = _values_search_text(values)
        changes = {k: v for k, v in values.items() if v != getattr(row, k)}
        if changes:
            await repo.update_telnum(session, row.id, changes)
    for menu in menus:
        items = [_retarget(i, key, value, replacement) for i in menu.items]
        if any(i is not None for i in items):
            await repo.set_menu_items(session, menu.id, [new if new is not None else old
                                                         for new, old in zip(items, menu.items, strict=True)
                                                         if new != {}])


# --- the demo company's numbers ------------------------------------------------------------


async def demo_numbers(session: AsyncSession, domain: Domain, now: datetime) -> None:
    main = await provision(session, domain, "74951234567", now, name="Основной", location="Москва", main=True,
                           example=True)
    await set_route(session, domain.id, main.telnum, TelnumRouteIn(type="group", group="sales", greeting=False))
    admin = await provision(session, domain, "74957654321", now, name="Администратор", location="Москва",
                            example=True)
    await set_route(session, domain.id, admin.telnum, TelnumRouteIn(type="user", user="admin", greeting=True))
    spb = await provision(session, domain, "78121234567", now, name="Санкт-Петербург", location="Санкт-Петербург",
                          example=True)
    menu = IvrMenuIn(name="Главное меню", greeting=True, items=[
        MenuButtonIn(button="1", type="group", group="sales"),
        MenuButtonIn(button="2", type="group", group="support"),
        MenuButtonIn(button="0", type="user", user="admin"),
        MenuButtonIn(button="timeout", type="group", group="sales"),
    ])
    await set_route(session, domain.id, spb.telnum, TelnumRouteIn(type="ivr", ivr=menu, greeting=True))
