"""ratings: the numbers whose callers are asked for a quality score (002 §2.4, a vpbx extension)

Revision ID: 0008
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = '0003'  # telnums


def upgrade() -> None:
    op.create_table('rating_telnums',
    sa.Column('telnum_id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_rating_telnums_domain_id_domains'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['telnum_id'], ['telnums.id'], name=op.f('fk_rating_telnums_telnum_id_telnums'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('telnum_id', name=op.f('pk_rating_telnums'))
    )
    with op.batch_alter_table('rating_telnums', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rating_telnums_domain_id'), ['domain_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('rating_telnums', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rating_telnums_domain_id'))

    op.drop_table('rating_telnums')
