"""Web cabinet sessions (/console): one row per signed-in browser, so "sign out everywhere" can end them all."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vpbx.store.base import Base, UTCDateTime

__all__ = ["ConsoleSession"]


class ConsoleSession(Base):
    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # sha256 of the cookie's token: a stolen table does not sign anyone in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    # An employee's session (login) or an API key's (key_id); exactly one is set.
    login: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=True)
    csrf: Mapped[str] = mapped_column(String(64))  # session-bound CSRF token, in every form
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
