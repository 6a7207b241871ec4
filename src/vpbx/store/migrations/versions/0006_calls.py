"""calls: external and internal call history

Revision ID: 0006
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vpbx.store.base

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('call_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('callid', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('destination', sa.String(length=16), nullable=False),
    sa.Column('client', sa.String(length=32), nullable=False),
    sa.Column('user_login', sa.String(length=64), nullable=False),
    sa.Column('user_name', sa.String(length=255), nullable=False),
    sa.Column('user_ext', sa.String(length=16), nullable=False),
    sa.Column('user_telnum', sa.String(length=32), nullable=False),
    sa.Column('first_login', sa.String(length=64), nullable=False),
    sa.Column('first_name', sa.String(length=255), nullable=False),
    sa.Column('group_id', sa.String(length=64), nullable=False),
    sa.Column('group_name', sa.String(length=255), nullable=False),
    sa.Column('diversion', sa.String(length=32), nullable=False),
    sa.Column('telnum_name', sa.String(length=255), nullable=False),
    sa.Column('start', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.Column('wait', sa.Integer(), nullable=False),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('link', sa.String(length=1024), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('missed_status', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=1024), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_call_history_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_history'))
    )
    op.create_index('ix_call_history_domain_start', 'call_history', ['domain_id', 'start'], unique=False)
    op.create_index('ix_call_history_domain_client', 'call_history', ['domain_id', 'client'], unique=False)
    op.create_table('inner_call_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('callid', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('from_login', sa.String(length=64), nullable=False),
    sa.Column('from_name', sa.String(length=255), nullable=False),
    sa.Column('to_login', sa.String(length=64), nullable=False),
    sa.Column('to_name', sa.String(length=255), nullable=False),
    sa.Column('start', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.Column('wait', sa.Integer(), nullable=False),
    sa.Column('duration', sa.Integer(), nullable=False),
    sa.Column('link', sa.String(length=1024), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_inner_call_history_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inner_call_history'))
    )
    op.create_index('ix_inner_call_history_domain_start', 'inner_call_history', ['domain_id', 'start'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_inner_call_history_domain_start', table_name='inner_call_history')
    op.drop_table('inner_call_history')
    op.drop_index('ix_call_history_domain_client', table_name='call_history')
    op.drop_index('ix_call_history_domain_start', table_name='call_history')
    op.drop_table('call_history')
