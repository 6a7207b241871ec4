"""The synchronous ``contact`` lookup (002 §2.3): ask the CRM who calls, wait at most lookup_timeout."""

from __future__ import annotations

import asyncio
import logging
import time

from vpbx.metrics import CONTACT_LATENCY, CONTACT_LOOKUPS
from vpbx.notify.payloads import ContactAnswer, ContactQuery, Dialect, build_body, parse_contact_answer
from vpbx.notify.ssrf import allow_private
from vpbx.notify.transport import client_session, post
from vpbx.runtime import Runtime
from vpbx.store.tables import Integration

log = logging.getLogger("vpbx.notify")

DEFAULT_LOOKUP_TIMEOUT = 2.0


async def lookup_contact(runtime: Runtime, domain_id: int, query: ContactQuery, *,
                         integration: Integration | None = None) -> ContactAnswer | None:
    """The CRM's answer, or None: integration off, no URL, timeout, error, or nothing usable. Never raises."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        if integration is None:
            async with runtime.sessions() as session:
                integration = await session.get(Integration, domain_id)
        if integration is None or not integration.enabled or integration.switched_off or not integration.crm_url:
            outcome = "off"
            return None
        timeout = integration.lookup_timeout if integration.lookup_timeout and integration.lookup_timeout > 0 \
            else DEFAULT_LOOKUP_TIMEOUT
        dialect: Dialect = integration.dialect if integration.dialect in ("form", "json", "legacy") else "form"  # type: ignore[assignment]
        body, content_type = build_body(query, crm_token=integration.crm_token, dialect=dialect)
        private_ok = allow_private(runtime.settings)
        dispatcher = runtime.extras.get("notifier")
        http = getattr(dispatcher, "http", None)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if http is not None and not http.closed:
            answer = await asyncio.wait_for(post(http, integration.crm_url, body, headers, timeout, private_ok),
                                            timeout + 0.5)
        else:
            async with client_session(private_ok, limit=4) as own:
                answer = await asyncio.wait_for(post(own, integration.crm_url, body, headers, timeout, private_ok),
                                                timeout + 0.5)
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
        CONTACT_LOOKUPS.labels(outcome).inc()
        CONTACT_LATENCY.observe(time.perf_counter() - started)
