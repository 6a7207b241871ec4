"""Server settings, read from the environment (prefix ``VPBX_``) and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOME = Path(".vpbx")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VPBX_", extra="ignore")

    home: Path = DEFAULT_HOME
    db: str = ""  # empty: SQLite under ``home``
    host: str = "127.0.0.1"
    port: int = 8080
    clock: Literal["real", "virtual"] = "real"
    demo: bool = True
    # Server secret: signs recording links and encrypts stored SIP passwords.
    secret: str = ""
    # Where clients reach this server (recording links); empty: http(s)://host:port.
    public_url: str = ""
    max_body_bytes: int = 1024 * 1024
    allow_private_crm: bool | None = None  # None: allowed when listening on loopback only
    # The CRM notifier (vpbx.notify): per-request timeout, claim lease, batch and concurrency limits.
    notify_timeout: float = Field(default=10.0, gt=0)
    notify_lease: float = Field(default=30.0, gt=0)
    notify_batch: int = Field(default=256, ge=1)
    notify_max_inflight: int = Field(default=512, ge=1)
    notify_domain_concurrency: int = Field(default=32, ge=1)
    notify_poll: float = Field(default=1.0, gt=0)
    notify_dispatcher: bool = True  # off: enqueue only (another process delivers)
    log_level: str = "info"
    log_json: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    extra_demo_users: int = Field(default=0, ge=0)

    @property
    def db_url(self) -> str:
        return self.db or sqlite_url(self.home / "vpbx.db")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
