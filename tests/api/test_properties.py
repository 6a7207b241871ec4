"""Property tests: the extension plan (domain/extensions.py and through the API) and v1 paging (002 §3.2)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpbx.domain.extensions import FIRST_FREE, next_free
from vpbx.testing.server import ServerThread, Tenant, create_tenant

V1 = "/crmapi/v1"

# --- next_free -------------------------------------------------------------------------------------

canonical = st.integers(min_value=10, max_value=2000).map(str)
noise = st.one_of(st.from_regex(r"\A0[0-9]{1,5}\Z"), st.text(max_size=4))


@given(st.sets(canonical, max_size=300), st.sets(noise, max_size=5))
def test_next_free_is_the_lowest_free_at_or_above_700(used: set[str], junk: set[str]) -> None:
    ext = next_free(used | junk)
    assert ext not in used
    assert ext.isdigit() and str(int(ext)) == ext
    assert int(ext) >= FIRST_FREE
    assert all(str(n) in used for n in range(FIRST_FREE, int(ext)))


@given(st.integers(min_value=0, max_value=400))
def test_next_free_with_a_solid_block(n: int) -> None:
    used = {str(FIRST_FREE + i) for i in range(n)}
    assert next_free(used) == str(FIRST_FREE + n)


@given(st.sets(canonical, max_size=100), st.integers(min_value=10, max_value=5000))
def test_next_free_from_another_start(used: set[str], first: int) -> None:
    ext = next_free(used, first=first)
    assert ext not in used
    assert int(ext) >= first
    assert all(str(n) in used for n in range(first, int(ext)))


def test_next_free_never_collides_when_used_repeatedly() -> None:
    used: set[str] = {"700", "702", "705"}
    for _ in range(50):
        ext = next_free(used)
        assert ext not in used
        used.add(ext)
    assert used == {str(n) for n in range(700, 753)}


# --- through the API: employees and departments share one plan ------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("user"), st.none() | st.integers(700, 720).map(str)),
        st.tuples(st.just("group"), st.none() | st.integers(700, 720).map(str)),
        st.tuples(st.just("delete"), st.integers(0, 30)),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_api_extension_plan(server: ServerThread, sequence: list[tuple[str, Any]]) -> None:
    t = create_tenant(server, demo_data=False)
    try:
        c = t.client
        owners: dict[str, tuple[str, str]] = {}  # ext -> (kind, id)
        for i, (kind, arg) in enumerate(sequence):
            if kind == "delete":
                if not owners:
                    continue
                ext = sorted(owners)[arg % len(owners)]
                what, ident = owners.pop(ext)
                assert c.delete(f"{V1}/{what}s/{ident}").status_code == 204
                continue
            body: dict[str, Any] = {"name": f"{kind} {i}"}
            if arg is not None:
                body["ext"] = arg
            if kind == "user":
                body["login"] = f"login{i}"  # the default u<ext> may be held by an earlier employee
            r = c.post(f"{V1}/{kind}s", json=body)
            if arg is not None and arg in owners:
                assert r.status_code == 400
                assert r.json()["errors"][0]["field"] == "ext"
                continue
            assert r.status_code == 200, r.text
            out = r.json()
            expected = arg if arg is not None else next_free(owners)
            assert out["ext"] == expected
            owners[out["ext"]] = (kind, out["login"] if kind == "user" else out["id"])
        users = c.get(f"{V1}/users").json()["items"]
        groups = c.get(f"{V1}/groups").json()["items"]
        exts = [u["ext"] for u in users] + [g["ext"] for g in groups]
        assert len(exts) == len(set(exts))
        assert set(exts) == set(owners)
    finally:
        t.client.close()


# --- paging ----------------------------------------------------------------------------------------

SEARCHES = ["", "ан", "АН", "70", "71", "менеджер", "u7", "dm", "zzz", "e", "продаж", " ", "%", "_"]


def check_page(c: Any, path: str, search: str, start: int, limit: int | None, full: list[Any]) -> None:
    params: dict[str, Any] = {"search": search, "start": start}
    if limit is not None:
        params["limit"] = limit
    r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = full[start:] if limit is None else full[start:start + limit]
    assert body["items"] == expected
    info = body["info"]
    assert info["search"] == search
    assert info["start"] == start
    assert info["total"] == len(full)
    assert info["limit"] == (limit if limit is not None else len(expected))
    following = start + len(expected)
    assert info["next"] == (following if expected and following < len(full) else None)


def walk(c: Any, path: str, search: str, limit: int) -> list[Any]:
    got: list[Any] = []
    start: int | None = 0
    pages = 0
    while start is not None:
        body = c.get(path, params={"search": search, "start": start, "limit": limit}).json()
        got += body["items"]
        assert body["info"]["next"] is None or body["info"]["next"] == start + limit
        start = body["info"]["next"]
        pages += 1
        assert pages <= 100
    return got


def test_paging_users_and_groups(server: ServerThread, tenant: Tenant) -> None:
    c = tenant.client
    for i in range(14):
        assert c.post(f"{V1}/users", json={"name": f"Сотрудник {i}", "position": "Оператор" if i % 2 else "Инженер"}
                      ).status_code == 200
    for i in range(6):
        assert c.post(f"{V1}/groups", json={"name": f"Группа продаж {i}"}).status_code == 200

    @settings(max_examples=60, deadline=None)
    @given(st.sampled_from(["/users", "/groups"]), st.sampled_from(SEARCHES) | st.text(max_size=3),
           st.integers(0, 30), st.none() | st.integers(0, 30))
    def page_is_a_slice(path: str, search: str, start: int, limit: int | None) -> None:
        full = c.get(V1 + path, params={"search": search}).json()["items"]
        if search.strip() == "":
            assert len(full) == (24 if path == "/users" else 9)
        check_page(c, V1 + path, search, start, limit, full)

    @settings(max_examples=25, deadline=None)
    @given(st.sampled_from(["/users", "/groups"]), st.sampled_from(SEARCHES), st.integers(1, 12))
    def pages_concatenate(path: str, search: str, limit: int) -> None:
        full = c.get(V1 + path, params={"search": search}).json()["items"]
        assert walk(c, V1 + path, search, limit) == full
        needle = search.strip().casefold()
        if path == "/users":
            for u in full:
                text = " ".join([u["login"], u["name"], u["ext"], u["telnum"], u["email"], u["mobile"],
                                 u["position"]]).casefold()
                assert needle in text

    page_is_a_slice()
    pages_concatenate()
