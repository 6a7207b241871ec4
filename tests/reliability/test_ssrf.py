"""The SSRF guard is on by default, whatever address vpbx listens on (issue 19).

A property over the internal address ranges (literal hosts, IPv4 and IPv6, and IPv6 forms embedding an
internal IPv4 address), the resolver's refusal of names with an internal address, and real attempts: a
dispatcher with default settings never reaches a loopback CRM, by literal address, mapped address or name.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.notify.conftest import Receiver, make_harness
from typer.testing import CliRunner

from vpbx.notify.payloads import CallStatus, ContactQuery, HistoryNotice
from vpbx.notify.ssrf import AddressRefused, Refused, SafeResolver, allow_private, check_url, is_internal
from vpbx.settings import Settings

INTERNAL_V4 = ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
               "100.64.0.0/10", "0.0.0.0/8", "192.0.0.0/29", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4"]
INTERNAL_V6 = ["::1/128", "fc00::/7", "fe80::/10", "::/128", "ff00::/8"]
PUBLIC_V4 = ["8.8.0.0/16", "93.184.216.0/24", "77.88.0.0/18", "1.1.1.0/24"]
PUBLIC_V6 = ["2001:4860::/32", "2a00:1450::/32"]


def addresses(networks: list[str]) -> st.SearchStrategy[Any]:
    """Any address inside one of ``networks``."""
    nets = [ipaddress.ip_network(n) for n in networks]
    return st.sampled_from(nets).flatmap(
        lambda net: st.integers(0, net.num_addresses - 1).map(lambda i: net.network_address + i))


def url_of(ip: Any) -> str:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"http://{host}:8080/crm"


def embed(v4: ipaddress.IPv4Address, form: str) -> ipaddress.IPv6Address:
    """``v4`` inside an IPv6 address: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96) or 6to4 (2002::/16)."""
    if form == "mapped":
        return ipaddress.IPv6Address(f"::ffff:{v4}")
    if form == "nat64":
        return ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    return ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | 1)


@given(addresses(INTERNAL_V4 + INTERNAL_V6))
def test_internal_literal_addresses_are_refused(ip: Any) -> None:
    assert is_internal(str(ip))
    with pytest.raises(Refused):
        check_url(url_of(ip), private_ok=False)
    assert check_url(url_of(ip), private_ok=True)  # development opts out explicitly


@given(addresses(INTERNAL_V4), st.sampled_from(["mapped", "nat64", "6to4"]))
def test_ipv6_forms_of_internal_ipv4_addresses_are_refused(v4: Any, form: str) -> None:
    with pytest.raises(Refused):
        check_url(url_of(embed(v4, form)), private_ok=False)


@given(addresses(PUBLIC_V4 + PUBLIC_V6))
def test_public_addresses_pass(ip: Any) -> None:
    assert not is_internal(str(ip))
    assert check_url(url_of(ip), private_ok=False)


@given(addresses(PUBLIC_V4), st.sampled_from(["mapped", "nat64", "6to4"]))
def test_ipv6_forms_of_public_ipv4_addresses_pass(v4: Any, form: str) -> None:
    assert check_url(url_of(embed(v4, form)), private_ok=False)


@pytest.mark.parametrize("url", ["http://100.100.100.200/latest/meta-data",  # a cloud's metadata, in CGNAT
                                 "http://169.254.169.254/latest/meta-data", "http://localhost/",
                                 "http://LOCALHOST./", "http://crm.localhost/", "http://[::ffff:7f00:1]/",
                                 "http://[fd12:3456::1]/", "http://[fe80::1%25eth0]/"])
def test_known_ssrf_targets_are_refused(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url, private_ok=False)


def test_refused_by_default_whatever_vpbx_listens_on() -> None:
    for host in ("127.0.0.1", "::1", "0.0.0.0", "10.1.2.3"):
        assert not allow_private(Settings(host=host))
    assert allow_private(Settings(allow_private_crm=True))


def test_the_serve_command_refuses_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """``vpbx serve`` builds its settings from its flags: the guard stays on without ``--allow-private-crm``."""
    import uvicorn

    from vpbx import cli

    seen: list[Settings] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)
    monkeypatch.setattr(cli, "settings_for", lambda db, home, **kw: seen.append(Settings(db=db, home=home, **kw))
                        or seen[-1])
    monkeypatch.delenv("VPBX_ALLOW_PRIVATE_CRM", raising=False)
    assert CliRunner().invoke(cli.app, ["serve", "--host", "127.0.0.1", "--no-demo"]).exit_code == 0
    assert CliRunner().invoke(cli.app, ["serve", "--host", "127.0.0.1", "--no-demo",
                                        "--allow-private-crm"]).exit_code == 0
    assert [allow_private(s) for s in seen] == [False, True]


class Answers:
    """A stand-in DNS: ``resolve`` answers these addresses (what a hostile DNS server could answer)."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[dict[str, Any]]:
        return [{"hostname": host, "host": h, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
                for h in self.hosts]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("answers", [("127.0.0.1",), ("93.184.216.34", "10.0.0.7"), ("100.64.1.1",),
                                     ("169.254.169.254",), ("::ffff:192.168.1.1",)])
async def test_a_name_with_any_internal_address_is_refused(answers: tuple[str, ...]) -> None:
    resolver = SafeResolver(private_ok=False)
    resolver._inner = Answers(*answers)  # type: ignore[assignment]
    with pytest.raises(AddressRefused):
        await resolver.resolve("crm.example.com", 443)


async def test_a_name_with_public_addresses_resolves_to_those_addresses() -> None:
    resolver = SafeResolver(private_ok=False)
    resolver._inner = Answers("93.184.216.34")  # type: ignore[assignment]
    (result,) = await resolver.resolve("crm.example.com", 443)
    assert result["host"] == "93.184.216.34"  # the connector connects to the address that was checked


async def test_the_real_resolver_refuses_localhost() -> None:
    with pytest.raises(AddressRefused):
        await SafeResolver(private_ok=False).resolve("localhost", 80)


def hist(callid: str) -> HistoryNotice:
    from datetime import UTC, datetime

    return HistoryNotice(type="in", user="andy", phone="79101234567", start=datetime(2026, 1, 12, 9, tzinfo=UTC),
                         duration=10, callid=callid, status=CallStatus.SUCCESS)


async def test_real_deliveries_to_a_loopback_crm_are_refused_by_default(store_url: str, tmp_path: Path,
                                                                        receiver: Receiver) -> None:
    from vpbx.notify.contact import lookup_contact

    # Settings as `vpbx serve` on 127.0.0.1 makes them: nothing about private addresses said.
    h = await make_harness(store_url, tmp_path, host="127.0.0.1", allow_private_crm=False)
    try:
        port = receiver.port
        urls = [f"http://127.0.0.1:{port}/crm", f"http://localhost:{port}/crm",
                f"http://[::ffff:127.0.0.1]:{port}/crm", f"http://0x7f000001:{port}/crm",
                f"http://127.1:{port}/crm"]
        domains = [await h.domain(u) for u in urls]
        for n, d in enumerate(domains):
            await h.enqueue(d, hist(f"ssrf-{n}"))
        await h.dispatcher.settle()
        await h.advance(600, step=60)
        for d in domains:
            (row,) = await h.rows(d)
            assert row.state == "failed" and row.attempts == 1, (row.url, row.last_error)
            assert "refused" in (row.last_error or "")
            assert await lookup_contact(h.runtime, d, ContactQuery(phone="79101234567", callid="x")) is None
        assert receiver.hits == []
    finally:
        await h.dispatcher.stop()
        h.runtime.reader.dispose()
        await h.runtime.engine.dispose()
