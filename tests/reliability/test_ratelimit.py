"""Abuse is refused (issue 19): failed authentication is limited per source address (429 with Retry-After),
and an optional request budget per API key (off by default, never on the simulator)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from vpbx.api.ratelimit import FailureLimiter, KeyBudget
from vpbx.settings import Settings
from vpbx.testing.server import ServerThread, Tenant, create_tenant


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_failures_within_the_window_block_then_expire() -> None:
    clock = Clock()
    limiter = FailureLimiter(3, 60, clock)
    for _ in range(3):
        assert limiter.retry_after("203.0.113.7") is None
        limiter.failed("203.0.113.7")
        clock.t += 1
    wait = limiter.retry_after("203.0.113.7")
    assert wait is not None and 57 <= wait <= 58  # until the oldest failure leaves the window
    assert limiter.retry_after("198.51.100.1") is None  # another source is not affected
    clock.t += wait + 0.01
    assert limiter.retry_after("203.0.113.7") is None


def test_key_budget_refills_at_its_rate() -> None:
    clock = Clock()
    budget = KeyBudget(60, clock)  # one a second, bursts of 60
    assert all(budget.take("k1") is None for _ in range(60))
    wait = budget.take("k1")
    assert wait is not None and 0 < wait <= 1
    assert budget.take("k2") is None  # per key
    clock.t += 1
    assert budget.take("k1") is None


def test_defaults() -> None:
    s = Settings()
    assert (s.auth_fail_limit, s.auth_fail_window, s.key_rate_limit) == (20, 60.0, 0)


@pytest.fixture
def limited(store_url: str, tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(Settings(db=store_url, home=tmp_path, demo=False, port=0, auth_fail_limit=5,
                                auth_fail_window=600, key_rate_limit=0)).start()
    yield srv
    srv.stop()


def client_from(srv: ServerThread, source: str, **headers: str) -> httpx.Client:
    """A client whose requests come from ``source`` (any 127.x.y.z reaches loopback on Linux)."""
    return httpx.Client(base_url=srv.url, headers=headers, timeout=30,
                        transport=httpx.HTTPTransport(local_address=source))


def test_wrong_keys_from_one_address_get_429_with_retry_after(limited: ServerThread) -> None:
    tenant: Tenant = create_tenant(limited, demo_data=False)
    with client_from(limited, "127.0.0.2") as bad, client_from(limited, "127.0.0.3",
                                                             **{"X-API-KEY": tenant.api_key}) as other:
        answers = [bad.get("/crmapi/v1/users", headers={"X-API-KEY": f"wrong-{n}"}).status_code for n in range(5)]
        assert answers == [401] * 5
        r = bad.get("/crmapi/v1/users", headers={"X-API-KEY": "wrong-again"})
        assert r.status_code == 429
        assert r.json() == {"message": "Too many requests"}
        assert 1 <= int(r.headers["Retry-After"]) <= 600
        # Blocked whatever it sends now, even a right key: it guessed long enough.
        assert bad.get("/crmapi/v1/users", headers={"X-API-KEY": tenant.api_key}).status_code == 429
        # Another address is not affected.
        assert other.get("/crmapi/v1/users").status_code == 200
    tenant.client.close()


def test_wrong_legacy_tokens_count_too(limited: ServerThread) -> None:
    with client_from(limited, "127.0.0.4") as bad:
        codes = [bad.post("/sys/crm_api.wcgp", data={"cmd": "accounts", "token": f"nope-{n}"}).status_code
                 for n in range(6)]
    assert codes == [401] * 5 + [429]


def test_a_wrong_operator_key_counts_too(limited: ServerThread) -> None:
    with client_from(limited, "127.0.0.5") as bad:
        codes = [bad.post("/sim/v1/clock/advance", json={"seconds": 1},
                          headers={"X-OPERATOR-KEY": f"op_guess{n}"}).status_code for n in range(6)]
    assert codes == [401] * 5 + [429]


def test_health_and_metrics_are_never_refused(limited: ServerThread) -> None:
    with client_from(limited, "127.0.0.6") as bad:
        for n in range(6):
            bad.get("/crmapi/v1/users", headers={"X-API-KEY": f"wrong-{n}"})
        assert bad.get("/crmapi/v1/users").status_code == 429
        assert bad.get("/healthz").status_code == 200
        assert bad.get("/metrics").status_code == 200
        assert "vpbx_http_rate_limited_total" in bad.get("/metrics").text


@pytest.fixture
def budgeted(store_url: str, tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(Settings(db=store_url, home=tmp_path, demo=False, port=0, key_rate_limit=5,
                                clock="virtual")).start()
    yield srv
    srv.stop()


def test_a_key_budget_when_configured_but_not_on_the_simulator(budgeted: ServerThread) -> None:
    tenant = create_tenant(budgeted, demo_data=False)
    other = create_tenant(budgeted, demo_data=False)
    try:
        codes = [tenant.client.get("/crmapi/v1/users").status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = tenant.client.get("/crmapi/v1/users")
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
        assert other.client.get("/crmapi/v1/users").status_code == 200  # per key
        sim: list[Any] = [tenant.client.get("/sim/v1/clock").status_code for _ in range(20)]
        assert sim == [200] * 20
    finally:
        tenant.client.close()
        other.client.close()


def test_no_key_budget_by_default(limited: ServerThread) -> None:
    tenant = create_tenant(limited, demo_data=False)
    try:
        assert {tenant.client.get("/crmapi/v1/users").status_code for _ in range(60)} == {200}
    finally:
        tenant.client.close()
