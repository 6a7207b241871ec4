"""The ``vpbx`` command: serve the PBX and run it as its operator."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.services.errors import ServiceError
from vpbx.settings import Settings

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

console = Console()
err = Console(stderr=True)
T = TypeVar("T")

DbOption = Annotated[str, typer.Option("--db", envvar="VPBX_DB", help="Store URL; default SQLite under --home")]
HomeOption = Annotated[Path, typer.Option("--home", envvar="VPBX_HOME", help="Data folder")]
DomainOption = Annotated[str, typer.Option("--domain", "-d", help="Domain name")]


def settings_for(db: str, home: Path, **kw: Any) -> Settings:
    return Settings(db=db, home=home, **kw)


def run_store(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Migrate, run ``work`` in one session, commit; service errors become a clean exit 1."""
    from vpbx.store import db

    async def main() -> T:
        engine = db.create_engine(settings.db_url)
        try:
            await db.upgrade(engine)
            async with db.session_factory(engine)() as session:
                result = await work(session)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except ServiceError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def now() -> datetime:
    return datetime.now(UTC)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="VPBX_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="VPBX_PORT")] = 8080,
    db: DbOption = "",
    home: HomeOption = Path(".vpbx"),
    clock: Annotated[str, typer.Option(help="real or virtual")] = "real",
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Create the demo domain on an empty store")] = True,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate: serve HTTPS")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    log_json: Annotated[bool, typer.Option("--log-json", help="JSON log lines")] = False,
    log_level: Annotated[str, typer.Option()] = "info",
) -> None:
    """Serve REST v1, the legacy API and the simulator."""
    import uvicorn

    from vpbx import logs
    from vpbx.app import create_app

    if clock not in ("real", "virtual"):
        raise typer.BadParameter("real or virtual", param_hint="--clock")
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give both --tls-cert and --tls-key")
    settings = settings_for(db, home, host=host, port=port, clock=clock, demo=demo, tls_cert=tls_cert,
                            tls_key=tls_key, log_json=log_json, log_level=log_level)
    logs.configure(log_level, log_json)
    scheme = "https" if tls_cert else "http"
    application = create_app(settings, on_ready=lambda: announce(settings, f"{scheme}://{host}:{port}"))

    uvicorn.run(application, host=host, port=port, log_level="warning", ssl_certfile=tls_cert,
                ssl_keyfile=tls_key, loop="uvloop", http="httptools", workers=1 if workers < 2 else workers)


def announce(settings: Settings, url: str) -> None:
    from vpbx.bootstrap import credentials_path, read_credentials

    console.print(f"[bold green]vpbx[/bold green] serving on {url}  (store: {settings.db_url})")
    console.print(f"  REST v1:  {url}/crmapi/v1/users   docs: {url}/docs   legacy: {url}/sys/crm_api.wcgp")
    creds = read_credentials(settings.home) if settings.demo else None
    if creds:
        console.print(f"  demo domain: [bold]{creds['domain']}[/bold]")
        console.print(f"  API key (X-API-KEY): [bold]{creds['api_key']}[/bold]")
        console.print(f"  legacy token:        [bold]{creds['legacy_token']}[/bold]")
        console.print(f"  try: curl -H 'X-API-KEY: {creds['api_key']}' {url}/crmapi/v1/users")
        console.print(f"  (kept in {credentials_path(settings.home)})")


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
                  f"dialect={integration.dialect}")
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
def key_create(domain: DomainOption, role: Annotated[str | None, typer.Option(help="Role: admin, user, ... or "
               "a custom role id; default full rights")] = None,
               api_key: Annotated[str | None, typer.Option(help="Use this key")] = None,
               label: Annotated[str, typer.Option()] = "", db: DbOption = "",
               home: HomeOption = Path(".vpbx")) -> None:
    """Create an API key; it is printed once."""
    from vpbx.services import tenancy

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
    """Revoke a key (running servers stop accepting it within seconds)."""
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
    db: DbOption = "",
    home: HomeOption = Path(".vpbx"),
) -> None:
    """Configure the domain's CRM integration."""
    from vpbx.services import tenancy

    async def work(session: AsyncSession) -> Any:
        return await tenancy.set_integration(
            session, await tenancy.get_domain(session, domain), crm_url=crm_url, crm_token=crm_token,
            legacy_token=legacy_token, dialect=dialect, enabled=on, lookup_timeout=lookup_timeout,
            signing_secret=signing_secret)

    i = run_store(settings_for(db, home), work)
    console.print(f"integration {'on' if i.enabled else 'off'}: url={i.crm_url or '-'} dialect={i.dialect}")


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
