"""Call history (002 §4): external calls (4.1/4.2) and internal calls (4.3/4.4).

One row per finished call, written by the engine in the same transaction as the call's CRM
notifications. Names and numbers are copied at call time: history outlives renames and deletions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime


class CallRecord(Base):
    """One external call (incoming or outgoing)."""

    __tablename__ = "call_history"
    __table_args__ = (
        Index("ix_call_history_domain_start", "domain_id", "start"),
        # A client's missed calls (4.2 missedStatus settlement; the ``client`` filter uses its prefix).
        Index("ix_call_history_domain_client_missed", "domain_id", "client", "missed_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    callid: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(8))  # in | out
    # The 002 §2.1 spelling: Success, Missed, Cancel, Busy, NotAvailable, NotAllowed, NotFound.
    status: Mapped[str] = mapped_column(String(16))
    # 4.2 ``destination``: user, group, telnum, ivr, onduty, offtime, hello, vm, am ("" for outgoing).
    destination: Mapped[str] = mapped_column(String(16), default="")
    client: Mapped[str] = mapped_column(String(32))
    # The employee who answered (or the last one rung); "" when the call reached nobody.
    user_login: Mapped[str] = mapped_column(String(64), default="")
    user_name: Mapped[str] = mapped_column(String(255), default="")
    user_ext: Mapped[str] = mapped_column(String(16), default="")
    user_telnum: Mapped[str] = mapped_column(String(32), default="")
    # The first employee who answered (4.2 ``first_answered``); differs after a transfer.
    first_login: Mapped[str] = mapped_column(String(64), default="")
    first_name: Mapped[str] = mapped_column(String(255), default="")
    group_id: Mapped[str] = mapped_column(String(64), default="")
    group_name: Mapped[str] = mapped_column(String(255), default="")
    # The domain's number the call came through (incoming) or the caller ID used (outgoing).
    diversion: Mapped[str] = mapped_column(String(32), default="")
    telnum_name: Mapped[str] = mapped_column(String(255), default="")
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    wait: Mapped[int] = mapped_column(Integer, default=0)
    duration: Mapped[int] = mapped_column(Integer, default=0)
    link: Mapped[str] = mapped_column(String(1024), default="")
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # 4.2 missedStatus for unanswered incoming calls: 1 called back by the client, 2 reached by an
    # employee, 3 not called back, 4 employees could not reach the client. None for other calls.
    missed_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str] = mapped_column(String(1024), default="")


class InnerCallRecord(Base):
    """One internal call, employee to employee (4.3/4.4)."""

    __tablename__ = "inner_call_history"
    __table_args__ = (Index("ix_inner_call_history_domain_start", "domain_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    callid: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # success | noanswer
    from_login: Mapped[str] = mapped_column(String(64))
    from_name: Mapped[str] = mapped_column(String(255), default="")
    to_login: Mapped[str] = mapped_column(String(64))
    to_name: Mapped[str] = mapped_column(String(255), default="")
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    wait: Mapped[int] = mapped_column(Integer, default=0)
    duration: Mapped[int] = mapped_column(Integer, default=0)
    link: Mapped[str] = mapped_column(String(1024), default="")


class LiveCall(Base):
    """A call the engine accepted and has not finished: what it takes to end it after a crash.

    Written in the engine's write batches (the same transaction as the call's steps), deleted in the
    batch that writes its history row; recovery (``engine.recovery``) ends whatever a crash left here.
    """

    __tablename__ = "live_calls"

    callid: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    started: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the last batch that wrote this call
    state: Mapped[str] = mapped_column(Text)  # the call as JSON (engine.durable)


class LiveBeat(Base):
    """The engine's last write for a domain: its live calls were still going then (their "last known moment")."""

    __tablename__ = "live_beats"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
