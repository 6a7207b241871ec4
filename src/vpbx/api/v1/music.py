"""002 §12.2–12.4: music on ringback and hold, and the media catalogue (with vpbx's upload)."""

from __future__ import annotations

from fastapi import Depends, File, Form, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from vpbx.api.auth import Principal, get_runtime, require
from vpbx.api.deps import get_session
from vpbx.api.errors import TOO_LARGE, ApiError
from vpbx.api.middleware import BodyLimit
from vpbx.api.responses import json_response, no_content
from vpbx.api.v1.section import section
from vpbx.runtime import Runtime
from vpbx.schemas.media import MediaFileOut, MusicOut, MusicSet, MusicType
from vpbx.services import media

router = section("12. Настройки домена")

CATALOG = "/media-catalog/"
# The upload's multipart body: the file plus its headers and boundaries.
BodyLimit.PATH_LIMITS["/crmapi/v1" + CATALOG] = media.MAX_MEDIA_BYTES + 64 * 1024

STANDARD = ", ".join(f"`{k}` ({v})" for k, v in media.STANDARD_FILES.items())


@router.get("/music", response_model=MusicOut, summary="12.2 Получение настроек мелодий")
async def get_music(
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await media.music(session, principal.domain_id))


@router.post("/music/{type}", status_code=204, summary="12.3 Установка мелодии на дозвоне и удержании",
             description=f"`type`: `ringback` or `holdmusic`. `file`: an id or name from the catalogue (12.4) or a "
                         f"standard file: {STANDARD}.")
async def set_music(
    type: MusicType,
    body: MusicSet,
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    await media.set_music(session, principal.domain_id, type, body.file)
    await session.commit()
    return no_content()


@router.get(CATALOG + "{type}", response_model=list[MediaFileOut], summary="12.4 Каталог медиа файлов",
            description="The files uploaded for `type` (`ringback` or `holdmusic`), oldest first.")
async def get_catalog(
    type: MusicType,
    principal: Principal = Depends(require("more.get")),
    session: AsyncSession = Depends(get_session),
) -> Response:
    return json_response(await media.catalog(session, principal.domain_id, type))


@router.post(CATALOG + "{type}", response_model=MediaFileOut, status_code=201,
             summary="vpbx extension: загрузка медиа файла в каталог",
             description="multipart/form-data with `file` (wav, mp3 or ogg, at most 10 MiB) and optionally `name` "
                         "(the name shown; default the file's name). Answers the new catalogue entry.")
async def upload(
    type: MusicType,
    file: UploadFile = File(...),
    name: str | None = Form(None),
    principal: Principal = Depends(require("more.edit")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    data = await file.read(media.MAX_MEDIA_BYTES + 1)
    if len(data) > media.MAX_MEDIA_BYTES:
        raise ApiError(413, TOO_LARGE)
    created = await media.add(session, principal.domain_id, type, name or file.filename or "", data,
                              runtime.settings.home, runtime.clock.now())
    await session.commit()
    return json_response(media.media_out(created), 201)


@router.delete(CATALOG + "{type}/{id}", status_code=204, summary="vpbx extension: удаление медиа файла",
               description="Music set to this file goes back to the standard melody.")
async def delete_file(
    type: MusicType,
    id: str,
    principal: Principal = Depends(require("more.delete")),
    session: AsyncSession = Depends(get_session),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    path = await media.delete(session, principal.domain_id, type, id, runtime.settings.home)
    await session.commit()
    media.remove_file(path)
    return no_content()
