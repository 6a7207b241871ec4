"""Music on ringback and hold (002 §12.2, §12.3) and the media catalogue (§12.4)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from vpbx.schemas.common import Model

MusicType = Literal["ringback", "holdmusic"]


class MusicFileOut(BaseModel):
    file: str = Field(description="File id: a standard file's id or an uploaded file's id")
    name: str = Field(description="The file's name in the interface")
    uploaded: bool = Field(description="Uploaded from a computer (not a standard file)")


class MusicOut(BaseModel):
    ringback: MusicFileOut
    holdmusic: MusicFileOut


class MusicSet(Model):
    file: str = Field(..., min_length=1, description="A file id or name from the catalogue, or a standard file")


class MediaFileOut(BaseModel):
    id: str
    name: str
