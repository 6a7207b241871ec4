"""Connections to other PBXs (002 §17)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from vpbx.schemas.common import ListInfo, Model
from vpbx.schemas.sipregs import check_host
from vpbx.schemas.webhooks import check_url

BRANCH_STATUSES = ("waiting", "success", "invalid_key", "forbidden", "unreachable", "error")


def check_domain(v: str | None) -> str | None:
    if v is None:
        return v
    v = check_host(v)
    if v is not None and (":" in v or v.startswith("[")):
        raise ValueError("a domain name such as example1.com, without a port")
    return v.rstrip(".") if v else v


class BranchUpdate(Model):
    domain: str | None = Field(None, description="The other PBX's domain")
    name: str | None = Field(None, min_length=1, max_length=255)
    key: SecretStr | None = Field(None, description="The other PBX's API key (write-only)")
    url: str | None = Field(None, description="Base URL of the other PBX when not https://{domain}; '' resets")

    _v_domain = field_validator("domain")(check_domain)

    @field_validator("key")
    @classmethod
    def _key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not 1 <= len(v.get_secret_value().strip()) <= 255:
            raise ValueError("a key is 1 to 255 characters")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return v if v == "" else check_url(v)


class BranchCreate(BranchUpdate):
    domain: str = Field(..., description="The other PBX's domain")  # type: ignore[assignment]
    name: str = Field(..., min_length=1, max_length=255)  # type: ignore[assignment]
    key: SecretStr = Field(..., description="The other PBX's API key (write-only)")  # type: ignore[assignment]


class BranchOut(BaseModel):
    name: str
    domain: str
    status: str = Field(..., description=f"One of {', '.join(BRANCH_STATUSES)}")
    users_count: int
    groups_count: int
    exts_count: int
    collisions_count: int = Field(..., description="The other PBX's extensions that are also used here")
    url: str | None = Field(None, description="Base URL override (vpbx extension)")
    error: str | None = Field(None, description="Why the last sync failed (vpbx extension)")


class BranchList(BaseModel):
    items: list[BranchOut]
    info: ListInfo
