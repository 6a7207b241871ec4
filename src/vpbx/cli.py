"""The ``vpbx`` command: serve the PBX and run it as its operator."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services.errors import ServiceError
from vpbx.settings import Settings

if TYPE_CHECKING:
    import httpx

app = typer.Typer(help="vpbx: a cloud PBX speaking the VPBX CRM integration API.", no_args_is_help=True)
db_app = typer.Typer(help="The store.", no_args_is_help=True)
domain_app = typer.Typer(help="Domains (tenants).", no_args_is_help=True)
key_app = typer.Typer(help="A domain's API keys.", no_args_is_help=True)
integration_app = typer.Typer(help="A domain's CRM integration.", no_args_is_help=True)
role_app = typer.Typer(help="A domain's custom roles (002 §12.6).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(domain_app, name="domain")
app.add_typer(key_app, name="key")
app.add_typer(integration_app, name="integration")
app.add_typer(role_app, name="role")
telnum_app = typer.Typer(help="A domain's numbers (002 §9).", no_args_is_help=True)
app.add_typer(telnum_app, name="telnum")
sim_app = typer.Typer(help="SIM cards available to a domain (002 §10.3).", no_args_is_help=True)
app.add_typer(sim_app, name="sim-card")
media_app = typer.Typer(help="A domain's media files (002 §12.4).", no_args_is_help=True)
app.add_typer(media_app, name="media")
callerid_app = typer.Typer(help="A domain's outgoing numbers (002 §13.2).", no_args_is_help=True)
app.add_typer(callerid_app, name="callerid")
deliveries_app = typer.Typer(help="The CRM delivery log.", no_args_is_help=True)
app.add_typer(deliveries_app, name="deliveries")
from vpbx.cli_carrier import carrier_app  # noqa: E402 - the operator's SIP carrier peers (issue 16)

app.add_typer(carrier_app, name="carrier")

console = Console(soft_wrap=True)  # long URLs and keys stay on one line, ready to copy
err = Console(stderr=True)
T = TypeVar("T")
# How ``serve`` runs uvicorn. log_config=None: uvicorn's own loggers go through vpbx's handler (logs.configure);
# vpbx logs requests itself. ws="none": vpbx serves no WebSocket (the cabinet's live parts are SSE), and loading
# a WebSocket library is 7 ms of every start.
SERVER_OPTIONS: dict[str, Any] = {"log_config": None, "access_log": False, "loop": "uvloop", "http": "httptools",
                                  "ws": "none"}

DbOption = Annotated[str, typer.Option("--db", envvar="VPBX_DB", help="Store URL; default SQLite under --home")]
HomeOption = Annotated[Path, typer.Option("--home", envvar="VPBX_HOME", help="Data folder")]
DomainOption = Annotated[str, typer.Option("--domain", "-d", help="Domain name")]


def settings_for(db: str, home: Path, **kw: Any) -> Settings:
    return Settings(db=db, home=home, **kw)


def run_store(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, run ``work`` in one session, commit; service errors become a clean exit 1."""
    from vpbx.store import db

    async def main() -> T:
        from vpbx.secrets_store import box_for

        engine = db.create_engine(settings.db_url)
        try:
            await db.upgrade(engine, box=box_for(settings))
            async with db.session_factory(engine, settings)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        from vpbx.services.errors import NotFound

        err.print(f"[red]error:[/red] {exc.what} not found" if isinstance(exc, NotFound) else
                  f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def now() -> datetime:
    return datetime.now(UTC)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="VPBX_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="VPBX_PORT")] = 8080,
    db: DbOption = "",
    home: HomeOption = Path(".vpbx"),
    clock: Annotated[str, typer.Option(envvar="VPBX_CLOCK", help="real or virtual")] = "real",
    demo: Annotated[bool, typer.Option("--demo/--no-demo", envvar="VPBX_DEMO",
                                       help="Create the demo domain on an empty store")] = True,
    demo_phones: Annotated[bool, typer.Option(
        "--demo-phones/--no-demo-phones", envvar="VPBX_DEMO_PHONES",
        help="The demo domain's employees have registered phones that answer like people")] = True,
    tls_cert: Annotated[Path | None, typer.Option(envvar="VPBX_TLS_CERT", help="PEM certificate: serve HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(envvar="VPBX_TLS_KEY", help="PEM private key")] = None,
    sip: Annotated[str, typer.Option(envvar="VPBX_SIP", help=(
        "HOST:PORT: listen for SIP (UDP and TCP) - phones register, carriers send calls (default: off)"))] = "",
    sip_tls_cert: Annotated[Path | None, typer.Option(envvar="VPBX_SIP_TLS_CERT",
                                                      help="PEM certificate: SIP over TLS too")] = None,
    sip_tls_key: Annotated[Path | None, typer.Option(envvar="VPBX_SIP_TLS_KEY", help="PEM key for SIP TLS")] = None,
    sip_tls: Annotated[str, typer.Option(envvar="VPBX_SIP_TLS", help=(
        "HOST:PORT for SIP over TLS (default: the --sip host, its port + 1, e.g. 5061)"))] = "",
    rtpengine: Annotated[str, typer.Option(envvar="VPBX_RTPENGINE", help=(
        "Media for SIP calls: empty = vpbx starts its own rtpengine; HOST:PORT = an operator-run rtpengine's ng "
        "port; off = none (calls connect, unanchored and unrecorded)"))] = "",
    recording_store: Annotated[str, typer.Option(envvar="VPBX_RECORDING_STORE", help=(
        "Where call recordings are kept: empty = <home>/recordings; s3://BUCKET/PREFIX?endpoint=URL&region=NAME = "
        "an S3-compatible object store (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"))] = "",
    log_json: Annotated[bool, typer.Option("--log-json", envvar="VPBX_LOG_JSON", help="JSON log lines")] = False,
    log_level: Annotated[str, typer.Option(envvar="VPBX_LOG_LEVEL",
                                           help="debug, info, warning, error or critical")] = "info",
    allow_private_crm: Annotated[bool, typer.Option(
        "--allow-private-crm", envvar="VPBX_ALLOW_PRIVATE_CRM",
        help="Development only: let CRM/webhook requests reach loopback, private, link-local, CGNAT and "
             "unique-local addresses (refused by default, whatever address vpbx listens on)")] = False,
    workers: Annotated[int, typer.Option(envvar="VPBX_WORKERS", min=1, help=(
        "Processes on this host sharing the port (SO_REUSEPORT), one cluster node each: needs a PostgreSQL "
        "store"))] = 1,
) -> None:
    """Serve REST v1, the legacy API and the simulator (every option also reads VPBX_<OPTION>). With a PostgreSQL
    store the process is a cluster node: several (``--workers``, or other hosts on the same --db) form one PBX."""
    import logging

    import uvicorn

    from vpbx import gctune, logs

    if clock not in ("real", "virtual"):
        raise typer.BadParameter("real or virtual", param_hint="--clock")
    if log_level.lower() not in logs.LEVELS:
        raise typer.BadParameter(", ".join(logs.LEVELS), param_hint="--log-level")
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give both --tls-cert and --tls-key")
    if sip:
        from vpbx.telephony.sip.stack import parse_hostport

        try:
            parse_hostport(sip)
        except ValueError:
            raise typer.BadParameter("HOST:PORT", param_hint="--sip") from None
    if (sip_tls_cert is None) != (sip_tls_key is None):
        raise typer.BadParameter("give both --sip-tls-cert and --sip-tls-key")
    if (sip_tls_cert is not None or sip_tls) and not sip:
        raise typer.BadParameter("SIP over TLS needs --sip", param_hint="--sip-tls-cert")
    if sip_tls:
        try:
            parse_hostport(sip_tls)
        except ValueError:
            raise typer.BadParameter("HOST:PORT", param_hint="--sip-tls") from None
    if recording_store.strip():
        from vpbx.telephony.media.objectstore import parse_location

        try:
            parse_location(recording_store)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--recording-store") from None
    settings = settings_for(db, home, host=host, port=port, clock=clock, demo=demo, demo_phones=demo_phones,
                            tls_cert=tls_cert, tls_key=tls_key, log_json=log_json, log_level=log_level, sip=sip,
                            sip_tls_cert=sip_tls_cert, sip_tls_key=sip_tls_key, sip_tls=sip_tls,
                            rtpengine=rtpengine, recording_store=recording_store,
                            **({} if allow_private_crm is None else {"allow_private_crm": allow_private_crm}))
    logs.configure(log_level, log_json)
    scheme = "https" if tls_cert else "http"
    url = f"{scheme}://{host}:{port}"
    from vpbx import workers as worker_procs

    slot = worker_procs.slot()
    if workers > 1 and slot is None:
        from vpbx.store import db as store_db

        if store_db.is_sqlite(settings.db_url):
            err.print("[red]error:[/red] --workers needs a PostgreSQL store (--db postgresql://...): a SQLite store "
                      "has one writer, so one process serves it")
            raise typer.Exit(2)
        if settings.sip:
            err.print("[red]error:[/red] --workers with --sip: one process per host serves SIP (its port, its "
                      "calls and its rtpengine); run SIP nodes with --workers 1, on several hosts for more")
            raise typer.Exit(2)
        raise typer.Exit(worker_procs.supervise(settings, workers))

    def ready() -> None:
        logging.getLogger("vpbx").info("serving", extra={"url": url, "store": logs.redact_url(settings.db_url),
                                                         "clock": clock})
        announce(settings, url)

    sockets = None
    if slot is not None:  # one of --workers: the shared port, and its own port the other nodes forward to
        sockets, settings = worker_procs.sockets(settings)
    with gctune.building():  # the app's imports and the app, then frozen out of the collector's way
        from vpbx.app import create_app

        application = create_app(settings, on_ready=ready if not slot else None)
    if sockets is not None:
        uvicorn.Server(uvicorn.Config(application, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                                      **SERVER_OPTIONS)).run(sockets=sockets)
        return

    uvicorn.run(application, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, **SERVER_OPTIONS)


def announce(settings: Settings, url: str) -> None:
    from vpbx.bootstrap import credentials_path, read_credentials
    from vpbx.logs import redact_url

    console.print(f"[bold green]vpbx[/bold green] serving on {url}  (store: {redact_url(settings.db_url)}, "
                  f"clock: {settings.clock})")
    console.print(f"  home: {url}/   docs: {url}/docs   REST v1: {url}/crmapi/v1/users   "
                  f"legacy: {url}/sys/crm_api.wcgp")
    if settings.clock == "virtual":
        from vpbx.secrets_store import operator_key_path

        where = "VPBX_OPERATOR_KEY" if settings.operator_key else str(operator_key_path(settings.home))
        console.print(f"  the virtual clock moves with the operator's key (X-OPERATOR-KEY), kept in {where}")
    creds = read_credentials(settings.home) if settings.demo else None
    if creds:
        console.print(f"  demo domain: [bold]{creds['domain']}[/bold]"
                      f"{'  (phones registered, answering like people)' if settings.demo_phones else ''}")
        console.print(f"  API key (X-API-KEY): [bold]{creds['api_key']}[/bold]")
        console.print(f"  legacy token:        [bold]{creds['legacy_token']}[/bold]")
        console.print(f"  try: curl -H 'X-API-KEY: {creds['api_key']}' {url}/crmapi/v1/users")
        console.print(f"       vpbx call incoming --from 79101234567 --to 74951234567 --url {url}; "
                      f"vpbx calls --url {url}")
        if creds.get("admin_password"):
            console.print(f"  web cabinet: {url}/console  sign in as [bold]{creds['admin_login']}[/bold] "
                          f"password [bold]{creds['admin_password']}[/bold]")
        console.print(f"  (kept in {credentials_path(settings.home)})")
    if settings.sip:
        sip_domain = creds["domain"] if creds else "<domain>"
        over = "UDP, TCP" + (f"; TLS on {settings.sip_tls or 'the next port'}" if settings.sip_tls_cert else "")
        console.print(f"  SIP on {settings.sip} ({over}): register a softphone as admin@{sip_domain} "
                      f"(or its extension) with the admin's password, registrar/proxy {settings.sip}; "
                      f"realm {sip_domain}")
        if creds:
            console.print("  then dial 78121234567: the greeting and the menu (1 sales, 2 support, 0 admin), "
                          "answered by the demo's simulated phones; a second softphone (PUT /crmapi/v1/users/"
                          "{login} {\"password\": ...}) rings in their place once registered")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Apply every pending migration."""

    async def noop(_: AsyncSession) -> None:
        return None

    run_store(settings_for(db, home), noop)
    console.print("store is up to date")


@domain_app.command("create")
def domain_create(
    name: str,
    timezone: Annotated[str, typer.Option()] = "Europe/Moscow",
    api_key: Annotated[str | None, typer.Option(help="Use this API key instead of a random one")] = None,
    legacy_token: Annotated[str | None, typer.Option(help="Use this legacy token")] = None,
    demo_data: Annotated[bool, typer.Option("--demo-data/--no-demo-data")] = True,
    db: DbOption = "",
    home: HomeOption = Path(".vpbx"),
) -> None:
    """Create a domain; prints its API key and legacy token once."""
    from vpbx.services import demo, tenancy

    async def work(session: AsyncSession) -> tenancy.CreatedDomain:
        created = await tenancy.create_domain(session, name, now(), timezone=timezone, api_key=api_key,
                                              legacy_token=legacy_token)
        if demo_data:
            await demo.populate(session, created.domain, now())
        return created

    created = run_store(settings_for(db, home), work)
    console.print(f"domain [bold]{created.domain.name}[/bold] created")
    console.print(f"API key: {created.api_key}")
    console.print(f"legacy token: {created.legacy_token}")


@domain_app.command("list")
def domain_list(db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """List domains."""
    from vpbx.store.repositories import directory, tenancy

    async def work(session: AsyncSession) -> list[tuple[Any, int, int]]:
        return [(d, await directory.count_users(session, d.id), await directory.count_groups(session, d.id))
                for d in await tenancy.domains(session)]

    table = Table("name", "timezone", "employees", "departments", "created")
    for d, n_users, n_groups in run_store(settings_for(db, home), work):
        table.add_row(d.name, d.timezone, str(n_users), str(n_groups), d.created_at.isoformat(timespec="seconds"))
    console.print(table)


@domain_app.command("show")
def domain_show(name: str, db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Show a domain's parameters (002 §12.1), integration and keys."""
    from vpbx.services import tenancy
    from vpbx.store.repositories import tenancy as repo

    async def work(session: AsyncSession) -> tuple[dict[str, Any], Any, list[Any]]:
        domain = await tenancy.get_domain(session, name)
        return (await tenancy.domain_params(session, domain, now()), await repo.integration(session, domain.id),
                await repo.keys(session, domain.id))

    params, integration, keys = run_store(settings_for(db, home), work)
    console.print_json(data=params)
    console.print(f"integration: {'on' if integration.enabled else 'off'}"
                  f"{' (switched off)' if integration.switched_off else ''}, url={integration.crm_url or '-'}, "
                  f"dialect={integration.dialect}, legacy edition={integration.legacy_edition}")
    for k in keys:
        console.print(f"key #{k.id} {k.prefix}… role={k.role or 'full'} "
                      f"{'revoked' if k.revoked_at else 'active'}")


@domain_app.command("delete")
def domain_delete(name: str, yes: Annotated[bool, typer.Option("--yes")] = False, db: DbOption = "",
                  home: HomeOption = Path(".vpbx")) -> None:
    """Delete a domain and everything in it."""
    from vpbx.services import tenancy

    if not yes:
        typer.confirm(f"Delete {name} and all its data?", abort=True)

    async def work(session: AsyncSession) -> None:
        await tenancy.delete_domain(session, name)

    run_store(settings_for(db, home), work)
    console.print(f"domain {name} deleted")


@key_app.command("create")
def key_create(domain: Annotated[str | None, typer.Option("--domain", "-d", help="Domain name")] = None,
               role: Annotated[str | None, typer.Option(help="Role: admin, user, ... or "
               "a custom role id; default full rights")] = None,
               api_key: Annotated[str | None, typer.Option(help="Use this key")] = None,
               label: Annotated[str, typer.Option()] = "", db: DbOption = "",
               home: HomeOption = Path(".vpbx"),
               operator: Annotated[bool, typer.Option(
                   "--operator", help="The server operator's key instead (moves the shared virtual clock; "
                                      "kept in <home>/operator-key, 0600; servers read it at start)")] = False) -> None:
    """Create an API key; it is printed once."""
    from vpbx.services import tenancy

    if operator:
        from vpbx.secrets_store import new_operator_key

        console.print(new_operator_key(home))
        return
    if not domain:
        raise typer.BadParameter("give --domain (or --operator)", param_hint="--domain")

    async def work(session: AsyncSession) -> str:
        return await tenancy.create_key(session, await tenancy.get_domain(session, domain), now(),
                                        api_key=api_key, role=role, label=label)

    console.print(run_store(settings_for(db, home), work))


@key_app.command("list")
def key_list(domain: DomainOption, db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """List a domain's keys (their first characters only)."""
    from vpbx.services import tenancy
    from vpbx.store.repositories import tenancy as repo

    async def work(session: AsyncSession) -> list[Any]:
        return await repo.keys(session, (await tenancy.get_domain(session, domain)).id)

    table = Table("id", "prefix", "role", "label", "created", "state")
    for k in run_store(settings_for(db, home), work):
        table.add_row(str(k.id), k.prefix + "…", k.role or "full", k.label,
                      k.created_at.isoformat(timespec="seconds"), "revoked" if k.revoked_at else "active")
    console.print(table)


@key_app.command("revoke")
def key_revoke(domain: DomainOption, key: Annotated[str, typer.Argument(help="Key id or prefix")],
               db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Revoke a key (running servers refuse it from their next request)."""
    from vpbx.services import tenancy

    async def work(session: AsyncSession) -> int:
        return await tenancy.revoke_key(session, await tenancy.get_domain(session, domain), key, now())

    console.print(f"revoked {run_store(settings_for(db, home), work)} key(s)")


@integration_app.command("set")
def integration_set(
    domain: DomainOption,
    crm_url: Annotated[str | None, typer.Option(help="Where the PBX sends history/event/contact")] = None,
    crm_token: Annotated[str | None, typer.Option(help="crm_token sent in every request")] = None,
    legacy_token: Annotated[str | None, typer.Option(help="token of the legacy API")] = None,
    dialect: Annotated[str | None, typer.Option(help="form, json or legacy")] = None,
    on: Annotated[bool | None, typer.Option("--on/--off", help="Integration on or off")] = None,
    lookup_timeout: Annotated[float | None, typer.Option(help="contact lookup timeout, s")] = None,
    signing_secret: Annotated[str | None, typer.Option(help="Standard Webhooks secret ('' to drop)")] = None,
    edition: Annotated[str | None, typer.Option(help="Legacy API edition the CRM follows: 000 (default) or "
                                                     "004 (also 001): makeCall's answer, the pushes' fields")] = None,
    db: DbOption = "",
    home: HomeOption = Path(".vpbx"),
) -> None:
    """Configure the domain's CRM integration."""
    from vpbx.services import tenancy

    async def work(session: AsyncSession) -> Any:
        return await tenancy.set_integration(
            session, await tenancy.get_domain(session, domain), crm_url=crm_url, crm_token=crm_token,
            legacy_token=legacy_token, dialect=dialect, enabled=on, lookup_timeout=lookup_timeout,
            signing_secret=signing_secret, legacy_edition=edition)

    i = run_store(settings_for(db, home), work)
    console.print(f"integration {'on' if i.enabled else 'off'}: url={i.crm_url or '-'} dialect={i.dialect} "
                  f"edition={i.legacy_edition}")


@integration_app.command("map")
def integration_map(
    domain: DomainOption,
    crm_user: Annotated[str | None, typer.Argument(help="The CRM's user id")] = None,
    login: Annotated[str | None, typer.Argument(help="The employee's login or extension")] = None,
    on: Annotated[bool | None, typer.Option("--on/--off", help="Legacy API: accept mapped CRM user ids")] = None,
    unmap: Annotated[str | None, typer.Option(help="Remove this CRM user id's mapping")] = None,
    db: DbOption = "",
    home: HomeOption = Path(".vpbx"),
) -> None:
    """Map CRM user ids to employees for the legacy API (000 §5.5 self_map); without arguments, list them."""
    from vpbx.services import legacy, tenancy

    if (crm_user is None) != (login is None):
        err.print("[red]error:[/red] give both CRM_USER and LOGIN")
        raise typer.Exit(2)

    async def work(session: AsyncSession) -> dict[str, Any]:
        d = await tenancy.get_domain(session, domain)
        if on is not None:
            await legacy.set_map_enabled(session, d, on)
        if unmap is not None:
            await legacy.unmap_user(session, d, unmap)
        if crm_user is not None and login is not None:
            await legacy.map_user(session, d, crm_user, login)
        return await legacy.user_map(session, d)

    state = run_store(settings_for(db, home), work)
    console.print(f"user map {'on' if state['enabled'] else 'off'}")
    for crm, user in state["map"]:
        console.print(f"  {crm} -> {user}")


@role_app.command("create")
def role_create(domain: DomainOption, name: str,
                rights: Annotated[str, typer.Option(help="Comma-separated, e.g. users.get,groups.get")] = "",
                db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Create a custom role; prints its id."""
    from vpbx.services import tenancy

    async def work(session: AsyncSession) -> str:
        role = await tenancy.create_role(session, await tenancy.get_domain(session, domain), name,
                                         [r.strip() for r in rights.split(",") if r.strip()])
        return role.role_id

    console.print(run_store(settings_for(db, home), work))


@domain_app.command("limits")
def domain_limits(name: str, users: Annotated[int | None, typer.Option()] = None,
                  groups: Annotated[int | None, typer.Option()] = None,
                  local_gw: Annotated[int | None, typer.Option()] = None,
                  db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Set a domain's limits (-1: unlimited)."""
    from vpbx.services import tenancy

    async def work(session: AsyncSession) -> None:
        await tenancy.set_limits(session, await tenancy.get_domain(session, name), users=users, groups=groups,
                                 local_gw=local_gw)

    run_store(settings_for(db, home), work)
    console.print("limits set")


DemoDomainOption = Annotated[str | None, typer.Option("--domain", "-d", help="Domain name; default the demo domain")]


def _domain_or_demo(domain: str | None, home: Path) -> str:
    """The domain given, else the demo domain of ``home`` (the one ``vpbx serve`` created there)."""
    from vpbx.bootstrap import read_credentials
    from vpbx.services.demo import DEMO_DOMAIN

    if domain:
        return domain
    creds = read_credentials(home) or {}
    return str(creds.get("domain") or DEMO_DOMAIN)


async def _named_domain(session: AsyncSession, name: str) -> Any:
    from vpbx.services import tenancy
    from vpbx.services.errors import NotFound

    try:
        return await tenancy.get_domain(session, name)
    except NotFound:
        raise ServiceError(f"no domain {name} in this store (--domain, --home or --db)") from None


@deliveries_app.command("list")
def deliveries_list(
    domain: DemoDomainOption = None,
    callid: Annotated[str | None, typer.Option(help="Only this call")] = None,
    command: Annotated[str | None, typer.Option(help="history, event, rating or webhook")] = None,
    state: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 50,
    db: DbOption = "",
    home: HomeOption = Path(".vpbx"),
) -> None:
    """List the notifications sent to the domain's CRM, with their last attempt."""
    from vpbx.notify import deliveries

    name = _domain_or_demo(domain, home)

    async def work(session: AsyncSession) -> tuple[list[dict[str, Any]], int]:
        d = await _named_domain(session, name)
        return await deliveries.list_deliveries(session, d.id, callid=callid, command=command, state=state,
                                                limit=limit)

    items, total = run_store(settings_for(db, home), work)
    table = Table("id", "command", "callid", "state", "attempts", "last status", "last error", "latency ms",
                  "created", title=f"{name}: {len(items)} of {total} deliveries")
    colors = {"delivered": "green", "failed": "red", "pending": "yellow"}
    for it in items:
        last = it["log"][-1] if it["log"] else {}
        table.add_row(str(it["id"]), it["command"], it["callid"] or "-",
                      f"[{colors.get(it['state'], 'white')}]{it['state']}[/]", str(it["attempts"]),
                      str(it["last_status"] or "-"), (it["last_error"] or "")[:40],
                      str(last.get("latency_ms", "-")), it["created_at"])
    console.print(table)


@deliveries_app.command("replay")
def deliveries_replay(delivery_id: Annotated[int, typer.Argument(help="Delivery id")],
                      domain: DemoDomainOption = None, db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Send a notification again (same id and body); a running server picks it up within a second."""
    from vpbx.notify import deliveries

    async def work(session: AsyncSession) -> dict[str, Any]:
        d = await _named_domain(session, _domain_or_demo(domain, home))
        return await deliveries.replay(session, d.id, delivery_id, now())

    out = run_store(settings_for(db, home), work)
    console.print(f"delivery {out['id']} ({out['command']} {out['notification_id']}) queued again")


@media_app.command("add")
def media_add(domain: DomainOption,
              file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
              type_: Annotated[str, typer.Option("--type", "-t", help="ringback or holdmusic")] = "holdmusic",
              name: Annotated[str | None, typer.Option(help="Name shown; default the file's name")] = None,
              db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Upload a wav, mp3 or ogg file (at most 10 MiB) to the catalogue; prints its id."""
    from vpbx.services import media, tenancy

    settings = settings_for(db, home)

    async def work(session: AsyncSession) -> str:
        d = await tenancy.get_domain(session, domain)
        created = await media.add(session, d.id, type_, name or file.name, file.read_bytes(), settings.home, now())
        return created.file_id

    console.print(run_store(settings, work))


@media_app.command("prompts")
def media_prompts(home: HomeOption = Path(".vpbx")) -> None:
    """Generate the default prompts (Russian and English, espeak-ng) into <home>/cache/prompts now, instead of on
    the first call that needs one."""
    from vpbx.telephony.media.prompts import PromptError, Prompts

    try:
        paths = Prompts(home).ensure_all()
    except PromptError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{len(paths)} prompts in {home / 'cache' / 'prompts'}")


@media_app.command("check")
def media_check(rtpengine: Annotated[str, typer.Option(envvar="VPBX_RTPENGINE", help=(
        "HOST:PORT of an rtpengine's ng port; empty: start vpbx's own for a moment"))] = "",
                home: HomeOption = Path(".vpbx")) -> None:
    """Ping rtpengine (the operator's, or vpbx's own started and stopped) and say whether calls get media."""
    from vpbx.telephony.media.runtime import MediaRuntime

    async def main() -> bool:
        runtime = await MediaRuntime.start(Settings(home=home, rtpengine=rtpengine))
        if runtime is None:
            return False
        try:
            return await runtime.media.available()
        finally:
            await runtime.stop()

    if rtpengine.strip().lower() == "off":
        console.print("media is off (VPBX_RTPENGINE=off)")
        return
    if not asyncio.run(main()):
        console.print("[red]rtpengine does not answer: calls connect without media (no prompts, no recording)[/red]")
        raise typer.Exit(1)
    console.print("rtpengine answers: media is anchored, prompts and recordings work")


@media_app.command("list")
def media_list(domain: DomainOption,
               type_: Annotated[str, typer.Option("--type", "-t", help="ringback or holdmusic")] = "holdmusic",
               db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """List the catalogue's files of one type."""
    from vpbx.services import media, tenancy

    async def work(session: AsyncSession) -> list[dict[str, str]]:
        return await media.catalog(session, (await tenancy.get_domain(session, domain)).id, type_)

    table = Table("id", "name")
    for f in run_store(settings_for(db, home), work):
        table.add_row(f["id"], f["name"])
    console.print(table)


@callerid_app.command("outgoing")
def callerid_outgoing(domain: DomainOption, telnum: str,
                      on: Annotated[bool, typer.Option("--on/--off", help="Outgoing calls allowed")] = True,
                      db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Allow or forbid outgoing calls (caller ID) from one of the domain's numbers."""
    from vpbx.services import callerids, tenancy

    async def work(session: AsyncSession) -> str:
        d = await tenancy.get_domain(session, domain)
        return await callerids.set_outgoing(session, d.id, telnum, on)

    console.print(f"{run_store(settings_for(db, home), work)}: outgoing calls {'on' if on else 'off'}")


@telnum_app.command("add")
def telnum_add(domain: DomainOption, number: str,
               name: Annotated[str, typer.Option(help="The number's name (9.1 name)")] = "",
               location: Annotated[str, typer.Option(help="Region (9.1 location)")] = "",
               main: Annotated[bool, typer.Option("--main", help="Make it the company's main number")] = False,
               db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Give a domain a number; it routes to the first employee until configured (9.3)."""
    from vpbx.services import numbers, tenancy

    async def work(session: AsyncSession) -> str:
        row = await numbers.provision(session, await tenancy.get_domain(session, domain), number, now(), name=name,
                                      location=location, main=main)
        return row.telnum

    console.print(f"number {run_store(settings_for(db, home), work)} added")


@telnum_app.command("list")
def telnum_list(domain: DomainOption, db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """List a domain's numbers and SIM cards."""
    from vpbx.services import tenancy
    from vpbx.store.repositories import numbers as repo

    async def work(session: AsyncSession) -> list[Any]:
        return await repo.all_telnums(session, (await tenancy.get_domain(session, domain)).id)

    table = Table("telnum", "kind", "name", "route", "main", "state")
    for t in run_store(settings_for(db, home), work):
        target = {"user": t.route_user, "group": t.route_group, "ivr": t.ivr_menu}.get(t.type) or ""
        table.add_row(t.telnum, t.kind, t.name, f"{t.type} {target}".strip(), "yes" if t.is_main_phone else "",
                      "disabled" if t.disabled else "enabled")
    console.print(table)


@sim_app.command("add")
def sim_card_add(domain: DomainOption, number: str,
                 sms_confirmation: Annotated[bool, typer.Option("--sms-confirmation",
                                                                help="Adding it needs an SMS confirmation")] = False,
                 db: DbOption = "", home: HomeOption = Path(".vpbx")) -> None:
    """Make a SIM card available to a domain (10.3); the company adds it with 10.4."""
    from vpbx.services import sims, tenancy

    async def work(session: AsyncSession) -> None:
        await sims.provision(session, await tenancy.get_domain(session, domain), number,
                             sms_confirmation=sms_confirmation)

    run_store(settings_for(db, home), work)
    console.print(f"SIM card {number} available to {domain}")


# --- live calls on a running server (the simulator API, /work/shared/design/simulator.md) ---------

call_app = typer.Typer(help="Place simulated calls on a running server.", no_args_is_help=True)
app.add_typer(call_app, name="call")
UrlOption = Annotated[str, typer.Option("--url", envvar="VPBX_URL", help="The running server")]
KeyOption = Annotated[str | None, typer.Option(
    "--key", envvar="VPBX_API_KEY", help="The domain's X-API-KEY; default the demo domain's, read from "
                                         "<VPBX_HOME or ./.vpbx>/demo-credentials.json")]
DEFAULT_URL = "http://127.0.0.1:8080"


def _api_key(key: str | None) -> str:
    from vpbx.bootstrap import read_credentials

    if key:
        return key
    home = Path(os.environ.get("VPBX_HOME") or ".vpbx")
    creds = read_credentials(home)
    if not creds or not creds.get("api_key"):
        err.print(f"[red]error:[/red] no --key given and no {home}/demo-credentials.json "
                  "(start `vpbx serve` here, or pass the domain's key)")
        raise typer.Exit(2)
    return str(creds["api_key"])


def _request(method: str, url: str, key: str | None, path: str, body: dict[str, Any] | None = None, *,
             client: httpx.Client | None = None) -> Any:
    """One request to the server's API (on ``client``'s connection when given: commands that poll);
    transport and HTTP errors become a clean exit 1."""
    import httpx

    try:
        if client is not None:
            r = client.request(method, path, json=body)
        else:
            r = httpx.request(method, url.rstrip("/") + path, json=body, headers={"X-API-KEY": _api_key(key)},
                              timeout=30)
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/red] cannot reach {url}: {exc}")
        raise typer.Exit(1) from exc
    if r.status_code >= 400:
        try:
            answer = r.json()
            message = answer.get("message", r.text)
            # A 400 names each refused field: say which, not only "Validation error" (as the SDK's errors do).
            if fields := [e for e in answer.get("errors") or [] if isinstance(e, dict)]:
                message += " (" + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in fields) + ")"
        except (ValueError, AttributeError):
            message = r.text
        err.print(f"[red]error:[/red] {r.status_code} {message}")
        raise typer.Exit(1)
    return r.json()


def _legs(call: dict[str, Any]) -> str:
    return ", ".join(f"{leg['party']} {leg['state']}" for leg in call.get("legs") or []) or "-"


@call_app.command("incoming")
def call_incoming(
    from_: Annotated[str, typer.Option("--from", help='The client\'s number, or "anonymous"')],
    to: Annotated[str, typer.Option("--to", help="One of the domain's numbers")],
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """A client dials one of the domain's numbers; prints the call's id and what rings."""
    call = _request("POST", url, key, "/sim/v1/calls", {"from": from_, "to": to})
    _print_placed(call, f" as {call['caller_name']}" if call.get("caller_name") else "")


def _print_placed(call: dict[str, Any], detail: str) -> None:
    if call["state"] in ("ended", "refused"):
        console.print(f"call {call['callid']} [red]{call['state']}[/red]: {call.get('status') or call.get('reason')}")
        return
    console.print(f"call [bold]{call['callid']}[/bold] {call['state']}{detail}: {_legs(call)}")


SHORT_ID = 8  # ``vpbx calls`` shows this much of a call id; every ``vpbx call`` command takes a unique prefix


def _clock_time(stamp: str | None) -> str:
    """``HH:MM:SS`` of an ISO time (the day is today's on a live server)."""
    if not stamp:
        return "-"
    try:
        return datetime.fromisoformat(stamp).strftime("%H:%M:%S")
    except ValueError:
        return stamp


def _who(call: dict[str, Any]) -> str:
    """Who is on the call: ``ivan talking``, ``admin ringing`` (outside parties as their number)."""
    colors = {"ringing": "yellow", "talking": "green", "hold": "cyan"}
    legs = [leg for leg in call.get("legs") or [] if leg["state"] != "ended"]
    return ", ".join(f"{leg['party'].removeprefix('ext:')} [{colors.get(leg['state'], 'white')}]{leg['state']}[/]"
                     for leg in legs) or "-"


@app.command("calls")
def calls_list(url: UrlOption = DEFAULT_URL, key: KeyOption = None,
               wide: Annotated[bool, typer.Option("--wide", help="Full call ids")] = False) -> None:
    """The domain's live calls: who calls whom, the state, who rings and who talks (fits 100 columns)."""
    from rich.markup import escape

    calls = _request("GET", url, key, "/sim/v1/calls")
    if not calls:
        console.print("no live calls")
        return
    note = "" if wide or not calls else f" (ids: the first {SHORT_ID} characters; `vpbx call` takes any unique prefix)"
    table = Table("call", "from", "to", "state", "since", "who", title=f"{len(calls)} live call"
                  f"{'' if len(calls) == 1 else 's'}{note}", title_justify="left")
    table.columns[0].no_wrap = True
    colors = {"ringing": "yellow", "talking": "green"}
    arrows = {"incoming": "→ in", "outgoing": "← out", "internal": "↔ int"}
    for c in calls:
        state = c["state"]
        caller = escape(c["from"]) + (f"\n[dim]{escape(c['caller_name'])}[/dim]" if c.get("caller_name") else "")
        dialed = escape(c["to"]) + (f"\n[dim]{escape(c['group'])}[/dim]" if c.get("group") else "")
        callid = c["callid"] if wide else c["callid"][:SHORT_ID]
        table.add_row(f"{callid}\n[dim]{arrows.get(c['kind'], c['kind'])}[/dim]", caller, dialed,
                      f"[{colors.get(state, 'white')}]{state}[/]", _clock_time(c.get("started")),
                      _who(c))
    console.print(table)


def _callid(url: str, key: str | None, callid: str) -> str:
    """A full call id from a unique prefix of a live call's (``vpbx calls`` shows the first characters)."""
    if len(callid) >= 32:
        return callid
    matches = [c["callid"] for c in _request("GET", url, key, "/sim/v1/calls") if c["callid"].startswith(callid)]
    if len(matches) == 1:
        return str(matches[0])
    if matches:
        err.print(f"[red]error:[/red] {len(matches)} live calls start with {callid}: give more of the id")
        raise typer.Exit(2)
    return callid  # an ended call is still readable by its full id: let the server answer


def _act(url: str, key: str | None, callid: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    full = _callid(url, key, callid)
    call: dict[str, Any] = _request("POST", url, key, f"/sim/v1/calls/{full}/{action}", body)
    return call


def _print_call(call: dict[str, Any]) -> None:
    state = call["state"]
    if state in ("ended", "refused"):
        console.print(f"call {call['callid']} [red]{state}[/red]: {call.get('status') or call.get('reason')}")
    else:
        console.print(f"call [bold]{call['callid']}[/bold] {state}: {_who(call)}")


CallArg = Annotated[str, typer.Argument(help="The call's id or a unique prefix of it (see `vpbx calls`)")]


@call_app.command("show")
def call_show(callid: CallArg, url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """A call's state, legs and events (ended calls too, by their full id)."""
    call = _request("GET", url, key, f"/sim/v1/calls/{_callid(url, key, callid)}")
    _print_call(call)
    for name in ("kind", "from", "to", "caller_name", "group", "answered_by", "status", "link", "continued_as",
                 "consult"):
        if call.get(name):
            console.print(f"  {name}: {call[name]}")
    for event in call.get("events") or []:
        console.print(f"  event {event['type']} {event.get('user') or ''}")


@call_app.command("answer")
def call_answer(callid: CallArg, user: Annotated[str | None, typer.Option(
                    "--user", "-u", help="The employee who picks up; without it, the client of an outgoing call")]
                = None,
                url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """An employee answers a ringing call (or the client answers an outgoing one)."""
    _print_call(_act(url, key, callid, "answer", {"user": user} if user else {}))


@call_app.command("reject")
def call_reject(callid: CallArg,
                user: Annotated[str | None, typer.Option("--user", "-u", help="The employee who declines; without "
                                                         "it the client of an outgoing call refuses")] = None,
                reason: Annotated[str | None, typer.Option(help="The client's refusal: busy, unavailable or "
                                                                "notfound")] = None,
                url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """An employee declines a ringing call (or the client refuses an outgoing one)."""
    body: dict[str, Any] = {}
    if user:
        body["user"] = user
    if reason:
        body["reason"] = reason
    _print_call(_act(url, key, callid, "reject", body))


@call_app.command("hangup")
def call_hangup(callid: CallArg,
                by: Annotated[str, typer.Option("--by", help="client, or the login of the employee")] = "client",
                url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """The client (default) or an employee hangs up."""
    _print_call(_act(url, key, callid, "hangup", {"by": by}))


@call_app.command("dtmf")
def call_dtmf(callid: CallArg, digits: Annotated[str, typer.Argument(help="Keys the client presses, e.g. 2")],
              url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """The client presses keys (an IVR choice, a callback request)."""
    _print_call(_act(url, key, callid, "dtmf", {"digits": digits}))


@call_app.command("transfer")
def call_transfer(callid: CallArg,
                  user: Annotated[str, typer.Option("--user", "-u", help="The employee who transfers")],
                  to: Annotated[str, typer.Option("--to", help="A login, an extension, a department or an "
                                                               "outside number")],
                  mode: Annotated[str, typer.Option(help="blind or attended")] = "blind",
                  url: UrlOption = DEFAULT_URL, key: KeyOption = None) -> None:
    """Transfer a call: blind (the client's call goes on as a new call id) or attended (a consultation first)."""
    call = _act(url, key, callid, "transfer", {"user": user, "to": to, "mode": mode})
    _print_call(call)
    if call.get("consult"):
        console.print(f"  consulting on call {call['consult']}: `vpbx call hangup {call['consult'][:SHORT_ID]} "
                      f"--by {user}` completes the transfer")


@call_app.command("outgoing")
def call_outgoing(
    from_: Annotated[str, typer.Option("--from", help="The employee dialling: a login or an extension")],
    to: Annotated[str, typer.Option("--to", help="The outside number")],
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """An employee dials an outside number from their phone; prints the call's id and its legs."""
    who = from_ if from_.startswith("user:") else f"user:{from_}"
    call = _request("POST", url, key, "/sim/v1/calls", {"from": who, "to": to})
    _print_placed(call, f" via {call['diversion']}" if call.get("diversion") else "")


# --- the simulator's generated traffic and scenarios (vpbx sim ...) -------------------------------

simulator_app = typer.Typer(help="Generated traffic and scenarios on a running server's simulator.",
                            no_args_is_help=True)
app.add_typer(simulator_app, name="sim")
TRAFFIC_POLL = 0.5  # seconds between progress reads on a real-clock server


def _pause(seconds: float) -> None:
    import time

    time.sleep(seconds)


def _operator_key() -> str | None:
    """The operator's key, for commands that move a virtual clock: VPBX_OPERATOR_KEY, else the one a local
    `vpbx serve` keeps in <VPBX_HOME or .vpbx>/operator-key; None when neither is there."""
    from vpbx.secrets_store import operator_key_path

    if os.environ.get("VPBX_OPERATOR_KEY"):
        return os.environ["VPBX_OPERATOR_KEY"]
    try:
        return operator_key_path(Path(os.environ.get("VPBX_HOME") or ".vpbx")).read_text().strip() or None
    except OSError:
        return None


def _client(url: str, key: str | None, operator: str | None = None) -> httpx.Client:
    import httpx

    headers = {"X-API-KEY": _api_key(key)}
    operator = operator or _operator_key()
    if operator:
        headers["X-OPERATOR-KEY"] = operator
    return httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30)


def _virtual_clock(url: str, client: httpx.Client) -> bool:
    import httpx

    try:
        return client.get("/sim/v1/clock").status_code == 200
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/red] cannot reach {url}: {exc}")
        raise typer.Exit(1) from exc


def _traffic_line(status: dict[str, Any]) -> str:
    return (f"placed {status['placed']} · answered {status['answered']} · missed {status['missed']} · "
            f"live {status['live']}")


@simulator_app.command("traffic")
def sim_traffic(
    cpm: Annotated[float, typer.Option("--cpm", help="Calls per minute (mean of a Poisson process)")] = 60,
    minutes: Annotated[float, typer.Option("--minutes", help="How long calls are placed")] = 10,
    seed: Annotated[int | None, typer.Option(help="Same seed, same calls and outcomes (virtual clock)")] = None,
    number: Annotated[list[str] | None, typer.Option("--number", help="A number clients dial (repeat it); "
                                                                      "default all the domain's")] = None,
    answer_probability: Annotated[float | None, typer.Option(help="Chance a ringing phone answers (0-1)")] = None,
    outgoing_share: Annotated[float | None, typer.Option(help="Share of calls employees place (0-1)")] = None,
    advance: Annotated[bool | None, typer.Option(
        "--advance/--no-advance", help="Move a virtual clock along (default: when the server's clock is "
                                       "virtual)")] = None,
    url: UrlOption = DEFAULT_URL,
    key: KeyOption = None,
) -> None:
    """Generate calls on the server's domain and follow the run with a progress bar (Ctrl-C stops it)."""
    body: dict[str, Any] = {"calls_per_minute": cpm, "duration_s": minutes * 60}
    for name, value in (("seed", seed), ("numbers", number or None), ("answer_probability", answer_probability),
                        ("outgoing_share", outgoing_share)):
        if value is not None:
            body[name] = value
    with _client(url, key) as client:
        drive = _virtual_clock(url, client) if advance is None else advance
        status = _request("POST", url, key, "/sim/v1/traffic", body, client=client)
        console.print(f"traffic on {url}: {cpm:g} calls/min for {minutes:g} min, seed {status['seed']}"
                      f"{' (advancing the virtual clock)' if drive else ''}")
        status = _follow(url, key, client, status, drive)
    console.print(f"traffic [green]{status['state']}[/green]: {_traffic_line(status)} (seed {status['seed']})")


def _follow(url: str, key: str | None, client: httpx.Client, status: dict[str, Any], drive: bool) -> dict[str, Any]:
    """The progress bar until the run is over; Ctrl-C stops the run (DELETE) and exits 130."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    duration = float(status["duration_s"])
    step = min(60.0, max(1.0, duration / 100))  # virtual seconds per poll while calls are placed
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(escape(_traffic_line(status)), total=duration)
        try:
            while status["state"] == "running":
                if drive:  # the last calls finish within minutes: bigger steps then
                    seconds = step if status["placing"] else max(step, 10.0)
                    _request("POST", url, key, "/sim/v1/clock/advance", {"seconds": seconds}, client=client)
                else:
                    _pause(TRAFFIC_POLL)
                status = _request("GET", url, key, "/sim/v1/traffic", client=client)
                note = "" if status["placing"] or status["state"] != "running" else " · finishing live calls"
                progress.update(task, completed=min(float(status["elapsed_s"]), duration),
                                description=escape(_traffic_line(status) + note))
        except KeyboardInterrupt:
            status = _request("DELETE", url, key, "/sim/v1/traffic", client=client)
            progress.stop()
            console.print(f"traffic [yellow]stopped[/yellow]: {_traffic_line(status)} (seed {status['seed']})")
            raise typer.Exit(130) from None
    return status


@simulator_app.command("run")
def sim_run(
    files: Annotated[list[Path], typer.Argument(help="Scenario files (YAML), played in order",
                                                exists=True, dir_okay=False, readable=True)],
    keep_going: Annotated[bool, typer.Option("--keep-going", help="Play every step even after a failure")] = False,
    timeout: Annotated[float | None, typer.Option(help="Seconds an expectation may take to come true "
                                                       "(default 1 on a virtual clock, 10 on a real one)")] = None,
    url: Annotated[str | None, typer.Option(
        "--url", envvar="VPBX_URL", help="Play on this running server (its domain of --key); default: on a "
                                         "scratch server of its own (virtual clock, temporary store)")] = None,
    key: KeyOption = None,
) -> None:
    """Play scenarios, each step with ✔ or ✘; exits 1 when an expectation fails.

    Without --url they play at once on a server of their own (virtual clock, a temporary store with the demo
    company, its own CRM receiver), removed afterwards: a running server and its demo domain are untouched.
    """
    from rich.markup import escape

    from vpbx import scenarios

    try:
        loaded = [scenarios.load(f) for f in files]
    except scenarios.ScenarioError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from exc

    def show(o: scenarios.Outcome) -> None:
        where = "" if o.index == 0 else f"{o.index:>2} "  # setup sections have no step number
        if o.ok:
            console.print(f"  [green]✔[/green] {where}{escape(o.title)}")
            return
        console.print(f"  [red]✘[/red] {where}{escape(o.title)}")
        console.print(f"       [red]{escape(o.message)}[/red]")
        for line in o.detail:
            console.print(f"       {escape(line)}")

    passed = failed = 0
    with contextlib.ExitStack() as stack:
        operator: str | None = None
        if url is None:
            url, key, operator = stack.enter_context(scenarios.scratch_server())
            console.print(f"[dim]playing on a scratch server ({url}, virtual clock, temporary store with the demo "
                          "company); give --url to play on a running one[/dim]")
        client = stack.enter_context(_client(url, key, operator))
        player = scenarios.Player(client, report=show, keep_going=keep_going, timeout=timeout)
        for scenario in loaded:
            console.print(f"[bold]{escape(scenario.name)}[/bold]  ({escape(scenario.source)})")
            result = player.play(scenario)
            skipped = f", {result.skipped} not played" if result.skipped else ""
            color = "green" if result.ok else "red"
            console.print(f"  [{color}]{result.passed} passed, {result.failed} failed{skipped}[/{color}]")
            passed, failed = (passed + 1, failed) if result.ok else (passed, failed + 1)
            if failed and not keep_going:
                break
    if len(loaded) > 1:
        console.print(f"{passed} of {len(loaded)} scenarios passed"
                      f"{' (stopped at the first failing one)' if passed + failed < len(loaded) else ''}")
    if failed:
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
