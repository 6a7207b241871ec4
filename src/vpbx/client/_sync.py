"""The synchronous client: GENERATED from ``_async.py`` by ``python -m vpbx.client._unasync``."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from vpbx.client._base import (
    DEFAULT_PAGE,
    USER_AGENT,
    JsonArrayItems,
    body_of,
    decode,
    next_start,
    query,
    raise_for,
    retry_delay,
    should_retry,
)
from vpbx.client.errors import Conflict
from vpbx.schemas import (
    blacklist,
    branches,
    callerids,
    calls,
    domain,
    groups,
    media,
    numbers,
    restrictions,
    settings,
    sims,
    sipregs,
    sipuri,
    users,
    webhooks,
)
from vpbx.schemas.common import State
from vpbx.schemas.sim import (
    AutoBehaviour,
    SimCall,
    SimClock,
    SimDelivery,
    SimDeliveryList,
    SimDevice,
    SimExternal,
    SimExternals,
    SimTestLoad,
    TrafficStatus,
)

M = TypeVar("M", bound=BaseModel)
When = datetime | str | None
V1 = "/crmapi/v1"
LEGACY = "/sys/crm_api.wcgp"
SIM = "/sim/v1"
Behaviour = AutoBehaviour | Mapping[str, Any]


class Client:
    """``Client(base_url, api_key)``; a ``with`` block closes it.

    Every method raises a ``VpbxError`` subclass on an error answer. 429 is retried, and 5xx and
    connection failures on idempotent methods, ``retries`` times with exponential backoff (or the
    server's ``Retry-After``) of at most ``max_backoff`` seconds each. ``.sim`` is the simulator (``/sim/v1``);
    ``operator_key`` (the server operator's ``X-OPERATOR-KEY``) lets it move the shared virtual clock.
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, legacy_token: str | None = None,
                 operator_key: str | None = None, timeout: float = 30.0, retries: int = 3, backoff: float = 0.25,
                 max_backoff: float = 8.0,
                 headers: Mapping[str, str] | None = None, transport: httpx.BaseTransport | None = None,
                 page_size: int = DEFAULT_PAGE) -> None:
        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if api_key:
            all_headers["X-API-KEY"] = api_key
        if operator_key:  # the server operator's: only it moves the shared virtual clock (sim.advance)
            all_headers["X-OPERATOR-KEY"] = operator_key
        self.legacy_token = legacy_token
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.page_size = page_size
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=all_headers, timeout=timeout,
                                      transport=transport)
        self.sim = Sim(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # the generic core ----------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, files: Any = None, data: Any = None) -> httpx.Response:
        """One request with retries; an error answer raises its ``VpbxError``."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = self.http.request(method, path, params=params, json=json, files=files, data=data)
            except httpx.TransportError:
                if not should_retry(method, None, attempt, self.retries):
                    raise
            else:
                if not should_retry(method, response, attempt, self.retries):
                    raise_for(response)
                    return response
            time.sleep(retry_delay(attempt, self.backoff, self.max_backoff, response))
            attempt += 1

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return decode(self.request(method, V1 + path, **kwargs))

    def _one(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self._json(method, path, **kwargs))

    def _many(self, model: type[M], path: str, **kwargs: Any) -> list[M]:
        return TypeAdapter(list[model]).validate_python(self._json("GET", path, **kwargs))  # type: ignore[valid-type]

    def _state(self, path: str, **kwargs: Any) -> bool:
        return State.model_validate(self._json("GET", path, **kwargs)).state

    def _do(self, method: str, path: str, **kwargs: Any) -> None:
        self.request(method, V1 + path, **kwargs)

    def _pages(self, model: type[M], path: str, page_size: int | None, **params: Any) -> Iterator[M]:
        """Every item of a v1 list, page by page, following ``info.next``."""
        start: int | None = 0
        while start is not None:
            page = self._json("GET", path, params=query(**params, start=start,
                                                              limit=page_size or self.page_size))
            for item in page["items"]:
                yield model.model_validate(item)
            start = next_start(page.get("info"))

    def _lines(self, path: str, params: Mapping[str, Any]) -> Iterator[str]:
        with self.http.stream("GET", V1 + path, params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise_for(response)
            for line in response.iter_lines():
                if line:
                    yield line

    def _items(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        parser = JsonArrayItems()
        with self.http.stream("GET", V1 + path, params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise_for(response)
            for chunk in response.iter_text():
                yield from parser.feed(chunk)
        parser.close()

    # 4. История звонков (streamed: nothing is loaded whole) ------------------------------------------

    def history_csv(self, *, start: When = None, end: When = None, period: str | None = None,
                    type: str | None = None, limit: int | None = None, user: str | None = None,
                    diversion: str | None = None, client: str | None = None) -> Iterator[str]:
        """4.1 External history, one CSV line at a time (``uid,type,client,account,via,start,...``)."""
        return self._lines("/history/csv", query(start=start, end=end, period=period, type=type, limit=limit,
                                                 user=user, diversion=diversion, client=client))

    def history_json(self, *, start: When = None, end: When = None, period: str | None = None,
                     type: str | None = None, limit: int | None = None, user: str | None = None,
                     diversion: str | None = None, client: str | None = None, groups: Iterable[str] = (),
                     first_answered: bool = False, process_missed: bool = False,
                     missed_status: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        """4.2 External history, one call (a dict) at a time."""
        return self._items("/history/json", query(start=start, end=end, period=period, type=type, limit=limit,
                                                  user=user, diversion=diversion, client=client, groups=list(groups),
                                                  first_answered=first_answered, processMissed=process_missed,
                                                  missedStatus=list(missed_status)))

    def inner_history_csv(self, *, start: When = None, end: When = None, period: str | None = None,
                          type: str | None = None, limit: int | None = None,
                          user: str | None = None) -> Iterator[str]:
        """4.3 Internal history, one CSV line at a time."""
        return self._lines("/history/inner/csv", query(start=start, end=end, period=period, type=type,
                                                       limit=limit, user=user))

    def inner_history_json(self, *, start: When = None, end: When = None, period: str | None = None,
                           type: str | None = None, limit: int | None = None,
                           user: str | None = None) -> Iterator[dict[str, Any]]:
        """4.4 Internal history, one call at a time."""
        return self._items("/history/inner/json", query(start=start, end=end, period=period, type=type,
                                                        limit=limit, user=user))

    # 5. Исходящий звонок -----------------------------------------------------------------------

    def make_call(self, phone: str, *, user: str | None = None, group: str | None = None,
                        clid: str | None = None, show_phone: bool = False) -> calls.MakeCallOut:
        """Click-to-call: ring the employee (login or extension) or the department first, then ``phone``."""
        body = {"phone": phone, "user": user, "group": group, "clid": clid, "show_phone": show_phone}
        return self._one(calls.MakeCallOut, "POST", "/makecall",
                               json={k: v for k, v in body.items() if v is not None})

    def get_rating(self) -> calls.RatingOut:
        """vpbx extension: the numbers and departments that ask the client for a score after the call."""
        return self._one(calls.RatingOut, "GET", "/rating")

    def set_rating(self, *, telnums: Iterable[str] | None = None,
                         groups: Iterable[str] | None = None) -> calls.RatingOut:
        """Replace the numbers and/or the departments that ask for a score (None: unchanged)."""
        body: dict[str, list[str]] = {}
        if telnums is not None:
            body["telnums"] = list(telnums)
        if groups is not None:
            body["groups"] = list(groups)
        return self._one(calls.RatingOut, "PUT", "/rating", json=body)

    # 6. Сотрудники ------------------------------------------------------------------------------

    def list_users(self, *, search: str = "", start: int = 0, limit: int | None = None,
                         with_status: bool = False) -> users.UserList:
        return self._one(users.UserList, "GET", "/users", params=query(
            search=search or None, start=start or None, limit=limit, with_="status" if with_status else None))

    def iter_users(self, *, search: str = "", with_status: bool = False,
                   page_size: int | None = None) -> Iterator[users.UserOut]:
        return self._pages(users.UserOut, "/users", page_size, search=search or None,
                           with_="status" if with_status else None)

    def get_user(self, login: str, *, with_status: bool = False) -> users.UserOut:
        return self._one(users.UserOut, "GET", f"/users/{login}",
                               params=query(with_="status" if with_status else None))

    def create_user(self, user: users.UserCreate | Mapping[str, Any]) -> users.UserOut:
        return self._one(users.UserOut, "POST", "/users", json=body_of(user))

    def update_user(self, login: str, changes: users.UserUpdate | Mapping[str, Any]) -> users.UserOut:
        return self._one(users.UserOut, "PUT", f"/users/{login}", json=body_of(changes))

    def delete_user(self, login: str) -> None:
        self._do("DELETE", f"/users/{login}")

    def user_groups(self, login: str) -> list[users.UserGroup]:
        return self._many(users.UserGroup, f"/users/{login}/groups")

    def get_subscription(self, login: str, group_id: str | None = None) -> bool:
        """6.7/6.8 Whether the employee takes calls in the department (every department without one)."""
        return self._state(f"/users/{login}/subscription", params=query(group_id=group_id))

    def set_subscription(self, login: str, on: bool, group_id: str | None = None) -> None:
        self._do("POST" if on else "DELETE", f"/users/{login}/subscription", params=query(group_id=group_id))

    def get_dnd(self, login: str) -> bool:
        """6.9 ``True``: do-not-disturb is on."""
        return self._state(f"/users/{login}/dnd")

    def set_dnd(self, login: str, on: bool) -> None:
        self._do("POST" if on else "DELETE", f"/users/{login}/dnd")

    # 8. Отделы ----------------------------------------------------------------------------------

    def list_groups(self, *, search: str = "", start: int = 0, limit: int | None = None) -> groups.GroupList:
        return self._one(groups.GroupList, "GET", "/groups",
                               params=query(search=search or None, start=start or None, limit=limit))

    def iter_groups(self, *, search: str = "", page_size: int | None = None) -> Iterator[groups.GroupOut]:
        return self._pages(groups.GroupOut, "/groups", page_size, search=search or None)

    def get_group(self, group_id: str) -> groups.GroupOut:
        return self._one(groups.GroupOut, "GET", f"/groups/{group_id}")

    def create_group(self, group: groups.GroupCreate | Mapping[str, Any]) -> groups.GroupOut:
        return self._one(groups.GroupOut, "POST", "/groups", json=body_of(group))

    def update_group(self, group_id: str, changes: groups.GroupUpdate | Mapping[str, Any]) -> groups.GroupOut:
        return self._one(groups.GroupOut, "PUT", f"/groups/{group_id}", json=body_of(changes))

    def delete_group(self, group_id: str) -> None:
        self._do("DELETE", f"/groups/{group_id}")

    def change_group_users(self, group_id: str, change: groups.MembersChange | Mapping[str, Any]) -> None:
        self._do("POST", f"/groups/{group_id}/users", json=body_of(change))

    # 9. Номера ----------------------------------------------------------------------------------

    def list_telnums(self, *, search: str = "", start: int = 0,
                           limit: int | None = None) -> numbers.TelnumList:
        return self._one(numbers.TelnumList, "GET", "/telnums",
                               params=query(search=search or None, start=start or None, limit=limit))

    def iter_telnums(self, *, search: str = "", page_size: int | None = None) -> Iterator[numbers.TelnumOut]:
        return self._pages(numbers.TelnumOut, "/telnums", page_size, search=search or None)

    def get_telnum(self, telnum: str) -> numbers.TelnumOut:
        return self._one(numbers.TelnumOut, "GET", f"/telnums/{telnum}")

    def set_telnum_route(self, telnum: str,
                               route: numbers.TelnumRouteIn | Mapping[str, Any]) -> numbers.TelnumOut:
        return self._one(numbers.TelnumOut, "POST", f"/telnums/{telnum}", json=body_of(route))

    def set_telnum_enabled(self, telnum: str, on: bool) -> None:
        self._do("POST" if on else "DELETE", f"/telnums/{telnum}/enabled")

    def add_interval(self, telnum: str, interval: numbers.IntervalIn | Mapping[str, Any]) -> numbers.IntervalOut:
        return self._one(numbers.IntervalOut, "POST", f"/telnums/{telnum}/interval-schedule",
                               json=body_of(interval))

    def update_interval(self, telnum: str, interval_id: int | str,
                              interval: numbers.IntervalIn | Mapping[str, Any]) -> numbers.IntervalOut:
        return self._one(numbers.IntervalOut, "PUT", f"/telnums/{telnum}/interval-schedule/{interval_id}",
                               json=body_of(interval))

    def delete_interval(self, telnum: str, interval_id: int | str) -> None:
        self._do("DELETE", f"/telnums/{telnum}/interval-schedule/{interval_id}")

    def add_calendar_day(self, telnum: str, day: numbers.CalendarIn | Mapping[str, Any]) -> numbers.CalendarOut:
        return self._one(numbers.CalendarOut, "POST", f"/telnums/{telnum}/calendar-schedule", json=body_of(day))

    def update_calendar_day(self, telnum: str, day_id: int | str,
                                  day: numbers.CalendarIn | Mapping[str, Any]) -> numbers.CalendarOut:
        return self._one(numbers.CalendarOut, "PUT", f"/telnums/{telnum}/calendar-schedule/{day_id}",
                               json=body_of(day))

    def delete_calendar_day(self, telnum: str, day_id: int | str) -> None:
        self._do("DELETE", f"/telnums/{telnum}/calendar-schedule/{day_id}")

    # 10. SIM-карты ------------------------------------------------------------------------------

    def list_sims(self, *, search: str = "", start: int = 0, limit: int | None = None) -> sims.SimList:
        return self._one(sims.SimList, "GET", "/sims",
                               params=query(search=search or None, start=start or None, limit=limit))

    def iter_sims(self, *, search: str = "", page_size: int | None = None) -> Iterator[sims.SimOut]:
        return self._pages(sims.SimOut, "/sims", page_size, search=search or None)

    def get_sim(self, telnum: str) -> sims.SimOut:
        return self._one(sims.SimOut, "GET", f"/sims/{telnum}")

    def sims_available(self) -> sims.SimAvailableList:
        return self._one(sims.SimAvailableList, "GET", "/sims-available")

    def add_sim(self, sim: sims.SimAdd | Mapping[str, Any]) -> sims.SimAdded:
        return self._one(sims.SimAdded, "POST", "/sims", json=body_of(sim))

    def assign_sim_to_user(self, telnum: str, login: str) -> None:
        self._do("POST", f"/sims/{telnum}/user/{login}")

    def assign_sim_to_company(self, telnum: str) -> None:
        self._do("POST", f"/sims/{telnum}/company")

    def disable_sim(self, telnum: str) -> None:
        self._do("POST", f"/sims/{telnum}/disable")

    def delete_sim(self, telnum: str) -> None:
        self._do("DELETE", f"/sims/{telnum}")

    # 11. Черный список --------------------------------------------------------------------------

    def list_blacklist(self, *, with_statistics: bool = False) -> list[blacklist.BlacklistOut]:
        return self._many(blacklist.BlacklistOut, "/blacklist/telnums",
                                params=query(with_="statistics" if with_statistics else None))

    def add_blacklist(self, entries: Iterable[blacklist.BlacklistIn | Mapping[str, Any]]) -> None:
        self._do("POST", "/blacklist/telnums", json=body_of(list(entries)))

    def remove_blacklist(self, telnums: Iterable[str]) -> None:
        self._do("DELETE", "/blacklist/telnums", params=query(telnum=list(telnums)))

    def get_block_anonymous(self) -> bool:
        return self._state("/blacklist/block-anonymous")

    def set_block_anonymous(self, on: bool) -> None:
        self._do("POST" if on else "DELETE", "/blacklist/block-anonymous")

    # 12. Настройки домена -----------------------------------------------------------------------

    def get_domain(self) -> domain.DomainOut:
        return self._one(domain.DomainOut, "GET", "/domain")

    def custom_roles(self) -> list[domain.CustomRoleOut]:
        return self._many(domain.CustomRoleOut, "/access-rights/custom-roles")

    def get_music(self) -> media.MusicOut:
        return self._one(media.MusicOut, "GET", "/music")

    def set_music(self, type: str, music: media.MusicSet | Mapping[str, Any]) -> None:
        """12.3 ``type`` is ``ringback`` or ``holdmusic``."""
        self._do("POST", f"/music/{type}", json=body_of(music))

    def media_catalog(self, type: str) -> list[media.MediaFileOut]:
        return self._many(media.MediaFileOut, f"/media-catalog/{type}")

    def upload_media(self, type: str, filename: str, content: bytes, *,
                           name: str | None = None) -> media.MediaFileOut:
        """vpbx extension: add a wav, mp3 or ogg file to the catalogue."""
        return self._one(media.MediaFileOut, "POST", f"/media-catalog/{type}",
                               files={"file": (filename, content)}, data={"name": name} if name else None)

    def delete_media(self, type: str, media_id: int | str) -> None:
        self._do("DELETE", f"/media-catalog/{type}/{media_id}")

    def get_record(self) -> settings.RecordOut:
        return self._one(settings.RecordOut, "GET", "/record")

    def update_record(self, changes: settings.RecordUpdate | Mapping[str, Any]) -> None:
        self._do("PUT", "/record", json=body_of(changes))

    def add_record_exceptions(self, logins: Iterable[str]) -> None:
        self._do("POST", "/record/users-exception", json=list(logins))

    def remove_record_exceptions(self, logins: Iterable[str]) -> None:
        self._do("DELETE", "/record/users-exception", params=query(user=list(logins)))

    def blf_users(self) -> list[settings.UserRef]:
        return self._many(settings.UserRef, "/blf/users")

    def add_blf_users(self, logins: Iterable[str]) -> None:
        self._do("POST", "/blf/users", json=list(logins))

    def remove_blf_users(self, logins: Iterable[str]) -> None:
        self._do("DELETE", "/blf/users", params=query(user=list(logins)))

    def get_am(self) -> settings.AmOut:
        return self._one(settings.AmOut, "GET", "/am")

    def update_am(self, changes: settings.AmUpdate | Mapping[str, Any]) -> None:
        self._do("PUT", "/am", json=body_of(changes))

    def add_am_users(self, logins: Iterable[str]) -> None:
        self._do("POST", "/am/users", json=list(logins))

    def remove_am_users(self, logins: Iterable[str]) -> None:
        self._do("DELETE", "/am/users", params=query(user=list(logins)))

    def add_am_groups(self, group_ids: Iterable[str]) -> None:
        self._do("POST", "/am/groups", json=list(group_ids))

    def remove_am_groups(self, group_ids: Iterable[str]) -> None:
        self._do("DELETE", "/am/groups", params=query(group=list(group_ids)))

    # 13. Исходящие номера -----------------------------------------------------------------------

    def get_caller_ids(self) -> callerids.CallerIdsOut:
        return self._one(callerids.CallerIdsOut, "GET", "/caller-ids")

    def caller_id_telnums(self) -> list[callerids.TelnumOut]:
        return self._many(callerids.TelnumOut, "/caller-ids/telnums")

    def set_main_caller_id(self, main: callerids.MainSet | Mapping[str, Any]) -> None:
        self._do("POST", "/caller-ids/main", json=body_of(main))

    def set_user_caller_id(self, rule: callerids.UserCallerIdSet | Mapping[str, Any]) -> None:
        self._do("POST", "/caller-ids/users", json=body_of(rule))

    def delete_user_caller_id(self, login: str) -> None:
        self._do("DELETE", f"/caller-ids/users/{login}")

    def set_group_caller_id(self, rule: callerids.GroupCallerIdSet | Mapping[str, Any]) -> None:
        self._do("POST", "/caller-ids/groups", json=body_of(rule))

    def delete_group_caller_id(self, group_id: str) -> None:
        self._do("DELETE", f"/caller-ids/groups/{group_id}")

    def caller_id_regions(self) -> list[callerids.RegionOut]:
        return self._many(callerids.RegionOut, "/caller-ids/regions")

    def set_region_caller_id(self, rule: callerids.RegionCallerIdSet | Mapping[str, Any]) -> None:
        self._do("POST", "/caller-ids/regions", json=body_of(rule))

    def delete_region_caller_id(self, region_id: int | str, mode: str | None = None) -> None:
        """``mode``: ``all`` (the default), ``mobile`` or ``fixed``."""
        self._do("DELETE", f"/caller-ids/regions/{region_id}", params=query(mode=mode))

    # 14. Ограничения звонков --------------------------------------------------------------------

    def get_restrictions(self) -> restrictions.RestrictionsOut:
        return self._one(restrictions.RestrictionsOut, "GET", "/calls-restrictions")

    def allow_main(self, allowed: Iterable[str]) -> None:
        self._do("POST", "/calls-restrictions/main", json={"allowed": list(allowed)})

    def disallow_main(self, allowed: Iterable[str]) -> None:
        self._do("DELETE", "/calls-restrictions/main", params=query(allowed=list(allowed)))

    def allow_users(self, rules: Iterable[restrictions.UserRulesIn | Mapping[str, Any]]) -> None:
        self._do("POST", "/calls-restrictions/users", json=body_of(list(rules)))

    def disallow_user(self, login: str, allowed: Iterable[str]) -> None:
        self._do("DELETE", f"/calls-restrictions/users/{login}", params=query(allowed=list(allowed)))

    def allow_groups(self, rules: Iterable[restrictions.GroupRulesIn | Mapping[str, Any]]) -> None:
        self._do("POST", "/calls-restrictions/groups", json=body_of(list(rules)))

    def disallow_group(self, group_id: str, allowed: Iterable[str]) -> None:
        self._do("DELETE", f"/calls-restrictions/groups/{group_id}", params=query(allowed=list(allowed)))

    # 15. SIP-регистрации ------------------------------------------------------------------------

    def list_sip_registrations(self, *, search: str = "", start: int = 0,
                                     limit: int | None = None) -> sipregs.SipRegList:
        return self._one(sipregs.SipRegList, "GET", "/sip-registrations",
                               params=query(search=search or None, start=start or None, limit=limit))

    def iter_sip_registrations(self, *, search: str = "",
                               page_size: int | None = None) -> Iterator[sipregs.SipRegOut]:
        return self._pages(sipregs.SipRegOut, "/sip-registrations", page_size, search=search or None)

    def get_sip_registration(self, telnum: str) -> sipregs.SipRegOut:
        return self._one(sipregs.SipRegOut, "GET", f"/sip-registrations/{telnum}")

    def create_sip_registration(self, reg: sipregs.SipRegCreate | Mapping[str, Any]) -> sipregs.SipRegOut:
        return self._one(sipregs.SipRegOut, "POST", "/sip-registrations", json=body_of(reg))

    def update_sip_registration(self, telnum: str,
                                      changes: sipregs.SipRegUpdate | Mapping[str, Any]) -> sipregs.SipRegOut:
        return self._one(sipregs.SipRegOut, "PUT", f"/sip-registrations/{telnum}", json=body_of(changes))

    def delete_sip_registration(self, telnum: str) -> None:
        self._do("DELETE", f"/sip-registrations/{telnum}")

    # 16. SIP-переадресации ----------------------------------------------------------------------

    def list_sipuri_transfers(self, *, search: str = "", start: int = 0,
                                    limit: int | None = None) -> sipuri.SipUriList:
        return self._one(sipuri.SipUriList, "GET", "/sipuri-transfers",
                               params=query(search=search or None, start=start or None, limit=limit))

    def iter_sipuri_transfers(self, *, search: str = "",
                              page_size: int | None = None) -> Iterator[sipuri.SipUriOut]:
        return self._pages(sipuri.SipUriOut, "/sipuri-transfers", page_size, search=search or None)

    def get_sipuri_transfer(self, telnum: str) -> sipuri.SipUriOut:
        return self._one(sipuri.SipUriOut, "GET", f"/sipuri-transfers/{telnum}")

    def create_sipuri_transfer(self, transfer: sipuri.SipUriCreate | Mapping[str, Any]) -> sipuri.SipUriOut:
        return self._one(sipuri.SipUriOut, "POST", "/sipuri-transfers", json=body_of(transfer))

    def update_sipuri_transfer(self, telnum: str,
                                     changes: sipuri.SipUriUpdate | Mapping[str, Any]) -> sipuri.SipUriOut:
        return self._one(sipuri.SipUriOut, "PUT", f"/sipuri-transfers/{telnum}", json=body_of(changes))

    def delete_sipuri_transfer(self, telnum: str) -> None:
        self._do("DELETE", f"/sipuri-transfers/{telnum}")

    # 17. Другие АТС -----------------------------------------------------------------------------

    def list_branches(self, *, search: str = "", start: int = 0,
                            limit: int | None = None) -> branches.BranchList:
        return self._one(branches.BranchList, "GET", "/branches",
                               params=query(search=search or None, start=start or None, limit=limit))

    def iter_branches(self, *, search: str = "", page_size: int | None = None) -> Iterator[branches.BranchOut]:
        return self._pages(branches.BranchOut, "/branches", page_size, search=search or None)

    def get_branch(self, domain: str) -> branches.BranchOut:
        return self._one(branches.BranchOut, "GET", f"/branches/{domain}")

    def create_branch(self, branch: branches.BranchCreate | Mapping[str, Any]) -> branches.BranchOut:
        return self._one(branches.BranchOut, "POST", "/branches", json=body_of(branch))

    def update_branch(self, domain: str,
                            changes: branches.BranchUpdate | Mapping[str, Any]) -> branches.BranchOut:
        return self._one(branches.BranchOut, "PUT", f"/branches/{domain}", json=body_of(changes))

    def sync_branch(self, domain: str) -> branches.BranchOut:
        return self._one(branches.BranchOut, "POST", f"/branches/{domain}/sync")

    def delete_branch(self, domain: str) -> None:
        self._do("DELETE", f"/branches/{domain}")

    # 18. Вебхуки --------------------------------------------------------------------------------

    def list_webhooks(self) -> list[webhooks.WebhookOut]:
        return self._many(webhooks.WebhookOut, "/webhook")

    def create_webhook(self, webhook: webhooks.WebhookCreate | Mapping[str, Any]) -> None:
        self._do("POST", "/webhook", json=body_of(webhook))

    def delete_webhook(self, webhook_id: int | str) -> None:
        self._do("DELETE", f"/webhook/{webhook_id}")

    # The legacy command API (000/004: /sys/crm_api.wcgp, cmd= and token=) ------------------------

    def _legacy(self, cmd: str, **params: Any) -> httpx.Response:
        if not self.legacy_token:
            raise ValueError("the legacy API needs legacy_token=")
        form = {"cmd": cmd, "token": self.legacy_token, **{k: v for k, v in params.items() if v is not None}}
        # A POST: retried on 429 only, as a 5xx may come after the command took effect.
        return self.request("POST", LEGACY, data=form)

    def legacy_accounts(self) -> list[dict[str, Any]]:
        """``accounts``: every employee (``name``, ``realName``, ``ext``, ``telnum``...)."""
        return list(decode(self._legacy("accounts")) or [])

    def legacy_groups(self, user: str | None = None) -> list[dict[str, Any]]:
        """``groups``: every department (``id``, ``realName``, ``ext``), or ``user``'s."""
        return list(decode(self._legacy("groups", user=user)) or [])

    def legacy_history(self, *, period: str | None = None, start: When = None, end: When = None,
                             type: str | None = None, limit: int | None = None) -> Iterator[str]:
        """``history``: CSV lines ``UID,type,client,account,via,start,wait,duration,record[,rating]``, streamed."""
        if not self.legacy_token:
            raise ValueError("the legacy API needs legacy_token=")
        form = query(cmd="history", token=self.legacy_token, period=period, start=start, end=end, type=type,
                     limit=limit)
        with self.http.stream("POST", LEGACY, data=form) as response:
            if response.status_code >= 400:
                response.read()
                raise_for(response)
            for line in response.iter_lines():
                if line:
                    yield line

    def legacy_make_call(self, user: str, phone: str, clid: str | None = None) -> str:
        """``makeCall``: ``user`` (login, extension or direct number) is rung first, then ``phone``; the call id."""
        answer = decode(self._legacy("makeCall", user=user, phone=phone, clid=clid))
        return str(answer["CallID"])

    def legacy_subscribe_on_calls(self, user: str, on: bool, group: str | None = None) -> None:
        """``subscribeOnCalls``: in ``group`` (sent as both ``group_id`` of 000 and ``group`` of 004), else in all."""
        self._legacy("subscribeOnCalls", user=user, status="on" if on else "off", group_id=group, group=group)

    def legacy_subscription_status(self, user: str, group: str | None = None) -> bool:
        answer = decode(self._legacy("subscriptionStatus", user=user, group_id=group, group=group))
        return isinstance(answer, dict) and answer.get("status") == "on"

    def legacy_set_dnd(self, user: str, on: bool) -> None:
        self._legacy("set_dnd", user=user, state="true" if on else "false")

    def legacy_get_dnd(self, user: str) -> bool:
        answer = decode(self._legacy("get_dnd", user=user))
        return isinstance(answer, dict) and answer.get("state") is True


def _behaviour(auto: Behaviour) -> dict[str, Any]:
    return dict(body_of(auto))


class Sim:
    """The simulator (``/sim/v1``, design/simulator.md) through the client's key: ``client.sim``.

    Calls answer a ``SimCall`` (the call after the action: after a blind transfer, the part that goes on).
    Errors are the client's: 404 ``NotFound``, 409 ``Conflict`` (the call is over, the clock is real), 400
    ``ValidationError``.
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return decode(self.client.request(method, SIM + path, **kwargs))

    def _one(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate(self._json(method, path, **kwargs))

    # calls ----------------------------------------------------------------------------------------

    def place(self, from_: str, to: str) -> SimCall:
        """Dial: a client (``79101234567``, ``anonymous``) calls a domain number; ``user:<login|ext>`` calls
        ``user:<login|ext>`` (internal) or an outside number (outgoing)."""
        return self._one(SimCall, "POST", "/calls", json={"from": from_, "to": to})

    def list_calls(self) -> list[SimCall]:
        """The live calls of the domain."""
        return TypeAdapter(list[SimCall]).validate_python(self._json("GET", "/calls"))

    def get_call(self, callid: str) -> SimCall:
        """One call, live or ended."""
        return self._one(SimCall, "GET", f"/calls/{callid}")

    def answer(self, callid: str, user: str | None = None) -> SimCall:
        """``user`` picks up; without ``user``, the client of an outgoing call answers."""
        return self._one(SimCall, "POST", f"/calls/{callid}/answer", json={"user": user})

    def reject(self, callid: str, user: str | None = None, *, reason: str | None = None) -> SimCall:
        """``user`` declines (busy); without ``user``, the client of an outgoing call refuses (``reason``:
        ``busy``, ``unavailable`` or ``notfound``)."""
        return self._one(SimCall, "POST", f"/calls/{callid}/reject", json={"user": user, "reason": reason})

    def hangup(self, callid: str, by: str = "client") -> SimCall:
        """``client`` or an employee's login hangs up."""
        return self._one(SimCall, "POST", f"/calls/{callid}/hangup", json={"by": by})

    def dtmf(self, callid: str, digits: str) -> SimCall:
        """The client presses keys (IVR, rating, the callback offer)."""
        return self._one(SimCall, "POST", f"/calls/{callid}/dtmf", json={"digits": digits})

    def transfer(self, callid: str, user: str, to: str, mode: str = "blind") -> SimCall:
        """``user`` transfers the client to ``to`` (login, extension, department or outside number).

        ``blind``: the answer is the new call the client is on. ``attended``: the answer's ``consult`` is the
        call ``user`` places to the target; ``user`` hanging up (``hangup(callid, by=user)``) completes it."""
        return self._one(SimCall, "POST", f"/calls/{callid}/transfer",
                               json={"user": user, "to": to, "mode": mode})

    def rate(self, callid: str, rating: int) -> SimCall:
        """The client's score (1-5) after the conversation, on a number or department that asks for one."""
        return self._one(SimCall, "POST", f"/calls/{callid}/rate", json={"rating": rating})

    # whole flows, for a CRM's tests ----------------------------------------------------------------

    def _first_ringing(self, call: SimCall) -> str:
        ringing = call.ringing
        if not ringing:
            raise Conflict(409, f"nobody rings on call {call.callid} (state {call.state})")
        return ringing[0]

    def click_to_call(self, phone: str, user: str, *, client_answers: bool = True,
                            clid: str | None = None) -> SimCall:
        """Click-to-call as a CRM places it (002 §5.1 ``make_call``): ``user``'s phone rings and ``user`` picks
        up, then ``phone`` rings and (``client_answers``) answers at once; the call, talking."""
        placed = self.client.make_call(phone, user=user, clid=clid)
        self.answer(placed.callid, user)
        if client_answers:
            return self.answer(placed.callid)
        return self.get_call(placed.callid)

    def attended_transfer(self, callid: str, user: str, to: str, *, target_answers: bool = True) -> SimCall:
        """``user`` consults ``to`` (an employee, a department or an outside number) while the client waits;
        the target picks up (``target_answers``; else the transfer goes on blind) and ``user`` hangs up, which
        completes the transfer. The client's call afterwards."""
        consulting = self.transfer(callid, user, to, mode="attended")
        if consulting.consult is None:
            raise Conflict(409, f"call {callid} has no consultation call")
        if target_answers:
            consult = self.get_call(consulting.consult)
            target = self._first_ringing(consult)
            self.answer(consult.callid, None if target.startswith("ext:") else target)
        return self.hangup(callid, by=user)

    def rated_call(self, from_: str, to: str, rating: int, *, talk: float = 0, ask: bool = True) -> SimCall:
        """A client calls ``to``, the first employee rung answers, talks ``talk`` seconds (virtual clock) and
        hangs up; the client gives ``rating``. ``ask``: first make ``to`` ask for scores (``set_rating``)."""
        if ask:
            asked = self.client.get_rating()
            if to not in asked.telnums:
                self.client.set_rating(telnums=[*asked.telnums, to])
        call = self.place(from_, to)
        user = self._first_ringing(call)
        self.answer(call.callid, user)
        if talk:
            self.advance(talk)
        self.hangup(call.callid, by=user)
        return self.rate(call.callid, rating)

    # phones, outside numbers, trunks ---------------------------------------------------------------

    def set_device(self, login: str, *, registered: bool = True,
                         auto: Behaviour | None = None) -> SimDevice:
        """An employee's phone: registered or not, and what it does when rung (``answer``, ``reject``,
        ``ignore`` after ``after`` s, hanging up after ``talk`` s); ``auto=None`` is a person's phone."""
        body: dict[str, Any] = {"registered": registered}
        if auto is not None:
            body["auto"] = _behaviour(auto)
        return self._one(SimDevice, "PUT", f"/devices/{login}", json=body)

    def get_externals(self) -> SimExternals:
        """How outside numbers behave: the domain's default and the numbers set one by one."""
        return self._one(SimExternals, "GET", "/externals")

    def set_externals_default(self, auto: Behaviour) -> SimExternals:
        """How every outside number not set one by one behaves (built in: answer after 3 s, talk 30 s;
        ``talk=None`` never hangs up)."""
        return self._one(SimExternals, "PUT", "/externals", json={"auto": _behaviour(auto)})

    def reset_externals_default(self) -> SimExternals:
        """Back to the built-in default."""
        return self._one(SimExternals, "DELETE", "/externals")

    def get_external(self, phone: str) -> SimExternal:
        return self._one(SimExternal, "GET", f"/externals/{phone}")

    def set_external(self, phone: str, auto: Behaviour) -> SimExternal:
        """How ``phone`` behaves when the PBX calls it: ``answer``, ``busy``, ``unavailable``, ``notfound``,
        ``ignore``."""
        return self._one(SimExternal, "PUT", f"/externals/{phone}", json={"auto": _behaviour(auto)})

    def delete_external(self, phone: str) -> SimExternal:
        """``phone`` follows the default again."""
        return self._one(SimExternal, "DELETE", f"/externals/{phone}")

    def set_sip_registration_status(self, telnum: str, status: str) -> sipregs.SipRegOut:
        """Play the operator's answer to a SIP registration (002 §15): ``success``, ``waiting``, ``error``,
        ``auth_failed``, ``timeout``, ``forbidden``; a failure emits ``sipregs_error`` webhooks."""
        return self._one(sipregs.SipRegOut, "PUT", f"/sip-registrations/{telnum}", json={"status": status})

    # the clock ------------------------------------------------------------------------------------

    def get_clock(self) -> SimClock:
        """The virtual clock (``Conflict`` on a real-clock server)."""
        return self._one(SimClock, "GET", "/clock")

    def advance(self, seconds: float) -> SimClock:
        """Move the virtual clock, running every timer due (rings time out, calls go on). The clock is shared by
        every domain of the server: it needs the client's ``operator_key`` (else ``Forbidden``)."""
        return self._one(SimClock, "POST", "/clock/advance", json={"seconds": seconds})

    # the delivery log -----------------------------------------------------------------------------

    def list_deliveries(self, *, callid: str | None = None, command: str | None = None,
                              state: str | None = None, start: int = 0, limit: int | None = None) -> SimDeliveryList:
        """The PBX->CRM notifications and their attempts (``command``: history, event, rating, webhook;
        ``state``: pending, delivered, failed)."""
        return self._one(SimDeliveryList, "GET", "/deliveries", params=query(
            callid=callid, command=command, state=state, start=start or None, limit=limit))

    def iter_deliveries(self, *, callid: str | None = None, command: str | None = None,
                              state: str | None = None, page_size: int | None = None) -> Iterator[SimDelivery]:
        start: int | None = 0
        while start is not None:
            page = self.list_deliveries(callid=callid, command=command, state=state, start=start,
                                              limit=page_size or self.client.page_size)
            yield from page.items
            start = page.info.next

    def get_delivery(self, delivery_id: int) -> SimDelivery:
        return self._one(SimDelivery, "GET", f"/deliveries/{delivery_id}")

    def replay_delivery(self, delivery_id: int) -> SimDelivery:
        """Send the notification again now, with the same id and body (a deduplicating CRM sees a duplicate)."""
        return self._one(SimDelivery, "POST", f"/deliveries/{delivery_id}/replay")

    def test_deliveries(self, count: int = 1) -> SimTestLoad:
        """Diagnostics: enqueue ``count`` synthetic INCOMING events to the domain's CRM."""
        return self._one(SimTestLoad, "POST", "/deliveries/test", json={"count": count})

    # generated traffic ----------------------------------------------------------------------------

    def start_traffic(self, calls_per_minute: float, duration_s: float, *, seed: int | None = None,
                            numbers: Iterable[str] | None = None, users: Iterable[str] | None = None,
                            answer_probability: float | None = None, answer_after: tuple[float, float] | None = None,
                            talk: tuple[float, float] | None = None, patience: tuple[float, float] | None = None,
                            outgoing_share: float | None = None, clients: int | None = None) -> TrafficStatus:
        """Start a run of random clients calling the domain's numbers (one run per domain at a time)."""
        options: dict[str, Any] = {
            "seed": seed, "numbers": None if numbers is None else list(numbers),
            "users": None if users is None else list(users), "answer_probability": answer_probability,
            "answer_after": None if answer_after is None else list(answer_after),
            "talk": None if talk is None else list(talk), "patience": None if patience is None else list(patience),
            "outgoing_share": outgoing_share, "clients": clients}
        body = {"calls_per_minute": calls_per_minute, "duration_s": duration_s,
                **{k: v for k, v in options.items() if v is not None}}
        return self._one(TrafficStatus, "POST", "/traffic", json=body)

    def traffic(self, *, calls: bool = False) -> TrafficStatus:
        """The current (or last) run; ``calls=True`` lists its calls."""
        return self._one(TrafficStatus, "GET", "/traffic", params=query(calls=calls or None))

    def stop_traffic(self) -> TrafficStatus:
        """No more calls; the calls up finish by the PBX's rules."""
        return self._one(TrafficStatus, "DELETE", "/traffic")
