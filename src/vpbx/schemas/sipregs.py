"""SIP registrations: other operators' numbers this PBX registers for (002 §15)."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, SecretStr, field_validator

from vpbx.domain.phone import InvalidNumber, normalize_number
from vpbx.schemas.common import ListInfo, Model

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_RE = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{{1,5}}))?$")
# Trunk statuses reported by the telephony port (15.1 ``status``); the failure ones raise sipregs_error.
FAILURE_STATUSES = ("error", "auth_failed", "timeout", "forbidden")
STATUSES = ("success", "waiting", "disabled", *FAILURE_STATUSES)


def check_telnum(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        return normalize_number(v)
    except InvalidNumber as exc:
        raise ValueError("not a valid phone number") from exc


def check_host(v: str | None, *, empty_ok: bool = False) -> str | None:
    """A SIP host: a name or an IP address, with an optional port (``sip:`` prefix accepted)."""
    if v is None or (empty_ok and v == ""):
        return v
    text = v[4:] if v.lower().startswith("sip:") else v
    match = HOST_RE.match(text)
    if match is None or len(text) > 255:
        raise ValueError("a host name or IP address, with an optional :port")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError("a port is 1 to 65535")
    return text.lower()


class SipRegUpdate(Model):
    name: str | None = Field(None, min_length=1, max_length=255)
    domain: str | None = Field(None, description="The operator's SIP domain (host), optionally with :port")
    login: str | None = Field(None, min_length=1, max_length=255)
    password: SecretStr | None = Field(None, description="Write-only: stored encrypted, never returned")
    active: bool | None = None
    auth_name: str | None = Field(None, max_length=255)
    expires: int | None = Field(None, ge=30, le=86400, description="Re-registration period, seconds")
    proxy: str | None = Field(None, description="Outbound proxy host[:port]; empty for none")
    outgoing: bool | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        return check_host(v)

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, v: str | None) -> str | None:
        return check_host(v, empty_ok=True)

    @field_validator("password")
    @classmethod
    def _password(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not 1 <= len(v.get_secret_value()) <= 255:
            raise ValueError("a password is 1 to 255 characters")
        return v


class SipRegCreate(SipRegUpdate):
    telnum: str = Field(..., description="The other operator's number")
    name: str = Field(..., min_length=1, max_length=255)  # type: ignore[assignment]
    domain: str = Field(..., description="The operator's SIP domain (host), optionally with :port")  # type: ignore[assignment]
    login: str = Field(..., min_length=1, max_length=255)  # type: ignore[assignment]
    password: SecretStr = Field(..., description="Write-only: stored encrypted, never returned")  # type: ignore[assignment]
    active: bool = True  # type: ignore[assignment]
    auth_name: str = Field("", max_length=255)  # type: ignore[assignment]
    expires: int = Field(600, ge=30, le=86400)  # type: ignore[assignment]
    proxy: str = ""  # type: ignore[assignment]
    outgoing: bool = True  # type: ignore[assignment]

    _v_telnum = field_validator("telnum")(check_telnum)


class SipRegOut(BaseModel):
    telnum: str
    name: str
    active: bool
    domain: str
    expires: int
    auth_name: str
    proxy: str
    status: str = Field(..., description=f"One of {', '.join(STATUSES)}")
    outgoing: bool


class SipRegList(BaseModel):
    items: list[SipRegOut]
    info: ListInfo


class SimTrunkStatus(Model):
    status: str = Field(..., description=f"One of {', '.join(STATUSES)}")

    @field_validator("status")
    @classmethod
    def _status(cls, v: str) -> str:
        if v not in STATUSES:
            raise ValueError(f"one of {', '.join(STATUSES)}")
        return v
