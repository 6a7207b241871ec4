"""SIP URI transfers: another operator's number forwarded to a SIP address of this PBX (002 §16)."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from vpbx.schemas.common import ListInfo, Model
from vpbx.schemas.sipregs import check_telnum


class SipUriUpdate(Model):
    active: bool | None = None


class SipUriCreate(Model):
    telnum: str = Field(..., description="The other operator's number")
    active: bool = True

    _v_telnum = field_validator("telnum")(check_telnum)


class SipUriOut(BaseModel):
    telnum: str
    active: bool
    uri: str = Field(..., description="The generated, unguessable SIP address: pbx-<random>@<domain>")


class SipUriList(BaseModel):
    items: list[SipUriOut]
    info: ListInfo
