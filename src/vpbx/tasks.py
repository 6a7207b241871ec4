"""The one way vpbx starts a task nobody awaits: ``spawn``.

A bare ``asyncio.create_task`` has two traps: the loop holds only a weak reference (the task may be collected
mid-flight), and a failure nobody retrieves surfaces, if ever, as "Task exception was never retrieved" when the
task is garbage-collected, without the context that explains it. ``spawn`` keeps a strong reference until the
task is done and logs a failure at once (``vpbx.tasks``, with the task's name), so a background failure — a
timer's callback, a delivery, a cache listener — is always seen, and never stops anything else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("vpbx.tasks")

T = TypeVar("T")

_RUNNING: set[asyncio.Task[Any]] = set()  # strong references: the loop keeps only weak ones


def _done(task: asyncio.Task[Any]) -> None:
    _RUNNING.discard(task)
    if task.cancelled():
        return
    exc = task.exception()  # retrieved here: never "Task exception was never retrieved"
    if exc is not None:
        log.error("background task %s failed", task.get_name(), exc_info=exc,
                  extra={"task": task.get_name(), "error": type(exc).__name__})


def spawn(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """Run ``coro`` as a task on the running loop, referenced until done; its failure is logged, not raised.

    Whoever needs the result may still await the task (it then gets the exception too)."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _RUNNING.add(task)
    task.add_done_callback(_done)
    return task


def running() -> int:
    """Tasks started by ``spawn`` and not done yet (diagnostics, tests)."""
    return len(_RUNNING)
