"""Employees' SIP credentials (issue 16): the digest HA1 of their password per realm, never the password."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base

__all__ = ["SipCredential"]


class SipCredential(Base):
    """One employee's digest secrets for their domain's realm (the domain's name). Phones may authenticate as
    the login or as the extension; the HA1 of each is kept, since the user name is part of the hash."""

    __tablename__ = "sip_credentials"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    realm: Mapped[str] = mapped_column(String(255))
    ha1_login: Mapped[str] = mapped_column(String(64))  # MD5(login:realm:password), hex
    ext: Mapped[str] = mapped_column(String(16))  # the extension ha1_ext was made for
    ha1_ext: Mapped[str] = mapped_column(String(64))  # MD5(ext:realm:password), hex
