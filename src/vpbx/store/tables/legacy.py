"""The legacy integration (000 §5.5 ``self_map``): CRM user ids mapped to PBX employees."""

from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base


class LegacyUserMap(Base):
    """One CRM user id of a domain's integration and the employee it stands for.

    Used by the legacy command API when ``Integration.user_map_enabled`` is on; deleting the
    employee deletes their mappings."""

    __tablename__ = "legacy_user_map"
    __table_args__ = (UniqueConstraint("domain_id", "crm_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    crm_user: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
