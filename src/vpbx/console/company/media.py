"""Company → music and media files (002 §12.2-12.4): the melody on ringback and on hold, the catalogue of
uploaded files per type (upload, play in the page, delete). Calls ``services.media`` as the API does; uploads
get the API's size limit."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse, Response

from vpbx.api.middleware import BodyLimit
from vpbx.console import web
from vpbx.console.web import Viewer, checked, need, render, viewer
from vpbx.schemas.media import MusicSet
from vpbx.services import media
from vpbx.services.errors import NotFound
from vpbx.store.repositories import settings as settings_repo

router = APIRouter(route_class=web.ConsoleRoute)
UPLOAD = "/console/media/upload"
BodyLimit.PATH_LIMITS[UPLOAD] = media.MAX_MEDIA_BYTES + 64 * 1024  # the file plus the form's other fields
TYPES = [("ringback", "Мелодия на дозвоне"), ("holdmusic", "Мелодия на удержании")]
AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg"}


async def _page(request: Request, who: Viewer, errors: dict[str, str] | None = None, form: str = "",
                notice: str | None = None) -> Response:
    async with web.runtime_of(request).sessions() as session:
        music = await media.music(session, who.principal.domain_id)
        catalogs = {t: await media.catalog(session, who.principal.domain_id, t) for t, _ in TYPES}
    choices = {t: [(k, v) for k, v in media.STANDARD_FILES.items()] + [(f["id"], f["name"]) for f in catalogs[t]]
               for t, _ in TYPES}
    return render(request, "media.html", {"title": "Музыка и медиафайлы", "music": music, "catalogs": catalogs,
                                          "choices": choices, "types": TYPES, "errors": errors or {},
                                          "form": form, "notice": notice}, 400 if errors else 200)


@router.get("/console/media", include_in_schema=False)
async def index(request: Request, notice: str = "", who: Viewer = Depends(viewer)) -> Response:
    need(who, "more.get")
    return await _page(request, who, notice="Сохранено" if notice == "saved" else None)


@router.post("/console/media/music/{type_}", include_in_schema=False)
async def set_music(request: Request, type_: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.edit")
    form = await request.form()

    async def work(session: AsyncSession) -> None:
        body = MusicSet(file=web.text(form, "file"))
        await media.set_music(session, who.principal.domain_id, type_, body.file)

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, type_)
    return web.redirect(web.url("/media?notice=saved"), request)


@router.post(UPLOAD, include_in_schema=False)
async def upload(request: Request, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.edit")
    form = await request.form()
    runtime = web.runtime_of(request)
    type_ = web.text(form, "type")
    file = form.get("file")
    data = await file.read(media.MAX_MEDIA_BYTES + 1) if isinstance(file, UploadFile) else b""
    name = web.text(form, "name") or (file.filename if isinstance(file, UploadFile) else "") or ""

    async def work(session: AsyncSession) -> None:
        await media.add(session, who.principal.domain_id, type_, name, data, runtime.settings.home,
                        runtime.clock.now())

    errors = await web.attempt(request, work)
    if errors:
        return await _page(request, who, errors, "upload")
    return web.redirect(web.url("/media?notice=saved"), request)


@router.post("/console/media/{type_}/{file_id}/delete", include_in_schema=False)
async def delete(request: Request, type_: str, file_id: str, who: Viewer = Depends(checked)) -> Response:
    need(who, "more.delete")
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        path = await media.delete(session, who.principal.domain_id, type_, file_id, runtime.settings.home)
        await session.commit()
    media.remove_file(path)
    return web.redirect(web.url("/media?notice=saved"), request)


@router.get("/console/media/{file_id}/audio", include_in_schema=False)
async def audio(request: Request, file_id: str, who: Viewer = Depends(viewer)) -> Response:
    """An uploaded file, for the page's audio player (the domain's own files only)."""
    need(who, "more.get")
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        found = await settings_repo.find_media(session, who.principal.domain_id, file_id)
    path = media.media_path(runtime.settings.home, found) if found is not None else None
    if found is None or path is None or not path.is_file():
        raise NotFound("media")
    return FileResponse(path, media_type=AUDIO_TYPES.get(found.format, "application/octet-stream"),
                        headers={"Cache-Control": "private, max-age=3600"})
