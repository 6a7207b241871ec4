"""Carrier peers (issue 16): the operator's upstream SIP carriers, trusted by source address and port.

Operator-level, not per domain: a carrier delivers calls for every domain's numbers (the INVITE's
Request-URI user is the dialled number)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime

__all__ = ["CarrierPeer"]


class CarrierPeer(Base):
    __tablename__ = "carrier_peers"
    __table_args__ = (UniqueConstraint("host", "port"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The IP address INVITEs come from (a name given by the operator is resolved when the peer is added).
    host: Mapped[str] = mapped_column(String(64))
    port: Mapped[int] = mapped_column(Integer)
    given: Mapped[str] = mapped_column(String(255), default="")  # what the operator typed, for the listing
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
