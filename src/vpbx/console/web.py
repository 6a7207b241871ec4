"""What every cabinet page shares: the templates, the signed-in viewer, rights, CSRF and field errors.

A viewer is the same ``Principal`` an API key gives (``api.auth``): an employee's session carries the rights of
the employee's role, an API key's session those of the key. Pages check rights with ``need``.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from vpbx.api.auth import Principal, role_rights
from vpbx.api.errors import pydantic_errors
from vpbx.api.routing import Route
from vpbx.console import PREFIX
from vpbx.console.messages import DEFAULT, LANGUAGES, translate
from vpbx.runtime import Runtime
from vpbx.security import key_hash
from vpbx.services.errors import Forbidden, Invalid, NotFound
from vpbx.store.repositories import console as sessions_repo
from vpbx.store.repositories import directory as dir_repo
from vpbx.store.tables import ApiKey, Domain
from vpbx.telephony.sim import SimTelephony

__all__ = ["PREFIX", "Depends", "Request", "Response"]  # re-exported for the page modules

SESSION_COOKIE = "vpbx_console"
LANG_COOKIE = "vpbx_lang"
HERE = Path(__file__).parent

env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True,
                  lstrip_blocks=True)
templates = Jinja2Templates(env=env)


class SignInRequired(Exception):
    pass


class CsrfRefused(Exception):
    pass


@dataclass
class Viewer:
    principal: Principal
    login: str | None  # None: an API key's session
    name: str
    role: str
    csrf: str
    token_hash: str

    def can(self, right: str) -> bool:
        return self.principal.can(right)

    @property
    def is_admin(self) -> bool:
        """Full rights: the integration, API keys and the legacy token are the domain owner's."""
        return self.principal.rights is None


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def wall_now() -> datetime:
    # Sessions and sign-in limits live in real time: advancing the simulator's virtual clock must not sign
    # anyone out (the one clock drives calls, not browser sessions).
    return datetime.now(UTC)


def lang_of(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT)
    return lang if lang in LANGUAGES else DEFAULT


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https" or runtime_of(request).settings.tls_cert is not None


def url(path: str = "") -> str:
    return PREFIX + path


async def load_viewer(request: Request, session: AsyncSession) -> Viewer:
    """The signed-in viewer, or SignInRequired. Re-read each request: a deleted employee, a changed role or a
    revoked key takes effect at once."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise SignInRequired
    digest = key_hash(token)
    row = await sessions_repo.by_token(session, digest, wall_now())
    if row is None:
        raise SignInRequired
    domain = await session.get(Domain, row.domain_id)
    if domain is None:
        raise SignInRequired
    if row.login is not None:
        user = await dir_repo.find_user(session, domain.id, row.login)
        if user is None:
            raise SignInRequired
        rights = await role_rights(session, domain.id, user.role)
        principal = Principal(domain.id, domain.name, domain.timezone, 0, rights)
        viewer = Viewer(principal, user.login, user.name, user.role, row.csrf, digest)
    else:
        key = await session.get(ApiKey, row.key_id)
        if key is None or key.revoked_at is not None:
            raise SignInRequired
        rights = None if key.role is None else await role_rights(session, domain.id, key.role)
        principal = Principal(domain.id, domain.name, domain.timezone, key.id, rights)
        viewer = Viewer(principal, None, f"API {key.prefix}…", key.role or "admin", row.csrf, digest)
    request.state.viewer = viewer
    return viewer


async def viewer(request: Request) -> Viewer:
    """Dependency: the signed-in viewer (GET pages)."""
    async with runtime_of(request).sessions() as session:
        return await load_viewer(request, session)


async def checked(request: Request) -> Viewer:
    """Dependency for every state-changing request: signed in AND carrying the session's CSRF token (a hidden
    ``csrf`` field in forms, the ``X-CSRF-Token`` header in htmx requests)."""
    found = await viewer(request)
    sent = request.headers.get("x-csrf-token", "")
    if not sent and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = str((await request.form()).get("csrf", ""))
    if not sent or not hmac.compare_digest(sent.encode(), found.csrf.encode()):
        raise CsrfRefused
    return found


def need(who: Viewer, right: str) -> None:
    if not who.can(right):
        raise Forbidden


def need_admin(who: Viewer) -> None:
    if not who.is_admin:
        raise Forbidden


def new_token() -> str:
    return secrets.token_urlsafe(32)


def field_errors(exc: Invalid | ValidationError) -> dict[str, str]:
    """The API's field errors (002 §3.3 ``errors``) as field -> message, for showing next to each field."""
    if isinstance(exc, Invalid):
        return {exc.field: exc.message}
    return {e["field"]: e["message"] for e in pydantic_errors(exc.errors())}


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    lang = lang_of(request)
    who: Viewer | None = getattr(request.state, "viewer", None)
    ctx: dict[str, Any] = {
        "t": lambda text: translate(lang, text),
        "lang": lang,
        "viewer": who,
        "csrf": who.csrf if who else "",
        "url": url,
        "path": request.url.path,
        "simulator": isinstance(runtime_of(request).telephony, SimTelephony),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status)


def redirect(path: str, request: Request | None = None) -> Response:
    """After a form: back to a page (htmx follows HX-Redirect; a plain form follows 303)."""
    if request is not None and request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": path})
    return RedirectResponse(path, status_code=303)


class ConsoleRoute(Route):
    """Cabinet routes answer in HTML: sign-in redirects, 403/404 pages; the API's JSON handlers stay the API's."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": url("/signin")})
                return RedirectResponse(url("/signin"), status_code=303)
            except CsrfRefused:
                return render(request, "error.html", {"title": "Сессия устарела, обновите страницу"}, 403)
            except Forbidden:
                return render(request, "error.html", {"title": "Нет доступа",
                                                      "text": "Недостаточно прав для этой страницы"}, 403)
            except NotFound:
                return render(request, "error.html", {"title": "Не найдено"}, 404)

        return route


async def attempt(request: Request, work: Callable[[AsyncSession], Coroutine[Any, Any, Any]],
                  strip: str = "") -> dict[str, str]:
    """Run one service change in its own transaction and commit it; the API's field errors (``Invalid``, a
    schema's ``ValidationError``) come back as field -> message, with nothing written. ``strip`` drops a prefix
    the API's body path adds (``0.`` of a one-item list)."""
    try:
        async with runtime_of(request).sessions() as session:
            await work(session)
            await session.commit()
    except (ValidationError, Invalid) as exc:
        return {k.removeprefix(strip) if strip else k: v for k, v in field_errors(exc).items()}
    return {}


def text(form: Any, name: str) -> str:
    """A form field as stripped text ("" when absent)."""
    return str(form.get(name, "") or "").strip()
