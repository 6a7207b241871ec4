"""notifier: outbox, delivery log, delivery health

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vpbx.store.base

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notify_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=40), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('command', sa.String(length=16), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=True),
    sa.Column('callid', sa.String(length=255), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('round_attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.Column('next_at', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.Column('lease_until', vpbx.store.base.UTCDateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=40), nullable=True),
    sa.Column('delivered_at', vpbx.store.base.UTCDateTime(), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_notify_outbox_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_outbox')),
    sa.UniqueConstraint('uid', name=op.f('uq_notify_outbox_uid'))
    )
    with op.batch_alter_table('notify_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_notify_outbox_due', ['next_at', 'id'], unique=False,
                              sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
        batch_op.create_index('ix_notify_outbox_key', ['domain_id', 'key', 'id'], unique=False,
                              sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
        batch_op.create_index('ix_notify_outbox_domain', ['domain_id', 'state'], unique=False)

    op.create_table('notify_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('attempt_no', sa.Integer(), nullable=False),
    sa.Column('at', vpbx.store.base.UTCDateTime(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('latency_ms', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('response_excerpt', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['notify_outbox.id'], name=op.f('fk_notify_attempts_outbox_id_notify_outbox'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_attempts'))
    )
    with op.batch_alter_table('notify_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_attempts_outbox_id'), ['outbox_id'], unique=False)

    op.create_table('notify_health',
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('first_failure_at', vpbx.store.base.UTCDateTime(), nullable=True),
    sa.Column('last_success_at', vpbx.store.base.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_notify_health_domain_id_domains'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('domain_id', name=op.f('pk_notify_health'))
    )


def downgrade() -> None:
    op.drop_table('notify_health')
    with op.batch_alter_table('notify_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_attempts_outbox_id'))
    op.drop_table('notify_attempts')
    with op.batch_alter_table('notify_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_outbox_domain')
        batch_op.drop_index('ix_notify_outbox_key')
        batch_op.drop_index('ix_notify_outbox_due')
    op.drop_table('notify_outbox')
