"""Media files (002 §12.4) and the music on ringback and hold (§12.2, §12.3).

Standard files are built in (no upload, same for every domain); uploaded files are checked (wav, mp3 or
ogg by their first bytes, at most 10 MiB), decoded and converted once to an 8 kHz mono 16-bit WAV (what
rtpengine plays; :mod:`vpbx.services.audio`) and stored under ``<home>/media/<domain_id>/<file id>.wav``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services import audio, settings
from vpbx.services.errors import Invalid, NotFound
from vpbx.store.repositories import settings as repo
from vpbx.store.tables import MediaFile

MUSIC_TYPES = ("ringback", "holdmusic")
MAX_MEDIA_BYTES = 10 * 1024 * 1024

# Standard files: id -> name shown in the interface (002 §12.2's example sets "holdmusic" = "Утренняя волна").
STANDARD_FILES: dict[str, str] = {
    "ringback": "Гудки",
    "holdmusic": "Утренняя волна",
}
# What a domain plays until told otherwise (and after its uploaded file is deleted).
DEFAULT_MUSIC = {"ringback": "ringback", "holdmusic": "holdmusic"}


def check_type(type_: str) -> str:
    if type_ not in MUSIC_TYPES:
        raise Invalid("type", f"the type is one of {', '.join(MUSIC_TYPES)}")
    return type_


def sniff_format(head: bytes) -> str | None:
    """wav / mp3 / ogg by magic bytes, else None."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3":
        return "mp3"
    # A bare MPEG audio frame: 11 sync bits, a defined version and layer.
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and (head[1] >> 3) & 3 != 1 \
            and (head[1] >> 1) & 3 != 0:
        return "mp3"
    return None


def clean_name(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())
    return base[:255]


def media_dir(home: Path, domain_id: int) -> Path:
    return home / "media" / str(domain_id)


def media_path(home: Path, media: MediaFile) -> Path:
    return media_dir(home, media.domain_id) / f"{media.file_id}.{media.format}"


def media_out(m: MediaFile) -> dict[str, str]:
    return {"id": m.file_id, "name": m.name}


async def catalog(session: AsyncSession, domain_id: int, type_: str) -> list[dict[str, str]]:
    return [media_out(m) for m in await repo.list_media(session, domain_id, check_type(type_))]


async def add(session: AsyncSession, domain_id: int, type_: str, name: str, data: bytes, home: Path,
              now: datetime) -> MediaFile:
    """Check and store an uploaded file; the caller commits (the file is written before the row)."""
    check_type(type_)
    if not data:
        raise Invalid("file", "the file is empty")
    if len(data) > MAX_MEDIA_BYTES:
        raise Invalid("file", "the file is larger than 10 MiB")
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise Invalid("file", "not a wav, mp3 or ogg audio file")
    display = clean_name(name) or f"{type_}.{fmt}"
    # Converted once, here, to what the media path plays (8 kHz mono 16-bit WAV); a file that does not decode
    # is refused before anything is written.
    try:
        data = await asyncio.to_thread(audio.convert_to_wav8k, data, fmt)
    except audio.AudioError as exc:
        raise Invalid("file", str(exc)) from exc
    media = MediaFile(domain_id=domain_id, file_id=f"{uuid.uuid4()}_{uuid.uuid4()}", type=type_, name=display,
                      format="wav", size=len(data), created_at=now)
    path = media_path(home, media)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    session.add(media)
    await session.flush()
    return media


async def delete(session: AsyncSession, domain_id: int, type_: str, file_id: str, home: Path) -> Path:
    """Remove an uploaded file's row (music using it falls back to the default); returns the path to unlink
    once committed."""
    media = await repo.find_media(session, domain_id, file_id)
    if media is None or media.type != check_type(type_):
        raise NotFound("media")
    path = media_path(home, media)
    await session.delete(media)
    await session.flush()
    return path


def remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


# --- §12.2 / §12.3 music ------------------------------------------------------------------------

@dataclass(frozen=True)
class Music:
    file: str
    name: str
    uploaded: bool
    media: MediaFile | None = None

    def out(self) -> dict[str, Any]:
        return {"file": self.file, "name": self.name, "uploaded": self.uploaded}


async def music_of(session: AsyncSession, domain_id: int, type_: str) -> Music:
    """The melody the domain plays for ``type_`` (for the engine and §12.2)."""
    row = await repo.domain_settings(session, domain_id)
    media = await repo.media_by_pk(session, settings.setting(row, f"{type_}_media_id"))
    if media is not None:
        return Music(media.file_id, media.name, True, media)
    standard = settings.setting(row, f"{type_}_standard")
    if standard not in STANDARD_FILES:
        standard = DEFAULT_MUSIC[type_]
    return Music(standard, STANDARD_FILES[standard], False)


async def music(session: AsyncSession, domain_id: int) -> dict[str, Any]:
    return {t: (await music_of(session, domain_id, t)).out() for t in MUSIC_TYPES}


async def set_music(session: AsyncSession, domain_id: int, type_: str, file: str) -> None:
    """``file``: a standard file's id or name, or an uploaded file's id or name (002 §12.3)."""
    check_type(type_)
    file = file.strip()
    standard: str | None = None
    media: MediaFile | None = None
    if file in STANDARD_FILES:
        standard = file
    elif (media := await repo.find_media(session, domain_id, file)) is None:
        by_name = [k for k, v in STANDARD_FILES.items() if v.casefold() == file.casefold()]
        if by_name:
            standard = by_name[0]
        else:
            named = await repo.media_by_name(session, domain_id, file)
            if len(named) > 1:
                raise Invalid("file", f"several files are named '{file}': give the file id")
            if not named:
                raise Invalid("file", f"no file '{file}' in the catalogue or among the standard files")
            media = named[0]
    row = await settings.for_update(session, domain_id)
    setattr(row, f"{type_}_standard", standard)
    setattr(row, f"{type_}_media_id", None if media is None else media.id)
    await session.flush()
