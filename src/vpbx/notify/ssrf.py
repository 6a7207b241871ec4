"""The SSRF guard: where the notifier may send. On by default, whatever address vpbx listens on.

Only http(s) URLs, and only global unicast addresses: loopback, private (RFC 1918), link-local (cloud
metadata at 169.254.169.254), CGNAT 100.64.0.0/10, unique-local fc00::/7, unspecified, multicast,
documentation and other reserved ranges are refused, and so are IPv6 addresses embedding such an IPv4
address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo). A literal IP host is
checked before the request; a name is checked as it resolves (``SafeResolver``), and
the connection goes to the very addresses that were checked, so a DNS answer cannot smuggle an internal
address past the check (nor can a second lookup: there is none). A name with any internal address is
refused whole. Redirects are never followed (``http1.Client``).

Development opts out explicitly: ``vpbx serve --allow-private-crm`` / ``VPBX_ALLOW_PRIVATE_CRM=1``.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from vpbx.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOW_HINT = "--allow-private-crm allows it"


class Refused(Exception):
    """The URL may not be called; a configuration error, never retried."""


def allow_private(settings: Settings) -> bool:
    """The operator's explicit choice only: the listening address does not relax the guard."""
    return settings.allow_private_crm


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    inner: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        inner.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        inner.append(ip.sixtofour)
    if ip.teredo is not None:
        inner.extend(ip.teredo)
    if ip in NAT64:
        inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return inner


def _internal_ip(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner:
            return any(_internal_ip(v4) for v4 in inner)
    # ``is_global`` is False for private, loopback, link-local, shared (CGNAT), unique-local, reserved,
    # unspecified and documentation ranges; multicast is refused besides.
    return not ip.is_global or ip.is_multicast


def is_internal(address: str) -> bool:
    """True for an address the notifier may not reach; ValueError when ``address`` is not an IP address."""
    return _internal_ip(ipaddress.ip_address(address.split("%", 1)[0]))


def check_url(url: str, private_ok: bool) -> str:
    """The URL's host, or Refused: not http(s), no host, or a literal internal address when not allowed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise Refused(f"bad URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise Refused("the URL must be http(s)")
    if not host:
        raise Refused("the URL has no host")
    if not private_ok:
        try:
            internal = is_internal(host)
        except ValueError:
            name = host.lower().rstrip(".")
            internal = name == "localhost" or name.endswith(".localhost")
        if internal:
            raise Refused(f"private address {host} refused ({ALLOW_HINT})")
    return host


class AddressRefused(Refused, OSError):
    """A name resolved to an internal address (raised as the client connects)."""


def __getattr__(name: str) -> Any:
    """``SafeResolver`` lives in ``vpbx.notify.resolver`` (which imports this module)."""
    if name == "SafeResolver":
        from vpbx.notify.resolver import SafeResolver

        return SafeResolver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
