"""A small CRM-side client of the legacy command API, written from 000/001/004 §5 alone.

It does what those documents tell a CRM developer: POST ``cmd`` and ``token`` with the command's
parameters as form fields to ``https://domain/sys/crm_api.wcgp``; read JSON answers, except
``history`` which answers CSV ``UID,type,client,account,via,start,wait,duration,record``. It knows
nothing of REST v1 or of vpbx's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

PATH = "/sys/crm_api.wcgp"
HISTORY_COLUMNS = ("UID", "type", "client", "account", "via", "start", "wait", "duration", "record")


class LegacyError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class HistoryRow:
    uid: str
    type: str
    client: str
    account: str
    via: str
    start: str
    wait: int
    duration: int
    record: str
    extra: tuple[str, ...] = ()  # columns after the nine documented ones (the rating)


class LegacyClient:
    def __init__(self, base_url: str, token: str) -> None:
        self.token = token
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def call(self, cmd: str, **params: str) -> httpx.Response:
        data = {"cmd": cmd, **params, "token": self.token}
        return self.http.post(PATH, data=data)

    def _json(self, cmd: str, **params: str) -> Any:
        r = self.call(cmd, **params)
        if r.status_code != 200:
            raise LegacyError(r.status_code, r.json())
        return r.json()

    # --- 000 §5 -----------------------------------------------------------------------------

    def accounts(self) -> list[dict[str, str]]:
        return list(self._json("accounts"))

    def groups(self, user: str | None = None) -> list[dict[str, str]]:
        return list(self._json("groups", **({"user": user} if user else {})))

    def subscribe_on_calls(self, user: str, on: bool, group_id: str | None = None) -> None:
        params = {"user": user, "status": "on" if on else "off"}
        if group_id:
            params["group_id"] = group_id
        r = self.call("subscribeoncalls", **params)
        if r.status_code != 200:
            raise LegacyError(r.status_code, r.json())
        assert r.text == "OK", r.text  # 000 §5.5 "200 OK"

    def subscription_status(self, user: str, group_id: str) -> bool:
        status = self._json("subscribtionstatus", user=user, group_id=group_id)["status"]
        assert status in ("on", "off"), status
        return bool(status == "on")

    def set_dnd(self, user: str, on: bool) -> None:
        r = self.call("set_dnd", user=user, state="true" if on else "false")
        if r.status_code != 200:
            raise LegacyError(r.status_code, r.json())
        assert r.text == "OK", r.text  # issue 13: the clients of both editions accept "OK"

    def get_dnd(self, user: str) -> bool:
        state = self._json("get_dnd", user=user)["state"]
        assert isinstance(state, bool), state
        return state

    def make_call(self, user: str, phone: str) -> str:
        return str(self._json("makeCall", user=user, phone=phone)["CallID"])

    def history(self, **params: str) -> list[HistoryRow]:
        r = self.call("history", **params)
        if r.status_code != 200:
            raise LegacyError(r.status_code, r.json())
        rows = []
        for line in r.text.split("\r\n"):
            if not line:
                continue
            cells = line.split(",")
            assert len(cells) >= len(HISTORY_COLUMNS), line
            uid, type_, client, account, via, start, wait, duration, record = cells[:9]
            rows.append(HistoryRow(uid, type_, client, account, via, start, int(wait), int(duration), record,
                                   tuple(cells[9:])))
        return rows
