"""Writing notifications: one outbox row, added to the caller's session, committed with the call state.

``enqueue`` builds the body now (dialect, the stable notification id) so that every attempt and every
replay sends the same fields; ``crm_token`` is filled in as it is sent (it rests encrypted, never in an
outbox row). The dispatcher delivers after the caller commits.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import Table, event, insert
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from vpbx.metrics import NOTIFY_ENQUEUED
from vpbx.notify.payloads import ContactQuery, Dialect, Notice, WebhookNotice, build_body, edition_of, sends
from vpbx.store.tables import Integration, OutboxRow

if TYPE_CHECKING:
    from vpbx.clock import RealClock, VirtualClock

log = logging.getLogger("vpbx.notify")

WAKE = "vpbx.notify.wake"
PENDING = "vpbx.notify.pending"
INTEGRATIONS = "vpbx.notify.integrations"
DISPATCHER = "vpbx.notify.dispatcher"
_ENQUEUED: dict[str, Any] = {}  # the enqueued-notifications counter's child per command
_OUTBOX = cast(Table, OutboxRow.__table__)


class Wakeable(Protocol):
    clock: RealClock | VirtualClock

    def wake(self) -> None: ...


# The running dispatcher of each engine: enqueue reads its clock and wakes it after the commit.
_DISPATCHERS: weakref.WeakKeyDictionary[Engine, Wakeable] = weakref.WeakKeyDictionary()


def register(engine: Engine, dispatcher: Wakeable | None) -> None:
    if dispatcher is None:
        _DISPATCHERS.pop(engine, None)
    else:
        _DISPATCHERS[engine] = dispatcher


def _dispatcher(session: AsyncSession) -> Wakeable | None:
    try:
        bind = session.sync_session.get_bind()
    except Exception:  # pragma: no cover - an unbound session
        return None
    engine = bind if isinstance(bind, Engine) else getattr(bind, "engine", None)
    return _DISPATCHERS.get(engine) if engine is not None else None


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    # Rows wait in the session and go in with one multi-row INSERT, inside the caller's transaction.
    rows = session.info.pop(PENDING, None)
    if rows:
        session.execute(insert(_OUTBOX), rows)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    dispatcher = session.info.pop(WAKE, None)
    if dispatcher is not None:
        dispatcher.wake()


@event.listens_for(Session, "after_transaction_end")
def _forget_after_rollback(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost transaction ended: nothing carries over
        session.info.pop(PENDING, None)
        session.info.pop(INTEGRATIONS, None)
        session.info.pop(DISPATCHER, None)


async def write_pending(session: AsyncSession) -> None:
    """Insert the session's enqueued rows now (they are otherwise written as the caller commits)."""
    rows = session.info.pop(PENDING, None)
    if rows:
        await session.execute(insert(_OUTBOX), rows)


async def _integration(session: AsyncSession, domain_id: int) -> Integration | None:
    # Held for the transaction: the identity map is weak, and a burst of enqueues must not re-read it.
    cache: dict[int, Integration | None] = session.info.setdefault(INTEGRATIONS, {})
    if domain_id not in cache:
        cache[domain_id] = await session.get(Integration, domain_id)
    return cache[domain_id]


def new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


async def enqueue(session: AsyncSession, domain_id: int, notice: Notice, *, key: str | None = None,
                  url: str | None = None, now: datetime | None = None,
                  integration: Integration | None = None) -> str | None:
    """Add the notification to ``session`` (the caller commits); its id, or None when nothing is sent.

    The row is written when the session commits (one multi-row INSERT for all rows enqueued in the
    transaction), or earlier by ``write_pending``; a rollback drops it.

    Nothing is sent when the integration is off or switched off, when it has no CRM URL (a webhook
    goes to its subscription's ``url`` instead), or when its dialect (and legacy edition) has no such command
    or event.
    ``key`` orders delivery (default: the notice's callid); rows of one key go out one by one.
    """
    if isinstance(notice, ContactQuery):
        raise ValueError("contact is a synchronous lookup: use lookup_contact")
    if integration is None:
        integration = await _integration(session, domain_id)
    if integration is None or not integration.enabled or integration.switched_off:
        return None
    webhook = isinstance(notice, WebhookNotice)
    if webhook and not url:
        raise ValueError("a webhook notice needs its subscription's url")
    if not webhook and not integration.crm_url:
        return None
    dialect: Dialect = integration.dialect if integration.dialect in ("form", "json", "legacy") else "form"  # type: ignore[assignment]
    edition = edition_of(integration.legacy_edition)
    if not sends(notice, dialect, edition):
        if not webhook:
            return None
        dialect = "form"  # webhook subscriptions are a REST v1 feature: 002's form encoding
    uid = new_id()
    # Stored without the token (the dispatcher fills it in as it sends): it rests only encrypted.
    body, content_type = build_body(notice, crm_token="", dialect=dialect, notification_id=uid, edition=edition)
    if DISPATCHER not in session.info:  # looked up once per session: a call's steps enqueue a handful each
        session.info[DISPATCHER] = _dispatcher(session)
    dispatcher: Wakeable | None = session.info[DISPATCHER]
    if now is None:
        now = dispatcher.clock.now() if dispatcher is not None else datetime.now(UTC)
    callid: Any = getattr(notice, "callid", None)
    session.info.setdefault(PENDING, []).append({
        "uid": uid, "domain_id": domain_id, "command": notice.command, "key": key if key is not None else callid,
        "callid": callid, "url": url if webhook else None, "body": body.decode("utf-8"),
        "content_type": content_type, "state": "pending", "attempts": 0, "round_attempts": 0,
        "created_at": now, "next_at": now})
    if dispatcher is not None:
        session.info[WAKE] = dispatcher
    counter = _ENQUEUED.get(notice.command)
    if counter is None:
        counter = _ENQUEUED[notice.command] = NOTIFY_ENQUEUED.labels(notice.command)
    counter.inc()
    return uid
