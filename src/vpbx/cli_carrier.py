"""``vpbx carrier``: the operator's SIP carrier peers (issue 16), trusted by source address and port."""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

carrier_app = typer.Typer(help="The operator's SIP carriers: calls from them are trusted by source address and port.",
                          no_args_is_help=True)

# The same options as the other commands (vpbx.cli), spelt here so this module imports without vpbx.cli.
DbOption = Annotated[str, typer.Option("--db", envvar="VPBX_DB", help="Store URL; default SQLite under --home")]
HomeOption = Annotated[Path, typer.Option("--home", envvar="VPBX_HOME", help="Data folder")]

DEFAULT_PORT = 5060
_HOSTPORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+))(?::(?P<port>\d{1,5}))?$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` for IPv6 with a port; a bare IPv6 address without one) → host, port."""
    text = text.strip()
    if text.lower().startswith("sip:"):
        text = text[4:]
    try:  # a bare IPv6 address has colons of its own
        return str(ipaddress.IPv6Address(text)), DEFAULT_PORT
    except ValueError:
        pass
    m = _HOSTPORT.match(text)
    if m is None:
        raise typer.BadParameter("HOST[:PORT], e.g. 203.0.113.7, sip.carrier.example:5080 or [2001:db8::1]:5060",
                                 param_hint="HOST[:PORT]")
    port = int(m.group("port")) if m.group("port") else DEFAULT_PORT
    if not 0 < port < 65536:
        raise typer.BadParameter("a port is 1 to 65535", param_hint="HOST[:PORT]")
    host = m.group("v6") or m.group("host")
    if m.group("v6") is None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if len(host) > 253 or not all(_LABEL.match(label) for label in host.rstrip(".").split(".")):
                raise typer.BadParameter(f"{host!r} is not a host name or IP address",
                                         param_hint="HOST[:PORT]") from None
    return host, port


def resolve(host: str, port: int) -> str:
    """The IP address INVITEs from ``host`` come from: itself when it is one, else its first address
    (IPv4 first: most carriers signal over it)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise typer.BadParameter(f"{host} does not resolve ({exc})", param_hint="HOST[:PORT]") from None
    addresses = [str(info[4][0]) for info in infos]
    v4 = [a for a in addresses if ":" not in a]
    return (v4 or addresses)[0]


@carrier_app.command("add")
def carrier_add(name: Annotated[str, typer.Argument(help="A name for the carrier")],
                address: Annotated[str, typer.Argument(metavar="HOST[:PORT]",
                                                       help=f"Where its INVITEs come from (port {DEFAULT_PORT} "
                                                            "unless given); a name is resolved now")],
                db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Trust SIP requests from a carrier's address and port (the Request-URI user is the dialled number)."""
    from vpbx import cli
    from vpbx.store.repositories import carriers

    host, port = parse_address(address)
    ip = resolve(host, port)

    async def work(session: AsyncSession) -> carriers.Carrier:
        return await carriers.add_carrier(session, name, ip, port, given=host)

    carrier = cli.run_store(cli.settings_for(db, home), work)
    shown = f"{carrier.host}:{carrier.port}" if ":" not in carrier.host else f"[{carrier.host}]:{carrier.port}"
    via = f" ({escape(host)})" if host != carrier.host else ""
    cli.console.print(f"carrier [bold]{escape(carrier.name)}[/bold] added: {escape(shown)}{via}")


@carrier_app.command("list")
def carrier_list(db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """List the carriers."""
    from vpbx import cli
    from vpbx.store.repositories import carriers

    async def work(session: AsyncSession) -> tuple[list[carriers.Carrier], dict[str, str]]:
        return await carriers.list_carriers(session), await carriers.given_names(session)

    found, given = cli.run_store(cli.settings_for(db, home), work)
    if not found:
        cli.console.print("no carriers (add one: vpbx carrier add NAME HOST[:PORT])")
        return
    table = Table("name", "address", "port", "given as")
    for c in found:
        table.add_row(escape(c.name), c.host, str(c.port), escape(given.get(c.name, "")))
    cli.console.print(table)


@carrier_app.command("remove")
def carrier_remove(name: Annotated[str, typer.Argument(help="The carrier's name")],
                   db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Stop trusting a carrier."""
    from vpbx import cli
    from vpbx.store.repositories import carriers

    async def work(session: AsyncSession) -> bool:
        return await carriers.remove_carrier(session, name)

    if not cli.run_store(cli.settings_for(db, home), work):
        cli.err.print(f"[red]error:[/red] no carrier named {escape(name)}")
        raise typer.Exit(1)
    cli.console.print(f"carrier [bold]{escape(name)}[/bold] removed")
