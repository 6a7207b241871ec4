"""The notifier's public entry point.

* ``await enqueue(session, domain_id, notice, key=callid)``: history, event, rating and webhook
  notifications; the row joins the caller's transaction and is delivered after the caller commits
  (durably, in order per key, retried on schedule). Webhooks pass ``url=`` (their subscription's).
* ``await lookup_contact(runtime, domain_id, ContactQuery(...))``: the synchronous, bounded lookup.
* ``start``/``stop``: the dispatcher's lifecycle, registered in ``vpbx.app``.
"""

from __future__ import annotations

from vpbx.notify.contact import lookup_contact
from vpbx.notify.dispatcher import Dispatcher
from vpbx.notify.outbox import enqueue
from vpbx.runtime import Runtime

__all__ = ["Dispatcher", "dispatcher", "enqueue", "lookup_contact", "start", "stop"]

KEY = "notifier"


def dispatcher(runtime: Runtime) -> Dispatcher | None:
    d = runtime.extras.get(KEY)
    return d if isinstance(d, Dispatcher) else None


async def start(runtime: Runtime) -> None:
    if not runtime.settings.notify_dispatcher or dispatcher(runtime) is not None:
        return
    d = Dispatcher(runtime)
    await d.start()
    runtime.extras[KEY] = d


async def stop(runtime: Runtime) -> None:
    d = dispatcher(runtime)
    if d is not None:
        await d.stop()
        runtime.extras.pop(KEY, None)
