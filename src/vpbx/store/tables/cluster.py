"""A cluster of vpbx nodes on one PostgreSQL (``vpbx.cluster``): the nodes alive and who owns each domain.

Both tables are coordination state, not configuration: writing them never signals the caches
(``store.changes.NOT_CONFIGURATION``). Times are the database's own (``clock_timestamp()``), never a node's
clock (a node may run a virtual one).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime

__all__ = ["ClusterNode", "DomainLease", "PendingCallback"]


class ClusterNode(Base):
    """A running node: where the others forward to it (``url``) and its last heartbeat."""

    __tablename__ = "cluster_nodes"

    node_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    url: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class DomainLease(Base):
    """The domain's owner until ``expires_at``. ``token`` grows by one at every change of owner: the fencing token
    the owner's writes carry (``cluster.ownership.check``)."""

    __tablename__ = "domain_leases"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(96), index=True)
    token: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PendingCallback(Base):
    """A callback (8.3 ``advanced: callback``) waiting to be placed, kept so that a new owner of the domain places it
    when the node that scheduled it dies (``cluster.callbacks``). ``due_at`` is on the engine's clock."""

    __tablename__ = "pending_callbacks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[str] = mapped_column(Text)  # JSON: what ``CallEngine._schedule_callback`` takes
