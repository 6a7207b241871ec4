"""Employees (002 §6), departments (§8), their membership and the extension plan."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime


class User(Base):
    __tablename__ = "users"
    # ``extensions`` is the namespace shared with departments; this key keeps employees apart even from a writer
    # that forgot it.
    __table_args__ = (UniqueConstraint("domain_id", "login"), Index("ux_users_domain_ext", "domain_id", "ext",
                                                                   unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    login: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[str] = mapped_column(String(255), default="Менеджер")
    email: Mapped[str] = mapped_column(String(255), default="")
    ext: Mapped[str] = mapped_column(String(16))
    telnum: Mapped[str] = mapped_column(String(32), default="")
    role: Mapped[str] = mapped_column(String(64), default="user")
    mobile: Mapped[str] = mapped_column(String(32), default="")
    mobile_redirect_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    mobile_redirect_forward: Mapped[bool] = mapped_column(Boolean, default=False)
    mobile_redirect_delay: Mapped[int] = mapped_column(Integer, default=0)
    password_hash: Mapped[str] = mapped_column(String(255))
    dnd: Mapped[bool] = mapped_column(Boolean, default=False)
    absent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Casefolded login/name/ext/...: portable case-insensitive search (SQLite's lower() is ASCII only).
    search_text: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("domain_id", "group_id"), Index("ux_groups_domain_ext", "domain_id", "ext",
                                                                       unique=True))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[str] = mapped_column(String(64))  # the public id: "sales" or "g_<uuid>"
    name: Mapped[str] = mapped_column(String(255))
    ext: Mapped[str] = mapped_column(String(16))
    call_order: Mapped[str] = mapped_column(String(16), default="ALL")
    call_duration: Mapped[int] = mapped_column(Integer, default=15)
    timeout_time: Mapped[int] = mapped_column(Integer, default=120)
    timeout_target: Mapped[str] = mapped_column(String(16), default="voicemail")
    timeout_user: Mapped[str | None] = mapped_column(String(64), nullable=True)
    timeout_group: Mapped[str | None] = mapped_column(String(64), nullable=True)
    timeout_telnum: Mapped[str | None] = mapped_column(String(32), nullable=True)
    advanced: Mapped[str] = mapped_column(String(16), default="off")
    queue_position: Mapped[bool] = mapped_column(Boolean, default=False)
    # EVENLY round robin: the member who took the department's previous call.
    last_answered_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    search_text: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class GroupMember(Base):
    __tablename__ = "group_members"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    calls_enable: Mapped[bool] = mapped_column(Boolean, default=True)
    group_head: Mapped[bool] = mapped_column(Boolean, default=False)


class Extension(Base):
    """One row per used extension: the primary key makes extensions unique across employees and departments
    of a domain (IVR menus have no extension in 002 §9.6), even under concurrent writers. A claim is an
    INSERT, never check-then-insert alone: the key decides (``repositories.directory.claim_ext``)."""

    __tablename__ = "extensions"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True)
    ext: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(8))  # user | group
    owner_id: Mapped[int] = mapped_column(Integer)
