"""carrier_peers: the operator's SIP carriers, trusted by source address and port (issue 16)

Revision ID: 0018_carriers
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vpbx.store.base import UTCDateTime

revision: str = '0018_carriers'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('carrier_peers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=64), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('given', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carrier_peers')),
    sa.UniqueConstraint('host', 'port', name=op.f('uq_carrier_peers_host_port')),
    sa.UniqueConstraint('name', name=op.f('uq_carrier_peers_name'))
    )


def downgrade() -> None:
    op.drop_table('carrier_peers')
