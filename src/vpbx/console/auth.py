"""Sign-in (an employee's ``login@domain`` and password, 002 §6; or an API key), sign-out, sign-out everywhere.

The session lives in a random cookie (HttpOnly, SameSite=Lax, Secure under TLS) whose sha256 is a
``console_sessions`` row; the sign-in form itself is protected by a double-submit CSRF cookie.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from vpbx.api.errors import ApiError
from vpbx.console import web
from vpbx.console.web import Viewer, checked, render, url
from vpbx.security import key_hash
from vpbx.services import users
from vpbx.store.repositories import console as sessions_repo
from vpbx.store.repositories import tenancy as tenancy_repo
from vpbx.store.tables import ConsoleSession

router = APIRouter(route_class=web.ConsoleRoute)

SESSION_HOURS = 12
PRE_CSRF_COOKIE = "vpbx_signin_csrf"
# Failed sign-ins allowed per window, per login and per client address; past them even a right password waits.
WINDOW = 300.0
PER_LOGIN = 10
PER_ADDRESS = 30


class Throttle:
    """Failed sign-ins in a sliding window (in memory: one server process serves the cabinet)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._failures.setdefault(key, deque())
        while hits and hits[0] < now - WINDOW:
            hits.popleft()
        return hits

    def blocked(self, login: str, address: str) -> bool:
        now = time.monotonic()
        return (len(self._recent("l:" + login, now)) >= PER_LOGIN
                or len(self._recent("a:" + address, now)) >= PER_ADDRESS)

    def failed(self, login: str, address: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 100_000:
            self._failures.clear()
        self._recent("l:" + login, now).append(now)
        self._recent("a:" + address, now).append(now)


def throttle_of(request: Request) -> Throttle:
    extras = web.runtime_of(request).extras
    found = extras.get("console_throttle")
    if not isinstance(found, Throttle):
        found = extras["console_throttle"] = Throttle()
    return found


def _signin_page(request: Request, error: str = "", login: str = "", status: int = 200) -> Response:
    token = request.cookies.get(PRE_CSRF_COOKIE) or web.new_token()
    response = render(request, "signin.html", {"error": error, "login": login, "signin_csrf": token}, status)
    response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=web.is_tls(request),
                        path=url())
    return response


@router.get("/console", include_in_schema=False)
async def root() -> Response:
    return RedirectResponse(url("/"), status_code=303)


@router.get("/console/signin", include_in_schema=False)
async def signin_form(request: Request) -> Response:
    return _signin_page(request)


@router.post("/console/signin", include_in_schema=False)
async def signin(request: Request, login: str = Form(""), password: str = Form(""), api_key: str = Form(""),
                 csrf: str = Form("")) -> Response:
    cookie = request.cookies.get(PRE_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
        return _signin_page(request, "Сессия устарела, обновите страницу", login, 403)
    runtime = web.runtime_of(request)
    throttle = throttle_of(request)
    address = request.client.host if request.client else "-"
    who = login.strip().lower() if not api_key else "key:" + key_hash(api_key)[:16]
    if throttle.blocked(who, address):
        return _signin_page(request, "Слишком много попыток входа, повторите позже", login, 429)
    async with runtime.sessions() as session:
        row: ConsoleSession | None = None
        now = web.wall_now()
        expires = now + timedelta(hours=SESSION_HOURS)
        if api_key:
            try:
                principal = await runtime.auth.principal(runtime, api_key.strip())
            except ApiError:
                principal = None
            if principal is not None:
                row = ConsoleSession(token_hash="", domain_id=principal.domain_id, login=None,
                                     key_id=principal.key_id, csrf=web.new_token(), created_at=now, expires_at=expires)
        else:
            name, _, domain_name = login.strip().rpartition("@")
            domain = await tenancy_repo.domain_by_name(session, domain_name.lower()) if name else None
            user = await users.authenticate(session, domain.id, name, password) if domain else None
            if domain is not None and user is not None:
                row = ConsoleSession(token_hash="", domain_id=domain.id, login=user.login, key_id=None,
                                     csrf=web.new_token(), created_at=now, expires_at=expires)
        if row is None:
            throttle.failed(who, address)
            return _signin_page(request, "Неверный API-ключ" if api_key else "Неверный логин или пароль", login, 401)
        token = web.new_token()
        row.token_hash = key_hash(token)
        await sessions_repo.purge_expired(session, now)
        await sessions_repo.add(session, row)
        await session.commit()
    response = RedirectResponse(url("/"), status_code=303)
    response.set_cookie(web.SESSION_COOKIE, token, max_age=SESSION_HOURS * 3600, httponly=True, samesite="lax",
                        secure=web.is_tls(request), path=url())
    response.delete_cookie(PRE_CSRF_COOKIE, path=url())
    return response


def _signed_out() -> Response:
    response = RedirectResponse(url("/signin"), status_code=303)
    response.delete_cookie(web.SESSION_COOKIE, path=url())
    return response


@router.post("/console/signout", include_in_schema=False)
async def signout(request: Request, who: Viewer = Depends(checked)) -> Response:
    async with web.runtime_of(request).sessions() as session:
        await sessions_repo.end(session, who.token_hash)
        await session.commit()
    return _signed_out()


@router.post("/console/signout-everywhere", include_in_schema=False)
async def signout_everywhere(request: Request, who: Viewer = Depends(checked)) -> Response:
    async with web.runtime_of(request).sessions() as session:
        await sessions_repo.end_all(session, who.principal.domain_id, login=who.login, key_id=who.principal.key_id)
        await session.commit()
    return _signed_out()


@router.get("/console/lang/{lang}", include_in_schema=False)
async def set_language(request: Request, lang: str, next: str = "") -> Response:
    # Only a path inside the cabinet: an open redirect would let a link send people elsewhere.
    target = next if next.startswith(url("/")) and not urlsplit(next).netloc and "//" not in next else url("/")
    response = RedirectResponse(target, status_code=303)
    if lang in ("ru", "en"):
        response.set_cookie(web.LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path=url(),
                            secure=web.is_tls(request))
    return response
