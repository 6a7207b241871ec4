"""trunks: SIP registrations, SIP URI transfers, branches, webhook subscriptions and events (002 §15-18)

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-23 04:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vpbx.store.base

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _domain_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f(f'fk_{table}_domain_id_domains'),
                                   ondelete='CASCADE')


def _index_domain(table: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f'ix_{table}_domain_id'), ['domain_id'], unique=False)


def upgrade() -> None:
    op.create_table('sip_registrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('telnum', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('login', sa.String(length=255), nullable=False),
    sa.Column('password_sealed', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('auth_name', sa.String(length=255), nullable=False),
    sa.Column('expires', sa.Integer(), nullable=False),
    sa.Column('proxy', sa.String(length=255), nullable=False),
    sa.Column('outgoing', sa.Boolean(), nullable=False),
    sa.Column('search_text', sa.String(length=1024), nullable=False),
    sa.Column('created_at', vpbx.store.base.UTCDateTime(), nullable=False),
    _domain_fk('sip_registrations'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sip_registrations')),
    sa.UniqueConstraint('domain_id', 'telnum', name=op.f('uq_sip_registrations_domain_id_telnum'))
    )
    _index_domain('sip_registrations')

    op.create_table('sipuri_transfers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('telnum', sa.String(length=32), nullable=False),
    sa.Column('uri', sa.String(length=320), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('search_text', sa.String(length=1024), nullable=False),
    sa.Column('created_at', vpbx.store.base.UTCDateTime(), nullable=False),
    _domain_fk('sipuri_transfers'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sipuri_transfers')),
    sa.UniqueConstraint('domain_id', 'telnum', name=op.f('uq_sipuri_transfers_domain_id_telnum')),
    sa.UniqueConstraint('uri', name=op.f('uq_sipuri_transfers_uri'))
    )
    _index_domain('sipuri_transfers')

    op.create_table('branches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('remote_domain', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=True),
    sa.Column('key_sealed', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('error', sa.String(length=1024), nullable=True),
    sa.Column('users_count', sa.Integer(), nullable=False),
    sa.Column('groups_count', sa.Integer(), nullable=False),
    sa.Column('exts_count', sa.Integer(), nullable=False),
    sa.Column('collisions_count', sa.Integer(), nullable=False),
    sa.Column('directory', sa.JSON(), nullable=False),
    sa.Column('synced_at', vpbx.store.base.UTCDateTime(), nullable=True),
    sa.Column('search_text', sa.String(length=1024), nullable=False),
    sa.Column('created_at', vpbx.store.base.UTCDateTime(), nullable=False),
    _domain_fk('branches'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branches')),
    sa.UniqueConstraint('domain_id', 'remote_domain', name=op.f('uq_branches_domain_id_remote_domain'))
    )
    _index_domain('branches')

    op.create_table('webhook_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('created_at', vpbx.store.base.UTCDateTime(), nullable=False),
    _domain_fk('webhook_subscriptions'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_subscriptions')),
    sa.UniqueConstraint('public_id', name=op.f('uq_webhook_subscriptions_public_id')),
    sa.UniqueConstraint('domain_id', 'type', 'url', name=op.f('uq_webhook_subscriptions_domain_id_type_url'))
    )
    _index_domain('webhook_subscriptions')

    op.create_table('webhook_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', vpbx.store.base.UTCDateTime(), nullable=False),
    _domain_fk('webhook_events'),
    sa.ForeignKeyConstraint(['subscription_id'], ['webhook_subscriptions.id'],
                            name=op.f('fk_webhook_events_subscription_id_webhook_subscriptions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_webhook_events_event_id'))
    )
    _index_domain('webhook_events')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_subscription_id'), ['subscription_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_subscription_id'))
    for table in ('webhook_events', 'webhook_subscriptions', 'branches', 'sipuri_transfers', 'sip_registrations'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_domain_id'))
        op.drop_table(table)
