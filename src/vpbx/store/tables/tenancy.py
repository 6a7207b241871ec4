"""Domains (tenants), their API keys, custom roles and the CRM integration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime


class Domain(Base):
    __tablename__ = "domains"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    # -1 is "unlimited", as 12.1 reports it.
    limit_users: Mapped[int] = mapped_column(Integer, default=-1)
    limit_groups: Mapped[int] = mapped_column(Integer, default=-1)
    limit_local_gw: Mapped[int] = mapped_column(Integer, default=-1)
    service_record: Mapped[bool] = mapped_column(Boolean, default=True)
    service_local_gw: Mapped[bool] = mapped_column(Boolean, default=True)
    service_branch: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on every write to the domain's directory; keys read-caches.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    # sha256 of the key: the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: full rights
    label: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CustomRole(Base):
    __tablename__ = "custom_roles"
    __table_args__ = (UniqueConstraint("domain_id", "role_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    rights: Mapped[list[str]] = mapped_column(JSON, default=list)


class Integration(Base):
    """The domain's one CRM integration (002 §1-2, legacy 000)."""

    __tablename__ = "integrations"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)  # off: 401 "CRM disabled"
    # Set when the CRM failed for days on end, or by the operator: 401 "CRM switched off".
    switched_off: Mapped[bool] = mapped_column(Boolean, default=False)
    crm_url: Mapped[str] = mapped_column(String(2048), default="")
    # Sealed at rest (``secrets_store.seal_value``; migration 0013): longer than the clear value.
    crm_token: Mapped[str] = mapped_column(String(1024), default="")
    legacy_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    dialect: Mapped[str] = mapped_column(String(16), default="form")  # form | json | legacy
    # The legacy API's edition: 000, or 004 (also 001): its makeCall answer and its pushes' fields (issue 13).
    legacy_edition: Mapped[str] = mapped_column(String(8), default="000", server_default="000")
    lookup_timeout: Mapped[float] = mapped_column(Float, default=2.0)
    signing_secret: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # sealed at rest
    user_map_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
