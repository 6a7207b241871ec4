"""The blacklist (002 §11)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from vpbx.schemas.common import Model


class BlacklistIn(Model):
    telnum: str = Field(..., min_length=1, max_length=64, description="A number or a mask with '*'")
    comment: str = Field("", max_length=1024)


class BlacklistOut(BaseModel):
    telnum: str
    comment: str
    week: int | None = Field(None, description="With `with=statistics`: blocked calls in the last 7 days")
    year: int | None = Field(None, description="With `with=statistics`: blocked calls in the last 365 days")
