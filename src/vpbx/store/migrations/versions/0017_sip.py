"""sip_credentials: employees' SIP digest HA1 per realm (issue 16)

Revision ID: 0017_sip
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017_sip'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sip_credentials',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('realm', sa.String(length=255), nullable=False),
    sa.Column('ha1_login', sa.String(length=64), nullable=False),
    sa.Column('ext', sa.String(length=16), nullable=False),
    sa.Column('ha1_ext', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_sip_credentials_domain_id_domains'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sip_credentials_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_sip_credentials'))
    )
    op.create_index(op.f('ix_sip_credentials_domain_id'), 'sip_credentials', ['domain_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sip_credentials_domain_id'), table_name='sip_credentials')
    op.drop_table('sip_credentials')
