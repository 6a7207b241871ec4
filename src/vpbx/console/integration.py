"""Integration: the CRM's address and token, dialect, on/off and the switched-off state, API keys, the legacy token
and a test request. The domain owner's page: a viewer with every right (an admin employee, or a full key)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from vpbx.console import web
from vpbx.console.web import Viewer, checked, need_admin, render, viewer
from vpbx.domain.rights import BUILTIN_ROLES
from vpbx.notify.contact import probe
from vpbx.secrets_store import SEALED
from vpbx.services import tenancy
from vpbx.services.errors import Invalid
from vpbx.store.repositories import tenancy as repo
from vpbx.store.tables import DeliveryHealth

router = APIRouter(route_class=web.ConsoleRoute)
DIALECTS = [("form", "form"), ("json", "json"), ("legacy", "legacy")]
EDITIONS = [("000", "000"), ("004", "004 / 001")]


async def _page(request: Request, who: Viewer, **extra: Any) -> Response:
    need_admin(who)
    async with web.runtime_of(request).sessions() as session:
        integration = await repo.integration(session, who.principal.domain_id)
        keys = await repo.keys(session, who.principal.domain_id)
        roles = [(r, r) for r in BUILTIN_ROLES] + [(r.role_id, r.name) for r in
                                                   await repo.custom_roles(session, who.principal.domain_id)]
        health = await session.get(DeliveryHealth, who.principal.domain_id)
    context: dict[str, Any] = {"title": "Интеграция", "integration": integration, "keys": keys, "roles": roles,
                               "dialects": DIALECTS, "editions": EDITIONS, "health": health, "errors": {}}
    context.update(extra)
    return render(request, "integration.html", context, 400 if context["errors"] else 200)


def token_change(typed: str, clear: bool) -> str | None:
    """The ``crm_token`` to store from the form: the token rests sealed and the page never shows it, so an empty
    field keeps it (None), "remove" clears it (""), and a typed value replaces it. A typed ``sealed:`` value is
    refused: the service would store it as it is, and no CRM token looks like that."""
    if clear:
        return ""
    value = typed.strip()
    if not value:
        return None
    if value.startswith(SEALED):
        raise Invalid("crm_token", "Введите сам токен CRM")
    return value


@router.get("/console/integration", include_in_schema=False)
async def page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    return await _page(request, who)


@router.post("/console/integration", include_in_schema=False)
async def save(request: Request, crm_url: str = Form(""), crm_token: str = Form(""),
               crm_token_clear: str = Form(""), dialect: str = Form("form"), legacy_edition: str = Form("000"),
               enabled: str = Form(""), who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    async with web.runtime_of(request).sessions() as session:
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        try:
            await tenancy.set_integration(session, domain, crm_url=crm_url.strip(),
                                          crm_token=token_change(crm_token, bool(crm_token_clear)),
                                          dialect=dialect, legacy_edition=legacy_edition, enabled=bool(enabled))
        except Invalid as exc:
            return await _page(request, who, errors=web.field_errors(exc))
        await session.commit()
    web.runtime_of(request).auth.clear()  # a key's answers (CRM disabled) change at once
    return await _page(request, who, notice="Сохранено")


@router.post("/console/integration/switch-on", include_in_schema=False)
async def switch_on(request: Request, who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    async with web.runtime_of(request).sessions() as session:
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        await tenancy.set_integration(session, domain, enabled=True)
        await session.commit()
    web.runtime_of(request).auth.clear()
    return await _page(request, who, notice="Интеграция включена")


@router.post("/console/integration/keys", include_in_schema=False)
async def create_key(request: Request, role: str = Form(""), label: str = Form(""),
                     who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        try:
            key = await tenancy.create_key(session, domain, runtime.clock.now(), role=role or None,
                                           label=label.strip()[:255])
        except Invalid as exc:
            return await _page(request, who, errors=web.field_errors(exc))
        await session.commit()
    return await _page(request, who, new_key=key)


@router.post("/console/integration/keys/{key_id}/revoke", include_in_schema=False)
async def revoke_key(request: Request, key_id: int, who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        await tenancy.revoke_key(session, domain, str(key_id), runtime.clock.now())  # NotFound outside the domain
        await session.commit()
    runtime.auth.clear()
    if who.principal.key_id == key_id:  # revoked its own session's key
        return web.redirect(web.url("/signin"), request)
    return await _page(request, who, notice="Отозван")


@router.post("/console/integration/legacy-token", include_in_schema=False)
async def new_legacy_token(request: Request, who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    token = str(uuid.uuid4())
    async with web.runtime_of(request).sessions() as session:
        domain = await tenancy.get_domain(session, who.principal.domain_name)
        await tenancy.set_integration(session, domain, legacy_token=token)
        await session.commit()
    return await _page(request, who, new_legacy_token=token)


@router.post("/console/integration/test", include_in_schema=False)
async def test_request(request: Request, who: Viewer = Depends(checked)) -> Response:
    need_admin(who)
    runtime = web.runtime_of(request)
    async with runtime.sessions() as session:
        integration = await repo.integration(session, who.principal.domain_id)
    if not integration.crm_url:
        return await _page(request, who, test={"error": "Адрес CRM не задан"})
    answer = await probe(runtime, integration)
    body = answer.body[:4096].decode("utf-8", "replace")
    return await _page(request, who, test={"status": answer.status, "body": body, "error": answer.error,
                                           "latency_ms": int(answer.latency * 1000)})
