"""Abuse is refused: failed authentication per source address, and an optional request budget per API key.

* ``FailureLimiter``: at most ``limit`` failed authentications per source address within ``window``
  seconds; past that, every request of that source gets 429 with ``Retry-After`` until the oldest failure
  leaves the window. One limiter for every door: the ``RateLimit`` middleware counts each 401 answer (REST
  keys, legacy tokens, the operator key); the cabinet's login and SIP registration call ``failed`` directly.
* ``KeyBudget``: ``key_rate_limit`` requests per minute per ``X-API-KEY`` (a token bucket), off by default
  (0) and never applied to the simulator (``/sim/``), whose drivers are tests and generated traffic.

Time is wall time (``time.monotonic``), not the server's clock: abuse comes in real seconds, and a
virtual clock that stands still would otherwise lock a source out for good.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vpbx.metrics import RATE_LIMITED
from vpbx.settings import Settings

TOO_MANY = "Too many requests"
MAX_TRACKED = 100_000  # sources (and keys) remembered at once; the least recently seen are forgotten first
EXEMPT = ("/healthz", "/readyz", "/metrics")  # probes and scrapes are never refused
SIM_PREFIX = "/sim/"

Now = Callable[[], float]


class FailureLimiter:
    """A sliding window of failure times per source."""

    def __init__(self, limit: int, window: float, now: Now = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.now = now
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, source: str, at: float) -> deque[float] | None:
        times = self._failures.get(source)
        if times is None:
            return None
        while times and times[0] <= at - self.window:
            times.popleft()
        if not times:
            del self._failures[source]
            return None
        return times

    def retry_after(self, source: str) -> float | None:
        """Seconds until ``source`` may try again; None when it is not blocked."""
        at = self.now()
        times = self._recent(source, at)
        if times is None or len(times) < self.limit:
            return None
        return max(times[-self.limit] + self.window - at, 0.001)

    def failed(self, source: str) -> None:
        at = self.now()
        times = self._recent(source, at)
        if times is None:
            times = self._failures[source] = deque(maxlen=self.limit)
            if len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)
        else:
            self._failures.move_to_end(source)
        times.append(at)

    def forget(self, source: str) -> None:
        self._failures.pop(source, None)


class KeyBudget:
    """A token bucket per key: ``per_minute`` requests a minute, bursts up to that many."""

    def __init__(self, per_minute: int, now: Now = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.now = now
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key digest -> (tokens, at)

    def take(self, key: str) -> float | None:
        """Spend one request of ``key``'s budget; None when allowed, else the seconds until one is free."""
        digest = hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=16).hexdigest()  # no key kept in clear
        at = self.now()
        tokens, last = self._buckets.get(digest, (self.capacity, at))
        tokens = min(self.capacity, tokens + (at - last) * self.rate)
        if tokens < 1:
            self._buckets[digest] = (tokens, at)
            return (1 - tokens) / self.rate
        self._buckets[digest] = (tokens - 1, at)
        self._buckets.move_to_end(digest)
        if len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        return None


def source_of(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def too_many(send: Send, retry_after: float) -> None:
    payload = orjson.dumps({"message": TOO_MANY})
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"retry-after", str(max(1, math.ceil(retry_after))).encode())]})
    await send({"type": "http.response.body", "body": payload})


class RateLimit:
    """The ASGI hook: a blocked source gets 429 before any handler runs; each 401 answer counts as a failure."""

    def __init__(self, app: ASGIApp, failures: FailureLimiter, budget: KeyBudget | None = None) -> None:
        self.app = app
        self.failures = failures
        self.budget = budget

    @classmethod
    def for_settings(cls, app: ASGIApp, settings: Settings, now: Now = time.monotonic) -> RateLimit:
        budget = KeyBudget(settings.key_rate_limit, now) if settings.key_rate_limit > 0 else None
        return cls(app, FailureLimiter(settings.auth_fail_limit, settings.auth_fail_window, now), budget)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        source = source_of(scope)
        wait = self.failures.retry_after(source)
        if wait is None and self.budget is not None and not scope["path"].startswith(SIM_PREFIX):
            key = next((v for k, v in scope["headers"] if k == b"x-api-key"), None)
            if key:
                wait = self.budget.take(key.decode("latin-1"))
        if wait is not None:
            RATE_LIMITED.inc()
            await too_many(send, wait)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.failures.failed(source)
            await send(message)

        await self.app(scope, receive, watch)
