"""Webhook subscriptions (002 §18)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from vpbx.schemas.common import Model

WebhookType = Literal["sipregs_error"]


def check_url(v: str | None) -> str | None:
    if v is None:
        return v
    if len(v) > 2048:
        raise ValueError("a URL is at most 2048 characters")
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http(s) URL is required")
    if any(c.isspace() for c in v):
        raise ValueError("not a valid URL")
    return v


class WebhookCreate(Model):
    type: WebhookType = "sipregs_error"
    url: str | None = Field(None, description="http(s) URL the events are posted to; left out (18.2 marks it "
                                              "optional): the domain's CRM URL")

    _v_url = field_validator("url")(check_url)


class WebhookOut(BaseModel):
    id: str
    type: str
    url: str
