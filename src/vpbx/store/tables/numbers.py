"""Numbers and their routes (002 §9), IVR menus, SIM cards (§10) and the blacklist (§11)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime

__all__ = ["BlacklistNumber", "BlacklistSettings", "BlockedCall", "IvrMenu", "SimPoolEntry", "Telnum"]


class Telnum(Base):
    """One of the domain's external numbers: provisioned by the operator or added as a SIM card.

    The route is ``type`` plus the fields of that type: ``route_user`` (login), ``route_group``
    (department id), ``ivr_menu`` (menu name), or for ``scheduler`` the JSON targets ``work``,
    ``other``, the weekly ``schedule`` (9.9 shape) and ``custom_routes`` (9.9 "additional routes",
    each with its target fields and its extra intervals / special days).
    """

    __tablename__ = "telnums"
    # A number belongs to one domain in the whole server: calls to it must find one company. The documents'
    # example numbers, which every demo company has (the demo domain, the tests' tenants), are outside the key.
    __table_args__ = (UniqueConstraint("domain_id", "telnum"),
                      Index("ux_telnums_telnum", "telnum", unique=True, sqlite_where=text("NOT example"),
                            postgresql_where=text("NOT example")))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    telnum: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8), default="number")  # number | sim
    example: Mapped[bool] = mapped_column(Boolean, default=False)  # a demo company's number: see the key above
    name: Mapped[str] = mapped_column(String(255), default="")
    location: Mapped[str] = mapped_column(String(255), default="")
    type: Mapped[str] = mapped_column(String(16), default="user")  # user group ivr scheduler fax
    greeting: Mapped[bool] = mapped_column(Boolean, default=False)
    greeting_custom: Mapped[bool] = mapped_column(Boolean, default=False)
    greeting_file: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_main_phone: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    crm: Mapped[str] = mapped_column(String(64), default="")
    calltracking: Mapped[str] = mapped_column(String(64), default="")
    abc_telnum: Mapped[str | None] = mapped_column(String(32), nullable=True)
    abc_location: Mapped[str | None] = mapped_column(String(255), nullable=True)
    route_user: Mapped[str | None] = mapped_column(String(64), nullable=True)
    route_group: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ivr_menu: Mapped[str | None] = mapped_column(String(255), nullable=True)
    work: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    other: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    custom_routes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # SIM cards (10.x): the employee the card is assigned to, or a company number.
    sim_user: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sim_company: Mapped[bool] = mapped_column(Boolean, default=False)
    autocaller: Mapped[bool] = mapped_column(Boolean, default=False)
    search_text: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IvrMenu(Base):
    """A self-service menu (9.6), named uniquely in its domain; buttons name other menus by name."""

    __tablename__ = "ivr_menus"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    greeting: Mapped[bool] = mapped_column(Boolean, default=False)
    greeting_custom: Mapped[bool] = mapped_column(Boolean, default=False)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class SimPoolEntry(Base):
    """A SIM card the operator made available to the domain, not added yet (10.3)."""

    __tablename__ = "sim_pool"
    __table_args__ = (UniqueConstraint("domain_id", "telnum"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    telnum: Mapped[str] = mapped_column(String(32))
    sms_confirmation: Mapped[bool] = mapped_column(Boolean, default=False)
    example: Mapped[bool] = mapped_column(Boolean, default=False)  # a demo company's card (Telnum.example)


class BlacklistNumber(Base):
    __tablename__ = "blacklist_entries"
    __table_args__ = (UniqueConstraint("domain_id", "telnum"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    telnum: Mapped[str] = mapped_column(String(64))  # normalised number or cleaned mask
    comment: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BlacklistSettings(Base):
    __tablename__ = "blacklist_settings"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True)
    block_anonymous: Mapped[bool] = mapped_column(Boolean, default=False)


class BlockedCall(Base):
    """A call refused by the blacklist, written by the call engine (11.1 statistics)."""

    __tablename__ = "blocked_calls"
    __table_args__ = (Index("ix_blocked_calls_domain_at", "domain_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    caller: Mapped[str] = mapped_column(String(64))  # normalised digits; "" for an anonymous caller
    telnum: Mapped[str] = mapped_column(String(32))  # the domain's number that was dialled
    at: Mapped[datetime] = mapped_column(UTCDateTime)
