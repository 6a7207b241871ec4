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
    demo_phones: bool = True  # the demo domain's employees' phones registered, answering like people
    # Server secret: signs recording links and encrypts stored SIP passwords.
    secret: str = ""
    # Where clients reach this server (recording links); empty: http(s)://host:port.
    public_url: str = ""
    max_body_bytes: int = 1024 * 1024
    # The SSRF guard: CRM and webhook requests never reach loopback, private, link-local, CGNAT or
    # unique-local addresses unless this is set (development and tests: --allow-private-crm).
    allow_private_crm: bool = False
    # The CRM notifier (vpbx.notify): per-request timeout, claim lease, batch and concurrency limits.
    notify_timeout: float = Field(default=10.0, gt=0)
    notify_lease: float = Field(default=30.0, gt=0)
    notify_batch: int = Field(default=256, ge=1)
    notify_max_inflight: int = Field(default=1024, ge=1)  # rows claimed and not yet settled, all domains
    notify_domain_concurrency: int = Field(default=32, ge=1)
    notify_poll: float = Field(default=1.0, gt=0)
    notify_dispatcher: bool = True  # off: enqueue only (another process delivers)
    # The delivery policy (README "Delivery to the CRM"): how long an event may still be delivered,
    # how long history/rating pushes are kept while the CRM fails (then it is switched off), how often
    # a failing CRM is probed (a success ends its back-off).
    notify_event_ttl: float = Field(default=300.0, gt=0)
    notify_keep_days: float = Field(default=5.0, gt=0)
    notify_probe_interval: float = Field(default=30.0, gt=0)
    # The delivery log (notifications delivered or failed, with their attempts) is kept this many days, then
    # forgotten (notify.retention); 0 keeps it forever. A pending notification is never forgotten.
    notify_retention_days: float = Field(default=30.0, ge=0)
    # Failed authentication per source address (REST keys, legacy tokens): this many within
    # ``auth_fail_window`` seconds, then 429 with Retry-After until the window has room again.
    auth_fail_limit: int = Field(default=20, ge=1)
    auth_fail_window: float = Field(default=60.0, gt=0)
    # Requests per API key per minute; 0: no budget (the default).
    key_rate_limit: int = Field(default=0, ge=0)
    # Operator key: moves the shared virtual clock (``X-OPERATOR-KEY``); empty: none configured
    # (``vpbx key create --operator`` stores one hashed in the store instead).
    operator_key: str = ""
    log_level: str = "info"
    log_json: bool = False
    # Media (issue 17; vpbx.telephony.media): "" = vpbx starts and supervises its own rtpengine when SIP is on;
    # "host:port" = the operator's rtpengine ng port (its recording-dir in ``rtpengine_recordings``); "off" = none.
    rtpengine: str = ""
    rtpengine_interface: str = "127.0.0.1"  # the address media flows on (vpbx's own rtpengine)
    rtpengine_port_min: int = Field(default=30000, ge=1024, le=65535)
    rtpengine_port_max: int = Field(default=40000, ge=1024, le=65535)
    rtpengine_recordings: Path | None = None
    rtpengine_dtmf: str = ""  # host:port vpbx hears key presses on (the operator's rtpengine: its dtmf-log-dest)
    recording_retention_days: float = Field(default=90.0, ge=0)  # 0: recordings are kept forever
    # Where recordings are kept: "" = <home>/recordings; "s3://bucket/prefix?endpoint=http://host:port&region=..." =
    # an S3-compatible object store (credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never in the URL).
    recording_store: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    extra_demo_users: int = Field(default=0, ge=0)
    # A cluster (vpbx.cluster; README "Running a cluster"): None = on with a PostgreSQL store, off on SQLite.
    # cluster_url: where the other nodes reach this one (default http(s)://host:port); cluster_lease: seconds a
    # domain's lease lasts without renewal (a dead owner's domains move after it); cluster_tick: renewal period.
    cluster: bool | None = None
    cluster_url: str = ""
    cluster_lease: float = Field(default=3.0, gt=0)
    cluster_tick: float = Field(default=0.5, gt=0)
    # SIP telephony (issue 16): HOST:PORT to listen on (UDP and TCP); empty: off (simulated telephony only).
    # With a certificate and key, SIP over TLS too, at sip_tls (HOST:PORT; default: the SIP port + 1, e.g. 5061).
    sip: str = ""
    sip_tls_cert: Path | None = None
    sip_tls_key: Path | None = None
    sip_tls: str = ""
    # Phones failing digest authentication this many times within a minute are blocked for ``sip_block_seconds``.
    sip_auth_fail_limit: int = Field(default=10, ge=1)
    sip_block_seconds: float = Field(default=600.0, gt=0)

    @property
    def db_url(self) -> str:
        return self.db or sqlite_url(self.home / "vpbx.db")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"
