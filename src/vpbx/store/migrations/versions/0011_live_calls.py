"""live calls: what the engine needs to end a call after a crash, and each domain's last write

Revision ID: 0011
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vpbx.store.base

revision: str = '0011'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('live_calls',
    sa.Column('callid', sa.String(length=64), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('started', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.Column('seen_at', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_live_calls_domain_id_domains'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('callid', name=op.f('pk_live_calls'))
    )
    with op.batch_alter_table('live_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_calls_domain_id'), ['domain_id'], unique=False)
    op.create_table('live_beats',
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('at', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_live_beats_domain_id_domains'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain_id', name=op.f('pk_live_beats'))
    )


def downgrade() -> None:
    op.drop_table('live_beats')
    with op.batch_alter_table('live_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_calls_domain_id'))
    op.drop_table('live_calls')
