"""The notifier's public entry point.

* ``await enqueue(session, domain_id, notice, key=callid)``: history, event, rating and webhook
  notifications; the row joins the caller's transaction and is delivered after the caller commits
  (durably, in order per key, retried on schedule). Webhooks pass ``url=`` (their subscription's).
* ``await lookup_contact(runtime, domain_id, ContactQuery(...))``: the synchronous, bounded lookup.
* ``start``/``stop``: the dispatcher's lifecycle and the delivery log's retention, registered in ``vpbx.app``.
"""

from __future__ import annotations

from vpbx.notify.contact import lookup_contact
from vpbx.notify.dispatcher import Dispatcher
from vpbx.notify.outbox import enqueue
from vpbx.notify.retention import Retention
from vpbx.runtime import Runtime

__all__ = ["Dispatcher", "dispatcher", "enqueue", "lookup_contact", "start", "stop"]

KEY = "notifier"
RETENTION = "notifier.retention"


def dispatcher(runtime: Runtime) -> Dispatcher | None:
    d = runtime.extras.get(KEY)
    return d if isinstance(d, Dispatcher) else None


async def start(runtime: Runtime) -> None:
    """The dispatcher, and the delivery log's retention where it runs."""
    if not runtime.settings.notify_dispatcher or dispatcher(runtime) is not None:
        return
    d = Dispatcher(runtime)
    await d.start()
    runtime.extras[KEY] = d
    retention = Retention(runtime)
    retention.start()
    runtime.extras[RETENTION] = retention


async def stop(runtime: Runtime) -> None:
    retention = runtime.extras.pop(RETENTION, None)
    if isinstance(retention, Retention):
        retention.stop()
    d = dispatcher(runtime)
    if d is not None:
        await d.stop()
        runtime.extras.pop(KEY, None)
