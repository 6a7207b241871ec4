"""A live call as JSON and back: what the engine writes in each batch so that a later start (or another node)
can end the call after a crash (``engine.recovery``).

Every ``Call`` field is kept except the process-bound ones (its lock and timers, queued notices, the routing
still to try): a field added to ``Call`` later is kept without a change here. ``Leg`` values keep their
fields; times are ISO 8601 with their offset.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

import orjson

from vpbx.engine.model import Call, Leg

# Bound to this process, or routing that only a running call uses: a recovered call is ended, never continued.
SKIP = frozenset({"lock", "timers", "pending", "fallbacks", "consult_target", "ivr"})
_FIELDS = tuple(f.name for f in fields(Call) if f.name not in SKIP)
_TIMES = frozenset(f.name for f in fields(Call) if "datetime" in str(f.type))
_LEGS = frozenset(f.name for f in fields(Call) if str(f.type).startswith("Leg"))
_LEG_FIELDS = frozenset(f.name for f in fields(Leg))


def _other(value: Any) -> Any:
    """A value orjson does not know (a field added later with a rich type): kept as its text, never fatal."""
    return str(value)


def snapshot(call: Call) -> str:
    return orjson.dumps({name: getattr(call, name) for name in _FIELDS}, default=_other,
                        option=orjson.OPT_NON_STR_KEYS).decode()


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _leg(value: Any) -> Leg | None:
    if not isinstance(value, dict):
        return None
    data = {k: v for k, v in value.items() if k in _LEG_FIELDS}
    data["since"] = _time(data.get("since"))
    return Leg(**data)


def restore(text: str) -> Call:
    data: dict[str, Any] = orjson.loads(text)
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in _FIELDS:
            continue  # a field this version no longer has
        if name in _TIMES:
            value = _time(value)
        elif name in _LEGS:
            value = _leg(value)
        elif name == "legs":
            value = {party: leg for party, raw in (value or {}).items() if (leg := _leg(raw)) is not None}
        elif name == "events":
            value = [tuple(e) for e in value or []]
        values[name] = value
    return Call(**values)


# --- a cluster's fencing (vpbx.cluster.ownership) ---------------------------------------------------------------

class Fenced(Exception):
    """The store refused a write batch: these domains' leases carry another token (another node owns them now)."""

    def __init__(self, domains: frozenset[int]) -> None:
        super().__init__(f"not the owner of domains {sorted(domains)} any more")
        self.domains = domains


def forget(engine: Any, domains: frozenset[int] | set[int]) -> int:
    """Give up the domains' live state (their owner is another node now, which ended or will end these calls from
    the store): timers stop, nothing more is written for them. The number of calls dropped."""
    dropped = 0
    for callid, call in list(engine.live.items()):
        if call.domain_id in domains:
            call.cancel_timers()
            engine.live.pop(callid, None)
            dropped += 1
    engine.busy.difference_update([b for b in engine.busy if b[0] in domains])
    engine._queue = [w for w in engine._queue if w.call.domain_id not in domains]
    return dropped
