"""legacy: CRM user ids mapped to employees (000 §5.5 self_map)

Revision ID: 0007
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('legacy_user_map',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('crm_user', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_legacy_user_map_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_legacy_user_map_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legacy_user_map')),
    sa.UniqueConstraint('domain_id', 'crm_user', name=op.f('uq_legacy_user_map_domain_id_crm_user'))
    )
    with op.batch_alter_table('legacy_user_map', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legacy_user_map_domain_id'), ['domain_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_legacy_user_map_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('legacy_user_map', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legacy_user_map_user_id'))
        batch_op.drop_index(batch_op.f('ix_legacy_user_map_domain_id'))

    op.drop_table('legacy_user_map')
