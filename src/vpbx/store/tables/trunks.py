"""Other operators' numbers (002 §15 SIP registrations, §16 SIP URI transfers), other PBXs (§17
branches) and webhook subscriptions with the events waiting for delivery (§18)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime

__all__ = ["Branch", "SipRegistration", "SipUriTransfer", "WebhookEvent", "WebhookSubscription"]


class SipRegistration(Base):
    """A trunk to another operator: the PBX registers ``login`` at ``host`` for ``telnum``."""

    __tablename__ = "sip_registrations"
    __table_args__ = (UniqueConstraint("domain_id", "telnum"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    telnum: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))  # the API's "domain"
    login: Mapped[str] = mapped_column(String(255))
    # Fernet token under the server secret (vpbx.secrets_store); never returned.
    password_sealed: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    auth_name: Mapped[str] = mapped_column(String(255), default="")
    expires: Mapped[int] = mapped_column(Integer, default=600)
    proxy: Mapped[str] = mapped_column(String(255), default="")
    outgoing: Mapped[bool] = mapped_column(Boolean, default=True)
    search_text: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SipUriTransfer(Base):
    """Another operator's number forwarded to an unguessable SIP address of this PBX."""

    __tablename__ = "sipuri_transfers"
    __table_args__ = (UniqueConstraint("domain_id", "telnum"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    telnum: Mapped[str] = mapped_column(String(32))
    uri: Mapped[str] = mapped_column(String(320), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    search_text: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Branch(Base):
    """A connection to another PBX (its domain and API key) and the result of the last sync."""

    __tablename__ = "branches"
    __table_args__ = (UniqueConstraint("domain_id", "remote_domain"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    remote_domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # None: https://{remote_domain}
    key_sealed: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="waiting")
    error: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    users_count: Mapped[int] = mapped_column(Integer, default=0)
    groups_count: Mapped[int] = mapped_column(Integer, default=0)
    exts_count: Mapped[int] = mapped_column(Integer, default=0)
    collisions_count: Mapped[int] = mapped_column(Integer, default=0)
    # The other PBX's directory as last fetched: {"users": [{login, name, ext}], "groups": [{id, name, ext}]}.
    directory: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    search_text: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"
    __table_args__ = (UniqueConstraint("domain_id", "type", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)  # the API's "id" (a UUID)
    type: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookEvent(Base):
    """One event for one subscription, waiting for the notifier (002 §18.4). Created only by
    ``vpbx.services.webhooks.emit``; ``event_id`` is the notice's ``id``."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
                                                 index=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the notice's "data"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
