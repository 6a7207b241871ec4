"""Company settings (002 §12.2–12.5, §12.7, §12.8), caller IDs (§13) and call restrictions (§14).

Lists naming employees or departments reference ``users.id`` / ``groups.id`` with ON DELETE CASCADE, so
deleting an employee or a department takes its entries with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime

__all__ = [
    "DomainSettings",
    "GroupCallerId",
    "GroupRestriction",
    "MediaFile",
    "OutgoingTelnum",
    "RegionCallerId",
    "SettingsGroupEntry",
    "SettingsUserEntry",
    "UserCallerId",
    "UserRestriction",
]


class MediaFile(Base):
    """An uploaded sound file (§12.4); the audio itself lives under ``<home>/media/<domain_id>/``."""

    __tablename__ = "media_files"
    __table_args__ = (UniqueConstraint("domain_id", "file_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str] = mapped_column(String(100))  # public id: "<uuid>_<uuid>"
    type: Mapped[str] = mapped_column(String(16))  # catalogue: ringback | holdmusic
    name: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(8))  # wav | mp3 | ogg
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DomainSettings(Base):
    """One row per domain holding its scalar settings; absent until the first change (defaults apply)."""

    __tablename__ = "domain_settings"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True)
    # §12.2/12.3: a standard file id, or an uploaded file (a deleted upload falls back to the default).
    ringback_standard: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ringback_media_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_files.id", ondelete="SET NULL"), nullable=True, index=True)
    holdmusic_standard: Mapped[str | None] = mapped_column(String(32), nullable=True)
    holdmusic_media_id: Mapped[int | None] = mapped_column(
        ForeignKey("media_files.id", ondelete="SET NULL"), nullable=True, index=True)
    # §12.5
    record_external: Mapped[bool] = mapped_column(Boolean, default=True)
    record_inner: Mapped[bool] = mapped_column(Boolean, default=False)
    # §12.8
    am_all: Mapped[bool] = mapped_column(Boolean, default=False)
    am_email: Mapped[str] = mapped_column(String(255), default="")
    # §13.3 (None: not set)
    callerid_main: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # §14.2: direction codes allowed to every employee
    restrictions_main: Mapped[list[str]] = mapped_column(JSON, default=list)


class SettingsUserEntry(Base):
    """An employee on one of the company lists: ``record_exception`` (§12.5), ``blf`` (§12.7), ``am`` (§12.8)."""

    __tablename__ = "settings_user_entries"
    __table_args__ = (UniqueConstraint("kind", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class SettingsGroupEntry(Base):
    """A department on one of the company lists: ``am`` (§12.8)."""

    __tablename__ = "settings_group_entries"
    __table_args__ = (UniqueConstraint("kind", "group_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)


class OutgoingTelnum(Base):
    """The domain's numbers and whether each may be used for outgoing calls (§13.2)."""

    __tablename__ = "outgoing_telnums"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True)
    telnum: Mapped[str] = mapped_column(String(32), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class UserCallerId(Base):
    """An employee's personal outgoing number (§13.4)."""

    __tablename__ = "callerid_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    telnum: Mapped[str] = mapped_column(String(32))


class GroupCallerId(Base):
    """A department's outgoing number (§13.4)."""

    __tablename__ = "callerid_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), unique=True)
    telnum: Mapped[str] = mapped_column(String(32))


class RegionCallerId(Base):
    """A regional outgoing number (§13.5): one per region and ``mode`` (all | mobile | fixed)."""

    __tablename__ = "callerid_regions"
    __table_args__ = (UniqueConstraint("domain_id", "region_id", "mode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    region_id: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(8))
    telnum: Mapped[str] = mapped_column(String(32))


class UserRestriction(Base):
    """An employee's personal allowed directions (§14.3); the entry stays, possibly empty, once made."""

    __tablename__ = "restriction_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    allowed: Mapped[list[str]] = mapped_column(JSON, default=list)


class GroupRestriction(Base):
    """A department's allowed directions (§14.4)."""

    __tablename__ = "restriction_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), unique=True)
    allowed: Mapped[list[str]] = mapped_column(JSON, default=list)
