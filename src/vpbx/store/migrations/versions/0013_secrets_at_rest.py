"""integrations: the CRM token and the signing secret sealed at rest (like SIP passwords)

Existing clear values are sealed with the server's box, which ``vpbx.store.db.upgrade`` hands in
(``config.attributes["box"]``: every start of vpbx passes it). A store holding clear values upgraded
without it is refused rather than left half-sealed. PostgreSQL's columns widen: a sealed value is
longer than the clear one (SQLite does not enforce lengths).

Revision ID: 0013
Revises: 0001
"""
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEALED = "sealed:v1:"
COLUMNS = ("crm_token", "signing_secret")


def _box() -> Any:
    config = op.get_context().config
    return None if config is None else config.attributes.get("box")


def _rows(conn: sa.Connection) -> list[Any]:
    return list(conn.execute(sa.text("SELECT domain_id, crm_token, signing_secret FROM integrations")))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for column in COLUMNS:
            op.alter_column("integrations", column, type_=sa.String(1024), existing_type=sa.String(255))
    box = _box()
    clear = [r for r in _rows(conn) if any(v and not v.startswith(SEALED) for v in (r[1], r[2]))]
    if not clear:
        return
    if box is None:
        raise RuntimeError("CRM tokens are stored in clear: upgrade with vpbx (`vpbx db upgrade` or a start), "
                           "which seals them with the server secret")
    for domain_id, token, secret in clear:
        conn.execute(sa.text("UPDATE integrations SET crm_token = :t, signing_secret = :s WHERE domain_id = :d"),
                     {"t": SEALED + box.seal(token) if token and not token.startswith(SEALED) else token,
                      "s": SEALED + box.seal(secret) if secret and not secret.startswith(SEALED) else secret,
                      "d": domain_id})


def downgrade() -> None:
    conn = op.get_bind()
    box = _box()
    sealed = [r for r in _rows(conn) if any(v and v.startswith(SEALED) for v in (r[1], r[2]))]
    if not sealed:
        return _narrow()
    if box is None:
        raise RuntimeError("sealed CRM tokens need the server secret to be opened: downgrade with vpbx")
    for domain_id, token, secret in sealed:
        conn.execute(sa.text("UPDATE integrations SET crm_token = :t, signing_secret = :s WHERE domain_id = :d"),
                     {"t": box.open(token[len(SEALED):]) if token and token.startswith(SEALED) else token,
                      "s": box.open(secret[len(SEALED):]) if secret and secret.startswith(SEALED) else secret,
                      "d": domain_id})
    _narrow()


def _narrow() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in COLUMNS:
            op.alter_column("integrations", column, type_=sa.String(255), existing_type=sa.String(1024))
