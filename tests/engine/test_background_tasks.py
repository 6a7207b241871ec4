"""Background work nobody awaits (timers, deliveries, flushes, listeners) fails loudly in the log and never as an
unretrieved task exception (issue 14: "a simulated phone answering a call that is already over, seen in a soak")."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from vpbx import tasks
from vpbx.clock import RealClock
from vpbx.engine.core import CallError
from vpbx.telephony.sim import Auto, SimTelephony


class LoopErrors:
    """The loop's exception handler: where an unretrieved task exception would land."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.seen.append(context)


async def until(check: Any, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_a_failing_spawned_task_is_logged_not_unretrieved(caplog: pytest.LogCaptureFixture) -> None:
    errors = LoopErrors()
    asyncio.get_running_loop().set_exception_handler(errors)

    async def boom() -> None:
        raise RuntimeError("lost in the background")

    with caplog.at_level(logging.ERROR, logger="vpbx.tasks"):
        task = tasks.spawn(boom(), name="bench-boom")
        await asyncio.wait([task])
        await until(lambda: any(r.name == "vpbx.tasks" for r in caplog.records))
        del task
        gc.collect()
        await asyncio.sleep(0)
    logged = [r for r in caplog.records if r.name == "vpbx.tasks"]
    assert len(logged) == 1 and "bench-boom" in logged[0].getMessage()
    assert logged[0].exc_info is not None and isinstance(logged[0].exc_info[1], RuntimeError)
    assert errors.seen == []


async def test_a_real_clock_timer_that_fails_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    errors = LoopErrors()
    asyncio.get_running_loop().set_exception_handler(errors)
    clock = RealClock()
    ran: list[str] = []

    async def fails() -> None:
        raise ValueError("a timer's bug")

    async def fine() -> None:
        ran.append("next")

    with caplog.at_level(logging.ERROR):
        clock.call_later(0.0, fails)
        clock.call_later(0.01, fine)
        await until(lambda: ran == ["next"])
        gc.collect()
        await asyncio.sleep(0)
    assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in caplog.records)
    assert errors.seen == []


class CallOver:
    """The engine's answer to a signal about a call that ended meanwhile (what the real engine raises)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def answered(self, callid: str, party: str) -> None:
        self.asked.append((callid, party))
        raise CallError(409, "The call is over")

    async def rejected(self, callid: str, party: str, why: str | None = None) -> None:
        raise CallError(409, "The call is over")

    async def hung_up(self, callid: str, party: str) -> None:
        raise CallError(409, "The call is over")


async def test_a_simulated_phone_answering_a_call_that_is_over_is_handled(caplog: pytest.LogCaptureFixture) -> None:
    errors = LoopErrors()
    asyncio.get_running_loop().set_exception_handler(errors)
    sim = SimTelephony()
    signals = CallOver()
    sim.attach(signals, RealClock())  # type: ignore[arg-type]
    sim.set_auto(1, "ivan", Auto("answer", 0.01, 30.0))
    with caplog.at_level(logging.INFO, logger="vpbx"):
        sim.ring(1, "call-1", "ivan", "79101234567", None)
        await until(lambda: signals.asked == [("call-1", "ivan")])
        await until(lambda: any("came too late" in r.getMessage() for r in caplog.records))
        gc.collect()
        await asyncio.sleep(0)
    assert any("came too late" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors.seen == []
