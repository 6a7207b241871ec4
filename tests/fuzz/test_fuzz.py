"""Schemathesis over every operation of the OpenAPI document (REST v1, /sim/v1, the legacy API, recordings).

Each operation gets ``FUZZ_EXAMPLES`` cases (positive and negative data), aimed now and then at objects that
exist (the tenant's logins, departments, numbers, a live call) and, for the legacy API, carrying the tenant's
token. Every answer must be documented: no 5xx, a status code the document lists for the operation, a body
that matches its schema and a documented content type. ``bench/fuzz.py`` runs the same test with more cases.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from vpbx.testing.server import ServerThread, Tenant, create_tenant

# 137 operations x up to 18 cases: ~2,300 per backend in `make test` (a few operations have fewer distinct inputs);
# `bench/fuzz.py` raises it.
EXAMPLES = int(os.environ.get("VPBX_FUZZ_EXAMPLES", "18"))
MIN_CASES = int(os.environ.get("VPBX_FUZZ_MIN_CASES", "2000"))
STATUS_LOG = os.environ.get("VPBX_FUZZ_STATUS_LOG", "")  # each answer's status and operation (diagnostics)
REPORT = os.environ.get("VPBX_FUZZ_REPORT", "")  # a file the run appends its figures to (bench/fuzz.py)
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
# A run must not outlive its case: the traffic generator keeps the shared server busy for days otherwise.
TRAFFIC = "/sim/v1/traffic"


def _known(client: httpx.Client, legacy_token: str) -> dict[str, list[str]]:
    """Path parameter values that name existing objects of the tenant."""
    def items(path: str) -> list[dict[str, Any]]:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        return list(body["items"] if isinstance(body, dict) else body)

    users = items("/crmapi/v1/users")
    groups = items("/crmapi/v1/groups")
    telnums = [str(t["telnum"]) for t in items("/crmapi/v1/telnums")]
    logins = [str(u["login"]) for u in users] + [str(u["ext"]) for u in users if u.get("ext")]
    call = client.post("/sim/v1/calls", json={"from": "79161234567", "to": telnums[0]})
    assert call.status_code == 201, call.text
    # A connection to another PBX (this server itself, answering 401 to the key) for 17.x and its sync.
    branch = client.post("/crmapi/v1/branches", json={"domain": "fuzz-branch.test", "name": "Филиал",
                                                      "key": "fuzz-key", "url": str(client.base_url)})
    assert branch.status_code == 200, branch.text
    ids = ["1", "2", "0", "9223372036854775807", "9223372036854775808", "-1"]
    return {
        "login": logins, "user": logins, "groupId": [str(g["id"]) for g in groups] + [str(g["ext"]) for g in groups],
        "telnum": telnums, "phone": [*telnums, "79161234567"], "id": ids, "delivery_id": ids,
        "callid": [str(call.json()["callid"])], "type": ["holdmusic", "ringback"], "domain": ["fuzz-branch.test"],
        "token": [legacy_token],
    }


@pytest.fixture(scope="module")
def fuzz_tenant(server: ServerThread) -> Iterator[Tenant]:
    t = create_tenant(server)
    yield t
    t.client.close()


@pytest.fixture(scope="module")
def fuzz_target(server: ServerThread, fuzz_tenant: Tenant) -> dict[str, Any]:
    return {"url": server.url, "tenant": fuzz_tenant, "known": _known(fuzz_tenant.client, fuzz_tenant.legacy_token)}


@pytest.fixture(scope="module")
def fuzz_schema(server: ServerThread) -> Any:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    # The key is the test's to send (one case in ten goes without it): schemathesis would otherwise drop it from a
    # quarter of the cases, negating the header's ``required``, and test nothing else with them.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    with_security_parameters=False)
    return schema


@dataclass
class Tally:
    operations: Counter[str] = field(default_factory=Counter)  # cases sent per operation
    statuses: Counter[int] = field(default_factory=Counter)  # answers per status code


@pytest.fixture(scope="module")
def fuzz_cases(backend: str, fuzz_schema: Any) -> Iterator[Tally]:
    """What was sent; every operation of the document gets cases, ``MIN_CASES`` at least over all of them."""
    tally = Tally()
    yield tally
    total = sum(tally.operations.values())
    documented = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in fuzz_schema.get_all_operations())}
    print(f"\nfuzz[{backend}]: {total} cases over {len(tally.operations)} of {len(documented)} operations; "
          f"answers by status: {dict(sorted(tally.statuses.items()))}")
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps({"backend": backend, "cases": total, "operations": len(tally.operations),
                                "documented": len(documented), "statuses": tally.statuses,
                                "per_operation": tally.operations}) + "\n")
    assert set(tally.operations) == documented, sorted(documented - set(tally.operations))
    assert total >= MIN_CASES, f"only {total} cases"


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@schema.given(data=st.data())
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_operation(case: Any, data: st.DataObject, fuzz_target: dict[str, Any], fuzz_cases: Tally) -> None:
    tenant: Tenant = fuzz_target["tenant"]
    known: dict[str, list[str]] = fuzz_target["known"]
    # Hypothesis starts from the simplest draws (False, 0): those aim at existing objects with valid credentials.
    for name in list(case.path_parameters or {}):
        if name in known and not data.draw(st.booleans(), label=f"random {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known[name]), label=name)
    if case.path == "/sys/crm_api.wcgp" and not data.draw(st.booleans(), label="random token"):
        case.query = {**(case.query or {}), "token": tenant.legacy_token}
        if isinstance(case.body, dict):  # a form's fields win over the query string
            case.body = {**case.body, "token": tenant.legacy_token}
    # One case in ten without a key (5: not a boundary value, which Hypothesis favours).
    headers = {} if data.draw(st.integers(0, 9), label="no key") == 5 else {"X-API-KEY": tenant.api_key}
    response = case.call(base_url=fuzz_target["url"], headers=headers, timeout=60)
    fuzz_cases.operations[f"{case.method.upper()} {case.path}"] += 1
    fuzz_cases.statuses[response.status_code] += 1
    if STATUS_LOG:
        with open(STATUS_LOG, "a") as f:
            f.write(f"{response.status_code} {case.method.upper()} {case.path}\n")
    try:
        case.validate_response(response, checks=CHECKS)
    finally:
        if case.path == TRAFFIC and case.method.upper() == "POST" and response.status_code == 201:
            stopped = httpx.delete(f"{fuzz_target['url']}{TRAFFIC}", headers={"X-API-KEY": tenant.api_key},
                                   timeout=60)
            assert stopped.status_code == 200, stopped.text
