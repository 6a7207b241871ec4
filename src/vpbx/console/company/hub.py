"""Company: the index of the company's pages, each shown when the viewer holds its right."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, render, viewer

router = APIRouter(route_class=web.ConsoleRoute)
# (path, title, the right that shows it, what it is)
AREAS = [
    ("/users", "Сотрудники", "users.get", "002 §6"),
    ("/groups", "Отделы", "groups.get", "002 §8"),
    ("/numbers", "Номера", "telnums.get", "Маршруты, расписание, голосовое меню, интервалы, особые дни (002 §9)"),
    ("/caller-ids", "Исходящие номера", "callerids.get", "002 §13"),
    ("/restrictions", "Ограничения звонков", "restrictions.get", "002 §14"),
    ("/blacklist", "Черный список", "blacklist.get", "002 §11"),
    ("/media", "Музыка и медиафайлы", "more.get", "002 §12.2–12.4"),
    ("/settings", "Настройки", "more.get", "Запись звонков, BLF, автоответчик (002 §12)"),
    ("/sip-registrations", "SIP-регистрации", "local_gw.get", "002 §15"),
    ("/sip-forwarding", "SIP-переадресация", "local_gw.get", "002 §16"),
    ("/branches", "Другие АТС", "branches.get", "002 §17"),
    ("/webhooks", "Вебхуки", "more.get", "002 §18"),
    ("/domain", "Параметры домена", "more.get", "Часовой пояс, ограничения, услуги (002 §12.1)"),
    ("/roles", "Дополнительные роли", "more.get", "002 §12.6"),
]


@router.get("/console/company", include_in_schema=False)
async def index(request: Request, who: Viewer = Depends(viewer)) -> Response:
    areas = [a for a in AREAS if who.can(a[2])]
    return render(request, "company.html", {"title": "Компания", "areas": areas})
