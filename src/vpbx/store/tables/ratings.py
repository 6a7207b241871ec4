"""Quality ratings (002 §2.4): the numbers whose callers are asked for a score after the conversation.

A vpbx extension (the documents name no setting). Departments that ask are ``SettingsGroupEntry`` rows
of kind ``rating``.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base

__all__ = ["RatingTelnum"]


class RatingTelnum(Base):
    __tablename__ = "rating_telnums"

    telnum_id: Mapped[int] = mapped_column(ForeignKey("telnums.id", ondelete="CASCADE"), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
