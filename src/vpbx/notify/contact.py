"""The synchronous ``contact`` lookup (002 §2.3): ask the CRM who calls, wait at most lookup_timeout."""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from vpbx.metrics import CONTACT_LATENCY, CONTACT_LOOKUPS
from vpbx.notify.payloads import ContactAnswer, ContactQuery, Dialect, build_body, parse_contact_answer
from vpbx.notify.ssrf import allow_private
from vpbx.notify.transport import Answer, client_session, post
from vpbx.runtime import Runtime
from vpbx.secrets_store import box_for, open_value
from vpbx.store.changes import ACCESS
from vpbx.store.tables import Integration

log = logging.getLogger("vpbx.notify")

DEFAULT_LOOKUP_TIMEOUT = 2.0
RECENT_LOOKUPS = 50  # per domain, in this process's memory: what the cabinet's CRM traffic page shows


@dataclass(frozen=True, slots=True)
class Lookup:
    """One ``contact`` request and what came of it (the answer as vpbx read it)."""

    at: datetime
    callid: str
    phone: str
    outcome: str  # answered | empty | timeout | failed | off
    ms: int
    contact_name: str | None = None
    responsible: str | None = None


def recent_lookups(runtime: Runtime, domain_id: int) -> list[Lookup]:
    """The domain's latest contact lookups on this node, newest first."""
    book = cast(dict[int, deque[Lookup]], runtime.extras.get("contact_lookups", {}))
    return list(reversed(book.get(domain_id, ())))


def _remember(runtime: Runtime, domain_id: int, lookup: Lookup) -> None:
    book = cast(dict[int, deque[Lookup]], runtime.extras.setdefault("contact_lookups", {}))
    book.setdefault(domain_id, deque(maxlen=RECENT_LOOKUPS)).append(lookup)


@dataclass(frozen=True, slots=True)
class _Target:
    """What a lookup needs of the integration, its token opened: read once per configuration version."""

    on: bool
    crm_url: str
    timeout: float
    dialect: Dialect
    token: str


def _target_of(runtime: Runtime, integration: Integration | None) -> _Target | None:
    if integration is None:
        return None
    timeout = integration.lookup_timeout if integration.lookup_timeout and integration.lookup_timeout > 0 \
        else DEFAULT_LOOKUP_TIMEOUT
    dialect: Dialect = integration.dialect if integration.dialect in ("form", "json", "legacy") else "form"  # type: ignore[assignment]
    on = bool(integration.enabled and not integration.switched_off and integration.crm_url)
    return _Target(on, integration.crm_url or "", timeout, dialect, crm_token(runtime, integration) if on else "")


async def _target(runtime: Runtime, domain_id: int) -> _Target | None:
    """The domain's integration as a lookup needs it, cached until any process commits a change of the ``access``
    area, which integrations belong to (``store.changes``: the same signal as every other cache, no time-to-live;
    an employee or number written does not empty it). Profiled through the server, the
    integration's read (a pool checkout and an ORM get per call) was the call path's largest store cost."""
    changes = getattr(getattr(runtime, "reader", None), "changes", None)
    # Once per task: a call's step (one timer, one request) has looked at the store already for its config.
    version = changes.in_request(ACCESS) if changes is not None else None
    book = cast(dict[int, tuple[int, _Target | None]], runtime.extras.setdefault("contact_targets", {}))
    seen = book.get(domain_id)
    if seen is not None and version is not None and seen[0] == version:
        return seen[1]
    async with runtime.sessions() as session:
        target = _target_of(runtime, await session.get(Integration, domain_id))
    if version is not None:
        book[domain_id] = (version, target)  # the version read BEFORE the load: a change meanwhile reloads
    return target


def crm_token(runtime: Runtime, integration: Integration) -> str:
    """The integration's token in clear (it is stored sealed); empty when it cannot be opened."""
    try:
        return open_value(box_for(runtime.settings), integration.crm_token) or ""
    except ValueError:
        log.warning("the CRM token cannot be opened with this server's secret",
                    extra={"domain_id": integration.domain_id})
        return ""


async def lookup_contact(runtime: Runtime, domain_id: int, query: ContactQuery, *,
                         integration: Integration | None = None) -> ContactAnswer | None:
    """The CRM's answer, or None: integration off, no URL, timeout, error, or nothing usable. Never raises."""
    started = time.perf_counter()
    outcome = "failed"
    parsed: ContactAnswer | None = None
    try:
        target = _target_of(runtime, integration) if integration is not None else await _target(runtime, domain_id)
        if target is None or not target.on:
            outcome = "off"
            return None
        timeout = target.timeout
        body, content_type = build_body(query, crm_token=target.token, dialect=target.dialect)
        private_ok = allow_private(runtime.settings)
        dispatcher = runtime.extras.get("notifier")
        shared = getattr(dispatcher, "client", None)  # the dispatcher's keep-alive session, while it runs
        http = shared() if shared is not None and not getattr(dispatcher, "_stopping", True) else None
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        # The client keeps ``timeout`` itself (connect, send and answer): no second timer and task around it.
        if http is not None:
            answer = await post(http, target.crm_url, body, headers, timeout)
        else:
            async with client_session(private_ok, limit=4) as own:
                answer = await post(own, target.crm_url, body, headers, timeout)
        if answer.status is None:
            outcome = "timeout" if (answer.error or "").startswith("timeout") else "failed"
            log.info("contact lookup failed", extra={"domain_id": domain_id, "error": answer.error})
            return None
        parsed = parse_contact_answer(answer.status, answer.content_type, answer.body)
        outcome = "answered" if parsed is not None else "empty"
        return parsed
    except Exception as exc:
        log.info("contact lookup failed", extra={"domain_id": domain_id, "error": repr(exc)})
        return None
    finally:
        elapsed = time.perf_counter() - started
        CONTACT_LOOKUPS.labels(outcome).inc()
        CONTACT_LATENCY.observe(elapsed)
        if outcome != "off":
            _remember(runtime, domain_id, Lookup(runtime.clock.now(), query.callid, query.phone, outcome,
                                                 int(elapsed * 1000), parsed.contact_name if parsed else None,
                                                 parsed.responsible if parsed else None))


async def probe(runtime: Runtime, integration: Integration, phone: str = "79000000000") -> Answer:
    """The cabinet's "send a test request": one ``contact`` request (002 §2.3) to the CRM as configured, whatever
    the on/off state, and its raw answer. Never raises; the SSRF guard applies as to every request."""
    dialect: Dialect = integration.dialect if integration.dialect in ("form", "json", "legacy") else "form"  # type: ignore[assignment]
    body, content_type = build_body(ContactQuery(phone=phone, callid="test-" + uuid.uuid4().hex),
                                    crm_token=crm_token(runtime, integration), dialect=dialect)
    timeout = integration.lookup_timeout if integration.lookup_timeout and integration.lookup_timeout > 0 \
        else DEFAULT_LOOKUP_TIMEOUT
    async with client_session(allow_private(runtime.settings), limit=1) as http:
        return await post(http, integration.crm_url, body, {"Content-Type": content_type, "Accept": "application/json"},
                          timeout)
