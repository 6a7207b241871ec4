"""The simulator's answers (/sim/v1, design/simulator.md), as the SDK reads them.

The contract allows new fields at any time ("add fields and endpoints freely"), so every model keeps
the fields it does not name (``extra="allow"``): an older SDK reads a newer server.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vpbx.schemas.common import ListInfo


class SimModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class SimLeg(SimModel):
    """A party rung on a call: an employee's login, or ``ext:<number>`` (``owner``: whose mobile it is)."""

    party: str
    name: str | None = None
    state: str  # ringing | talking | ended
    owner: str | None = None
    since: str | None = None
    caller_name: str | None = None

    @property
    def person(self) -> str:
        return self.owner or self.party


class SimCallEvent(SimModel):
    type: str
    user: str | None = None


class SimCall(SimModel):
    """A call as the simulator shows it (``GET /sim/v1/calls/{callid}``)."""

    callid: str
    kind: str  # incoming | internal | outgoing
    from_: str = Field(alias="from")
    to: str
    state: str
    started: str | None = None
    caller_name: str | None = None
    diversion: str | None = None
    group: str | None = None
    destination: str | None = None
    answered_by: str | None = None
    answered_at: str | None = None
    ended_at: str | None = None
    status: str | None = None
    reason: str | None = None
    queue_position: int | None = None
    announcements: list[str] = []
    link: str | None = None
    phase: str | None = None
    rating: int | None = None
    direction: str | None = None
    transferred_from: str | None = None
    continued_as: str | None = None
    consult: str | None = None
    consult_for: str | None = None
    callback_requested: bool = False
    callback_of: str | None = None
    legs: list[SimLeg] = []
    events: list[SimCallEvent] = []

    @property
    def ringing(self) -> list[str]:
        """Who rings now: employees' logins (also for their mobiles), ``ext:<number>`` for outside numbers."""
        return [leg.person for leg in self.legs if leg.state == "ringing"]

    @property
    def over(self) -> bool:
        return self.state in ("ended", "refused")


class AutoBehaviour(SimModel):
    """What a simulated phone does when rung: ``action`` after ``after`` s, then hangs up after ``talk`` s."""

    action: str
    after: float = 0
    talk: float | None = None


class SimDevice(SimModel):
    login: str
    registered: bool
    auto: AutoBehaviour | None = None


class SimExternal(SimModel):
    """An outside number's behaviour; ``default`` is true when it follows the domain's default."""

    phone: str
    auto: AutoBehaviour
    default: bool = False


class SimExternals(SimModel):
    """The domain's default behaviour of outside numbers and the numbers set one by one."""

    default: AutoBehaviour
    numbers: list[SimExternal] = []


class SimClock(SimModel):
    now: str
    virtual: bool = True


class DeliveryAttempt(SimModel):
    attempt: int
    at: str | None = None
    url: str | None = None
    status_code: int | None = None
    latency_ms: float | None = None
    outcome: str | None = None
    error: str | None = None
    response: str | None = None


class SimDelivery(SimModel):
    """One PBX->CRM notification in the delivery log (``log``: its attempts, in list and get answers)."""

    id: int
    notification_id: str
    command: str
    callid: str | None = None
    key: str | None = None
    state: str  # pending | delivered | failed
    attempts: int = 0
    created_at: str | None = None
    next_attempt_at: str | None = None
    delivered_at: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    url: str | None = None
    content_type: str | None = None
    body: Any = None
    log: list[DeliveryAttempt] | None = None


class SimDeliveryList(SimModel):
    items: list[SimDelivery]
    info: ListInfo


class SimTestLoad(SimModel):
    enqueued: int
    ids: list[str]


class TrafficCall(SimModel):
    at: float
    kind: str
    from_: str = Field(alias="from")
    to: str
    callid: str | None = None
    state: str
    status: str | None = None
    answered_by: str | None = None


class TrafficStatus(SimModel):
    """A generated-traffic run: ``placed == answered + missed + live``."""

    state: str  # running | done | stopped
    placing: bool
    seed: int
    started: str | None = None
    ended: str | None = None
    elapsed_s: float
    duration_s: float
    placed: int
    answered: int
    missed: int
    live: int
    refused: int = 0
    outgoing: int = 0
    errors: int = 0
    config: dict[str, Any] = {}
    calls: list[TrafficCall] | None = None
    calls_truncated: bool | None = None
